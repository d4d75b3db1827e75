"""Safe retries: a push's ``sync_id`` is claimed inside the push's transaction.

The claim is a row under a unique ``(user, sync_id)`` constraint. A retry that
arrives while the first try runs blocks on that constraint until the first
commits (then it replays the stored outcome) or rolls back (then it applies).
"""

import hashlib
import json
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from .exceptions import SyncIdReused
from .models import SyncRequest


def body_hash(body: dict) -> str:
    """Hash of the JSON value: key order and spacing do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Claim:
    """A new push: this transaction holds its ``sync_id``; ``store()`` keeps the outcome for retries."""

    row: SyncRequest

    def store(self, outcome: dict) -> None:
        SyncRequest.objects.using(self.row._state.db).filter(pk=self.row.pk).update(outcome=outcome)


@dataclass
class Replay:
    """A retry of a push that was applied: answer its stored outcome, apply nothing."""

    outcome: dict


def claim(*, user, sync_id: uuid.UUID, endpoint: str, body: dict, using: str) -> Claim | Replay:
    """Claim ``sync_id`` for a new push, or find the push it retries.

    Must run inside the push's transaction. Raises ``SyncIdReused`` when the
    sync_id was used with another body or on another endpoint.
    """
    digest = body_hash({**body, "sync_id": str(sync_id)})  # the UUID, however it was spelled
    try:
        with transaction.atomic(using=using):
            return Claim(
                SyncRequest.objects.using(using).create(user=user, sync_id=sync_id, endpoint=endpoint, body_hash=digest)
            )
    except IntegrityError:
        earlier = SyncRequest.objects.using(using).get(user=user, sync_id=sync_id)
    if (earlier.endpoint, earlier.body_hash) != (endpoint, digest):
        raise SyncIdReused()
    return Replay(earlier.outcome)
