"""Device-side client of the offline_sync protocol (PROTOCOL.md): a local store, sync per pattern, a sync framework.

No Django: httpx for HTTP, the stdlib's sqlite3 for the store.
"""

from .connection import Connection
from .endpoints import CONFLICT_DETECTION, LAST_WRITE_WINS, READ_ONLY, Endpoint, Entity
from .errors import StoreError, SyncError
from .manager import (
    CONFLICTS_FOUND,
    SYNC_COMPLETED,
    SYNC_FAILED,
    SYNC_STARTED,
    SyncConfiguration,
    SyncEvent,
    SyncManager,
)
from .store import Conflict, LocalRecord, LocalStore
from .sync import ConflictResolution, EndpointOutcome, SyncClient, SyncOutcome

__version__ = "0.1.0"

__all__ = [
    "CONFLICTS_FOUND",
    "CONFLICT_DETECTION",
    "LAST_WRITE_WINS",
    "READ_ONLY",
    "SYNC_COMPLETED",
    "SYNC_FAILED",
    "SYNC_STARTED",
    "Conflict",
    "ConflictResolution",
    "Connection",
    "Endpoint",
    "EndpointOutcome",
    "Entity",
    "LocalRecord",
    "LocalStore",
    "StoreError",
    "SyncClient",
    "SyncConfiguration",
    "SyncError",
    "SyncEvent",
    "SyncManager",
    "SyncOutcome",
]
