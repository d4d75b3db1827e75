"""The push engine: apply a client's changes in bulk. Plain Django, no HTTP.

``apply_push`` runs inside the caller's transaction, so a push applies whole
or not at all. It looks every target up first (one query per entity), refuses
ids that do not exist or lie outside the caller's scope, optionally sets
aside the changes that conflict, then writes: modified records with one UPDATE
per entity (see bulk.py), deleted ones through ``QuerySet.delete()`` (cascades
and tombstones included), added ones with one INSERT per entity.
"""

import contextlib
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import IntegrityError, connections, models, transaction
from django.db.models import ProtectedError, RestrictedError

from . import integrity, local_ids, tombstones
from .bulk import InArray, insert_rows, update_rows
from .entities import Entity
from .exceptions import RecordsInvalid, RecordsNotFound
from .integrity import Row
from .options import options_for
from .pull import check_not_expired
from .stamps import next_stamp


class Added(NamedTuple):
    local_id: str
    values: dict  # validated field values
    index: int = None  # its place in the push's list, for error paths


class Modified(NamedTuple):
    pk: object
    base_version: int  # or None
    values: dict  # validated field values
    sent: dict  # the item as sent, kept for conflicts
    index: int = None


class Deleted(NamedTuple):
    pk: object
    base_version: int  # or None
    sent: dict
    index: int = None


@dataclass
class EntityPush:
    """One entity's validated changes, resolved for the caller."""

    entity: Entity  # name, visible records, scope, wire format, place in the cursor order
    added: list = field(default_factory=list)  # [Added], or plain tuples of its fields
    modified: list = field(default_factory=list)  # [Modified]
    deleted: list = field(default_factory=list)  # [Deleted]
    server_values: dict = field(default_factory=dict)  # set on added records (an owner, say)

    def __post_init__(self):
        columns = _columns_of(self.entity.model)
        self.added = [_named(Added, item, i, columns) for i, item in enumerate(self.added)]
        self.modified = [_named(Modified, item, i, columns) for i, item in enumerate(self.modified)]
        self.deleted = [_named(Deleted, item, i) for i, item in enumerate(self.deleted)]

    @property
    def name(self) -> str:
        return self.entity.name

    @property
    def model(self):
        return self.entity.model

    def rows(self):
        """The records this push writes, for ``integrity.check``."""
        path = ("changes", self.name)
        rows = [
            Row({"local_id": a.local_id}, (*path, "added", str(a.index)), {**a.values, **self.server_values})
            for a in self.added
        ]
        rows += [Row({"id": m.pk}, (*path, "modified", str(m.index)), m.values, m.pk) for m in self.modified]
        return rows


def _named(kind, item, index, columns=None):
    item = item if isinstance(item, kind) else kind(*item)
    if item.index is None:
        item = item._replace(index=index)
    return item if columns is None else item._replace(values=columns(item.values))


def _columns_of(model):
    """Values keyed by column: a custom serializer may give a foreign key as ``item=<Item>``."""

    def columns(values):
        out = {}
        for name, value in values.items():
            field = model._meta.get_field(name)
            if field.is_relation and isinstance(value, models.Model):
                value = getattr(value, field.target_field.attname)
            out[field.attname] = value
        return out

    return columns


@dataclass
class ConflictSpec:
    """A change set aside: the client's item and the server's record (wire format, or None)."""

    entity: str
    model: type
    pk: object
    kind: str  # "modified" or "deleted"
    client: dict
    server: dict = None


@dataclass
class PushOutcome:
    id_map: dict  # {entity: {local_id: pk}}
    gone: dict  # {entity: [pk]}: modified records that were deleted meanwhile; the client drops them
    conflicts: list = field(default_factory=list)  # [ConflictSpec]


def apply_push(pushes, *, using, references, last_sync=None):
    """Apply ``pushes`` (``EntityPush`` list, parents first); return a ``PushOutcome``.

    ``references``: ``local_ids.references()`` of the entities; the caller has run
    ``local_ids.check()`` (``Endpoint.push`` does, before the ``sync_id`` is claimed).

    For an entity with ``detect_conflicts``, a modified or deleted record whose server
    version differs from ``base_version`` (or, without one, that changed after
    the ``last_sync`` position) is not applied but returned as a conflict. The
    targets are locked first, so concurrent pushes cannot both pass the check.
    Raises ``RecordsNotFound`` (404) and ``RecordsInvalid`` (400) before writing anything.
    """
    states, gone, unknown = {}, {}, {}
    for push in pushes:
        states[push.name], gone[push.name], missing = _resolve(push, using, lock=push.entity.detect_conflicts)
        if missing:
            unknown[push.name] = sorted(missing, key=str)
    visible = {push.model: push.entity.visible for push in pushes}
    dangling = _dangling_references(pushes, visible, using)
    for name, refs in _named_while_deleted(pushes, references).items():
        dangling.setdefault(name, []).extend(refs)
    if unknown and last_sync is not None:
        # A purge that committed since this push checked the horizon may have taken their tombstones.
        check_not_expired(last_sync, using)
    if unknown or dangling:
        raise RecordsNotFound({**unknown, **dangling})
    for push in pushes:  # a modification that changes no field is a no-op, never a conflict
        push.modified = [item for item in push.modified if item.values]
    conflicts = []
    for push in pushes:
        if push.entity.detect_conflicts:
            conflicts += _set_aside_conflicts(push, states[push.name], gone[push.name], last_sync, using)
    for push in pushes:
        push.modified = [item for item in push.modified if item.pk in states[push.name]]
        push.deleted = [item for item in push.deleted if item.pk in states[push.name]]
        doomed = [item.pk for item in push.deleted]
        clashes = integrity.unique_clashes(push.model, push.rows(), using, vacated=doomed)
        if clashes:
            raise RecordsInvalid(clashes)

    # Modifications, then deletions (children first), then additions (parents first): a record
    # moved to another parent survives its old parent's deletion, and a unique value a record
    # gives up or a deleted record held is free for a new one. A modification naming a record
    # added in this push ("later": a child moved to a new parent) waits for the additions; the
    # deletions in the entities such a record depends on wait for it, so that it survives its
    # old parent's deletion too.
    connection = connections[using]
    later = {push.name: [m for m in push.modified if local_ids.has_refs(m.values)] for push in pushes}
    held = local_ids.depended_on({name for name, items in later.items() if items}, references)
    id_map = {}
    with _parents_deleted_meanwhile(pushes, visible, using):
        for push in pushes:
            now = [(m.pk, m.values) for m in push.modified if not local_ids.has_refs(m.values)]
            modify_rows(push.model, now, using)
        for push in reversed(pushes):
            if push.name not in held:
                _delete(push, [item.pk for item in push.deleted], using)
        _add_all(pushes, references, id_map, connection)
        for push in pushes:
            moved = [(m.pk, local_ids.rewrite(m.values, references[push.name], id_map)) for m in later[push.name]]
            modify_rows(push.model, moved, using)
        for push in reversed(pushes):
            if push.name in held:
                _delete(push, [item.pk for item in push.deleted], using)
    for spec in conflicts:
        spec.client = local_ids.rewrite_sent(spec.client, references[spec.entity], id_map)
    return PushOutcome(
        id_map={name: {str(k): v for k, v in ids.items()} for name, ids in id_map.items()},
        gone={name: sorted(ids, key=str) for name, ids in gone.items()},
        conflicts=conflicts,
    )


def _dangling_references(pushes, visible, using):
    dangling = {}
    for push in pushes:
        refs = integrity.dangling_references(push.model, push.rows(), visible, using)
        if refs:
            dangling[push.name] = refs
    return dangling


def _named_while_deleted(pushes, references):
    """``{entity: [{**ref, field: id}]}`` for added or modified records naming a record this push deletes."""
    deleted = {push.name: {item.pk for item in push.deleted} for push in pushes}
    found = {}
    for push in pushes:
        refs = references[push.name]
        for row in push.rows():
            for attname, (name, target) in refs.items():
                value = row.values.get(attname)
                if value is not None and not isinstance(value, local_ids.LocalRef) and value in deleted[target]:
                    found.setdefault(push.name, []).append({**row.ref, name: value})
    return found


@contextlib.contextmanager
def _parents_deleted_meanwhile(pushes, visible, using):
    """Writes of foreign keys, in a savepoint, their constraints checked at its end (PostgreSQL).

    A parent that a concurrent transaction deleted after the check makes them
    fail, and the push then answers 404 as the check would have, instead of an
    ``IntegrityError`` at commit. (Locking the parents instead would make that
    deletion fail.) SQLite has one writer at a time: no such race.
    """
    connection = connections[using]
    has_references = any(
        row.values.get(fk.attname) is not None
        for push in pushes
        for fk in integrity.foreign_keys(push.model)
        for row in push.rows()
    )
    if connection.vendor != "postgresql" or not has_references:
        yield
        return
    try:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            yield
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # Django's foreign keys are checked at commit
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    except IntegrityError:
        dangling = _dangling_references(pushes, visible, using)
        if dangling:
            raise RecordsNotFound(dangling) from None
        raise


def _delete(push, pks, using):
    """Delete through Django's collector (cascades, ``SET_NULL``, tombstones); name what protects a record."""
    if not pks:
        return
    try:
        push.model._default_manager.using(using).filter(pk__in=pks).delete()
    except (ProtectedError, RestrictedError) as exc:
        blocking = getattr(exc, "protected_objects", None) or exc.restricted_objects
        names = sorted(f"{obj._meta.label} {obj.pk}" for obj in blocking)
        message = f"Cannot delete: other records refer to it and must be deleted first: {', '.join(names)}."
        raise RecordsInvalid({"changes": {push.name: {"deleted": [message]}}}) from None


def _resolve(push, using, *, lock):
    """Split the targets: ``{pk: (version, stamp)}`` existing, gone (deleted in scope), never seen."""
    targets = {item.pk for item in push.modified} | {item.pk for item in push.deleted}
    if not targets:
        return {}, set(), set()
    rows = push.entity.visible.using(using).filter(InArray(push.model._meta.pk, targets)).order_by("pk")
    if lock:
        rows = rows.select_for_update()  # in pk order, so concurrent pushes cannot deadlock
    options = options_for(push.model)
    rows = rows.values_list("pk", options.version_field, options.stamp_field)
    states = {pk: (version, stamp) for pk, version, stamp in rows}
    missing = targets - states.keys()
    if not missing:
        return states, set(), set()
    # In scope but hidden from the caller now (a soft-deleted row, say): to the device it is deleted.
    hidden = set(push.entity.scoped.using(using).filter(pk__in=missing).values_list("pk", flat=True))
    by_text = {str(pk): pk for pk in missing - hidden}
    deleted = tombstones.for_model(push.model, using, push.entity.tombstone_scope).filter(object_pk__in=list(by_text))
    deleted_pks = hidden | {by_text[text] for text in deleted.values_list("object_pk", flat=True)}
    # A modification of a record deleted meanwhile stays deleted; deleting it again is a no-op.
    gone = {item.pk for item in push.modified if item.pk in deleted_pks}
    return states, gone, missing - deleted_pks


def _conflicts_with(push, state, item, last_sync):
    """Whether the record changed since the client saw it: ``state`` is its ``(version, stamp)``."""
    if item.base_version is not None:
        return state[0] != item.base_version
    if last_sync is not None:
        return not last_sync.covers(state[1], push.entity.records_rank, item.pk)
    return True  # neither: the client cannot show it saw the current version


def _set_aside_conflicts(push, states, gone, last_sync, using):
    """Remove the conflicting changes from ``push``; return them as ``ConflictSpec``s."""
    specs, modified, deleted = [], [], []
    for item in push.modified:
        if item.pk in gone:
            specs.append(ConflictSpec(push.name, push.model, item.pk, "modified", item.sent))
            gone.discard(item.pk)
        elif item.pk in states and _conflicts_with(push, states[item.pk], item, last_sync):
            specs.append(ConflictSpec(push.name, push.model, item.pk, "modified", item.sent))
        else:
            modified.append(item)
    for item in push.deleted:
        if item.pk in states and _conflicts_with(push, states[item.pk], item, last_sync):
            specs.append(ConflictSpec(push.name, push.model, item.pk, "deleted", item.sent))
        else:
            deleted.append(item)
    push.modified, push.deleted = modified, deleted
    on_server = [spec.pk for spec in specs if spec.pk in states]
    if on_server:
        fmt = push.entity.format
        current = {
            r["id"]: r
            for r in fmt.rows(push.model._base_manager.using(using).filter(pk__in=on_server).values_list(*fmt.columns))
        }
        for spec in specs:
            spec.server = current.get(fmt.convert_pk(spec.pk))
    return specs


def _add_all(pushes, references, id_map, connection):
    """Insert every push's added records, parents first, filling ``id_map`` as the server ids come."""
    for push in pushes:
        id_map[push.name] = ids = {}
        refs, options = references[push.name], options_for(push.model)
        for batch in local_ids.layers(push, references):  # one batch unless the entity refers to itself
            rows = [{**local_ids.rewrite(item.values, refs, id_map), **push.server_values} for item in batch]
            pks = insert_rows(push.model, rows, connection=connection, options=options)
            ids.update((item.local_id, pk) for item, pk in zip(batch, pks))


def modify_rows(model, rows, using):
    """Apply ``[(pk, {field: value})]`` in bulk, with versions, stamp and scope-exit tombstones."""
    if not rows:
        return
    connection = connections[using]
    with transaction.atomic(using=using, savepoint=False):
        stamp = next_stamp(connection)
        exits = contextlib.nullcontext()
        if tombstones.touches_scope(model, {name for _, values in rows for name in values}):
            targets = model._base_manager.using(using).filter(pk__in=[pk for pk, _ in rows])
            exits = tombstones.scope_exits(targets, stamp)
        with exits:
            update_rows(model, rows, stamp=stamp, connection=connection, options=options_for(model))
