"""Read/write, last write wins, against the live demo: local actions, pushes, id_map, edits made mid-push."""

import json
import uuid

from conftest import COMPANIES_LWW, assert_in_step, before


def unique(prefix="Co"):
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def sent_bodies(device):
    """The push bodies the device sends from now on, decoded when read."""
    del device.transport.sent[:]
    return lambda: [json.loads(body) for body in device.transport.sent]


def server_count(server, token, name):
    return sum(r["name"] == name for r in server.state(token, COMPANIES_LWW)["companies"].values())


def test_offline_create_update_delete_then_sync(server, device):
    phone = device([COMPANIES_LWW])
    assert phone.sync().ok
    existing = phone.store.records("companies")[0]
    doomed = phone.store.records("companies")[1]

    name = unique()
    new = phone.store.create("companies", {"name": name, "address": "1 Dock Rd", "phone": ""})
    assert phone.store.get("companies", new).is_from_server is False
    phone.store.update("companies", existing.local_id, {"phone": "555-7777"})
    phone.store.delete("companies", doomed.local_id)
    assert doomed.id not in phone.rows("companies")  # inactive rows are hidden...
    assert not phone.store.get("companies", doomed.local_id).is_active  # ...until the deletion is pushed

    bodies = sent_bodies(phone)
    outcome = phone.sync()
    assert outcome.ok, outcome.error
    [body] = bodies()
    assert body["last_sync"] is not None
    changes = body["changes"]["companies"]
    assert changes["added"] == [{"local_id": new, "name": name, "address": "1 Dock Rd", "phone": ""}]
    # Only the field changed, with the version it was changed on.
    assert changes["modified"] == [{"id": existing.id, "base_version": existing.version, "phone": "555-7777"}]
    assert changes["deleted"] == [{"id": doomed.id, "base_version": doomed.version}]

    created = phone.store.get("companies", new)  # the same local row, now with its server id
    assert (created.is_from_server, created.version) == (True, 1)
    assert created.id is not None
    assert phone.store.get("companies", doomed.local_id) is None
    assert phone.store.get("companies", existing.local_id).data["phone"] == "555-7777"
    assert_in_step(phone, COMPANIES_LWW, server)


def test_two_devices_last_write_wins(server, device):
    _, token = server.user()
    phone, tablet = device([COMPANIES_LWW], token, "phone"), device([COMPANIES_LWW], token, "tablet")
    lid = phone.store.create("companies", {"name": unique(), "address": "", "phone": "1"})
    assert phone.sync().ok
    server_id = phone.store.get("companies", lid).id
    assert tablet.sync().ok
    on_tablet = tablet.store.find("companies", server_id)

    phone.store.update("companies", lid, {"phone": "2", "address": "phone's"})
    tablet.store.update("companies", on_tablet.local_id, {"phone": "3"})
    assert phone.sync().ok
    assert tablet.sync().ok  # the later write wins, field by field
    assert phone.sync().ok
    for d in (phone, tablet):
        expected = {"name": on_tablet.data["name"], "address": "phone's", "phone": "3"}
        assert d.store.find("companies", server_id).data == expected
        assert_in_step(d, COMPANIES_LWW, server)


def test_a_record_deleted_elsewhere_stays_deleted(server, device):
    _, token = server.user()
    phone, tablet = device([COMPANIES_LWW], token, "phone"), device([COMPANIES_LWW], token, "tablet")
    lid = phone.store.create("companies", {"name": unique(), "address": "", "phone": ""})
    assert phone.sync().ok
    assert tablet.sync().ok
    server_id = phone.store.get("companies", lid).id
    tablet.store.delete("companies", tablet.store.find("companies", server_id).local_id)
    assert tablet.sync().ok

    phone.store.update("companies", lid, {"phone": "too late"})
    outcome = phone.sync()
    assert outcome.ok, outcome.error
    assert phone.store.get("companies", lid) is None  # PROTOCOL 4.1: it comes back in `deleted`
    assert_in_step(phone, COMPANIES_LWW, server)


def test_an_edit_made_while_its_push_is_in_flight_stays_modified(server, device):
    phone = device([COMPANIES_LWW])
    assert phone.sync().ok
    lid = phone.store.create("companies", {"name": unique(), "address": "a", "phone": "1"})
    other = phone.store.records("companies")[0]
    phone.store.update("companies", other.local_id, {"phone": "first"})

    def edit_meanwhile(request):
        phone.store.update("companies", lid, {"phone": "edited mid-push"})
        phone.store.update("companies", other.local_id, {"address": "edited mid-push"})

    phone.transport.add(before(edit_meanwhile), method="POST")
    assert phone.sync().ok
    added, modified = phone.store.get("companies", lid), phone.store.get("companies", other.local_id)
    # Both pushed changes applied; the later edits are still to push, on top of the versions the push made.
    assert (added.is_from_server, added.is_modified, added.modified_fields) == (True, True, ("phone",))
    assert (added.base_version, added.data["phone"]) == (1, "edited mid-push")
    assert (modified.is_modified, modified.modified_fields) == (True, ("address",))
    assert (modified.data["phone"], modified.data["address"]) == ("first", "edited mid-push")
    state = server.state(phone.token, COMPANIES_LWW)["companies"]
    assert state[added.id]["phone"] == "1"
    assert state[modified.id]["phone"] == "first"
    assert state[modified.id]["address"] != "edited mid-push"

    bodies = sent_bodies(phone)
    assert phone.sync().ok
    assert sorted(bodies()[0]["changes"]["companies"]["modified"], key=lambda item: item["id"] != added.id) == [
        {"id": added.id, "base_version": 1, "phone": "edited mid-push"},
        {"id": modified.id, "base_version": modified.base_version, "address": "edited mid-push"},
    ]
    assert_in_step(phone, COMPANIES_LWW, server)


def test_a_new_record_deleted_while_its_push_is_in_flight_is_deleted_on_the_server_too(server, device):
    phone = device([COMPANIES_LWW])
    name = unique()
    lid = phone.store.create("companies", {"name": name, "address": "", "phone": ""})
    phone.transport.add(before(lambda request: phone.store.delete("companies", lid)), method="POST")
    assert phone.sync().ok
    row = phone.store.get("companies", lid)
    assert (row.is_from_server, row.is_active) == (True, False)  # created on the server; its deletion is next
    assert server_count(server, phone.token, name) == 1
    assert phone.sync().ok
    assert phone.store.get("companies", lid) is None
    assert server_count(server, phone.token, name) == 0
    assert_in_step(phone, COMPANIES_LWW, server)


def test_a_never_synced_record_deleted_locally_is_never_sent(server, device):
    phone = device([COMPANIES_LWW])
    lid = phone.store.create("companies", {"name": unique(), "address": "", "phone": ""})
    phone.store.delete("companies", lid)
    assert phone.store.get("companies", lid) is None
    bodies = sent_bodies(phone)
    assert phone.sync().ok
    assert bodies() == []  # nothing to push: a pull
    assert ("GET", "/api/sync/companies-lww/", 200) in phone.transport.log


def test_a_large_backlog_goes_in_several_pushes(server, device):
    phone = device([COMPANIES_LWW], max_push_records=4)
    names = [unique("Backlog") for _ in range(10)]
    for name in names:
        phone.store.create("companies", {"name": name, "address": "", "phone": ""})
    bodies = sent_bodies(phone)
    outcome = phone.sync()
    assert outcome.ok, outcome.error
    assert [len(b["changes"]["companies"]["added"]) for b in bodies()] == [4, 4, 2]
    assert outcome.endpoints[0].pushed == 10
    assert all(server_count(server, phone.token, n) == 1 for n in names)
    assert_in_step(phone, COMPANIES_LWW, server)


def test_a_refused_push_is_dropped_and_the_fixed_record_goes_next_time(server, device):
    phone = device([COMPANIES_LWW])
    lid = phone.store.create("companies", {"name": "x" * 201, "address": "", "phone": ""})  # name <= 200
    outcome = phone.sync()
    assert (outcome.error.code, outcome.retryable) == ("validation_error", False)
    assert outcome.error.detail == {
        "changes": {"companies": {"added": {"0": {"name": ["Ensure this field has no more than 200 characters."]}}}}
    }
    assert phone.store.pending_push("companies-lww") is None  # nothing was applied: no need to resend it
    phone.store.update("companies", lid, {"name": unique()})
    assert phone.sync().ok
    assert phone.store.get("companies", lid).is_from_server
    assert_in_step(phone, COMPANIES_LWW, server)
