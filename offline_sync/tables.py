"""The tables the app keeps itself: tombstones, the stamp clock, stored push answers, conflicts.

Plain models that know nothing of the sync machinery, so that the engine
(tombstones.py, idempotency.py, conflicts.py) can import them without
importing ``SyncModel``. ``models.py`` imports them, so Django finds them
there as ``offline_sync.models.Tombstone`` and so on.
"""

import datetime

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


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
    # The server's record just before the resolution applied, as {"record": <wire format, or null if
    # deleted>}: it may have changed since detection. Null for conflicts resolved before it was kept.
    server_before_resolution = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
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
        # The admin sets record_label (the record's own __str__); it costs a query, so __str__ never reads it.
        record = getattr(self, "record_label", None) or f"{self.entity} {self.object_pk}"
        return f"{record}: {self.kind} conflict ({self.status})"
