"""Faults at every step of a sync, against the live demo; after each, the device ends in step with the server.

The steps of a push and what a crash there leaves (store.py's docstring):

1. the push is gathered and stored (``sync_id`` and body) before it is sent;
2. the request reaches the server, which applies it, and the answer is lost;
3. the answer is applied locally, in one transaction with its cursor;
4. continuation pages, each applied with its cursor.

A crash between 1 and 3 leaves the stored push: it is sent again with the same
``sync_id`` and body, and the server answers from the outcome it stored,
applying nothing twice. A crash inside 3 or 4 rolls that transaction back:
the data and the cursor stay as they were, so nothing is skipped.
"""

import subprocess
import sys
import textwrap
import time
import uuid

import httpx
import pytest
from conftest import (
    COMPANIES,
    COMPANIES_LWW,
    PRODUCTS,
    DemoServer,
    Device,
    assert_in_step,
    before,
    drop_response,
    respond,
)
from offline_sync_client import Connection, SyncError


class Crash(Exception):
    """The app dies here."""


def crash_after(store, method, calls):
    """Make ``store.<method>`` raise ``Crash`` from its ``calls + 1``-th call on."""
    original = getattr(store, method)
    count = {"n": 0}

    def crashing(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise Crash(f"{method} call {count['n']}")
        return original(*args, **kwargs)

    setattr(store, method, crashing)


def unique():
    return f"Fault {uuid.uuid4().hex[:8]}"


def names_on_server(server, token, endpoint=COMPANIES_LWW):
    return [r["name"] for r in server.state(token, endpoint)["companies"].values()]


def capture(device):
    """The bodies of the pushes the device sends from now on (until it restarts)."""
    del device.transport.sent[:]
    return device.transport.sent


def offline_edits(phone):
    """A new company and an edit of an existing one, made offline; returns (new local_id, edited local_id)."""
    edited = phone.store.records("companies")[0]
    new = phone.store.create("companies", {"name": unique(), "address": "", "phone": ""})
    phone.store.update("companies", edited.local_id, {"phone": f"edit {uuid.uuid4().hex[:4]}"})
    return new, edited.local_id


def assert_applied_once(server, phone, new, edited, version_before, endpoint=COMPANIES_LWW):
    name = phone.store.get("companies", new).data["name"]
    assert names_on_server(server, phone.token, endpoint).count(name) == 1  # no duplicate
    row = phone.store.get("companies", edited)
    assert row.version == version_before + 1  # the edit applied once
    assert_in_step(phone, endpoint, server)


# -- 2. the answer is lost ----------------------------------------------------------------------------


def test_a_lost_answer_is_retried_with_the_same_sync_id_and_creates_no_duplicate(server, device):
    phone = device([COMPANIES_LWW])
    assert phone.sync().ok
    new, edited = offline_edits(phone)
    version = phone.store.get("companies", edited).version
    sent = capture(phone)
    phone.transport.add(drop_response, method="POST")  # the first push is applied, its answer lost
    outcome = phone.sync()
    assert outcome.ok, outcome.error
    assert len(sent) == 2
    assert sent[0] == sent[1]  # byte for byte the same body, same sync_id
    assert_applied_once(server, phone, new, edited, version)


def test_a_push_whose_answers_keep_getting_lost_is_resent_after_a_restart(server, device):
    phone = device([COMPANIES_LWW])
    assert phone.sync().ok
    new, edited = offline_edits(phone)
    version = phone.store.get("companies", edited).version
    phone.transport.add(drop_response, method="POST", times=3)
    outcome = phone.sync()
    assert (outcome.error.code, outcome.retryable) == ("network_error", True)
    stored = phone.store.pending_push("companies-lww")
    assert stored is not None

    phone.restart()
    sent = capture(phone)
    assert phone.sync().ok
    assert sent == [stored[1].encode()]
    assert_applied_once(server, phone, new, edited, version)


def test_the_server_killed_after_applying_a_push(server, device):
    phone = device([COMPANIES_LWW])
    assert phone.sync().ok
    new, edited = offline_edits(phone)
    version = phone.store.get("companies", edited).version

    def apply_then_die(request, inner):
        response = inner.handle_request(request)
        response.read()
        server.kill()
        raise httpx.RemoteProtocolError("server disconnected", request=request)

    phone.transport.add(apply_then_die, method="POST")
    outcome = phone.sync()
    assert (outcome.error.code, outcome.retryable) == ("network_error", True)  # the retries found no server
    server.start()
    assert phone.sync().ok
    assert_applied_once(server, phone, new, edited, version)


def test_the_server_killed_in_the_middle_of_a_paged_pull(server, device):
    phone = device([PRODUCTS], page_size=4)

    def die(request, inner):
        server.kill()
        raise httpx.ConnectError("connection refused", request=request)

    phone.transport.add(lambda request, inner: inner.handle_request(request), method="GET")  # page 1 arrives
    phone.transport.add(die, method="GET")
    outcome = phone.sync()
    assert (outcome.error.code, outcome.retryable) == ("network_error", True)
    assert 0 < len(phone.store.records("products")) < 20  # page 1 is kept, with its cursor
    assert phone.store.state("products").full_pull_pending
    server.start()
    outcome = phone.sync()
    assert outcome.ok, outcome.error
    assert not outcome.endpoints[0].full_pull  # it went on from page 1's cursor
    assert_in_step(phone, PRODUCTS, server)


# -- 1 and 3: crashes ---------------------------------------------------------------------------------


def test_a_crash_after_the_push_was_stored_and_before_it_was_sent(server, device):
    phone = device([COMPANIES_LWW])
    assert phone.sync().ok
    new, edited = offline_edits(phone)
    version = phone.store.get("companies", edited).version

    def crash(request):
        raise Crash("before sending")

    phone.transport.add(before(crash), method="POST")
    with pytest.raises(Crash):
        phone.sync()
    stored = phone.store.pending_push("companies-lww")
    phone.restart()
    sent = capture(phone)
    assert phone.sync().ok
    assert sent == [stored[1].encode()]
    assert_applied_once(server, phone, new, edited, version)


@pytest.mark.parametrize("method", ["_apply_id_map", "_settle_pushed_rows", "_upsert", "_store_conflict"])
def test_a_crash_while_applying_a_push_answer_rolls_it_back_and_the_retry_applies_it_once(server, device, method):
    phone = device([COMPANIES])
    assert phone.sync().ok
    cursor = phone.store.state("companies").cursor
    new, edited = offline_edits(phone)
    version = phone.store.get("companies", edited).version
    if method == "_store_conflict":  # a conflict in the answer, so that there is one to store
        rival = phone.store.get("companies", edited)
        server.push(phone.token, COMPANIES, {"companies": {"modified": [{"id": rival.id, "phone": "rival"}]}}, cursor)
        version += 1
    crash_after(phone.store, method, 0)
    with pytest.raises(Crash):
        phone.sync()
    # Nothing of the answer was kept: the cursor, the flags and the stored push are as before.
    assert phone.store.state("companies").cursor == cursor
    assert not phone.store.get("companies", new).is_from_server
    assert phone.store.get("companies", edited).is_modified
    stored = phone.store.pending_push("companies")

    phone.restart()
    sent = capture(phone)
    outcome = phone.sync()
    assert outcome.ok, outcome.error
    assert sent == [stored[1].encode()]
    if method == "_store_conflict":
        [conflict] = outcome.conflicts  # the retry answers the same conflict
        phone.client.resolve_conflict(conflict.conflict_id, "server")
        assert (
            names_on_server(server, phone.token, COMPANIES).count(phone.store.get("companies", new).data["name"]) == 1
        )
        assert_in_step(phone, COMPANIES, server)
    else:
        assert_applied_once(server, phone, new, edited, version, COMPANIES)


def test_a_process_killed_in_the_middle_of_the_local_apply(server, device):
    """A real crash (os._exit, no rollback code runs): SQLite's journal undoes the half-written transaction."""
    phone = device([COMPANIES_LWW])
    assert phone.sync().ok
    new, edited = offline_edits(phone)
    version = phone.store.get("companies", edited).version
    phone.store.close()
    script = textwrap.dedent(
        f"""
        import os, sys
        from offline_sync_client import Connection, Endpoint, Entity, LocalStore, SyncClient
        store = LocalStore({str(phone.path)!r}, [Endpoint("companies-lww", "/api/sync/companies-lww/",
                           "last_write_wins", [Entity("companies")])])
        upsert, calls = store._upsert, []
        def dying(*args):
            upsert(*args)
            calls.append(1)
            if len(calls) == 1:
                os._exit(17)  # rows written, the transaction not committed
        store._upsert = dying
        SyncClient(store, Connection({server.base_url!r}, token={phone.token!r})).sync()
        """
    )
    assert subprocess.run([sys.executable, "-c", script], timeout=60).returncode == 17
    phone.open()
    assert not phone.store.get("companies", new).is_from_server  # as before the sync
    assert phone.store.pending_push("companies-lww") is not None
    assert phone.sync().ok
    assert_applied_once(server, phone, new, edited, version)


# -- 4. pages -----------------------------------------------------------------------------------------

DELETE_ONE = "from demo_project.catalog.models import Product; Product.objects.filter(name=%r).delete()"


def test_a_crash_in_a_paged_full_pull_resumes_and_still_drops_what_the_server_deleted(server, device):
    phone = device([PRODUCTS], page_size=3)
    assert phone.sync().ok
    doomed = phone.store.records("products")[-1].data["name"]
    server.shell(DELETE_ONE % doomed)
    phone.store.reset_cursor("products")  # the next sync is a full pull: the deletion reaches it by absence
    crash_after(phone.store, "_upsert", 7)  # pages 1 and 2 (6 records) commit; page 3 dies half-way
    with pytest.raises(Crash):
        phone.sync()
    assert phone.store.state("products").full_pull_pending
    assert doomed in {r.data["name"] for r in phone.store.records("products")}  # not swept yet

    phone.restart()
    outcome = phone.sync()
    assert outcome.ok, outcome.error
    assert not outcome.endpoints[0].full_pull  # resumed from page 2's cursor, not started over
    assert doomed not in {r.data["name"] for r in phone.store.records("products")}
    assert_in_step(phone, PRODUCTS, server)


def test_a_crash_between_a_push_answer_and_its_continuation_pages(server, device):
    phone = device([COMPANIES_LWW], page_size=2)  # never synced: its first push answers the whole subset, paged
    new = phone.store.create("companies", {"name": unique(), "address": "", "phone": ""})

    def crash(request):
        raise Crash("between pages")

    phone.transport.add(before(crash), method="GET")
    with pytest.raises(Crash):
        phone.sync()
    assert phone.store.pending_push("companies-lww") is None  # the answer's page committed, push settled
    assert phone.store.get("companies", new).is_from_server
    phone.restart()
    sent = capture(phone)
    assert phone.sync().ok
    assert sent == []  # nothing to push again: it pulls on from the stored cursor
    assert_in_step(phone, COMPANIES_LWW, server)


# -- 5xx, 429, timeouts, refusals ---------------------------------------------------------------------


def test_a_503_is_retried_after_its_retry_after(server, device):
    phone = device([COMPANIES_LWW])
    assert phone.sync().ok
    new, edited = offline_edits(phone)
    version = phone.store.get("companies", edited).version
    phone.transport.add(respond(503, headers={"Retry-After": "1"}), method="POST")
    started = time.monotonic()
    outcome = phone.sync()
    assert outcome.ok, outcome.error
    assert time.monotonic() - started >= 1
    assert_applied_once(server, phone, new, edited, version)


def test_a_server_that_keeps_failing_leaves_the_push_for_later(server, device):
    phone = device([COMPANIES_LWW])
    assert phone.sync().ok
    new, edited = offline_edits(phone)
    version = phone.store.get("companies", edited).version
    phone.transport.add(respond(500), method="POST", times=3)
    outcome = phone.sync()
    assert (outcome.error.code, outcome.error.status, outcome.retryable) == ("server_error", 500, True)
    stored = phone.store.pending_push("companies-lww")
    sent = capture(phone)
    assert phone.sync().ok
    assert sent == [stored[1].encode()]
    assert_applied_once(server, phone, new, edited, version)


def test_429_waits_for_a_short_retry_after_and_reports_a_long_one(server, device):
    phone = device([COMPANIES_LWW])
    phone.transport.add(respond(429, {"error": "throttled", "detail": "slow down"}, {"Retry-After": "1"}))
    started = time.monotonic()
    assert phone.sync().ok
    assert time.monotonic() - started >= 1

    phone.store.create("companies", {"name": unique(), "address": "", "phone": ""})
    phone.transport.add(respond(429, {"error": "throttled"}, {"Retry-After": "120"}), method="POST")
    started = time.monotonic()
    outcome = phone.sync()
    assert time.monotonic() - started < 5  # not waited for: the app's retry timer takes it from here
    assert (outcome.error.code, outcome.retryable, outcome.retry_after) == ("throttled", True, 120)
    assert phone.store.pending_push("companies-lww") is not None


def test_the_servers_own_429_is_reported_with_its_retry_after(tmp_path_factory, tmp_path):
    """A real throttled answer (DRF's ScopedRateThrottle, 2 a minute here): retryable, Retry-After kept, push kept."""
    throttled = DemoServer(tmp_path_factory.mktemp("throttled"), pool=1, DEMO_SYNC_RATE="2/min")
    try:
        _, token = throttled.user()
        phone = Device(throttled, tmp_path, [COMPANIES_LWW], token, max_push_records=1)
        try:
            for i in range(3):
                phone.store.create("companies", {"name": f"{unique()} {i}", "address": "", "phone": ""})
            outcome = phone.sync()  # two pushes pass, the third is throttled for most of a minute
            assert (outcome.error.code, outcome.error.status, outcome.retryable) == ("throttled", 429, True)
            assert 1 < outcome.retry_after <= 60
            assert outcome.endpoints[0].pushed == 2
            assert phone.store.pending_push("companies-lww") is not None
        finally:
            phone.store.close()
            phone.client.close()
    finally:
        throttled.stop()


def test_a_timeout_is_retried(server, device):
    phone = device([COMPANIES_LWW])
    assert phone.sync().ok
    new, edited = offline_edits(phone)
    version = phone.store.get("companies", edited).version

    def timeout(request, inner):
        inner.handle_request(request).read()
        raise httpx.ReadTimeout("timed out", request=request)

    phone.transport.add(timeout, method="POST")
    assert phone.sync().ok
    assert_applied_once(server, phone, new, edited, version)


def test_bad_credentials_fail_without_retry_and_keep_the_push(server, device):
    phone = device([COMPANIES_LWW], token="not-a-token")
    phone.store.create("companies", {"name": unique(), "address": "", "phone": ""})
    outcome = phone.sync()
    assert (outcome.error.code, outcome.error.status, outcome.retryable) == ("not_authenticated", 401, False)
    assert len([e for e in phone.transport.log if e[0] == "POST"]) == 1
    assert phone.store.pending_push("companies-lww") is not None  # a 401 cannot tell whether it was applied


def test_an_answer_that_is_not_the_protocol_applies_nothing(server, device):
    phone = device([COMPANIES_LWW])
    assert phone.sync().ok
    cursor = phone.store.state("companies-lww").cursor
    phone.transport.add(respond(200, {"changes": "nope"}), method="GET")
    outcome = phone.sync()
    assert (outcome.error.code, outcome.retryable) == ("bad_response", False)
    assert phone.store.state("companies-lww").cursor == cursor


def test_login_gets_a_token_and_wrong_credentials_are_refused(server):
    with Connection(server.base_url) as connection:
        with pytest.raises(SyncError) as refused:
            connection.login("mobile", "wrong")
        assert (refused.value.code, refused.value.retryable) == ("not_authenticated", False)
        token = connection.login("mobile", "mobile")
        assert connection.token == token
        assert server.request(token, "GET", "/api/sync/products/")[0] == 200
