"""The engine's entry point: one sync endpoint's entities on one database, the whole protocol, no HTTP.

``Endpoint.pull()`` answers a pull; ``Endpoint.push()`` does everything a push
needs in one transaction, in the order of protocol section 7: claim or replay
the ``sync_id``, the caller's permission check, the purge horizon, pending
conflicts, apply, record conflicts, store the outcome for retries, and answer
with a pull in the same transaction. The DRF views parse and answer; a Celery
task, a management command or a test gets the same semantics through this.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from django.db import IntegrityError, router, transaction

from . import conflicts, idempotency, local_ids
from .conf import sync_settings
from .cursors import Position
from .entities import Entity
from .exceptions import CursorExpired, RecordsInvalid, UnresolvedConflicts
from .pull import Page, check_not_expired, pull
from .push import EntityPush, apply_push


@dataclass
class PushRequest:
    """A validated push body (``rest_framework.serializers.parse_push`` makes one).

    ``changes``: ``{entity name: {"added": [push.Added], "modified": [push.Modified],
    "deleted": [push.Deleted]}}``; plain tuples of their fields are taken too.
    """

    sync_id: uuid.UUID
    changes: dict = field(default_factory=dict)
    last_sync: Position | None = None
    device_id: str | None = None
    body: dict | None = None  # the JSON value as sent, which a retry must repeat


class Endpoint:
    """One sync endpoint for one caller: ``entities`` (``Entity``, parents first) on one database.

    - ``name``: what stored outcomes and conflicts are filed under (a view uses its path).
    - ``using``: the write database of the entities' models unless given; pushes and their
      answers run there.
    - ``detect_conflicts``: the conflict detection pattern (protocol 4.2) instead of last write
      wins, for each entity that does not choose itself (``Entity.detect_conflicts``).

    Raises ``ImproperlyConfigured`` when an entity refers to one after it (local_ids.references).
    """

    def __init__(self, entities: list[Entity], *, name: str, using: str | None = None, detect_conflicts: bool = False):
        # Each entity's place in the endpoint is its place in the cursor order.
        self.entities = [_placed(entity, index, detect_conflicts) for index, entity in enumerate(entities)]
        self.name = name
        self.using = using or router.db_for_write(self.entities[0].model)
        self.detect_conflicts = any(entity.detect_conflicts for entity in self.entities)
        self.references = local_ids.references(self.entities)

    def pull(self, since: Position | None = None, limit: int | None = None) -> Page:
        """The next page after ``since`` (None: a full pull), read from the entities' read database.

        From the write database instead when the read database (a replica) is behind ``since``.
        """
        return pull(self.entities, since=since, limit=limit or sync_settings.PAGE_SIZE, primary=self.using)

    def push(
        self,
        request: PushRequest,
        *,
        user,
        server_values: dict | None = None,
        limit: int | None = None,
        check_permissions: Callable[[], None] | None = None,
    ) -> dict:
        """Apply ``request`` for ``user`` and return the protocol's answer (section 4).

        ``server_values``: ``{entity: {attname: value}}`` set on added records (an owner).
        ``check_permissions``: called once the ``sync_id`` is claimed or found, before a retry is
        answered or anything applies. Raises the ``SyncError`` the protocol answers (409, 410,
        404, 400), having applied nothing.
        """
        body = request.body if request.body is not None else {"sync_id": str(request.sync_id)}
        limit = limit or sync_settings.PAGE_SIZE
        pushes = [
            EntityPush(
                entity, server_values=(server_values or {}).get(entity.name, {}), **request.changes.get(entity.name, {})
            )
            for entity in self.entities
        ]
        local_ids.check(pushes, self.references)  # part of the body's validation: before the sync_id and permission
        try:
            with transaction.atomic(using=self.using):
                claim = idempotency.claim(
                    user=user, sync_id=request.sync_id, endpoint=self.name, body=body, using=self.using
                )
                if check_permissions is not None:
                    check_permissions()
                replay = isinstance(claim, idempotency.Replay)
                if replay:
                    outcome = claim.outcome
                else:
                    check_not_expired(request.last_sync, self.using)
                    self._refuse_while_conflicts_pend(user)
                    outcome = self._apply(pushes, request, user)
                    claim.store(outcome)
                page = self._answer(request.last_sync, limit, replay=replay)
        except IntegrityError:
            raise RecordsInvalid(
                {"changes": ["The push breaks a database constraint (a unique value, say); nothing was applied."]}
            ) from None
        for name, ids in outcome["gone"].items():
            deleted = page["changes"][name]["deleted"]
            deleted += [pk for pk in ids if pk not in deleted]
        return {**page, "id_map": outcome["id_map"], "conflicts": outcome["conflicts"]}

    def _refuse_while_conflicts_pend(self, user):
        if not self.detect_conflicts:
            return
        waiting = conflicts.pending(user=user, endpoint=self.name, using=self.using)
        if waiting.exists():
            raise UnresolvedConflicts([conflicts.as_wire(conflict) for conflict in waiting])

    def _apply(self, pushes, request, user):
        """Apply the push; return the outcome a retry must answer the same."""
        result = apply_push(pushes, using=self.using, last_sync=request.last_sync, references=self.references)
        stored = conflicts.record(
            result.conflicts, user=user, device_id=request.device_id, endpoint=self.name, using=self.using
        )
        return {
            "id_map": result.id_map,
            "gone": result.gone,
            "conflicts": [conflicts.as_wire(conflict) for conflict in stored],
        }

    def _answer(self, last_sync, limit, *, replay):
        """The pull a push answers with, in its transaction."""
        try:
            return pull(self.entities, since=last_sync, limit=limit, using=self.using).as_dict()
        except CursorExpired:
            if not replay:
                raise  # a purge committed meanwhile: roll the push back, 410, nothing applied
            # A retry answers its stored outcome, never 410 (which says "nothing was applied").
            return pull(self.entities, since=None, limit=limit, using=self.using).as_dict()


def _placed(entity: Entity, index: int, detect_conflicts: bool) -> Entity:
    """``entity`` at ``index``, its conflict handling decided: a copy if either changes."""
    changes = {}
    if entity.index != index:
        changes["index"] = index
    if entity.detect_conflicts is None:
        changes["detect_conflicts"] = detect_conflicts
    return replace(entity, **changes) if changes else entity
