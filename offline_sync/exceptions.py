"""Every exception offline_sync raises, each with the wire error code it maps to."""

# The wire `error` codes (protocol section 7) and their HTTP statuses: the one
# table that the exception handler answers from and the OpenAPI schema documents.
# (A failure of the server is `server_error`, 500 or 503: rest_framework/errors.py.)
ERROR_STATUS = {
    "validation_error": 400,
    "not_authenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "unresolved_conflicts": 409,
    "sync_id_reused": 409,
    "already_resolved": 409,
    "conflict_changed": 409,
    "cursor_expired": 410,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "throttled": 429,
}


class SyncError(Exception):
    """Base of the errors a sync request can end in; ``code`` is the wire ``error``, ``status`` its HTTP status."""

    code = "sync_error"
    status = 400

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "status" not in vars(cls):
            cls.status = ERROR_STATUS.get(cls.code, cls.status)  # a protocol code's status is the table's

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

    def __init__(self):
        super().__init__("Deletions since this cursor were purged; do a full pull without `since`.")


class PayloadTooLarge(SyncError):
    """A push over the record or byte limit."""

    code = "payload_too_large"

    def __init__(self, max_records, max_bytes):
        super().__init__({"max_records": max_records, "max_bytes": max_bytes})


class SyncIdReused(SyncError):
    """The same sync_id with another body, or on another endpoint."""

    code = "sync_id_reused"

    def __init__(self):
        super().__init__("This sync_id was used for another push; make a new sync_id for each push.")


class RecordsInvalid(SyncError):
    """Pushed values the database would refuse (a unique value taken, say): ``detail`` by path, as DRF's."""

    code = "validation_error"


class ResolutionInvalid(SyncError):
    """A resolution that cannot apply as asked (a merge record its entity refuses, say): ``detail`` by path."""

    code = "validation_error"


class RecordsNotFound(SyncError):
    """Record ids that do not exist or are outside the caller's scope: ``{entity: [ids]}``."""

    code = "not_found"


class UnresolvedConflicts(SyncError):
    """The user has pending conflicts on this endpoint: pushes wait until they are resolved."""

    code = "unresolved_conflicts"

    def __init__(self, conflicts):
        super().__init__("Resolve the pending conflicts of this endpoint before pushing again.")
        self.conflicts = conflicts


class AlreadyResolved(SyncError):
    """The conflict was resolved before, another way."""

    code = "already_resolved"

    def __init__(self, resolution, record):
        super().__init__({"resolution": resolution, "record": record})


class ConflictChanged(SyncError):
    """The record changed again since the resolver looked at it; nothing was applied."""

    code = "conflict_changed"

    def __init__(self):
        super().__init__("The server record changed since you looked at it; review it again.")
