"""The pull engine: pages of changes in commit order. Plain Django, no HTTP.

A page merges, in ``(stamp, source, key)`` order, the changed records and the
tombstones of every entity of an endpoint (see cursors.py), and only takes
changes below the watermark, so nothing committed later can slip behind the
cursor it returns (see stamps.py).
"""

from dataclasses import dataclass, replace
from operator import itemgetter
from typing import NamedTuple

from django.db import connections
from django.db.models import Exists, OuterRef, Q, Value
from django.utils import timezone

from . import tombstones
from .cursors import EXPIRED, Position
from .exceptions import CursorExpired
from .records import format_datetime
from .stamps import watermark
from .tables import SyncState
from .tombstones import purge_horizon

_position = itemgetter(0, 1, 2)  # a Change's (stamp, rank, key): the stream's order


class Change(NamedTuple):
    """One item of the change stream: its position ``(stamp, rank, key)`` and what it says."""

    stamp: int
    rank: int  # the source: 2i for entity i's records, 2i + 1 for its tombstones
    key: object  # the record's pk, or the tombstone's id
    index: int  # the entity
    kind: str  # "record", "left" (out of the subset), "tombstone", "covered" (a tombstone that says nothing)
    pk: object  # the record's pk
    row: tuple = None  # a record's wire columns


@dataclass
class Page:
    full: bool
    changes: dict
    cursor: str
    has_more: bool
    server_time: object

    def as_dict(self):
        return {
            "full": self.full,
            "changes": self.changes,
            "cursor": self.cursor,
            "has_more": self.has_more,
            "server_time": format_datetime(self.server_time),
        }


def check_not_expired(since, using, horizon=None):
    """Raise ``CursorExpired`` if tombstones ``since`` needs may have been purged (``horizon``: read already)."""
    if since is not None and since.needs_since <= (purge_horizon(using) if horizon is None else horizon):
        raise CursorExpired()


def pull(entities, since=None, limit=1000, *, using=None, primary=None):
    """Return the next ``Page`` of changes after ``since`` (a ``Position``; None: full).

    ``using``: the database to read, default the entities' read database. A
    push passes its own, so that its answer is read inside its transaction.
    ``primary``: the database to read instead when ``using`` (a read replica)
    has not replayed up to ``since`` yet (see docs/deployment.md, "Read replicas").
    """
    if since is EXPIRED:
        raise CursorExpired()
    using = using or entities[0].subset.db
    upper, own_now = watermark(connections[using])
    if since is not None and (since.stamp, since.source >= 0) > (upper, False) and primary not in (None, using):
        # A position this replica has not reached (from a push's answer, or from
        # a replica further on): it would answer nothing, and has_more false in
        # the middle of a paged pull.
        return pull(entities, since, limit, using=primary)
    items = []  # Change
    below = Q(sync_stamp__lt=upper)
    horizon = None
    for entity in entities:
        if since is None:
            items += _full_records(entity, below, limit, using)
        else:
            items += _changed_records(entity, since.after(entity.records_rank) & below, limit, using)
            # The purge horizon is read with the last tombstones, in their statement: a purge that
            # committed before it (and took tombstones this pull did not see) has raised it by then.
            where = since.after(entity.tombstones_rank, key_field="id") & below
            tombstones, horizon = _tombstones(entity, where, limit, using, horizon=entity is entities[-1])
            items += tombstones
    check_not_expired(since, using, horizon)
    items.sort(key=_position)
    has_more = len(items) > limit
    items = items[:limit]
    if has_more:
        last = items[-1]
        # A full pull's next pages still need only deletions from its first page's watermark on.
        floor = upper if since is None else since.floor
        position = Position(last.stamp, last.rank, last.key, floor)
    elif since is not None and since.stamp >= upper:
        position = replace(since, own=0, own_source=-1, own_key=None)
    else:
        position = Position(upper)
    own = _own_part(since, upper, own_now)
    if own is not None:
        sent = own
        if not has_more:  # after every other change: they come last in the order too
            room = limit - len(items)
            mine = sorted(_own_changes(entities, own, room, using), key=_position)
            has_more, mine = len(mine) > room, mine[:room]
            items += mine
            if mine:
                sent = replace(own, own_source=mine[-1].rank, own_key=mine[-1].key)
        position = replace(position, own=sent.own, own_source=sent.own_source, own_key=sent.own_key)
    # A full pull without a push's own changes has each record once, and no deletion.
    unique = since is None and own is None
    changes = {entity.name: _entity_changes(entity, items, using, unique=unique) for entity in entities}
    return Page(
        full=since is None,
        changes=changes,
        cursor=position.encode(),
        has_more=has_more,
        server_time=timezone.now(),
    )


def _own_part(since, upper, own_now):
    """The push's own changes still to send ahead of the watermark, as a ``Position``'s own part, or None.

    A push's own rows (``own_now``, this transaction's stamp) are above the
    watermark while a transaction older than the push still runs: the cursor
    cannot cover them yet, but the answer must carry them (protocol 4), in as
    many pages as it takes. The cursor then records how far they were sent, so
    the next pages go on with them, and conflict detection by ``last_sync``
    counts them as seen. Once the watermark passes them, they are ordinary
    changes again (and are sent once more).
    """
    if own_now is not None:
        return Position(0, own=own_now)
    if since is not None and since.own and since.own >= upper:
        return since
    return None


def _own_changes(entities, own, limit, using):
    """Rows (and tombstones) of stamp ``own.own`` after ``own``'s own part, at most ``limit + 1`` per source."""
    items = []
    for entity in entities:
        records = own.own_after(entity.records_rank)
        if records is not None:
            items += _changed_records(entity, records, limit, using)
        deletions = own.own_after(entity.tombstones_rank, key_field="id")
        if deletions is not None:
            items += _tombstones(entity, deletions, limit, using)[0]
    return items


def _full_records(entity, where, limit, using):
    rank, index = entity.records_rank, entity.index
    columns = ["sync_stamp", *entity.format.wire_columns(connections[using])[0]]
    rows = entity.subset.using(using).filter(where).order_by("sync_stamp", "pk").values_list(*columns)[: limit + 1]
    pk_at = 1 + entity.format.columns.index("pk")
    return [Change(row[0], rank, row[pk_at], index, "record", row[pk_at], row[1:]) for row in rows]


def _changed_records(entity, where, limit, using):
    """Rows in the caller's scope that changed (``where``), each flagged in or out of the subset.

    Rows that left the caller's scope are not here: a scope exit leaves a
    tombstone under the old scope (see tombstones.py).
    """
    rank, index = entity.records_rank, entity.index
    rows = entity.scoped.using(using).filter(where)
    if entity.subset_is_scoped:
        rows = rows.annotate(_in_subset=Value(True))
    else:
        rows = rows.annotate(_in_subset=Exists(entity.subset.using(using).filter(pk=OuterRef("pk"))))
    columns = ["sync_stamp", "_in_subset", *entity.format.wire_columns(connections[using])[0]]
    rows = rows.order_by("sync_stamp", "pk").values_list(*columns)[: limit + 1]
    pk_at = 2 + entity.format.columns.index("pk")
    return [
        Change(row[0], rank, row[pk_at], index, "record" if row[1] else "left", row[pk_at], row[2:]) for row in rows
    ]


def _tombstones(entity, where, limit, using, *, horizon=False):
    """Tombstones matching the caller's scope (``where``), and the purge horizon if ``horizon`` (else None).

    One whose record is in the caller's scope again (moved back, restored) is
    kept in the order but says nothing: that record's current state comes at
    its own, later stamp, and deleting it would drop a record the device must
    keep.
    """
    rank, index = entity.tombstones_rank, entity.index
    rows = (
        tombstones.for_model(entity.model, using, entity.tombstone_scope)
        .filter(where)
        .order_by("sync_stamp", "id")
        .values_list("sync_stamp", "id", "object_pk")[: limit + 1]
    )
    rows, horizon = _with_horizon(rows, using) if horizon else (rows, None)
    pks = {object_pk: entity.format.pk_from_text(object_pk) for _, _, object_pk in rows}
    back = set(entity.scoped.using(using).filter(pk__in=set(pks.values())).values_list("pk", flat=True)) if pks else ()
    changes = [
        Change(stamp, rank, id_, index, "covered" if pks[object_pk] in back else "tombstone", pks[object_pk])
        for stamp, id_, object_pk in rows
    ]
    return changes, horizon


def _with_horizon(rows, using):
    """``(rows of the values_list() query, the purge horizon)``, read in one statement.

    One statement reads both in one snapshot, so the horizon is never older
    than the tombstones read; it saves the pull a round trip. The query's
    columns need no converters (stamps, ids, text).
    """
    connection = connections[using]
    sql, params = rows.query.get_compiler(using=using).as_sql()
    state = connection.ops.quote_name(SyncState._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT h.horizon, t.* FROM (SELECT COALESCE(MAX(purge_horizon), 0) AS horizon FROM {state} "
            f"WHERE id = 1) h LEFT JOIN ({sql}) t ON 1 = 1",
            params,
        )
        found = cursor.fetchall()
    return [row[1:] for row in found if row[1] is not None], found[0][0]


def _entity_changes(entity, items, using, *, unique=False):
    """One entity's part of a page: each id once, in its latest state in the page (``unique``: they are)."""
    fmt = entity.format
    converters = fmt.wire_columns(connections[using])[1]
    if unique:
        index = entity.index
        return {
            "records": list(fmt.rows((item.row for item in items if item.index == index), converters)),
            "deleted": [],
        }
    latest = {}
    for item in items:
        if item.index == entity.index and item.kind != "covered":
            latest.pop(item.pk, None)  # re-inserted, so the dict keeps the page's order
            latest[item.pk] = item
    records = list(fmt.rows((item.row for item in latest.values() if item.kind == "record"), converters))
    deleted = [fmt.convert_pk(pk) for pk, item in latest.items() if item.kind != "record"]
    return {"records": records, "deleted": deleted}
