"""A sync run (the seeds' ``OfflineDataSync``): per endpoint, push what changed here, take what the server sends."""

import json
import logging
import threading
from dataclasses import dataclass, field

from . import errors
from .connection import Connection
from .endpoints import CONFLICT_DETECTION
from .errors import SyncError

logger = logging.getLogger("offline_sync_client")

# Answers to a push that prove it was not applied and never will be with this body: the stored push is
# dropped and the next sync gathers the (possibly corrected) local changes afresh. Any other failure keeps it,
# to be sent again with the same sync_id: the server may have applied it (a lost answer; a 403 or 401 on a
# retry of an applied push), and only the same sync_id can tell.
_NOT_APPLIED = frozenset(
    {
        errors.VALIDATION_ERROR,
        errors.NOT_FOUND,
        errors.PAYLOAD_TOO_LARGE,
        errors.UNRESOLVED_CONFLICTS,
        errors.CURSOR_EXPIRED,
        "method_not_allowed",
        "unsupported_media_type",
    }
)

MAX_PUSHES_PER_RUN = 100


@dataclass
class EndpointOutcome:
    """What one endpoint's part of a sync did."""

    endpoint: str
    pushed: int = 0  # records sent (added, modified, deleted), over every push
    pulled: int = 0  # records and deleted ids received, over every page
    pages: int = 0
    full_pull: bool = False
    conflicts: list = field(default_factory=list)  # new conflicts (store.Conflict)
    error: SyncError | None = None


@dataclass
class SyncOutcome:
    """What ``sync()`` returns: ``ok``, or the first ``error`` (with ``retryable`` and ``retry_after``)."""

    unit: str | None
    endpoints: list = field(default_factory=list)

    @property
    def error(self):
        return next((e.error for e in self.endpoints if e.error is not None), None)

    @property
    def ok(self):
        return self.error is None

    @property
    def retryable(self):
        return self.error is not None and self.error.retryable

    @property
    def retry_after(self):
        return None if self.error is None else self.error.retry_after

    @property
    def conflicts(self):
        return [c for e in self.endpoints for c in e.conflicts]


@dataclass(frozen=True)
class ConflictResolution:
    """How a conflict ended: ``resolution`` ("client", "server" or "merge") and the server's ``record`` (or None).

    ``already_resolved``: someone (staff, another device) resolved it first;
    ``resolution`` and ``record`` are then theirs.
    """

    conflict_id: object
    resolution: str
    record: dict | None
    already_resolved: bool = False


class SyncClient:
    """Syncs a ``LocalStore`` with a server.

    - ``connection``: a ``Connection`` or a base URL.
    - ``units``: ``{unit: [endpoint names]}``, what ``sync(unit)`` covers; every
      endpoint is also a unit of its own name, and ``sync()`` covers them all.
    - ``device_id``: sent with pushes; staff see it with conflicts.
    - ``page_size``: the ``limit`` of pulls (None: the server's default).
    - ``max_push_records``: records in one push; a larger backlog goes in several.
    - ``conflicts_path``: the conflicts API (PROTOCOL.md section 5).

    One sync (or resolution) runs at a time; another caller waits for it.
    """

    def __init__(
        self,
        store,
        connection,
        *,
        units=None,
        device_id=None,
        page_size=None,
        max_push_records=1000,
        conflicts_path="/api/sync/conflicts/",
    ):
        self.store = store
        self.connection = Connection(connection) if isinstance(connection, str) else connection
        self.device_id = device_id
        self.page_size = page_size
        self.max_push_records = max_push_records
        self.conflicts_path = conflicts_path
        self.units = {name: [name] for name in store.endpoints}
        for unit, names in (units or {}).items():
            unknown = [n for n in names if n not in store.endpoints]
            if unknown:
                raise ValueError(f"Sync unit {unit!r} names unknown endpoints: {', '.join(unknown)}.")
            self.units[unit] = list(names)
        self._lock = threading.Lock()

    def login(self, username, password):
        return self.connection.login(username, password)

    def close(self):
        self.connection.close()

    def endpoints_of(self, unit):
        if unit is None:
            return list(self.store.endpoints)
        if unit not in self.units:
            raise ValueError(f"Unknown sync unit {unit!r}; known: {', '.join(self.units)}.")
        return self.units[unit]

    def sync(self, unit=None):
        """Sync the endpoints of ``unit`` (all when None), in order; return a ``SyncOutcome``, never raise.

        After a failure that a retry may mend (network, 5xx, 429) the
        remaining endpoints are left for the next sync; after any other, the
        next endpoint still syncs.
        """
        outcome = SyncOutcome(unit)
        with self._lock:
            for name in self.endpoints_of(unit):
                result = EndpointOutcome(name)
                outcome.endpoints.append(result)
                try:
                    self._sync_endpoint(self.store.endpoints[name], result)
                except SyncError as error:
                    logger.info("sync of %s failed: %s", name, error)
                    result.error = error
                    if error.retryable:
                        break
        return outcome

    def refresh_conflicts(self, endpoint):
        """Make the local conflicts of ``endpoint`` those the server still has pending (resolved elsewhere go)."""
        answer = self.connection.request("GET", self.conflicts_path)
        pending = answer.get("conflicts")
        if not isinstance(pending, list):
            raise SyncError(errors.BAD_RESPONSE, f"{self.conflicts_path} answered without a conflicts list.")
        self.store.replace_conflicts(endpoint, pending)
        return self.store.conflicts(endpoint)

    def resolve_conflict(self, conflict_id, resolution, record=None):
        """Resolve a local conflict: ``"client"`` keeps the local change, ``"server"`` the server's record,
        ``"merge"`` applies ``record`` (field values). Tells the server, then takes its resulting record here.
        """
        with self._lock:
            conflict = self.store.conflict(conflict_id)
            if conflict is None:
                raise errors.StoreError(f"No local conflict {conflict_id!r}.")
            body = {"resolution": resolution}
            if resolution == "merge":
                body["record"] = record
            path = f"{self.conflicts_path.rstrip('/')}/{conflict_id}/resolve/"
            try:
                answer = self.connection.request("POST", path, body=json.dumps(body))
            except SyncError as error:
                if error.code != errors.ALREADY_RESOLVED or not isinstance(error.detail, dict):
                    raise
                done = error.detail
                self.store.apply_resolution(conflict, done.get("record"))
                return ConflictResolution(conflict_id, done.get("resolution"), done.get("record"), True)
            self.store.apply_resolution(conflict, answer.get("record"))
            return ConflictResolution(conflict_id, answer.get("resolution"), answer.get("record"))

    # -- one endpoint -----------------------------------------------------------------------------

    def _sync_endpoint(self, endpoint, result):
        if not endpoint.writable:
            self._pull(endpoint, result)
            return
        store = self.store
        # Seed step 1: no push while conflicts wait; those resolved meanwhile (by staff, say) are dropped first.
        # A stored push goes first all the same: the retry of the push that made the conflicts is not refused.
        if (
            endpoint.pattern == CONFLICT_DETECTION
            and store.conflicts(endpoint.name)
            and store.pending_push(endpoint.name) is None
            and self.refresh_conflicts(endpoint.name)
        ):
            waiting = store.conflicts(endpoint.name)
            raise SyncError(
                errors.UNRESOLVED_CONFLICTS,
                f"{endpoint.name}: {len(waiting)} conflict(s) to resolve before the next sync.",
                conflicts=waiting,
            )
        pushes, expired = 0, False
        while pushes < MAX_PUSHES_PER_RUN:
            prepared = store.pending_push(endpoint.name)
            resent = prepared is not None
            if prepared is None:
                prepared = store.prepare_push(
                    endpoint.name, device_id=self.device_id, max_records=self.max_push_records
                )
            if prepared is None:
                break
            _, body = prepared
            count = _count(body)
            try:
                answer = self.connection.request("POST", endpoint.path, params=self._params(endpoint), body=body)
            except SyncError as error:
                if error.code in _NOT_APPLIED:
                    store.discard_pending_push(endpoint.name)
                if error.code == errors.UNRESOLVED_CONFLICTS:  # pending from another device, say: now here too
                    error.conflicts = store.replace_conflicts(endpoint.name, error.conflicts)
                    result.conflicts += error.conflicts
                if error.code != errors.CURSOR_EXPIRED or expired:
                    raise
                # Nothing was applied: pull in full, then push what is still pending, with base_versions.
                expired = True
                store.reset_cursor(endpoint.name)
                self._pull(endpoint, result)
                continue
            pushes += 1
            result.pushed += count
            _check_page(answer, endpoint.path, push=True)
            result.conflicts += store.apply_answer(endpoint.name, answer, pushed=True)
            self._count_page(answer, result)
            if answer["has_more"]:
                self._pull(endpoint, result)
            if result.conflicts or not (resent or count >= self.max_push_records):
                break  # the server refuses pushes while conflicts wait; else, a backlog goes on
        if pushes == 0 and not result.pages:
            self._pull(endpoint, result)

    def _pull(self, endpoint, result):
        """Pull pages until ``has_more`` is false, each applied with its cursor; a ``410`` restarts in full."""
        expired = False
        while True:
            params = self._params(endpoint)
            since = self.store.state(endpoint.name).cursor
            if since is not None:
                params["since"] = since
            try:
                page = self.connection.request("GET", endpoint.path, params=params)
            except SyncError as error:
                if error.code != errors.CURSOR_EXPIRED or expired:
                    raise
                expired = True
                self.store.reset_cursor(endpoint.name)
                continue
            _check_page(page, endpoint.path)
            self.store.apply_answer(endpoint.name, page)
            self._count_page(page, result)
            if not page["has_more"]:
                return

    def _params(self, endpoint):
        params = dict(endpoint.params)
        if self.page_size is not None:
            params["limit"] = str(self.page_size)
        return params

    @staticmethod
    def _count_page(page, result):
        result.pages += 1
        result.full_pull = result.full_pull or bool(page.get("full"))
        for change in page["changes"].values():
            result.pulled += len(change.get("records") or []) + len(change.get("deleted") or [])


def _count(body):
    changes = json.loads(body)["changes"]
    return sum(len(items) for lists in changes.values() for items in lists.values())


def _check_page(page, path, push=False):
    """The answer has the protocol's shape (sections 3 and 4), or nothing of it is applied."""
    ok = (
        isinstance(page.get("cursor"), str)
        and isinstance(page.get("has_more"), bool)
        and isinstance(page.get("changes"), dict)
        and all(
            isinstance(c, dict)
            and isinstance(c.get("records", []), list)
            and all(isinstance(r, dict) and "id" in r for r in c.get("records", []))
            and isinstance(c.get("deleted", []), list)
            and all(isinstance(i, (int, str)) for i in c.get("deleted", []))
            for c in page["changes"].values()
        )
    )
    if ok and push:
        ok = (
            isinstance(page.get("id_map"), dict)
            and all(isinstance(m, dict) for m in page["id_map"].values())
            and isinstance(page.get("conflicts"), list)
            and all(
                isinstance(c, dict) and {"conflict_id", "entity", "id", "kind"} <= c.keys() for c in page["conflicts"]
            )
        )
    if not ok:
        raise SyncError(errors.BAD_RESPONSE, f"{path} answered 200 without the protocol's page.")
