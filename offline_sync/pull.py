"""The pull engine: pages of changes in commit order. Plain Django, no HTTP.

A page merges, in ``(stamp, source, key)`` order, the changed records and the
tombstones of every entity of an endpoint (see cursors.py), and only takes
changes below the watermark, so nothing committed later can slip behind the
cursor it returns (see stamps.py).
"""

from dataclasses import dataclass, field

from django.db import connections
from django.db.models import Exists, OuterRef, Value
from django.utils import timezone

from .cursors import Position
from .exceptions import CursorExpired
from .records import RecordFormat, default_fields
from .stamps import watermark
from .tombstones import purge_horizon


@dataclass
class EntityQuery:
    """One entity of a pull, resolved for one request."""

    name: str
    subset: object  # QuerySet: the records this client keeps (scope and filters)
    visible: object  # QuerySet: the records the caller may see (scope only)
    tombstone_scope: dict = field(default_factory=dict)  # scope values a tombstone must carry
    fields: list = None  # wire fields; default: every concrete field

    def __post_init__(self):
        self.model = self.subset.model
        self.format = RecordFormat(self.model, self.fields or default_fields(self.model))


@dataclass
class Page:
    full: bool
    changes: dict
    cursor: str
    has_more: bool
    server_time: object

    def as_dict(self):
        from .records import format_datetime

        return {
            "full": self.full,
            "changes": self.changes,
            "cursor": self.cursor,
            "has_more": self.has_more,
            "server_time": format_datetime(self.server_time),
        }


def check_not_expired(since, using):
    if since is not None and since.stamp <= purge_horizon(using):
        raise CursorExpired()


def pull(entities, since=None, limit=1000):
    """Return the next ``Page`` of changes after ``since`` (a ``Position``; None: full)."""
    using = entities[0].subset.db
    check_not_expired(since, using)
    upper = watermark(connections[using])
    items = []  # (stamp, rank, key, entity index, kind, payload)
    for index, entity in enumerate(entities):
        if since is None:
            items += _full_records(entity, index, upper, limit, using)
        else:
            items += _changed_records(entity, index, since, upper, limit, using)
            items += _tombstones(entity, index, since, upper, limit, using)
    items.sort(key=lambda item: item[:3])
    has_more = len(items) > limit
    items = items[:limit]
    if has_more:
        stamp, rank, key = items[-1][:3]
        position = Position(stamp, rank, key)
    elif since is not None and since.stamp >= upper:
        position = since
    else:
        position = Position(upper)
    changes = {entity.name: _entity_changes(entity, index, items) for index, entity in enumerate(entities)}
    return Page(
        full=since is None,
        changes=changes,
        cursor=position.encode(),
        has_more=has_more,
        server_time=timezone.now(),
    )


def _full_records(entity, index, upper, limit, using):
    rank = 2 * index
    columns = ["sync_stamp", *entity.format.columns]
    rows = (
        entity.subset.using(using)
        .filter(sync_stamp__lt=upper)
        .order_by("sync_stamp", "pk")
        .values_list(*columns)[: limit + 1]
    )
    pk_at = columns.index("pk")
    return [(row[0], rank, row[pk_at], index, "record", row[1:]) for row in rows]


def _changed_records(entity, index, since, upper, limit, using):
    """Records the caller may see that changed after ``since``, each flagged in or out of the subset.

    Records that left the caller's scope are not here: a scope exit leaves a
    tombstone under the old scope (see tombstones.py).
    """
    rank = 2 * index
    rows = entity.visible.using(using).filter(since.after(rank), sync_stamp__lt=upper)
    if entity.subset is entity.visible:  # no filters
        rows = rows.annotate(_in_subset=Value(True))
    else:
        rows = rows.annotate(_in_subset=Exists(entity.subset.filter(pk=OuterRef("pk"))))
    columns = ["sync_stamp", "_in_subset", *entity.format.columns]
    rows = rows.order_by("sync_stamp", "pk").values_list(*columns)[: limit + 1]
    pk_at = columns.index("pk")
    return [(row[0], rank, row[pk_at], index, "record" if row[1] else "left", row[2:]) for row in rows]


def _tombstones(entity, index, since, upper, limit, using):
    from django.contrib.contenttypes.models import ContentType

    from .models import Tombstone

    rank = 2 * index + 1
    scope = {f"scope__{name}": value for name, value in entity.tombstone_scope.items()}
    rows = (
        Tombstone.objects.using(using)
        .filter(content_type=ContentType.objects.db_manager(using).get_for_model(entity.model), **scope)
        .filter(since.after(rank, key_field="id"), sync_stamp__lt=upper)
        .order_by("sync_stamp", "id")
        .values_list("sync_stamp", "id", "object_pk")[: limit + 1]
    )
    return [(stamp, rank, id_, index, "tombstone", object_pk) for stamp, id_, object_pk in rows]


def _entity_changes(entity, index, items):
    fmt = entity.format
    mine = [item for item in items if item[3] == index]
    records = list(fmt.rows(item[5] for item in mine if item[4] == "record"))
    # Still visible but no longer in the subset (a filter stopped matching): drop it.
    deleted = [fmt.convert_pk(item[2]) for item in mine if item[4] == "left"]
    deleted += [fmt.convert_pk(fmt.pk_from_text(item[5])) for item in mine if item[4] == "tombstone"]
    # A record that exists now wins over an older tombstone in the same page.
    kept = {record["id"] for record in records}
    return {"records": records, "deleted": list(dict.fromkeys(pk for pk in deleted if pk not in kept))}
