"""Safe retries: a push's ``sync_id`` is claimed inside the push's transaction.

The claim is a row under a unique ``(user, sync_id)`` constraint. A retry that
arrives while the first try runs blocks on that constraint until the first
commits (then it replays the stored outcome) or rolls back (then it applies).
"""

import hashlib
import json

from django.db import IntegrityError, transaction

from .exceptions import SyncIdReused
from .models import SyncRequest


def body_hash(body):
    """Hash of the JSON value: key order and spacing do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(*, user, sync_id, endpoint, body, using):
    """Claim ``sync_id``; return ``(request, None)`` when new, ``(None, outcome)`` for a retry.

    Must run inside the push's transaction. Raises ``SyncIdReused`` when the
    sync_id was used with another body or on another endpoint.
    """
    digest = body_hash({**body, "sync_id": str(sync_id)})  # the UUID, however it was spelled
    try:
        with transaction.atomic(using=using):
            return SyncRequest.objects.using(using).create(
                user=user, sync_id=sync_id, endpoint=endpoint, body_hash=digest
            ), None
    except IntegrityError:
        earlier = SyncRequest.objects.using(using).get(user=user, sync_id=sync_id)
    if (earlier.endpoint, earlier.body_hash) != (endpoint, digest):
        raise SyncIdReused()
    return None, earlier.outcome


def store_outcome(request, outcome, using):
    SyncRequest.objects.using(using).filter(pk=request.pk).update(outcome=outcome)
