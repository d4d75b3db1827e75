"""The sync framework of seeds 003/004: a background trigger, events, automatic syncs.

- ``trigger_sync()`` (``TriggerOfflineDataSync``) queues a sync unit and
  returns at once; one worker thread runs the queue, one sync at a time.
- ``SyncConfiguration`` (``OfflineDataSyncConfiguration``) says which events
  the app reports (``notify_login()``, ``notify_online()``, ``notify_resume()``)
  start a sync, and whether a failed sync is retried after an interval.
- Events: ``sync_started``, ``sync_completed``, ``sync_failed`` (its outcome
  says whether a retry makes sense), ``conflicts_found``. Handlers run on the
  worker thread; a trigger from inside one, for a unit that already ran in
  this burst of syncs, is coalesced (dropped), so a handler that triggers a
  sync cannot start an endless loop.
"""

import logging
import threading
from dataclasses import dataclass

logger = logging.getLogger("offline_sync_client")

SYNC_STARTED = "sync_started"
SYNC_COMPLETED = "sync_completed"
SYNC_FAILED = "sync_failed"
CONFLICTS_FOUND = "conflicts_found"
EVENTS = (SYNC_STARTED, SYNC_COMPLETED, SYNC_FAILED, CONFLICTS_FOUND)


@dataclass
class SyncConfiguration:
    """When syncs start by themselves (all off by default, as in the seeds' template)."""

    sync_on_login: bool = False
    sync_on_online: bool = False
    sync_on_resume: bool = False
    retry_on_error: bool = False
    retry_interval: float = 30.0  # seconds; a longer Retry-After from the server wins
    unit: str | None = None  # what automatic syncs cover (None: every endpoint)


@dataclass(frozen=True)
class SyncEvent:
    """What a handler receives: the event's ``name``, the ``unit``, and (after a run) its ``outcome``."""

    name: str
    unit: str | None
    outcome: object = None

    @property
    def conflicts(self):
        return [] if self.outcome is None else self.outcome.conflicts


class SyncManager:
    """Runs a ``SyncClient``'s syncs in the background, one at a time, and reports them."""

    def __init__(self, client, configuration=None):
        self.client = client
        self.configuration = configuration or SyncConfiguration()
        self._handlers = {name: [] for name in EVENTS}
        self._cond = threading.Condition()
        self._queue = []
        self._worker = None
        self._ran = set()  # units run in the current burst (until the queue empties)
        self._timers = {}  # unit -> the retry Timer waiting for it
        self._closed = False
        self._local = threading.local()

    # -- events -----------------------------------------------------------------------------------

    def on(self, event, handler):
        """Call ``handler(SyncEvent)`` on ``event``; returns the handler (usable as a decorator)."""
        if event not in self._handlers:
            raise ValueError(f"Unknown event {event!r}; events: {', '.join(EVENTS)}.")
        self._handlers[event].append(handler)
        return handler

    def off(self, event, handler):
        self._handlers[event].remove(handler)

    def _emit(self, name, unit, outcome=None):
        event = SyncEvent(name, unit, outcome)
        self._local.in_handler = True
        try:
            for handler in list(self._handlers[name]):
                try:
                    handler(event)
                except Exception:
                    logger.exception("%s handler %r failed", name, handler)
        finally:
            self._local.in_handler = False

    # -- triggering -------------------------------------------------------------------------------

    def trigger_sync(self, unit=None, *, discard_pending=False):
        """Queue a sync of ``unit`` (None: everything) and return at once.

        ``discard_pending`` first drops the units still queued (the seeds'
        ``DiscardPendingSyncUnits``). Returns False when the request joins one
        already queued, or is coalesced because it comes from an event handler
        after that unit already ran in this burst.
        """
        self.client.endpoints_of(unit)  # an unknown unit fails here, in the caller
        with self._cond:
            if self._closed:
                return False
            if discard_pending:
                self._queue.clear()
            if getattr(self._local, "in_handler", False) and (unit in self._ran or None in self._ran):
                logger.info("trigger of %r from an event handler coalesced with the sync that just ran", unit)
                return False
            if unit in self._queue or None in self._queue:
                return False
            self._queue.append(unit)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="offline-sync", daemon=True)
                self._worker.start()
            return True

    def notify_login(self):
        """The user logged in (after ``client.login()``)."""
        if self.configuration.sync_on_login:
            self.trigger_sync(self.configuration.unit)

    def notify_online(self):
        """The device is back online."""
        if self.configuration.sync_on_online:
            self.trigger_sync(self.configuration.unit)

    def notify_resume(self):
        """The app came back to the foreground."""
        if self.configuration.sync_on_resume:
            self.trigger_sync(self.configuration.unit)

    @property
    def is_syncing(self):
        with self._cond:
            return self._worker is not None

    def wait_idle(self, timeout=None):
        """Block until nothing runs or is queued; False if ``timeout`` (seconds) passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._worker is None, timeout)

    def close(self, timeout=None):
        """Stop: cancel retries, drop the queue, let the running sync finish (waits up to ``timeout``)."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
        return self.wait_idle(timeout)

    # -- the worker -------------------------------------------------------------------------------

    def _work(self):
        while True:
            with self._cond:
                if not self._queue:
                    self._worker = None
                    self._ran.clear()
                    self._cond.notify_all()
                    return
                unit = self._queue.pop(0)
                timer = self._timers.pop(unit, None)
            if timer is not None:
                timer.cancel()  # this run is the retry
            self._emit(SYNC_STARTED, unit)
            try:
                outcome = self.client.sync(unit)
            except Exception:  # a bug, not a sync failure (sync() reports those): keep the worker alive
                logger.exception("sync of %r raised", unit)
                outcome = None
            with self._cond:
                self._ran.add(unit)
            if outcome is None:
                continue
            if outcome.conflicts:
                self._emit(CONFLICTS_FOUND, unit, outcome)
            if outcome.ok:
                self._emit(SYNC_COMPLETED, unit, outcome)
            else:
                self._emit(SYNC_FAILED, unit, outcome)
                if outcome.retryable and self.configuration.retry_on_error:
                    self._schedule_retry(unit, max(self.configuration.retry_interval, outcome.retry_after or 0))

    def _schedule_retry(self, unit, delay):
        with self._cond:
            if self._closed:
                return
            old = self._timers.pop(unit, None)
            timer = threading.Timer(delay, self.trigger_sync, args=(unit,))
            timer.daemon = True
            self._timers[unit] = timer
        if old is not None:
            old.cancel()
        logger.info("sync of %r failed; retrying in %.1fs", unit, delay)
        timer.start()
