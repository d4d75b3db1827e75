"""Which models are synced: ``SyncModel`` subclasses, and models you don't own, registered.

``register(Model)`` gives a model of another app what ``SyncModel`` gives your
own: the ``version``, ``modified_on`` and ``sync_stamp`` columns (added to the
model, so that app needs a migration: keep it in your project with
``MIGRATION_MODULES``, as with django-modeltranslation), ``SyncQuerySet``
behind its managers, and tombstones on delete. Call it from your
``AppConfig.ready()``.
"""

import functools

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models, router, transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.utils import timezone

from . import tombstones

_registered = {}  # model -> True, for models registered by call


class AlreadyRegistered(ImproperlyConfigured):
    pass


class NotRegistered(ImproperlyConfigured):
    pass


def is_registered(model):
    from .models import SyncModel

    return isinstance(model, type) and (issubclass(model, SyncModel) or model in _registered)


def get_registered_models():
    """Every installed synced model: ``SyncModel`` subclasses and registered models."""
    return [model for model in apps.get_models() if is_registered(model)]


def register(model=None, *, scope_fields=()):
    """Make ``model`` (one you don't own) synced. Also usable as a class decorator."""
    if model is None:
        return lambda model: register(model, scope_fields=scope_fields)
    if is_registered(model):
        raise AlreadyRegistered(f"{model._meta.label} is already synced.")
    _add_sync_fields(model)
    model.sync_scope_fields = tuple(scope_fields)
    _use_sync_querysets(model)
    _save_in_one_transaction(model)
    uid = _uid(model)
    pre_save.connect(_before_save, sender=model, dispatch_uid=uid)
    post_save.connect(_after_save, sender=model, dispatch_uid=uid)
    connect_tombstones(model)
    _registered[model] = True
    return model


def unregister(model):
    """Stop syncing a registered model (its columns stay; writes no longer keep them)."""
    if model not in _registered:
        raise NotRegistered(f"{model._meta.label} was not registered with offline_sync.register().")
    uid = _uid(model)
    for signal in (pre_save, post_save, post_delete):
        signal.disconnect(sender=model, dispatch_uid=uid)
    model.save, model.delete = model.save.__wrapped__, model.delete.__wrapped__
    del _registered[model]


def connect_tombstones(model):
    from .tombstones import record_deleted_instance

    # Per model, not for every sender: a global receiver would stop Django
    # from fast-deleting the host project's other models.
    post_delete.connect(record_deleted_instance, sender=model, dispatch_uid=_uid(model))


def _uid(model):
    return f"offline_sync_{model._meta.label}"


def _add_sync_fields(model):
    fields = {
        "version": models.PositiveIntegerField(default=1, editable=False),
        "modified_on": models.DateTimeField(default=timezone.now, editable=False),
        "sync_stamp": models.BigIntegerField(default=0, editable=False, db_index=True),
    }
    for name, field in fields.items():
        if name not in {f.name for f in model._meta.get_fields()}:
            field.contribute_to_class(model, name)
    model._meta._expire_cache()


def _use_sync_querysets(model):
    from .models import SyncQuerySet

    for manager in model._meta.local_managers:
        if not issubclass(manager._queryset_class, SyncQuerySet):
            base = manager._queryset_class
            manager._queryset_class = type(f"Sync{base.__name__}", (SyncQuerySet, base), {})
    # Cascades write through the base manager: make it the (now synced) default one.
    model._meta.base_manager_name = model._meta.default_manager_name or model._meta.local_managers[0].name
    model._meta._expire_cache()


def _save_in_one_transaction(model):
    """Wrap ``model.save`` in a transaction: the save writes the values, ``_after_save`` their stamp.

    And ``model.delete``, so that its tombstone comes from the row (``tombstones.instance_deletion``).

    In autocommit (the admin, scripts) they would commit apart, and a pull in
    between would see the new values at the old stamp and version.
    """
    save = model.save

    @functools.wraps(save)
    def synced_save(self, *args, using=None, **kwargs):
        using = using or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            return save(self, *args, using=using, **kwargs)

    model.save = synced_save
    delete = model.delete

    @functools.wraps(delete)
    def synced_delete(self, using=None, keep_parents=False):
        using = using or router.db_for_write(type(self), instance=self)
        with tombstones.instance_deletion(self, using):
            return delete(self, using=using, keep_parents=keep_parents)

    model.delete = synced_delete


def _before_save(sender, instance, raw=False, using=None, update_fields=None, **kwargs):
    if raw:
        return
    # The save writes the version as it is (the row is locked); the bump
    # happens in one SQL update after the save.
    from .models import current_version

    updating, instance.version = current_version(instance, using)
    scope = set(sender.sync_scope_fields)
    if scope and updating and (update_fields is None or scope & set(update_fields)):
        rows = sender._base_manager.using(using).filter(pk=instance.pk)
        instance._sync_scope_before = tombstones.scope_values(rows, lock=True)


def _after_save(sender, instance, raw=False, using=None, **kwargs):
    if raw:
        return
    sender._base_manager.using(using).filter(pk=instance.pk).update()
    instance.refresh_from_db(using=using, fields=["version", "modified_on", "sync_stamp"])
    before = instance.__dict__.pop("_sync_scope_before", None)
    if before:
        after = {instance.pk: tuple(getattr(instance, a) for a in tombstones.scope_attnames(sender))}
        tombstones.record_scope_exits(sender, before, after, instance.sync_stamp, using)
