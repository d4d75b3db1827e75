"""Read/write with conflict detection against the live demo: conflicts kept, syncs refused, resolutions."""

import uuid

import pytest
from conftest import AGE_AND_PURGE_TOMBSTONES, COMPANIES, assert_in_step


def unique():
    return f"Conflicted {uuid.uuid4().hex[:8]}"


@pytest.fixture
def rivals(server, device):
    """Two devices of one user holding the same company; the phone's edit reaches the server first."""

    def make(tablet_change=None, same_user=True):
        _, token = server.user()
        phone = device([COMPANIES], token, "phone")
        tablet = device([COMPANIES], token if same_user else server.user()[1], "tablet")
        lid = phone.store.create("companies", {"name": unique(), "address": "", "phone": "0"})
        assert phone.sync().ok
        assert tablet.sync().ok
        server_id = phone.store.get("companies", lid).id
        on_tablet = tablet.store.find("companies", server_id)
        phone.store.update("companies", lid, {"phone": "phone's"})
        assert phone.sync().ok
        if tablet_change == "delete":
            tablet.store.delete("companies", on_tablet.local_id)
        else:
            tablet.store.update("companies", on_tablet.local_id, {"phone": "tablet's"})
        return phone, tablet, server_id

    return make


def test_a_stale_edit_becomes_a_local_conflict_and_blocks_the_next_sync(server, rivals):
    _phone, tablet, server_id = rivals()
    other = tablet.store.records("companies")[0]
    outcome = tablet.sync()
    assert outcome.ok, outcome.error
    [conflict] = outcome.conflicts
    assert (conflict.entity, conflict.id, conflict.kind, conflict.device_id) == (
        "companies",
        server_id,
        "modified",
        "tablet",
    )
    assert conflict.client["phone"] == "tablet's"
    assert (conflict.server["phone"], conflict.server["version"]) == ("phone's", 2)
    assert tablet.store.conflicts("companies") == [conflict]
    row = tablet.store.find("companies", server_id)
    assert (row.data["phone"], row.version, row.is_modified) == ("phone's", 2, False)  # the server's, until resolved

    # Seed step 1: while it waits, the sync stops before pushing; local edits stay pending.
    tablet.store.update("companies", other.local_id, {"address": "waits"})
    outcome = tablet.sync()
    assert (outcome.error.code, outcome.retryable) == ("unresolved_conflicts", False)
    assert outcome.error.conflicts == [conflict]
    assert [entry[:2] for entry in tablet.transport.log[-1:]] == [("GET", "/api/sync/conflicts/")]
    assert tablet.store.get("companies", other.local_id).is_modified


def test_resolving_keep_local_applies_the_local_change_everywhere(server, rivals):
    phone, tablet, server_id = rivals()
    [conflict] = tablet.sync().conflicts
    resolution = tablet.client.resolve_conflict(conflict.conflict_id, "client")
    assert (resolution.resolution, resolution.already_resolved) == ("client", False)
    assert (resolution.record["phone"], resolution.record["version"]) == ("tablet's", 3)
    assert tablet.store.conflicts() == []
    assert tablet.store.find("companies", server_id).data["phone"] == "tablet's"
    assert tablet.sync().ok
    assert phone.sync().ok
    assert phone.store.find("companies", server_id).data["phone"] == "tablet's"
    for d in (phone, tablet):
        assert_in_step(d, COMPANIES, server)


def test_resolving_with_a_merge_or_keeping_the_server_version(server, rivals):
    _, tablet, server_id = rivals()
    [conflict] = tablet.sync().conflicts
    merged = tablet.client.resolve_conflict(conflict.conflict_id, "merge", {"phone": "merged", "address": "both"})
    assert (merged.record["phone"], merged.record["address"]) == ("merged", "both")
    assert tablet.store.find("companies", server_id).data["phone"] == "merged"
    assert tablet.sync().ok
    assert_in_step(tablet, COMPANIES, server)

    _phone, tablet, server_id = rivals()
    [conflict] = tablet.sync().conflicts
    kept = tablet.client.resolve_conflict(conflict.conflict_id, "server")
    assert (kept.resolution, kept.record["phone"], kept.record["version"]) == ("server", "phone's", 2)
    assert tablet.store.find("companies", server_id).data["phone"] == "phone's"
    assert tablet.sync().ok
    assert_in_step(tablet, COMPANIES, server)


def test_staff_resolve_in_the_admin_and_the_next_sync_shows_the_result(server, rivals):
    _phone, tablet, server_id = rivals()
    [conflict] = tablet.sync().conflicts
    page = server.staff_resolve(conflict.conflict_id, "client")
    assert "tablet" in page  # staff see which device
    outcome = tablet.sync()
    assert outcome.ok, outcome.error
    assert tablet.store.conflicts() == []
    assert tablet.store.find("companies", server_id).data["phone"] == "tablet's"
    assert_in_step(tablet, COMPANIES, server)


def test_a_resolution_that_comes_second_takes_the_first_one(server, rivals):
    _phone, tablet, server_id = rivals()
    [conflict] = tablet.sync().conflicts
    server.staff_resolve(conflict.conflict_id, "server")
    done = tablet.client.resolve_conflict(conflict.conflict_id, "client")
    assert (done.already_resolved, done.resolution, done.record["phone"]) == (True, "server", "phone's")
    assert tablet.store.conflicts() == []
    assert tablet.store.find("companies", server_id).data["phone"] == "phone's"


def test_another_device_of_the_user_is_refused_and_learns_the_conflict(server, rivals):
    phone, tablet, _server_id = rivals()
    [conflict] = tablet.sync().conflicts
    mine = phone.store.create("companies", {"name": unique(), "address": "", "phone": ""})
    outcome = phone.sync()
    assert (outcome.error.code, outcome.retryable, outcome.error.status) == ("unresolved_conflicts", False, 409)
    assert [c.conflict_id for c in phone.store.conflicts()] == [conflict.conflict_id]
    assert phone.store.pending_push("companies") is None  # refused, so nothing to resend...
    assert not phone.store.get("companies", mine).is_from_server  # ...and the record still waits to be pushed
    phone.client.resolve_conflict(conflict.conflict_id, "server")
    assert phone.sync().ok
    assert phone.store.get("companies", mine).is_from_server
    assert_in_step(phone, COMPANIES, server)


def test_a_stale_deletion_conflicts_and_the_record_comes_back_until_resolved(server, rivals):
    phone, tablet, server_id = rivals(tablet_change="delete")
    [conflict] = tablet.sync().conflicts
    assert (conflict.kind, conflict.client) == ("deleted", {"id": server_id, "base_version": 1})
    row = tablet.store.find("companies", server_id)
    assert (row.is_active, row.data["phone"]) == (True, "phone's")
    tablet.client.resolve_conflict(conflict.conflict_id, "client")  # delete it after all
    assert tablet.store.find("companies", server_id) is None
    assert tablet.sync().ok
    assert phone.sync().ok
    assert phone.store.find("companies", server_id) is None
    assert_in_step(tablet, COMPANIES, server)


def test_an_edit_of_a_record_deleted_on_the_server_conflicts_and_can_restore_it(server, rivals):
    phone, tablet, server_id = rivals()
    phone.store.delete("companies", phone.store.find("companies", server_id).local_id)
    assert phone.sync().ok
    [conflict] = tablet.sync().conflicts
    assert conflict.server is None
    assert tablet.store.find("companies", server_id) is None
    restored = tablet.client.resolve_conflict(conflict.conflict_id, "client")
    assert (restored.record["id"], restored.record["phone"]) == (server_id, "tablet's")
    assert tablet.store.find("companies", server_id).data["phone"] == "tablet's"
    assert phone.sync().ok
    assert phone.store.find("companies", server_id).data["phone"] == "tablet's"
    assert_in_step(tablet, COMPANIES, server)


def test_after_an_expired_cursor_the_stale_edit_still_conflicts(server, rivals):
    """410 on the push: a full pull, then the pending edit goes with its base_version, and conflicts."""
    phone, tablet, server_id = rivals()
    doomed = phone.store.create("companies", {"name": unique(), "address": "", "phone": ""})
    assert phone.sync().ok
    phone.store.delete("companies", doomed)
    assert phone.sync().ok
    assert int(server.shell(AGE_AND_PURGE_TOMBSTONES)) >= 1  # the tablet's cursor is now too old

    outcome = tablet.sync()
    assert outcome.ok, outcome.error
    assert ("POST", "/api/sync/companies/", 410) in tablet.transport.log
    assert outcome.endpoints[0].full_pull
    [conflict] = outcome.conflicts  # not silently applied over the phone's edit
    assert conflict.client == {"id": server_id, "base_version": 1, "phone": "tablet's"}
    assert tablet.store.find("companies", server_id).data["phone"] == "phone's"
