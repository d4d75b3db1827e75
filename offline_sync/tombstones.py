"""Tombstones: recorded on every delete path and scope exit, read by pulls and pushes, purged after retention.

Every query of a model's tombstones goes through ``for_model()`` (and
``last_state()``). Writes come from rows locked first (``locked()``), so a
tombstone always carries the scope the row had when it went.
"""

import contextvars
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, transaction
from django.db.models import Max
from django.utils import timezone

from .bulk import insert_rows
from .conf import sync_settings
from .options import options_for
from .stamps import next_stamp
from .tables import SyncRequest, SyncState, Tombstone

# (model, pks) whose tombstones a bulk delete already wrote, so the per-row
# post_delete handler skips them.
_recorded = contextvars.ContextVar("offline_sync_recorded", default=())


def _scope_attnames(model):
    return options_for(model).scope_attnames(model)


def _data_fields(model):
    """Fields a tombstone keeps to restore the record: every concrete field but the modified time and the stamp."""
    options = options_for(model)
    skip = (options.modified_field, options.stamp_field)
    # Binary values have no JSON form; a restored record gets the field's default.
    return [f for f in model._meta.concrete_fields if f.name not in skip and f.get_internal_type() != "BinaryField"]


def _json(value):
    """A scope value as JSON holds it (a UUID as its text), so stored and looked-up values compare equal."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _content_type(model, using):
    return ContentType.objects.db_manager(using).get_for_model(model)


def for_model(model: type, using: str, scope: dict | None = None) -> models.QuerySet:
    """The tombstones of ``model`` on database ``using``; with ``scope`` (``{attname: value}``), those left under it."""
    scope = {f"scope__{name}": _json(value) for name, value in (scope or {}).items()}
    return Tombstone.objects.using(using).filter(content_type=_content_type(model, using), **scope)


def last_state(model: type, pk, using: str) -> dict | None:
    """The last state (by attname) of the deleted record ``pk``, from its newest tombstone that kept one; or None."""
    tombstones = for_model(model, using).filter(object_pk=str(pk)).exclude(data={})
    return tombstones.order_by("-sync_stamp", "-pk").values_list("data", flat=True).first()


def _build(model, rows, stamp, using, datas=None):
    content_type = _content_type(model, using)
    attnames = _scope_attnames(model)
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


def record_for_queryset(queryset: models.QuerySet) -> frozenset:
    """Write tombstones for every row of ``queryset`` (about to be deleted); return their pks."""
    model = queryset.model
    scope, data = _scope_attnames(model), [f.attname for f in _data_fields(model)]
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


def locked(queryset: models.QuerySet) -> models.QuerySet:
    """The rows of ``queryset``, locked in pk order, to be read before writing them.

    A concurrent owner change must be waited for and its outcome read, or a
    deletion or a scope exit would be recorded under an owner the row no
    longer has. The rows are selected by pk from a subquery, so the lock
    falls on the model's own rows whatever the queryset joins (PostgreSQL
    refuses ``FOR UPDATE`` on an outer join's nullable side, or with DISTINCT).
    """
    base = queryset.model._base_manager.using(queryset.db)
    return base.filter(pk__in=queryset.values("pk")).order_by("pk").select_for_update()


def scope_values(queryset: models.QuerySet, *, lock: bool = False) -> dict:
    """``{pk: (scope values...)}`` of the rows of ``queryset``, by scope field (``lock``: see ``locked``)."""
    rows = locked(queryset) if lock else queryset.order_by("pk")
    return {pk: tuple(rest) for pk, *rest in rows.values_list("pk", *_scope_attnames(queryset.model))}


def touches_scope(model: type, field_names) -> bool:
    """Whether writing ``field_names`` (names or attnames) may change who can see a record."""
    scope = options_for(model).scope_fields
    return bool(scope) and any(model._meta.get_field(name).name in scope for name in field_names)


@contextmanager
def scope_exits(rows: models.QuerySet, stamp: int) -> Iterator[list]:
    """Around a write to the queryset ``rows``: tombstone, under its old scope, each row it moved out.

    Yields the pks of the rows it locked: the write must touch only those, or a
    row that began to match meanwhile would move without a tombstone.
    """
    model, using = rows.model, rows.db
    before = scope_values(rows, lock=True)
    yield list(before)
    after = scope_values(model._base_manager.using(using).filter(pk__in=list(before)))
    record_scope_exits(model, before, after, stamp, using)


def record_scope_exits(model: type, before: dict, after: dict, stamp: int, using: str) -> None:
    """Tombstone, under its old scope, each row whose scope values changed.

    A record that moves to another owner, say, must vanish from the devices
    of the one who had it: to them it is a deletion.
    """
    rows = [(pk, *old) for pk, old in before.items() if pk in after and after[pk] != old]
    if rows:
        insert_rows(Tombstone, [_row(t) for t in _build(model, rows, stamp, using)], connection=connections[using])


@contextmanager
def instance_deletion(instance: models.Model, using: str) -> Iterator[None]:
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
def already_recorded(model: type, pks: frozenset) -> Iterator[None]:
    """Within it, the post_delete receiver skips the rows ``pks`` of ``model``: their tombstones are written."""
    token = _recorded.set((*_recorded.get(), (model, pks)))
    try:
        yield
    finally:
        _recorded.reset(token)


def record_deleted_instance(sender: type, instance: models.Model, using: str, **kwargs) -> None:
    """post_delete receiver: the path of instance deletes and cascades."""
    if any(model is sender and instance.pk in pks for model, pks in _recorded.get()):
        return
    row = (instance.pk, *(getattr(instance, a) for a in _scope_attnames(sender)))
    data = {f.attname: f.get_prep_value(getattr(instance, f.attname)) for f in _data_fields(sender)}
    Tombstone.objects.using(using).bulk_create(_build(sender, [row], next_stamp(connections[using]), using, [data]))


class Purged(NamedTuple):
    """What a purge deleted (or, in a dry run, would delete)."""

    tombstones: int
    answers: int  # push answers kept for retries of their sync_id


def purge(*, dry_run: bool = False, now=None, using: str = "default") -> Purged:
    """Delete tombstones and stored push answers past ``TOMBSTONE_RETENTION``; return how many (would) go.

    Raises the purge horizon to the newest purged stamp first, so a cursor
    that could have missed one of them answers 410 cursor_expired.
    """
    cutoff = (now or timezone.now()) - sync_settings.TOMBSTONE_RETENTION
    with transaction.atomic(using=using):
        # Answers kept for retries live exactly as long as tombstones.
        answers = SyncRequest.objects.using(using).filter(created_on__lt=cutoff)
        expired = Tombstone.objects.using(using).filter(deleted_on__lt=cutoff)
        if dry_run:
            return Purged(expired.count(), answers.count())
        answers_purged = answers.delete()[0]
        newest = expired.aggregate(newest=Max("sync_stamp"))["newest"]
        if newest is None:
            return Purged(0, answers_purged)
        state, _ = SyncState.objects.using(using).select_for_update().get_or_create(pk=1)
        if newest > state.purge_horizon:
            SyncState.objects.using(using).filter(pk=1).update(purge_horizon=newest)
        return Purged(expired.delete()[0], answers_purged)


def purge_horizon(using: str = "default") -> int:
    """The newest stamp whose tombstones may have been purged (0: none ever were)."""
    return SyncState.objects.using(using).filter(pk=1).values_list("purge_horizon", flat=True).first() or 0
