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
