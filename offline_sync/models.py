"""Synced models: the abstract ``SyncModel`` and the tables the app keeps itself.

``SyncModel`` keeps ``version``, ``modified_on`` and the commit-ordered
``sync_stamp`` right on every ORM write path: ``save()`` (with or without
``update_fields``), ``QuerySet.update()``, ``bulk_create()``, ``bulk_update()``;
deletions (instance, queryset, cascade) leave a ``Tombstone``.
"""

import contextlib
import datetime

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import tombstones
from .stamps import next_stamp

SYNC_FIELDS = ("version", "modified_on", "sync_stamp")


class SyncQuerySet(models.QuerySet):
    """QuerySet whose bulk writes keep the sync metadata of every row right.

    Each write takes its stamp and writes its rows in one transaction (its own
    in autocommit), on the write database, as Django's own writes do.
    """

    def update(self, **kwargs):
        self._for_write = True
        with transaction.atomic(using=self.db, savepoint=False):
            stamp = next_stamp(self._connection())
            kwargs.update(version=F("version") + 1, modified_on=timezone.now(), sync_stamp=stamp)
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
        with transaction.atomic(using=self.db, savepoint=False):
            now, stamp = timezone.now(), next_stamp(self._connection())
            for obj in objs:
                obj.version, obj.modified_on, obj.sync_stamp = 1, now, stamp
            if not update_conflicts:
                return super().bulk_create(objs, *args, unique_fields=unique_fields, **kwargs)
            return self._upsert(objs, args, kwargs, stamp, update_fields, unique_fields)

    def _upsert(self, objs, args, kwargs, stamp, update_fields, unique_fields):
        """``bulk_create(update_conflicts=True)``: rows it updates get a new version and the stamp.

        New rows go in at version 0 and updated rows keep theirs (``version``
        is not in the ``ON CONFLICT`` update), then one UPDATE adds 1 to both,
        under the row locks the insert took: exact even when two upserts race
        for one new key.
        """
        for obj in objs:
            obj.version = 0
        update_fields = [f for f in update_fields or () if f not in SYNC_FIELDS] + ["modified_on", "sync_stamp"]
        exits = contextlib.nullcontext()
        if tombstones.touches_scope(self.model, update_fields):
            exits = tombstones.scope_exits(self._base().filter(_unique_match(self.model, objs, unique_fields)), stamp)
        with exits:
            created = super().bulk_create(
                objs, *args, update_conflicts=True, update_fields=update_fields, unique_fields=unique_fields, **kwargs
            )
            rows = self._base().filter(sync_stamp=stamp).filter(_unique_match(self.model, objs, unique_fields))
            models.QuerySet.update(rows, version=F("version") + 1)
        versions = dict(rows.values_list("pk", "version"))
        for obj in created:
            obj.version = versions.get(obj.pk)  # None where the database returned no pk
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        # Django's bulk_update writes through self.update(), which bumps the
        # metadata; read it back so the instances are not left stale.
        objs = list(objs)
        fields = [f for f in fields if f not in SYNC_FIELDS]
        self._for_write = True
        with transaction.atomic(using=self.db, savepoint=False):
            rows = super().bulk_update(objs, fields, *args, **kwargs)
            fresh = {pk: meta for pk, *meta in self.filter(pk__in=[o.pk for o in objs]).values_list("pk", *SYNC_FIELDS)}
        for obj in objs:
            if obj.pk in fresh:
                obj.version, obj.modified_on, obj.sync_stamp = fresh[obj.pk]
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


def current_version(instance, using, *, force_insert=False, force_update=False):
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
    version = model._base_manager.using(using).filter(pk=instance.pk).select_for_update()
    version = version.values_list("version", flat=True).first()
    if version is not None:
        return True, version
    last = tombstones.for_model(model, using).filter(object_pk=str(instance.pk)).exclude(data={})
    return False, last.order_by("-sync_stamp", "-pk").values_list("data__version", flat=True).first() or 0


class SyncModel(models.Model):
    """Abstract base of a model that mobile clients sync.

    Set ``sync_scope_fields`` to the fields that decide who may see a record
    (``("owner",)``, say): tombstones keep their values so that a deletion
    reaches only the devices that could see the record.
    """

    version = models.PositiveIntegerField(default=1, editable=False)
    modified_on = models.DateTimeField(default=timezone.now, editable=False)
    # The commit-ordered position of the last change (see stamps.py).
    sync_stamp = models.BigIntegerField(default=0, editable=False, db_index=True)

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
        using = using or router.db_for_write(type(self), instance=self)
        self.modified_on = timezone.now()
        with transaction.atomic(using=using, savepoint=False):
            self.sync_stamp = next_stamp(connections[using])  # first: on SQLite it takes the write lock
            updating, version = current_version(
                self, using, force_insert=kwargs.get("force_insert"), force_update=kwargs.get("force_update")
            )
            self.version = version + 1
            if update_fields is not None:
                update_fields = {*update_fields, *SYNC_FIELDS}
            exits = contextlib.nullcontext()
            if updating and tombstones.touches_scope(type(self), update_fields or self.sync_scope_fields):
                exits = tombstones.scope_exits(
                    type(self)._base_manager.using(using).filter(pk=self.pk), self.sync_stamp
                )
            with exits:
                super().save(*args, using=using, update_fields=update_fields, **kwargs)

    save.alters_data = True

    def delete(self, using=None, keep_parents=False):
        using = using or router.db_for_write(type(self), instance=self)
        with tombstones.instance_deletion(self, using):
            return super().delete(using=using, keep_parents=keep_parents)

    delete.alters_data = True


class ExactJSONEncoder(DjangoJSONEncoder):
    """Django's JSON encoder, but times keep their microseconds (it rounds them to milliseconds)."""

    def default(self, o):
        if isinstance(o, (datetime.datetime, datetime.time)) and o.microsecond:
            text = o.isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        return super().default(o)


class Tombstone(models.Model):
    """A deleted record (or one that left a scope), kept so delta pulls can say so."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_pk = models.CharField(max_length=255)
    sync_stamp = models.BigIntegerField()
    deleted_on = models.DateTimeField(default=timezone.now, db_index=True)
    # Values of the model's sync_scope_fields when it was deleted, by attname.
    scope = models.JSONField(default=dict, blank=True)
    # The record's last state, by attname, so a conflict resolution can restore
    # it with the same id. Empty for a tombstone that only marks a scope exit.
    data = models.JSONField(default=dict, blank=True, encoder=ExactJSONEncoder)

    class Meta:
        indexes = [models.Index(fields=["content_type", "sync_stamp", "id"], name="offline_sync_tomb_order")]

    def __str__(self):
        return f"{self.content_type} {self.object_pk} deleted {self.deleted_on:%Y-%m-%d %H:%M}"


class SyncState(models.Model):
    """A single row: SQLite's stamp clock and the tombstone purge horizon."""

    clock = models.BigIntegerField(default=0)
    # Stamps up to this one may have lost tombstones to a purge.
    purge_horizon = models.BigIntegerField(default=0)

    def __str__(self):
        return f"clock {self.clock}, purge horizon {self.purge_horizon}"


class SyncRequest(models.Model):
    """A push already applied, kept so a retry with its sync_id answers the same."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    sync_id = models.UUIDField()
    endpoint = models.CharField(max_length=255)
    body_hash = models.CharField(max_length=64)
    # What a retry must answer the same: id_map and conflicts.
    outcome = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    created_on = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "sync_id"], name="offline_sync_request_unique")]

    def __str__(self):
        return f"push {self.sync_id} to {self.endpoint}"


class Conflict(models.Model):
    """A pushed change that was not applied because the server's record changed first."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RESOLVED = "resolved"

    class Kind(models.TextChoices):
        MODIFIED = "modified"
        DELETED = "deleted"

    class Resolution(models.TextChoices):
        SERVER = "server", "Keep server version"
        CLIENT = "client", "Apply client version"
        MERGE = "merge", "Merge"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    device_id = models.CharField(max_length=200, blank=True)
    endpoint = models.CharField(max_length=255, db_index=True)
    entity = models.CharField(max_length=100)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_pk = models.CharField(max_length=255)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The client's change as sent ({"id", "base_version", fields...}).
    client = models.JSONField(encoder=DjangoJSONEncoder)
    # The server's record (wire format) when the conflict was detected; null if deleted.
    server = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    detected_on = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    resolution = models.CharField(max_length=10, choices=Resolution.choices, blank=True)
    # What was asked: the merge's field values, to tell a repeated request from another.
    resolution_input = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    # The record after resolution (wire format); null if it ended deleted.
    resolved_record = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_on = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_on", "-pk"]
        permissions = [("resolve_conflict", "Can resolve sync conflicts")]
        indexes = [models.Index(fields=["user", "endpoint", "status"], name="offline_sync_conflict_pending")]

    def __str__(self):
        return f"{self.entity} {self.object_pk}: {self.kind} conflict ({self.status})"
