"""The ORM write paths of synced rows: ``SyncQuerySet``'s bulk writes, and the version a save continues.

Every write takes its stamp and writes its rows in one transaction (its own
in autocommit), on the write database, as Django's own writes do; a write that
may move rows out of a scope locks them first and tombstones them under their
old scope (tombstones.py). ``SyncModel`` (models.py) and registered models
(registry.py) both write through here.
"""

import contextlib

from django.db import connections, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import tombstones
from .options import options_for
from .stamps import next_stamp


class SyncQuerySet(models.QuerySet):
    """QuerySet whose bulk writes keep the sync metadata of every row right."""

    def update(self, **kwargs):
        self._for_write = True
        options = options_for(self.model)
        with transaction.atomic(using=self.db, savepoint=False):
            stamp = next_stamp(self._connection())
            kwargs.update(options.values(F(options.version_field) + 1, timezone.now(), stamp))
            if not tombstones.touches_scope(self.model, kwargs):
                return super().update(**kwargs)
            with tombstones.scope_exits(self, stamp) as locked:
                return models.QuerySet.update(self._base().filter(pk__in=locked), **kwargs)

    update.alters_data = True

    def bulk_create(self, objs, *args, update_conflicts=False, update_fields=None, unique_fields=None, **kwargs):
        objs = list(objs)
        if not objs:
            return super().bulk_create(objs, *args, **kwargs)
        self._for_write = True
        options = options_for(self.model)
        with transaction.atomic(using=self.db, savepoint=False):
            now, stamp = timezone.now(), next_stamp(self._connection())
            for obj in objs:
                options.set_values(obj, 1, now, stamp)
            if not update_conflicts:
                return super().bulk_create(objs, *args, unique_fields=unique_fields, **kwargs)
            return self._upsert(objs, args, kwargs, stamp, update_fields, unique_fields)

    def _upsert(self, objs, args, kwargs, stamp, update_fields, unique_fields):
        """``bulk_create(update_conflicts=True)``: rows it updates get a new version and the stamp.

        New rows go in at version 0 and updated rows keep theirs (the version
        is not in the ``ON CONFLICT`` update), then one UPDATE adds 1 to both,
        under the row locks the insert took: exact even when two upserts race
        for one new key.
        """
        options = options_for(self.model)
        version = options.version_field
        for obj in objs:
            setattr(obj, version, 0)
        update_fields = [f for f in update_fields or () if f not in options.sync_fields]
        update_fields += [options.modified_field, options.stamp_field]
        exits = contextlib.nullcontext()
        if tombstones.touches_scope(self.model, update_fields):
            exits = tombstones.scope_exits(self._base().filter(_unique_match(self.model, objs, unique_fields)), stamp)
        with exits:
            created = super().bulk_create(
                objs, *args, update_conflicts=True, update_fields=update_fields, unique_fields=unique_fields, **kwargs
            )
            rows = self._base().filter(_unique_match(self.model, objs, unique_fields), **{options.stamp_field: stamp})
            models.QuerySet.update(rows, **{version: F(version) + 1})
        versions = dict(rows.values_list("pk", version))
        for obj in created:
            setattr(obj, version, versions.get(obj.pk))  # None where the database returned no pk
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        # Django's bulk_update writes through self.update(), which bumps the
        # metadata; read it back so the instances are not left stale.
        objs = list(objs)
        options = options_for(self.model)
        fields = [f for f in fields if f not in options.sync_fields]
        self._for_write = True
        with transaction.atomic(using=self.db, savepoint=False):
            rows = super().bulk_update(objs, fields, *args, **kwargs)
            fresh = self.filter(pk__in=[o.pk for o in objs]).values_list("pk", *options.sync_fields)
            fresh = {pk: meta for pk, *meta in fresh}
        for obj in objs:
            if obj.pk in fresh:
                options.set_values(obj, *fresh[obj.pk])
        return rows

    bulk_update.alters_data = True

    def delete(self):
        # One bulk insert of tombstones instead of one per row from the signal.
        self._for_write = True
        with transaction.atomic(using=self.db, savepoint=False):
            doomed = tombstones.record_for_queryset(self)
            with tombstones.already_recorded(self.model, doomed):
                return super().delete()

    delete.alters_data = True

    def _connection(self):
        return connections[self.db]

    def _base(self):
        return self.model._base_manager.using(self.db)


def _unique_match(model, objs, unique_fields):
    """Q for the rows that ``objs`` collide with on ``unique_fields`` (pk when none are given)."""
    names = [model._meta.pk.name if name == "pk" else name for name in unique_fields or ["pk"]]
    attnames = [model._meta.get_field(name).attname for name in names]
    match = Q(pk__in=[])
    for obj in objs:
        match |= Q(**{attname: getattr(obj, attname) for attname in attnames})
    return match


SyncManager = models.Manager.from_queryset(SyncQuerySet, "SyncManager")


def current_version(
    instance: models.Model, using: str, *, force_insert: bool = False, force_update: bool = False
) -> tuple:
    """``(updating, version)``: will saving ``instance`` UPDATE a row, and the version that row has now.

    The row is locked, so the version read stays right until the save
    commits. A save that inserts (a new record, or one whose row was deleted
    meanwhile, which Django inserts again) continues the version the deleted
    row last had (0 when it never existed), so no device sees a version go back.
    """
    pk = instance._meta.pk
    adding_with_default = instance._state.adding and not force_update and (pk.has_default() or pk.has_db_default())
    if instance.pk is None or force_insert or adding_with_default:
        return False, 0  # Django inserts
    model = type(instance)
    version_field = options_for(model).version_field
    version = model._base_manager.using(using).filter(pk=instance.pk).select_for_update()
    version = version.values_list(version_field, flat=True).first()
    if version is not None:
        return True, version
    return False, (tombstones.last_state(model, instance.pk, using) or {}).get(version_field) or 0
