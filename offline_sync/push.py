"""The push engine: apply a client's changes in bulk. Plain Django, no HTTP.

``apply_push`` runs inside the caller's transaction, so a push applies whole
or not at all. It looks every target up first (one query per entity), refuses
ids that do not exist or lie outside the caller's scope, then writes: added
records through ``bulk_create``, modified ones through one UPDATE per entity
(see bulk.py), deleted ones through ``QuerySet.delete()`` (cascades and
tombstones included). Conflict detection plugs in through ``ConflictPolicy``.
"""

from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.db import connections

from . import tombstones
from .bulk import insert_rows, update_rows
from .exceptions import RecordsNotFound
from .models import Tombstone
from .stamps import next_stamp


@dataclass
class EntityPush:
    """One entity's validated changes, resolved for the caller."""

    name: str
    visible: object  # QuerySet of the records the caller may change
    tombstone_scope: dict  # the caller's scope values, to tell "deleted" from "never existed"
    added: list = field(default_factory=list)  # [(local_id, {field: value})]
    modified: list = field(default_factory=list)  # [(pk, base_version or None, {field: value})]
    deleted: list = field(default_factory=list)  # [(pk, base_version or None)]
    server_values: dict = field(default_factory=dict)  # set on added records (an owner, say)

    @property
    def model(self):
        return self.visible.model


@dataclass
class PushOutcome:
    id_map: dict  # {entity: {local_id: pk}}
    gone: dict  # {entity: [pk]}: modified records that were deleted meanwhile; the client drops them
    conflicts: list = field(default_factory=list)


def apply_push(pushes, *, using):
    """Apply ``pushes`` (a list of ``EntityPush``, parents before children); return a ``PushOutcome``."""
    existing, gone, unknown = {}, {}, {}
    for push in pushes:
        existing[push.name], gone[push.name], missing = _resolve(push, using)
        if missing:
            unknown[push.name] = sorted(missing, key=str)
    if unknown:
        raise RecordsNotFound(unknown)

    connection = connections[using]
    id_map = {push.name: _add(push, connection) for push in pushes}
    for push in pushes:
        rows = [(pk, values) for pk, _, values in push.modified if pk in existing[push.name] and values]
        _modify(push, rows, connection, using)
    for push in reversed(pushes):
        doomed = [pk for pk, _ in push.deleted if pk in existing[push.name]]
        if doomed:
            push.model._default_manager.using(using).filter(pk__in=doomed).delete()
    return PushOutcome(
        id_map={name: {str(k): v for k, v in ids.items()} for name, ids in id_map.items()},
        gone={name: sorted(ids, key=str) for name, ids in gone.items()},
    )


def _resolve(push, using):
    """Split the push's target ids into existing, gone (deleted in scope) and never seen."""
    targets = {pk for pk, *_ in push.modified} | {pk for pk, _ in push.deleted}
    if not targets:
        return set(), set(), set()
    found = set(push.visible.using(using).filter(pk__in=targets).values_list("pk", flat=True))
    missing = targets - found
    if not missing:
        return found, set(), set()
    by_text = {str(pk): pk for pk in missing}
    scope = {f"scope__{name}": value for name, value in push.tombstone_scope.items()}
    deleted = Tombstone.objects.using(using).filter(
        content_type=ContentType.objects.db_manager(using).get_for_model(push.model),
        object_pk__in=list(by_text),
        **scope,
    )
    deleted_pks = {by_text[text] for text in deleted.values_list("object_pk", flat=True)}
    # A modification of a record deleted meanwhile stays deleted; deleting it again is a no-op.
    gone = {pk for pk, *_ in push.modified if pk in deleted_pks}
    return found, gone, missing - deleted_pks


def _add(push, connection):
    if not push.added:
        return {}
    objs = [push.model(**values, **push.server_values) for _, values in push.added]
    insert_rows(push.model, objs, connection=connection)
    return {local_id: obj.pk for (local_id, _), obj in zip(push.added, objs)}


def _modify(push, rows, connection, using):
    if not rows:
        return
    model = push.model
    stamp = next_stamp(connection)
    scope_names = set(model.sync_scope_fields)
    moves_scope = scope_names and any(scope_names & values.keys() for _, values in rows)
    if moves_scope:
        before = tombstones.scope_values(model._base_manager.using(using).filter(pk__in=[pk for pk, _ in rows]))
    update_rows(model, rows, stamp=stamp, connection=connection)
    if moves_scope:
        after = tombstones.scope_values(model._base_manager.using(using).filter(pk__in=list(before)))
        tombstones.record_scope_exits(model, before, after, stamp, using)
