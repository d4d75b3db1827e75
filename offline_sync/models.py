"""Synced models you own: the abstract ``SyncModel``. And, for Django to find them, the app's own tables.

``SyncModel`` keeps ``version``, ``modified_on`` and the commit-ordered
``sync_stamp`` right on every ORM write path: ``save()`` (with or without
``update_fields``), ``QuerySet.update()``, ``bulk_create()``, ``bulk_update()``
(``SyncQuerySet``, querysets.py); deletions (instance, queryset, cascade) leave
a ``Tombstone``. Each subclass, once Django has prepared its class, is set up by
``registry.finalize()``, the path ``register()`` takes for a model you don't own.

The app's own tables (``Tombstone``, ``SyncState``, ``SyncRequest``,
``Conflict``) are defined in tables.py, below the sync machinery, and imported here.
"""

import contextlib

from django.db import connections, models, router, transaction
from django.db.models.signals import class_prepared
from django.utils import timezone

from . import registry, tombstones
from .options import SyncOptions, add_sync_fields, options_for
from .querysets import SyncManager, SyncQuerySet, current_version
from .stamps import next_stamp
from .tables import Conflict, ExactJSONEncoder, SyncRequest, SyncState, Tombstone

__all__ = [
    "Conflict",
    "ExactJSONEncoder",
    "SyncManager",
    "SyncModel",
    "SyncQuerySet",
    "SyncRequest",
    "SyncState",
    "Tombstone",
]


class SyncModel(models.Model):
    """Abstract base of a model that mobile clients sync.

    Set ``sync_scope_fields`` to the fields that decide who may see a record
    (``("owner",)``, say): tombstones keep their values so that a deletion
    reaches only the devices that could see the record.

    Its sync columns (``version``, ``modified_on``, ``sync_stamp``) are added
    just below the class, by the function that adds them to registered models.
    """

    sync_scope_fields = ()

    objects = SyncManager()

    class Meta:
        abstract = True
        # Django's cascades (on_delete=SET_NULL, ...) write through the base
        # manager: it must be ours so those writes are synced too.
        base_manager_name = "objects"

    def save(self, *args, using=None, update_fields=None, **kwargs):
        if update_fields is not None and not update_fields:
            return super().save(*args, using=using, update_fields=update_fields, **kwargs)  # Django's no-op
        model = type(self)
        options = options_for(model)
        using = using or router.db_for_write(model, instance=self)
        modified = timezone.now()
        with transaction.atomic(using=using, savepoint=False):
            stamp = next_stamp(connections[using])  # first: on SQLite it takes the write lock
            updating, version = current_version(
                self, using, force_insert=kwargs.get("force_insert"), force_update=kwargs.get("force_update")
            )
            options.set_values(self, version + 1, modified, stamp)
            if update_fields is not None:
                update_fields = {*update_fields, *options.sync_fields}
            exits = contextlib.nullcontext()
            if updating and tombstones.touches_scope(model, update_fields or options.scope_fields):
                exits = tombstones.scope_exits(model._base_manager.using(using).filter(pk=self.pk), stamp)
            with exits:
                super().save(*args, using=using, update_fields=update_fields, **kwargs)

    save.alters_data = True

    def delete(self, using=None, keep_parents=False):
        using = using or router.db_for_write(type(self), instance=self)
        with tombstones.instance_deletion(self, using):
            return super().delete(using=using, keep_parents=keep_parents)

    delete.alters_data = True


add_sync_fields(SyncModel, SyncOptions())


def _finalize_sync_model(sender, **kwargs):
    """class_prepared receiver: set up each concrete (or proxy) ``SyncModel`` subclass."""
    if issubclass(sender, SyncModel):
        registry.finalize(sender, SyncOptions(scope_fields=tuple(sender.sync_scope_fields)))


class_prepared.connect(_finalize_sync_model)
