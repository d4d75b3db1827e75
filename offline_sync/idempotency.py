"""Safe retries: a push's ``sync_id`` is claimed inside the push's transaction.

The claim is a row under a unique ``(user, sync_id)`` constraint. A retry that
arrives while the first try runs blocks on that constraint until the first
commits (then it replays the stored outcome) or rolls back (then it applies).
The row is inserted unless the pair is taken (``ON CONFLICT DO NOTHING``, on
SQLite ``INSERT OR IGNORE``): one statement, where catching the constraint's
error would need a savepoint around the INSERT, two more round trips a push.
"""

import hashlib
import json
import uuid
from dataclasses import dataclass

from django.db import connections
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery

from .exceptions import SyncIdReused
from .models import SyncRequest


def body_hash(body: dict) -> str:
    """Hash of the JSON value: key order and spacing do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Claim:
    """A new push: this transaction holds its ``sync_id``; ``store()`` keeps the outcome for retries."""

    row: SyncRequest  # as inserted (its pk is not read back)
    using: str

    def store(self, outcome: dict) -> None:
        rows = SyncRequest.objects.using(self.using).filter(user_id=self.row.user_id, sync_id=self.row.sync_id)
        rows.update(outcome=outcome)


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
    row = SyncRequest(user=user, sync_id=sync_id, endpoint=endpoint, body_hash=digest)
    if _insert_unless_taken(row, using):
        return Claim(row, using)
    earlier = SyncRequest.objects.using(using).get(user=user, sync_id=sync_id)
    if (earlier.endpoint, earlier.body_hash) != (endpoint, digest):
        raise SyncIdReused()
    return Replay(earlier.outcome)


def _insert_unless_taken(row: SyncRequest, using: str) -> bool:
    """INSERT ``row`` unless its ``(user, sync_id)`` is taken; True if it was inserted.

    Like the INSERT it replaces, it waits for a running transaction that holds the pair.
    """
    query = InsertQuery(SyncRequest, on_conflict=OnConflict.IGNORE)
    query.insert_values([f for f in SyncRequest._meta.concrete_fields if not f.primary_key], [row])
    with connections[using].cursor() as cursor:
        for sql, params in query.get_compiler(using=using).as_sql():
            cursor.execute(sql, params)
        return cursor.rowcount == 1
