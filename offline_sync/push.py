"""The push engine: apply a client's changes in bulk. Plain Django, no HTTP.

``apply_push`` runs inside the caller's transaction, so a push applies whole
or not at all. It looks every target up first (one query per entity), refuses
ids that do not exist or lie outside the caller's scope, optionally sets
aside the changes that conflict, then writes: added records with one INSERT,
modified ones with one UPDATE per entity (see bulk.py), deleted ones through
``QuerySet.delete()`` (cascades and tombstones included).
"""

import contextlib
from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.db import connections, models, transaction

from . import tombstones
from .bulk import insert_rows, update_rows
from .exceptions import RecordsNotFound
from .models import Tombstone
from .stamps import next_stamp


@dataclass
class EntityPush:
    """One entity's validated changes, resolved for the caller."""

    query: object  # the entity's pull.EntityQuery: name, visible records, scope, wire format
    rank: int  # the entity's records source in the cursor order (2 x its index)
    added: list = field(default_factory=list)  # [(local_id, {field: value})]
    modified: list = field(default_factory=list)  # [(pk, base_version or None, {field: value}, item as sent)]
    deleted: list = field(default_factory=list)  # [(pk, base_version or None, item as sent)]
    server_values: dict = field(default_factory=dict)  # set on added records (an owner, say)

    @property
    def name(self):
        return self.query.name

    @property
    def model(self):
        return self.query.model


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


def apply_push(pushes, *, using, detect_conflicts=False, last_sync=None):
    """Apply ``pushes`` (``EntityPush`` list, parents first); return a ``PushOutcome``.

    With ``detect_conflicts``, a modified or deleted record whose server
    version differs from ``base_version`` (or, without one, that changed after
    the ``last_sync`` position) is not applied but returned as a conflict. The
    targets are locked first, so concurrent pushes cannot both pass the check.
    """
    for push in pushes:
        _use_columns(push)
    states, gone, unknown = {}, {}, {}
    for push in pushes:
        states[push.name], gone[push.name], missing = _resolve(push, using, lock=detect_conflicts)
        if missing:
            unknown[push.name] = sorted(missing, key=str)
    dangling = _dangling_foreign_keys(pushes, using)
    if unknown or dangling:
        raise RecordsNotFound({**unknown, **dangling})
    for push in pushes:  # a modification that changes no field is a no-op, never a conflict
        push.modified = [item for item in push.modified if item[2]]
    conflicts = []
    if detect_conflicts:
        for push in pushes:
            conflicts += _set_aside_conflicts(push, states[push.name], gone[push.name], last_sync, using)

    connection = connections[using]
    id_map = {push.name: _add(push, connection) for push in pushes}
    for push in pushes:
        rows = [(pk, values) for pk, _, values, _ in push.modified if pk in states[push.name]]
        modify_rows(push.model, rows, using)
    for push in reversed(pushes):
        doomed = [pk for pk, _, _ in push.deleted if pk in states[push.name]]
        if doomed:
            push.model._default_manager.using(using).filter(pk__in=doomed).delete()
    return PushOutcome(
        id_map={name: {str(k): v for k, v in ids.items()} for name, ids in id_map.items()},
        gone={name: sorted(ids, key=str) for name, ids in gone.items()},
        conflicts=conflicts,
    )


def _use_columns(push):
    """Key validated values by column: a custom serializer may give a foreign key as ``item=<Item>``."""
    model = push.model

    def columns(values):
        out = {}
        for name, value in values.items():
            field = model._meta.get_field(name)
            if field.is_relation and isinstance(value, models.Model):
                value = value.pk
            out[field.attname] = value
        return out

    push.added = [(local_id, columns(values)) for local_id, values in push.added]
    push.modified = [(pk, version, columns(values), sent) for pk, version, values, sent in push.modified]


def _resolve(push, using, *, lock):
    """Split the targets: ``{pk: (version, stamp)}`` existing, gone (deleted in scope), never seen."""
    targets = {pk for pk, *_ in push.modified} | {pk for pk, *_ in push.deleted}
    if not targets:
        return {}, set(), set()
    rows = push.query.visible.using(using).filter(pk__in=targets).order_by("pk")
    if lock:
        rows = rows.select_for_update()  # in pk order, so concurrent pushes cannot deadlock
    states = {pk: (version, stamp) for pk, version, stamp in rows.values_list("pk", "version", "sync_stamp")}
    missing = targets - states.keys()
    if not missing:
        return states, set(), set()
    # In scope but hidden from the caller now (a soft-deleted row, say): to the device it is deleted.
    hidden = set(push.query.scoped.using(using).filter(pk__in=missing).values_list("pk", flat=True))
    by_text = {str(pk): pk for pk in missing - hidden}
    scope = {f"scope__{name}": value for name, value in push.query.tombstone_scope.items()}
    deleted = Tombstone.objects.using(using).filter(
        content_type=ContentType.objects.db_manager(using).get_for_model(push.model),
        object_pk__in=list(by_text),
        **scope,
    )
    deleted_pks = hidden | {by_text[text] for text in deleted.values_list("object_pk", flat=True)}
    # A modification of a record deleted meanwhile stays deleted; deleting it again is a no-op.
    gone = {pk for pk, *_ in push.modified if pk in deleted_pks}
    return states, gone, missing - deleted_pks


def _dangling_foreign_keys(pushes, using):
    """Foreign keys of pushed records whose target does not exist or is outside the caller's scope.

    One query per foreign key field; returns ``{entity: [{"local_id" or "id": ..., field: target}]}``.
    """
    visible = {push.model: push.query.visible for push in pushes}
    dangling = {}
    for push in pushes:
        items = [({"local_id": local_id}, values) for local_id, values in push.added]
        items += [({"id": pk}, values) for pk, _, values, _ in push.modified]
        for fk in push.model._meta.concrete_fields:
            if not fk.is_relation:
                continue
            wanted = {values[fk.attname] for _, values in items if values.get(fk.attname) is not None}
            if not wanted:
                continue
            target = fk.related_model
            targets = visible.get(target, target._default_manager.all()).using(using)
            found = set(targets.filter(pk__in=wanted).values_list("pk", flat=True))
            dangling.setdefault(push.name, []).extend(
                {**ref, fk.name: values[fk.attname]}
                for ref, values in items
                if values.get(fk.attname) is not None and values[fk.attname] not in found
            )
    return {name: refs for name, refs in dangling.items() if refs}


def _conflicts_with(state, base_version, last_sync, rank, pk):
    if base_version is not None:
        return state[0] != base_version
    if last_sync is not None:
        return not last_sync.covers(state[1], rank, pk)
    return True  # neither: the client cannot show it saw the current version


def _set_aside_conflicts(push, states, gone, last_sync, using):
    """Remove the conflicting changes from ``push``; return them as ``ConflictSpec``s."""
    specs, modified, deleted = [], [], []
    for item in push.modified:
        pk, base_version, _, sent = item
        if pk in gone:
            specs.append(ConflictSpec(push.name, push.model, pk, "modified", sent))
            gone.discard(pk)
        elif pk in states and _conflicts_with(states[pk], base_version, last_sync, push.rank, pk):
            specs.append(ConflictSpec(push.name, push.model, pk, "modified", sent))
        else:
            modified.append(item)
    for item in push.deleted:
        pk, base_version, sent = item
        if pk in states and _conflicts_with(states[pk], base_version, last_sync, push.rank, pk):
            specs.append(ConflictSpec(push.name, push.model, pk, "deleted", sent))
        else:
            deleted.append(item)
    push.modified, push.deleted = modified, deleted
    on_server = [spec.pk for spec in specs if spec.pk in states]
    if on_server:
        fmt = push.query.format
        current = {
            r["id"]: r
            for r in fmt.rows(push.model._base_manager.using(using).filter(pk__in=on_server).values_list(*fmt.columns))
        }
        for spec in specs:
            spec.server = current.get(fmt.convert_pk(spec.pk))
    return specs


def _add(push, connection):
    rows = [{**values, **push.server_values} for _, values in push.added]
    pks = insert_rows(push.model, rows, connection=connection)
    return {local_id: pk for (local_id, _), pk in zip(push.added, pks)}


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
            update_rows(model, rows, stamp=stamp, connection=connection)
