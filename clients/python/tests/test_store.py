"""The local store in process, no server: local actions, the push it gathers, and how answers are applied.

Answers here are written by hand in the protocol's shape (PROTOCOL.md sections 3 and 4), which is also how
the one-to-many side (children pointing at parents not yet on the server) is tested before the server has it.
"""

import json

import pytest
from offline_sync_client import LAST_WRITE_WINS, Endpoint, Entity, LocalStore, StoreError, SyncError

CRM = Endpoint(
    "crm",
    "/api/sync/company-contacts/",
    LAST_WRITE_WINS,
    [Entity("companies"), Entity("contacts", foreign_keys={"company": "companies"})],
)


@pytest.fixture
def store(tmp_path):
    with LocalStore(tmp_path / "device.sqlite3", [CRM]) as store:
        yield store


def page(cursor="c1", full=False, has_more=False, id_map=None, conflicts=None, **changes):
    """An answer: ``companies=([records], [deleted ids])``, ...; every entity present, as the server sends."""
    answer = {
        "full": full,
        "changes": {name: {"records": [], "deleted": []} for name in ("companies", "contacts")},
        "cursor": cursor,
        "has_more": has_more,
        "server_time": "2026-11-21T20:41:21.000000Z",
        "id_map": id_map or {"companies": {}, "contacts": {}},
        "conflicts": conflicts or [],
    }
    for name, (records, deleted) in changes.items():
        answer["changes"][name] = {"records": records, "deleted": deleted}
    return answer


def company(id, version=1, **fields):
    return {"id": id, "version": version, "modified_on": "2026-11-21T20:41:21.000000Z", "name": f"Co {id}", **fields}


def pushed(store):
    sync_id, body = store.pending_push("crm")
    body = json.loads(body)
    assert body["sync_id"] == sync_id
    return body


def test_local_actions_set_the_seeds_flags(store):
    store.apply_answer("crm", page(full=True, companies=([company(1, 3, phone="1"), company(2)], [])))
    one = store.find("companies", 1)
    assert (one.is_from_server, one.is_modified, one.is_active, one.base_version) == (True, False, True, None)

    store.update("companies", one.local_id, {"phone": "2"})
    store.update("companies", one.local_id, {"address": "x"})
    one = store.get("companies", one.local_id)
    assert (one.is_modified, one.base_version, set(one.modified_fields)) == (True, 3, {"phone", "address"})

    two = store.find("companies", 2)
    store.delete("companies", two.local_id)
    assert not store.get("companies", two.local_id).is_active
    assert [r.id for r in store.records("companies")] == [1]

    new = store.create("companies", {"name": "New"})
    assert (store.get("companies", new).is_from_server, store.get("companies", new).id) == (False, None)
    store.delete("companies", new)  # never on the server: gone at once
    assert store.get("companies", new) is None


def test_local_actions_refuse_what_is_not_theirs(store):
    with pytest.raises(StoreError, match="set by the server"):
        store.create("companies", {"name": "x", "version": 3})
    with pytest.raises(StoreError, match="Unknown entity"):
        store.create("nothing", {})
    with pytest.raises(StoreError, match="does not exist"):
        store.update("companies", "missing", {"name": "x"})
    with pytest.raises(StoreError, match="JSON values"):
        store.create("companies", {"price": object()})
    lid = store.create("companies", {"name": "x"})
    with pytest.raises(StoreError, match="already has"):
        store.create("companies", {"name": "y"}, local_id=lid)
    assert store.create_or_update("companies", {"phone": "1"}, local_id=lid) == lid
    assert store.get("companies", lid).data == {"name": "x", "phone": "1"}


def test_the_push_sends_added_modified_and_deleted_as_the_seeds_filter_them(store):
    store.apply_answer("crm", page(full=True, companies=([company(1, 2), company(2, 5)], [])))
    store.update("companies", store.find("companies", 1).local_id, {"phone": "9"})
    store.delete("companies", store.find("companies", 2).local_id)
    new = store.create("companies", {"name": "New", "phone": ""})
    sync_id, body = store.prepare_push("crm", device_id="phone")
    assert json.loads(body) == {
        "sync_id": sync_id,
        "last_sync": "c1",
        "device_id": "phone",
        "changes": {
            "companies": {
                "added": [{"local_id": new, "name": "New", "phone": ""}],
                "modified": [{"id": 1, "base_version": 2, "phone": "9"}],
                "deleted": [{"id": 2, "base_version": 5}],
            }
        },
    }
    assert store.pending_push("crm") == (sync_id, body)  # stored before it is sent: a retry sends these bytes
    with pytest.raises(StoreError, match="waiting for its answer"):
        store.prepare_push("crm")


def test_nothing_to_push_is_no_push(store):
    assert store.prepare_push("crm") is None
    assert store.pending_push("crm") is None
    assert not store.has_pending_changes("crm")


# -- one-to-many: children of parents that are not on the server yet ---------------------------------------


def test_children_point_at_a_new_parent_by_local_id_and_get_its_server_id_with_the_answer(store):
    store.apply_answer("crm", page(full=True, companies=([company(1)], []), contacts=([], [])))
    parent = store.create("companies", {"name": "Parent"})
    child = store.create("contacts", {"name": "Ann", "company": {"local_id": parent}})
    moved = store.create("contacts", {"name": "Bob", "company": 1})
    body = pushed_after_prepare(store)
    assert body["changes"]["companies"]["added"] == [{"local_id": parent, "name": "Parent"}]
    assert body["changes"]["contacts"]["added"] == [
        {"local_id": child, "name": "Ann", "company": {"local_id": parent}},
        {"local_id": moved, "name": "Bob", "company": 1},
    ]
    # A child edited to point at the new parent while the push is in flight is rewritten too.
    store.update("contacts", moved, {"company": {"local_id": parent}})
    answer = page(
        cursor="c2",
        id_map={"companies": {parent: 40}, "contacts": {child: 7, moved: 8}},
        companies=([company(40, name="Parent")], []),
        contacts=(
            [
                {"id": 7, "version": 1, "name": "Ann", "company": 40},
                {"id": 8, "version": 1, "name": "Bob", "company": 1},
            ],
            [],
        ),
    )
    store.apply_answer("crm", answer, pushed=True)
    assert store.get("companies", parent).id == 40
    assert store.get("contacts", child).data["company"] == 40
    bob = store.get("contacts", moved)
    assert (bob.data["company"], bob.is_modified, bob.modified_fields) == (40, True, ("company",))
    assert json.loads(store.prepare_push("crm")[1])["changes"] == {
        "contacts": {"modified": [{"id": 8, "base_version": 1, "company": 40}]}
    }


def pushed_after_prepare(store):
    store.prepare_push("crm")
    return pushed(store)


def test_a_child_given_a_synced_parents_local_id_stores_the_server_id(store):
    store.apply_answer("crm", page(full=True, companies=([company(5)], [])))
    parent = store.find("companies", 5).local_id
    child = store.create("contacts", {"name": "Ann", "company": {"local_id": parent}})
    assert store.get("contacts", child).data["company"] == 5
    assert store.ref("companies", parent) == 5
    new = store.create("companies", {"name": "New"})
    assert store.ref("companies", new) == {"local_id": new}
    with pytest.raises(StoreError, match="no companies record"):
        store.create("contacts", {"name": "x", "company": {"local_id": "nope"}})


def test_a_new_parent_with_new_children_cannot_be_deleted_alone(store):
    parent = store.create("companies", {"name": "Parent"})
    child = store.create("contacts", {"name": "Ann", "company": {"local_id": parent}})
    with pytest.raises(StoreError, match="point at it"):
        store.delete("companies", parent)
    store.delete("contacts", child)
    store.delete("companies", parent)
    assert store.records("companies") == []


def test_a_capped_push_leaves_children_whose_parent_waits_for_the_next_one(store):
    parents = [store.create("companies", {"name": f"P{i}"}) for i in range(3)]
    children = [store.create("contacts", {"name": f"C{i}", "company": {"local_id": p}}) for i, p in enumerate(parents)]
    store.prepare_push("crm", max_records=4)
    changes = pushed(store)["changes"]
    assert [c["local_id"] for c in changes["companies"]["added"]] == parents
    assert [c["local_id"] for c in changes["contacts"]["added"]] == children[:1]


# -- applying answers ----------------------------------------------------------------------------------


def test_an_edit_made_while_the_push_was_in_flight_stays_pending(store):
    store.apply_answer("crm", page(full=True, companies=([company(1, 2, phone="a", address="a")], [])))
    one = store.find("companies", 1).local_id
    store.update("companies", one, {"phone": "pushed"})
    new = store.create("companies", {"name": "New", "phone": "pushed"})
    store.prepare_push("crm")
    store.update("companies", one, {"address": "later"})  # the push is on its way
    store.update("companies", new, {"phone": "later"})
    store.apply_answer(
        "crm",
        page(
            cursor="c2",
            id_map={"companies": {new: 9}},
            companies=([company(1, 3, phone="pushed", address="a"), company(9, 1, name="New", phone="pushed")], []),
        ),
        pushed=True,
    )
    one, new = store.get("companies", one), store.get("companies", new)
    assert (one.data["phone"], one.data["address"], one.version) == ("pushed", "later", 3)  # server + pending
    assert (one.modified_fields, one.base_version) == (("address",), 3)  # on top of the version the push made
    assert (new.id, new.modified_fields, new.base_version, new.data["phone"]) == (9, ("phone",), 1, "later")
    assert store.pending_push("crm") is None


def test_a_delta_does_not_drop_a_record_changed_here(store):
    store.apply_answer("crm", page(full=True, companies=([company(1), company(2)], [])))
    store.update("companies", store.find("companies", 1).local_id, {"phone": "mine"})
    store.apply_answer("crm", page(cursor="c2", companies=([company(1, 2, phone="theirs")], [1, 2])))
    assert store.find("companies", 2) is None
    kept = store.find("companies", 1)  # the push decides: LWW answers `deleted`, conflict detection a conflict
    assert (kept.data["phone"], kept.is_modified) == ("mine", True)


def test_a_paged_full_pull_replaces_only_on_its_last_page_and_keeps_local_changes(store):
    store.apply_answer("crm", page(full=True, companies=([company(1), company(2), company(3)], [])))
    store.update("companies", store.find("companies", 3).local_id, {"phone": "mine"})
    new = store.create("companies", {"name": "Not yet on the server"})
    store.reset_cursor("crm")
    store.apply_answer("crm", page(cursor="p1", full=True, has_more=True, companies=([company(1, 2)], [])))
    assert {r.id for r in store.records("companies")} == {1, 2, 3, None}  # not swept before the last page
    assert store.state("crm").full_pull_pending
    store.apply_answer("crm", page(cursor="p2", companies=([company(4)], [])))
    assert {r.id for r in store.records("companies")} == {1, 3, 4, None}  # 2 is gone; 3 and the new one wait
    assert store.get("companies", new) is not None
    assert not store.state("crm").full_pull_pending


def test_an_answer_applies_whole_or_not_at_all(store, monkeypatch):
    store.apply_answer("crm", page(full=True, companies=([company(1)], [])))
    new = store.create("companies", {"name": "New"})
    store.prepare_push("crm")
    before = (store.records("companies"), store.state("crm"), store.pending_push("crm"))

    def fail(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_store_conflict", fail)
    conflict = {"conflict_id": 1, "entity": "companies", "id": 1, "kind": "modified", "client": {}, "server": None}
    with pytest.raises(RuntimeError):
        store.apply_answer("crm", page(cursor="c2", id_map={"companies": {new: 5}}, conflicts=[conflict]), pushed=True)
    assert (store.records("companies"), store.state("crm"), store.pending_push("crm")) == before


def test_an_answer_without_the_id_of_an_added_record_is_refused(store):
    store.create("companies", {"name": "New"})
    store.prepare_push("crm")
    with pytest.raises(SyncError, match="no id_map entry"):
        store.apply_answer("crm", page(cursor="c2"), pushed=True)
    assert store.pending_push("crm") is not None


def test_a_conflict_keeps_both_versions_and_the_row_shows_the_servers(store):
    store.apply_answer("crm", page(full=True, companies=([company(1, 1, phone="old"), company(2)], [])))
    store.update("companies", store.find("companies", 1).local_id, {"phone": "mine"})
    store.delete("companies", store.find("companies", 2).local_id)
    store.prepare_push("crm")
    conflicts = [
        {
            "conflict_id": 11,
            "entity": "companies",
            "id": 1,
            "kind": "modified",
            "client": {"id": 1, "base_version": 1, "phone": "mine"},
            "server": company(1, 2, phone="theirs"),
            "detected_on": "2026-11-21T20:41:21.000000Z",
            "device_id": "phone",
        },
        {
            "conflict_id": 12,
            "entity": "companies",
            "id": 2,
            "kind": "deleted",
            "client": {"id": 2, "base_version": 1},
            "server": company(2, 2),
        },
    ]
    store.apply_answer("crm", page(cursor="c2", conflicts=conflicts), pushed=True)
    assert [(c.conflict_id, c.kind, c.client.get("phone")) for c in store.conflicts()] == [
        (11, "modified", "mine"),
        (12, "deleted", None),
    ]
    one, two = store.find("companies", 1), store.find("companies", 2)
    assert (one.data["phone"], one.version, one.is_modified) == ("theirs", 2, False)
    assert (two.is_active, two.version) == (True, 2)  # the deletion was set aside: the record is back
    store.apply_resolution(store.conflict(12), None)  # resolved: deleted after all
    assert store.find("companies", 2) is None
    assert [c.conflict_id for c in store.conflicts()] == [11]


def test_everything_survives_a_restart(tmp_path):
    path = tmp_path / "device.sqlite3"
    with LocalStore(path, [CRM]) as store:
        store.apply_answer("crm", page(full=True, companies=([company(1)], [])))
        store.create("companies", {"name": "New"})
        prepared = store.prepare_push("crm")
    with LocalStore(path, [CRM]) as store:
        assert store.pending_push("crm") == prepared
        assert store.state("crm").cursor == "c1"
        assert len(store.records("companies")) == 2


def test_other_filters_mean_a_full_pull(tmp_path):
    path = tmp_path / "device.sqlite3"
    with LocalStore(path, [CRM]) as store:
        store.apply_answer("crm", page(full=True))
        assert store.state("crm").cursor == "c1"
    other = Endpoint("crm", CRM.path, CRM.pattern, CRM.entities, params={"category": "x"})
    with LocalStore(path, [other]) as store:
        assert store.state("crm").cursor is None


def test_an_entity_syncs_through_one_endpoint_only(tmp_path):
    lww = Endpoint("lww", "/a/", LAST_WRITE_WINS, ["companies"])
    with pytest.raises(ValueError, match="one endpoint"):
        LocalStore(tmp_path / "x.sqlite3", [CRM, lww])
    with pytest.raises(ValueError, match="does not carry"):
        Endpoint("bad", "/b/", LAST_WRITE_WINS, [Entity("contacts", foreign_keys={"company": "companies"})])
