"""The sync framework (seeds 003/004): the trigger, its queue, events, automatic syncs, retries.

Mostly in process, with a fake client whose syncs the test releases one by one; the last tests run the
real client against the live demo.
"""

import threading
import time

import pytest
from conftest import COMPANIES, COMPANIES_LWW, PRODUCTS, refuse_connection
from offline_sync_client import (
    CONFLICTS_FOUND,
    SYNC_COMPLETED,
    SYNC_FAILED,
    SYNC_STARTED,
    SyncConfiguration,
    SyncError,
    SyncManager,
)
from offline_sync_client.sync import EndpointOutcome, SyncOutcome


class FakeClient:
    """Stands for a SyncClient: each sync waits until the test releases it; records what ran."""

    def __init__(self, fail_with=None):
        self.ran = []
        self.running = 0
        self.most_at_once = 0
        self.release = threading.Semaphore(0)
        self.fail_with = list(fail_with or [])
        self._lock = threading.Lock()

    def endpoints_of(self, unit):
        if unit not in (None, "catalog", "crm"):
            raise ValueError(unit)
        return []

    def sync(self, unit=None):
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        assert self.release.acquire(timeout=10), "the test never released this sync"
        with self._lock:
            self.running -= 1
            self.ran.append(unit)
        result = EndpointOutcome("fake")
        if self.fail_with:
            result.error = self.fail_with.pop(0)
        return SyncOutcome(unit, [result])


def wait_until(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def events_of(manager):
    seen = []
    for name in (SYNC_STARTED, SYNC_COMPLETED, SYNC_FAILED, CONFLICTS_FOUND):
        manager.on(name, lambda event: seen.append((event.name, event.unit)))
    return seen


def test_trigger_returns_at_once_and_runs_one_sync_at_a_time():
    client = FakeClient()
    manager = SyncManager(client)
    seen = events_of(manager)
    assert manager.trigger_sync("catalog") is True  # returns while the sync waits
    assert manager.is_syncing
    assert manager.trigger_sync("crm") is True
    assert manager.trigger_sync("crm") is False  # already queued: joined
    for _ in range(2):
        client.release.release()
    assert manager.wait_idle(10)
    assert client.ran == ["catalog", "crm"]
    assert client.most_at_once == 1
    assert seen == [
        (SYNC_STARTED, "catalog"),
        (SYNC_COMPLETED, "catalog"),
        (SYNC_STARTED, "crm"),
        (SYNC_COMPLETED, "crm"),
    ]


def test_discard_pending_drops_the_queued_units():
    client = FakeClient()
    manager = SyncManager(client)
    manager.trigger_sync("catalog")
    wait_until(lambda: client.running == 1)
    manager.trigger_sync("crm")
    manager.trigger_sync(None, discard_pending=True)  # the running one finishes; "crm" is dropped
    for _ in range(2):
        client.release.release()
    assert manager.wait_idle(10)
    assert client.ran == ["catalog", None]


def test_a_trigger_from_a_completion_handler_is_coalesced_not_looped():
    client = FakeClient()
    manager = SyncManager(client)
    answers = []
    manager.on(SYNC_COMPLETED, lambda event: answers.append(manager.trigger_sync(event.unit)))
    manager.on(SYNC_COMPLETED, lambda event: event.unit == "catalog" and answers.append(manager.trigger_sync("crm")))
    for _ in range(5):
        client.release.release()
    manager.trigger_sync("catalog")
    assert manager.wait_idle(10)
    # catalog ran, its handler's own re-trigger was dropped, the chained "crm" ran once, and that was all.
    assert client.ran == ["catalog", "crm"]
    assert answers == [False, True, False]
    # After the burst, a new trigger from the app runs again (and its handler chains "crm" again).
    manager.trigger_sync("catalog")
    assert manager.wait_idle(10)
    assert client.ran == ["catalog", "crm", "catalog", "crm"]


def test_a_failing_handler_does_not_stop_the_worker():
    client = FakeClient()
    manager = SyncManager(client)
    manager.on(SYNC_STARTED, lambda event: 1 / 0)
    client.release.release()
    manager.trigger_sync()
    assert manager.wait_idle(10)
    assert client.ran == [None]


def test_retry_on_error_waits_the_interval_or_the_servers_retry_after():
    network = SyncError("network_error", "down")
    throttled = SyncError("throttled", "slow down", retry_after=0.3)
    client = FakeClient(fail_with=[network, throttled])
    manager = SyncManager(client, SyncConfiguration(retry_on_error=True, retry_interval=0.05))
    outcomes = []
    done = threading.Event()
    manager.on(SYNC_FAILED, lambda event: outcomes.append((event.outcome.error.code, event.outcome.retryable)))
    manager.on(SYNC_COMPLETED, lambda event: done.set())
    for _ in range(3):
        client.release.release()
    manager.trigger_sync("crm")
    assert done.wait(10)
    assert outcomes == [("network_error", True), ("throttled", True)]
    assert client.ran == ["crm", "crm", "crm"]
    manager.close(10)


def test_failures_a_retry_cannot_mend_are_not_retried():
    client = FakeClient(fail_with=[SyncError("not_authenticated", "bad token", status=401)])
    manager = SyncManager(client, SyncConfiguration(retry_on_error=True, retry_interval=0.01))
    failed = []
    manager.on(SYNC_FAILED, lambda event: failed.append(event.outcome.retryable))
    client.release.release()
    manager.trigger_sync()
    assert manager.wait_idle(10)
    assert failed == [False]
    assert not manager._timers  # nothing scheduled
    assert client.ran == [None]


def test_the_apps_events_start_syncs_as_configured():
    client = FakeClient()
    manager = SyncManager(client, SyncConfiguration(sync_on_online=True, sync_on_resume=False, unit="crm"))
    manager.notify_resume()  # off
    manager.notify_login()  # off
    assert not manager.is_syncing
    client.release.release()
    manager.notify_online()
    assert manager.wait_idle(10)
    assert client.ran == ["crm"]
    with pytest.raises(ValueError, match="no such unit"):
        manager.trigger_sync("no such unit")


def test_close_cancels_retries_and_refuses_triggers():
    client = FakeClient(fail_with=[SyncError("server_error", "500")])
    manager = SyncManager(client, SyncConfiguration(retry_on_error=True, retry_interval=60))
    client.release.release()
    manager.trigger_sync()
    assert manager.wait_idle(10)
    assert manager._timers
    assert manager.close(10)
    assert not manager._timers
    assert manager.trigger_sync() is False


# -- with the real client ---------------------------------------------------------------------------------


def test_the_manager_drives_the_real_client_with_units(server, device):
    phone = device([PRODUCTS, COMPANIES_LWW], units={"catalog": ["products"]})
    manager = SyncManager(phone.client, SyncConfiguration(sync_on_login=True, unit="catalog"))
    done = []
    manager.on(SYNC_COMPLETED, lambda event: done.append([e.endpoint for e in event.outcome.endpoints]))
    manager.notify_login()
    assert manager.wait_idle(30)
    manager.trigger_sync()
    assert manager.wait_idle(30)
    assert done == [["products"], ["products", "companies-lww"]]


def test_offline_then_online_with_retries(server, device):
    phone = device([COMPANIES_LWW])
    phone.store.create("companies", {"name": "Made offline", "address": "", "phone": ""})
    phone.transport.add(refuse_connection, times=3)  # one sync's worth of attempts
    manager = SyncManager(phone.client, SyncConfiguration(retry_on_error=True, retry_interval=0.1))
    results, done = [], threading.Event()
    manager.on(SYNC_FAILED, lambda event: results.append(("failed", event.outcome.retryable)))
    manager.on(SYNC_COMPLETED, lambda event: (results.append(("completed", None)), done.set()))
    manager.trigger_sync()
    assert done.wait(30)
    assert results == [("failed", True), ("completed", None)]
    assert all(r.is_from_server for r in phone.store.records("companies"))
    manager.close(10)


def test_conflicts_found_is_reported(server, device):
    _, token = server.user()
    phone, tablet = device([COMPANIES], token, "phone"), device([COMPANIES], token, "tablet")
    assert phone.sync().ok
    assert tablet.sync().ok
    target = phone.store.records("companies")[0]
    phone.store.update("companies", target.local_id, {"phone": "phone's"})
    tablet.store.update("companies", tablet.store.find("companies", target.id).local_id, {"phone": "tablet's"})
    assert phone.sync().ok
    manager = SyncManager(tablet.client)
    found = []
    manager.on(CONFLICTS_FOUND, lambda event: found.extend((c.id, c.kind) for c in event.conflicts))
    manager.trigger_sync()
    assert manager.wait_idle(30)
    assert found == [(target.id, "modified")]
    for conflict in tablet.store.conflicts():
        tablet.client.resolve_conflict(conflict.conflict_id, "server")
