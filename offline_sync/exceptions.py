"""Every exception offline_sync raises, each with the wire error code it maps to."""


class SyncError(Exception):
    """Base of the errors a sync request can end in; ``code`` is the wire ``error``."""

    code = "sync_error"
    status = 400

    def __init__(self, detail=None):
        super().__init__(detail)
        self.detail = detail


class InvalidCursor(SyncError):
    """A cursor that this server did not hand out."""

    code = "validation_error"

    def __init__(self, field="since"):
        super().__init__({field: ["Not a cursor this server issued; do a full pull without `since`."]})


class CursorExpired(SyncError):
    """Tombstones newer than the cursor were purged: the client must pull in full."""

    code = "cursor_expired"
    status = 410

    def __init__(self):
        super().__init__("Deletions since this cursor were purged; do a full pull without `since`.")


class PayloadTooLarge(SyncError):
    """A push over the record or byte limit."""

    code = "payload_too_large"
    status = 413

    def __init__(self, max_records, max_bytes):
        super().__init__({"max_records": max_records, "max_bytes": max_bytes})


class SyncIdReused(SyncError):
    """The same sync_id with another body, or on another endpoint."""

    code = "sync_id_reused"
    status = 409

    def __init__(self):
        super().__init__("This sync_id was used for another push; make a new sync_id for each push.")


class RecordsInvalid(SyncError):
    """Pushed values the database would refuse (a unique value taken, say): ``detail`` by path, as DRF's."""

    code = "validation_error"
    status = 400


class RecordsNotFound(SyncError):
    """Record ids that do not exist or are outside the caller's scope: ``{entity: [ids]}``."""

    code = "not_found"
    status = 404


class UnresolvedConflicts(SyncError):
    """The user has pending conflicts on this endpoint: pushes wait until they are resolved."""

    code = "unresolved_conflicts"
    status = 409

    def __init__(self, conflicts):
        super().__init__("Resolve the pending conflicts of this endpoint before pushing again.")
        self.conflicts = conflicts


class AlreadyResolved(SyncError):
    """The conflict was resolved before, another way."""

    code = "already_resolved"
    status = 409

    def __init__(self, resolution, record):
        super().__init__({"resolution": resolution, "record": record})


class ConflictChanged(SyncError):
    """The record changed again since the resolver looked at it; nothing was applied."""

    code = "conflict_changed"
    status = 409

    def __init__(self):
        super().__init__("The server record changed since you looked at it; review it again.")
