"""Read/Write sync with conflict detection and the conflicts API (protocol 4.2, 5, 6)."""

import uuid

import pytest

from offline_sync.models import Conflict
from offline_sync.signals import conflict_detected, conflict_resolved
from tests import helpers
from tests.testapp.models import Item

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/sync/items-cd/"
CONFLICTS = "/sync/conflicts/"


def push(client, changes, **options):
    return helpers.push(client, URL, changes, **{"device_id": "phone-1", **options})


def resolve(client, conflict_id, resolution, record=None):
    body = {"resolution": resolution, **({"record": record} if record is not None else {})}
    return client.post(f"{CONFLICTS}{conflict_id}/resolve/", body, format="json")


def test_a_stale_base_version_is_a_conflict_and_the_rest_applies(alice):
    item, other = Item.objects.create(name="a", category="x"), Item.objects.create(name="b")
    Item.objects.filter(pk=item.pk).update(name="server edit")
    response = push(
        alice,
        {
            "items": {
                "modified": [{"id": item.pk, "base_version": 1, "name": "client edit"}],
                "added": [{"local_id": "n", "name": "new"}],
                "deleted": [{"id": other.pk, "base_version": 1}],
            }
        },
    )
    body = response.json()
    assert response.status_code == 200, body
    [conflict] = body["conflicts"]
    assert (conflict["entity"], conflict["id"], conflict["kind"]) == ("items", item.pk, "modified")
    assert conflict["client"] == {"id": item.pk, "base_version": 1, "name": "client edit"}
    assert (conflict["server"]["name"], conflict["server"]["version"]) == ("server edit", 2)
    assert conflict["device_id"] == "phone-1"
    assert Item.objects.get(pk=item.pk).name == "server edit"
    assert Item.objects.filter(name="new").exists()
    assert not Item.objects.filter(pk=other.pk).exists()
    # The whole subset comes back, the server's version of the conflicting record included.
    assert {r["id"]: r["name"] for r in body["changes"]["items"]["records"]}[item.pk] == "server edit"
    stored = Conflict.objects.get()
    assert (stored.user.username, stored.status, stored.endpoint) == ("alice", "pending", URL)


def test_without_base_version_the_last_sync_cursor_decides(alice):
    changed, untouched = Item.objects.create(name="changed"), Item.objects.create(name="untouched")
    cursor = alice.get(URL).json()["cursor"]
    changed.name = "server edit"
    changed.save()
    body = push(
        alice,
        {"items": {"modified": [{"id": changed.pk, "name": "c1"}, {"id": untouched.pk, "name": "c2"}]}},
        last_sync=cursor,
    ).json()
    assert [c["id"] for c in body["conflicts"]] == [changed.pk]
    assert Item.objects.get(pk=untouched.pk).name == "c2"


def test_with_neither_base_version_nor_last_sync_it_is_a_conflict(alice):
    item = Item.objects.create(name="a")
    body = push(alice, {"items": {"modified": [{"id": item.pk, "name": "b"}]}}).json()
    assert [c["id"] for c in body["conflicts"]] == [item.pk]


def test_a_modified_record_deleted_on_the_server_conflicts_with_server_null(alice):
    item = Item.objects.create(name="a")
    pk = item.pk
    item.delete()
    body = push(alice, {"items": {"modified": [{"id": pk, "base_version": 1, "name": "b"}]}}).json()
    [conflict] = body["conflicts"]
    assert (conflict["kind"], conflict["server"]) == ("modified", None)


def test_deleting_a_changed_record_is_a_conflict(alice):
    item = Item.objects.create(name="a")
    item.save()
    body = push(alice, {"items": {"deleted": [{"id": item.pk, "base_version": 1}]}}).json()
    assert [(c["kind"], c["server"]["version"]) for c in body["conflicts"]] == [("deleted", 2)]
    assert Item.objects.filter(pk=item.pk).exists()


def test_pending_conflicts_block_pushes_not_pulls_nor_the_retry(alice, bob):
    item = Item.objects.create(name="a")
    item.save()
    sync_id = uuid.uuid4()
    changes = {"items": {"modified": [{"id": item.pk, "base_version": 1, "name": "b"}]}}
    first = push(alice, changes, sync_id=sync_id).json()
    blocked = push(alice, {"items": {"added": [{"local_id": "x", "name": "x"}]}}, device_id="tablet")
    assert blocked.status_code == 409
    assert blocked.json()["error"] == "unresolved_conflicts"
    assert [c["conflict_id"] for c in blocked.json()["conflicts"]] == [first["conflicts"][0]["conflict_id"]]
    assert not Item.objects.filter(name="x").exists()
    retry = push(alice, changes, sync_id=sync_id)
    assert retry.status_code == 200
    assert retry.json()["conflicts"] == first["conflicts"]
    assert alice.get(URL).status_code == 200
    assert push(bob, {"items": {"added": [{"local_id": "y", "name": "y"}]}}).status_code == 200


def test_the_conflicts_api_lists_only_your_pending_conflicts(alice, bob):
    item = Item.objects.create(name="a")
    item.save()
    push(alice, {"items": {"modified": [{"id": item.pk, "base_version": 1, "name": "b"}]}})
    push(bob, {"items": {"modified": [{"id": item.pk, "base_version": 1, "name": "c"}]}})
    mine = alice.get(CONFLICTS).json()["conflicts"]
    assert [c["client"]["name"] for c in mine] == ["b"]
    bobs_id = bob.get(CONFLICTS).json()["conflicts"][0]["conflict_id"]
    response = resolve(alice, bobs_id, "server")
    assert (response.status_code, response.json()["error"]) == (404, "not_found")


def conflict_on(client, item, **change):
    body = push(client, {"items": {"modified": [{"id": item.pk, "base_version": 1, **change}]}}).json()
    return body["conflicts"][0]["conflict_id"]


def test_resolving_with_server_keeps_the_record_and_unblocks(alice):
    item = Item.objects.create(name="a")
    item.save()
    conflict_id = conflict_on(alice, item, name="client")
    response = resolve(alice, conflict_id, "server")
    assert response.json() == {
        "conflict_id": conflict_id,
        "status": "resolved",
        "resolution": "server",
        "record": alice.get(URL).json()["changes"]["items"]["records"][0],
    }
    assert Item.objects.get(pk=item.pk).version == 2
    assert alice.get(CONFLICTS).json() == {"conflicts": []}
    assert push(alice, {}).status_code == 200


def test_resolving_with_client_applies_the_change_with_a_new_version(alice):
    item = Item.objects.create(name="a", category="keep")
    item.save()
    conflict_id = conflict_on(alice, item, name="client")
    record = resolve(alice, conflict_id, "client").json()["record"]
    assert (record["name"], record["category"], record["version"]) == ("client", "keep", 3)
    assert Item.objects.get(pk=item.pk).name == "client"


def test_resolving_with_merge_applies_the_given_values(alice):
    item = Item.objects.create(name="a", category="c")
    item.save()
    conflict_id = conflict_on(alice, item, name="client")
    record = resolve(alice, conflict_id, "merge", {"name": "merged", "category": "m"}).json()["record"]
    assert (record["name"], record["category"], record["version"]) == ("merged", "m", 3)


def test_an_invalid_merge_record_applies_nothing(alice):
    item = Item.objects.create(name="a")
    item.save()
    conflict_id = conflict_on(alice, item, name="client")
    response = resolve(alice, conflict_id, "merge", {"price": "abc", "name": "x"})
    assert response.status_code == 400
    assert response.json()["detail"] == {"record": {"price": ["A valid number is required."]}}
    assert (Conflict.objects.get().status, Item.objects.get(pk=item.pk).name) == ("pending", "a")


def test_client_resolution_restores_a_deleted_record_with_its_id(alice):
    item = Item.objects.create(name="a", category="c", price="3.50")
    item.save()
    pk = item.pk
    item.delete()
    conflict_id = conflict_on(alice, Item(pk=pk), name="revived")
    record = resolve(alice, conflict_id, "client").json()["record"]
    assert (record["id"], record["name"], record["category"], record["price"]) == (pk, "revived", "c", "3.50")
    assert record["version"] == 3
    # Devices that pulled the deletion get the record back in their next delta.
    assert Item.objects.get(pk=pk).name == "revived"


def test_client_resolution_of_a_deletion_deletes(alice):
    item = Item.objects.create(name="a")
    item.save()
    body = push(alice, {"items": {"deleted": [{"id": item.pk, "base_version": 1}]}}).json()
    response = resolve(alice, body["conflicts"][0]["conflict_id"], "client")
    assert response.json()["record"] is None
    assert not Item.objects.filter(pk=item.pk).exists()


def test_a_conflict_is_resolved_once(alice):
    item = Item.objects.create(name="a")
    item.save()
    conflict_id = conflict_on(alice, item, name="client")
    first = resolve(alice, conflict_id, "client").json()
    again = resolve(alice, conflict_id, "client")
    assert (again.status_code, again.json()) == (200, first)
    other = resolve(alice, conflict_id, "server")
    assert other.status_code == 409
    assert other.json() == {"error": "already_resolved", "detail": {"resolution": "client", "record": first["record"]}}
    assert Item.objects.get(pk=item.pk).version == 3


@pytest.mark.parametrize(
    "body", [{}, {"resolution": "maybe"}, {"resolution": "server", "record": {}}, {"resolution": "merge"}, []]
)
def test_bad_resolutions_are_validation_errors(alice, body):
    item = Item.objects.create(name="a")
    item.save()
    conflict_id = conflict_on(alice, item, name="client")
    response = alice.post(f"{CONFLICTS}{conflict_id}/resolve/", body, format="json")
    assert (response.status_code, response.json()["error"]) == (400, "validation_error")
    assert Conflict.objects.get().status == "pending"


def test_signals_are_sent_after_commit(alice):
    detected, resolved = [], []

    def on_detected(sender, conflicts, **kwargs):
        detected.extend(conflicts)

    def on_resolved(sender, conflict, resolution, by, **kwargs):
        resolved.append((conflict.pk, resolution, by.username))

    conflict_detected.connect(on_detected)
    conflict_resolved.connect(on_resolved)
    try:
        item = Item.objects.create(name="a")
        item.save()
        conflict_id = conflict_on(alice, item, name="client")
        resolve(alice, conflict_id, "server")
    finally:
        conflict_detected.disconnect(on_detected)
        conflict_resolved.disconnect(on_resolved)
    assert [c.pk for c in detected] == [conflict_id]
    assert resolved == [(conflict_id, "server", "alice")]


def test_a_modification_that_changes_nothing_is_never_a_conflict(alice):
    item = Item.objects.create(name="a")
    item.save()
    body = push(alice, {"items": {"modified": [{"id": item.pk, "base_version": 1}]}}).json()
    assert body["conflicts"] == []
    assert Item.objects.get(pk=item.pk).version == 2
