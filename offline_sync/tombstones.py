"""Deletion tombstones: recorded on every delete path, purged after retention."""

import contextvars
import json
from contextlib import contextmanager

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, transaction
from django.utils import timezone

from .bulk import insert_rows
from .conf import sync_settings
from .stamps import next_stamp

# (model, pks) whose tombstones a bulk delete already wrote, so the per-row
# post_delete handler skips them.
_recorded = contextvars.ContextVar("offline_sync_recorded", default=())


def scope_attnames(model):
    return [model._meta.get_field(name).attname for name in model.sync_scope_fields]


def _data_fields(model):
    # Binary values have no JSON form; a restored record gets the field's default.
    skip = ("modified_on", "sync_stamp")
    return [f for f in model._meta.concrete_fields if f.name not in skip and f.get_internal_type() != "BinaryField"]


def data_attnames(model):
    """Columns a tombstone keeps to restore the record: every concrete field but the stamp."""
    return [f.attname for f in _data_fields(model)]


def _json(value):
    """A scope value as JSON holds it (a UUID as its text), so stored and looked-up values compare equal."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def in_scope(scope):
    """Filter kwargs for the tombstones left under ``scope`` (``{attname: value}``)."""
    return {f"scope__{name}": _json(value) for name, value in scope.items()}


def for_model(model, using):
    """The tombstones of ``model``."""
    from .models import Tombstone

    return Tombstone.objects.using(using).filter(
        content_type=ContentType.objects.db_manager(using).get_for_model(model)
    )


def _build(model, rows, stamp, using, datas=None):
    from .models import Tombstone

    content_type = ContentType.objects.db_manager(using).get_for_model(model)
    attnames = scope_attnames(model)
    now = timezone.now()
    datas = datas or [{}] * len(rows)
    return [
        Tombstone(
            content_type=content_type,
            object_pk=str(pk),
            sync_stamp=stamp,
            deleted_on=now,
            scope={name: _json(value) for name, value in zip(attnames, scope_values)},
            data=data,
        )
        for (pk, *scope_values), data in zip(rows, datas)
    ]


def _row(tombstone):
    return {f.attname: getattr(tombstone, f.attname) for f in tombstone._meta.concrete_fields if not f.primary_key}


def record_for_queryset(queryset):
    """Write tombstones for every row of ``queryset`` (about to be deleted); return their pks."""
    from .models import Tombstone

    model = queryset.model
    scope, data = scope_attnames(model), data_attnames(model)
    rows = list(locked(queryset).values_list("pk", *scope, *data))
    if rows:
        stamp = next_stamp(connections[queryset.db])
        tombs = _build(
            model,
            [row[: 1 + len(scope)] for row in rows],
            stamp,
            queryset.db,
            [dict(zip(data, row[1 + len(scope) :])) for row in rows],
        )
        insert_rows(Tombstone, [_row(t) for t in tombs], connection=connections[queryset.db])
    return frozenset(row[0] for row in rows)


def locked(queryset):
    """The rows of ``queryset``, locked in pk order, to be read before writing them.

    A concurrent owner change must be waited for and its outcome read, or a
    deletion or a scope exit would be recorded under an owner the row no
    longer has. The rows are selected by pk from a subquery, so the lock
    falls on the model's own rows whatever the queryset joins (PostgreSQL
    refuses ``FOR UPDATE`` on an outer join's nullable side, or with DISTINCT).
    """
    base = queryset.model._base_manager.using(queryset.db)
    return base.filter(pk__in=queryset.values("pk")).order_by("pk").select_for_update()


def scope_values(queryset, *, lock=False):
    """``{pk: (scope values...)}`` of the rows of ``queryset``, by scope field (``lock``: see ``locked``)."""
    rows = locked(queryset) if lock else queryset.order_by("pk")
    return {pk: tuple(rest) for pk, *rest in rows.values_list("pk", *scope_attnames(queryset.model))}


def touches_scope(model, field_names):
    """Whether writing ``field_names`` (names or attnames) may change who can see a record."""
    scope = model.sync_scope_fields
    return bool(scope) and any(model._meta.get_field(name).name in scope for name in field_names)


@contextmanager
def scope_exits(rows, stamp):
    """Around a write to the queryset ``rows``: tombstone, under its old scope, each row it moved out.

    Yields the pks of the rows it locked: the write must touch only those, or a
    row that began to match meanwhile would move without a tombstone.
    """
    model, using = rows.model, rows.db
    before = scope_values(rows, lock=True)
    yield list(before)
    after = scope_values(model._base_manager.using(using).filter(pk__in=list(before)))
    record_scope_exits(model, before, after, stamp, using)


def record_scope_exits(model, before, after, stamp, using):
    """Tombstone, under its old scope, each row whose scope values changed.

    A record that moves to another owner, say, must vanish from the devices
    of the one who had it: to them it is a deletion.
    """
    from .models import Tombstone

    rows = [(pk, *old) for pk, old in before.items() if pk in after and after[pk] != old]
    if rows:
        insert_rows(Tombstone, [_row(t) for t in _build(model, rows, stamp, using)], connection=connections[using])


@contextmanager
def instance_deletion(instance, using):
    """Around ``instance.delete()``: its tombstone from the row as it is now, not from the instance.

    An instance loaded before its record moved to another owner would leave
    the tombstone under the old owner, and the new owner's devices would keep it.
    """
    model = type(instance)
    with transaction.atomic(using=using, savepoint=False):
        doomed = record_for_queryset(model._base_manager.using(using).filter(pk=instance.pk))
        with already_recorded(model, doomed):
            yield


@contextmanager
def already_recorded(model, pks):
    token = _recorded.set((*_recorded.get(), (model, pks)))
    try:
        yield
    finally:
        _recorded.reset(token)


def record_deleted_instance(sender, instance, using, **kwargs):
    """post_delete receiver: the path of instance deletes and cascades."""
    from .models import Tombstone

    if any(model is sender and instance.pk in pks for model, pks in _recorded.get()):
        return
    row = (instance.pk, *(getattr(instance, a) for a in scope_attnames(sender)))
    data = {f.attname: f.get_prep_value(getattr(instance, f.attname)) for f in _data_fields(sender)}
    Tombstone.objects.using(using).bulk_create(_build(sender, [row], next_stamp(connections[using]), using, [data]))


def purge(*, dry_run=False, now=None, using="default"):
    """Delete tombstones past ``TOMBSTONE_RETENTION``; return how many (would) go.

    Raises the purge horizon to the newest purged stamp first, so a cursor
    that could have missed one of them answers 410 cursor_expired.
    """
    from django.db.models import Max

    from .models import SyncRequest, SyncState, Tombstone

    cutoff = (now or timezone.now()) - sync_settings.TOMBSTONE_RETENTION
    with transaction.atomic(using=using):
        if not dry_run:
            # Answers kept for retries live exactly as long as tombstones.
            SyncRequest.objects.using(using).filter(created_on__lt=cutoff).delete()
        expired = Tombstone.objects.using(using).filter(deleted_on__lt=cutoff)
        newest = expired.aggregate(newest=Max("sync_stamp"))["newest"]
        if newest is None or dry_run:
            return expired.count()
        state, _ = SyncState.objects.using(using).select_for_update().get_or_create(pk=1)
        if newest > state.purge_horizon:
            SyncState.objects.using(using).filter(pk=1).update(purge_horizon=newest)
        return expired.delete()[0]


def purge_horizon(using="default"):
    from .models import SyncState

    return SyncState.objects.using(using).filter(pk=1).values_list("purge_horizon", flat=True).first() or 0
