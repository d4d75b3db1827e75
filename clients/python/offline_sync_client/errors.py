"""The client's errors: one class for every failure of a sync, told apart by ``code``."""

# Codes the server sends (PROTOCOL.md section 7) plus the client's own.
NETWORK_ERROR = "network_error"  # no answer: connection refused or dropped, timeout
SERVER_ERROR = "server_error"  # 5xx
THROTTLED = "throttled"  # 429
NOT_AUTHENTICATED = "not_authenticated"  # 401 (and a refused login)
PERMISSION_DENIED = "permission_denied"  # 403
VALIDATION_ERROR = "validation_error"  # 400
NOT_FOUND = "not_found"  # 404
UNRESOLVED_CONFLICTS = "unresolved_conflicts"  # 409, or conflicts pending in the local store
SYNC_ID_REUSED = "sync_id_reused"  # 409
ALREADY_RESOLVED = "already_resolved"  # 409 on a resolve
CURSOR_EXPIRED = "cursor_expired"  # 410
PAYLOAD_TOO_LARGE = "payload_too_large"  # 413
BAD_RESPONSE = "bad_response"  # an answer that is not the protocol's JSON

# Worth trying again later, unchanged: the failure is the network's or the server's, not the request's.
RETRYABLE = frozenset({NETWORK_ERROR, SERVER_ERROR, THROTTLED})


class SyncError(Exception):
    """A sync step failed. ``code`` says why; ``retryable`` whether trying again later can help.

    ``status`` is the HTTP status (None without an answer), ``detail`` the
    server's ``detail``, ``retry_after`` the seconds the server asked to wait
    (429, 503), ``conflicts`` the conflicts of an ``unresolved_conflicts``.
    """

    def __init__(self, code, message, *, status=None, detail=None, retry_after=None, conflicts=()):
        super().__init__(message)
        self.code = code
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.conflicts = list(conflicts)

    @property
    def retryable(self):
        return self.code in RETRYABLE


class StoreError(ValueError):
    """A local action the store refuses (unknown record, a read-only entity, a server-owned field)."""
