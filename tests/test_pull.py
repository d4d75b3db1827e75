"""Read-Only and Read-Only Optimized sync over HTTP (protocol section 3)."""

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from offline_sync.models import SyncRequest, Tombstone
from tests.helpers import push
from tests.sync_client import Replica
from tests.testapp.models import Item, Note

# transaction=True: on PostgreSQL one transaction has one stamp, and these tests
# need each write to be a transaction of its own, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

ITEMS = "/sync/items/"
LWW = "/sync/items-lww/"


def test_full_pull_sends_the_records_in_wire_format(api):
    item = Item.objects.create(name="  Acme  ", category="tools", price="12.50")
    body = api().get(ITEMS).json()
    assert body["full"] is True
    assert body["has_more"] is False
    assert body["changes"] == {
        "items": {
            "records": [
                {
                    "id": item.pk,
                    "version": 1,
                    "modified_on": item.modified_on.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "name": "  Acme  ",
                    "category": "tools",
                    "price": "12.50",
                }
            ],
            "deleted": [],
        }
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["server_time"])


def test_delta_sends_only_what_changed_and_what_was_deleted(api):
    client = api()
    kept, changed, deleted = (Item.objects.create(name=n) for n in ("kept", "changed", "deleted"))
    cursor = client.get(ITEMS).json()["cursor"]
    changed.name = "changed!"
    changed.save()
    deleted_pk = deleted.pk
    deleted.delete()
    added = Item.objects.create(name="added")
    body = client.get(ITEMS, {"since": cursor}).json()
    assert body["full"] is False
    records = body["changes"]["items"]["records"]
    assert {(r["id"], r["name"], r["version"]) for r in records} == {
        (changed.pk, "changed!", 2),
        (added.pk, "added", 1),
    }
    assert body["changes"]["items"]["deleted"] == [deleted_pk]
    again = client.get(ITEMS, {"since": body["cursor"]}).json()
    assert again["changes"] == {"items": {"records": [], "deleted": []}}
    assert kept.pk not in {r["id"] for r in records}


def test_filter_selects_the_subset_and_leaving_it_is_a_deletion(api):
    tool = Item.objects.create(name="hammer", category="tools")
    Item.objects.create(name="apple", category="food")
    replica = Replica(api(), ITEMS, category="tools")
    replica.sync()
    assert replica.ids("items") == {tool.pk}
    Item.objects.filter(pk=tool.pk).update(category="food")
    body = replica.page()
    assert body["changes"]["items"] == {"records": [], "deleted": [tool.pk]}


def test_scope_limits_records_and_tombstones_to_what_the_caller_may_see(api, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    alices = Replica(api(alice), "/sync/notes/")
    bobs = Replica(api(bob), "/sync/notes/")
    mine = Note.objects.create(owner=alice, text="mine")
    moving = Note.objects.create(owner=alice, text="moving")
    theirs = Note.objects.create(owner=bob, text="theirs")
    alices.sync(), bobs.sync()
    assert (alices.ids("notes"), bobs.ids("notes")) == ({mine.pk, moving.pk}, {theirs.pk})

    moving.owner = bob
    moving.save()
    theirs_pk = theirs.pk
    theirs.delete()
    alice_body, bob_body = alices.page(), bobs.page()
    assert alice_body["changes"]["notes"] == {"records": [], "deleted": [moving.pk]}
    assert [r["id"] for r in bob_body["changes"]["notes"]["records"]] == [moving.pk]
    assert bob_body["changes"]["notes"]["deleted"] == [theirs_pk]
    assert (alices.ids("notes"), bobs.ids("notes")) == ({mine.pk}, {moving.pk})


def test_paging_is_lossless_and_resends_what_changed_meanwhile(api):
    items = Item.objects.bulk_create([Item(name=f"i{n}") for n in range(10)])
    replica = Replica(api(), ITEMS)
    first = replica.page(limit=4)
    assert (first["has_more"], len(first["changes"]["items"]["records"])) == (True, 4)
    sent_already = items[0]
    sent_already.name = "changed while paging"
    sent_already.save()
    Item.objects.filter(pk=items[9].pk).delete()
    while replica.page(limit=4)["has_more"]:
        pass
    assert replica.ids("items") == {i.pk for i in items[:9]}
    assert replica.data["items"][sent_already.pk]["name"] == "changed while paging"


def test_paging_spans_entities_in_one_order(api, make_user):
    user = make_user()
    Item.objects.bulk_create([Item(name=f"i{n}") for n in range(5)])
    notes = [Note.objects.create(owner=user, text=str(n)) for n in range(5)]
    replica = Replica(api(user), "/sync/items-notes/")
    assert replica.sync(limit=3) == 4
    assert len(replica.ids("items")) == 5
    assert replica.ids("notes") == {n.pk for n in notes}


@override_settings(OFFLINE_SYNC={"MAX_PAGE_SIZE": 2, "PAGE_SIZE": 1})
def test_page_size_defaults_and_maximum_come_from_settings(api):
    Item.objects.bulk_create([Item(name=f"i{n}") for n in range(5)])
    client = api()
    assert len(client.get(ITEMS).json()["changes"]["items"]["records"]) == 1
    assert len(client.get(ITEMS, {"limit": 100}).json()["changes"]["items"]["records"]) == 2


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", "", "²"])
def test_bad_limit_is_a_validation_error(api, limit):
    response = api().get(ITEMS, {"limit": limit})
    assert response.status_code == 400
    assert response.json() == {"error": "validation_error", "detail": {"limit": ["Must be a positive integer."]}}


@pytest.mark.parametrize("since", ["garbage", "1.!!!", "1.WyJhIiwtMSxudWxsXQ", ""])
def test_bad_cursor_is_a_validation_error(api, since):
    response = api().get(ITEMS, {"since": since})
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert "since" in response.json()["detail"]


def test_errors_come_in_the_envelope(api, make_user, client):
    unauthenticated = client.get(ITEMS)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"] == "not_authenticated"
    no_view_permission = api(make_user("nobody", perms=())).get(ITEMS, {"limit": "5"})
    assert (no_view_permission.status_code, no_view_permission.json()["error"]) == (403, "permission_denied")
    allowed = api()
    post = allowed.post(ITEMS, {}, format="json")
    assert (post.status_code, post.json()["error"]) == (405, "method_not_allowed")
    unknown = allowed.get("/sync/nowhere/")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")


def test_validation_comes_before_permission(api, make_user):
    response = api(make_user("nobody", perms=())).get(ITEMS, {"limit": "0"})
    assert response.status_code == 400


def test_purge_expires_older_cursors_only(api):
    client = api()
    item = Item.objects.create(name="a")
    old_cursor = client.get(ITEMS).json()["cursor"]
    item.delete()
    Tombstone.objects.update(deleted_on=timezone.now() - timedelta(days=31))
    fresh_cursor = client.get(ITEMS).json()["cursor"]

    call_command("purge_tombstones", "--dry-run")
    assert Tombstone.objects.count() == 1
    call_command("purge_tombstones")
    assert Tombstone.objects.count() == 0

    expired = client.get(ITEMS, {"since": old_cursor})
    assert expired.status_code == 410
    assert expired.json()["error"] == "cursor_expired"
    assert client.get(ITEMS, {"since": fresh_cursor}).status_code == 200
    assert client.get(ITEMS).status_code == 200


def test_purge_dry_run_counts_tombstones_and_stored_answers_and_deletes_nothing(alice):
    client = alice
    for name in "abc":
        Item.objects.create(name=name).delete()
    for n in range(2):
        assert push(client, LWW, {"items": {"added": [{"local_id": "x", "name": f"new {n}"}]}}).status_code == 200
    old = timezone.now() - timedelta(days=31)
    Tombstone.objects.update(deleted_on=old)
    SyncRequest.objects.update(created_on=old)
    assert push(client, LWW, {"items": {"added": [{"local_id": "x", "name": "recent"}]}}).status_code == 200

    out = io.StringIO()
    call_command("purge_tombstones", "--dry-run", stdout=out)
    assert "Would purge 3 tombstone(s) and 2 stored push answer(s)" in out.getvalue()
    assert (Tombstone.objects.count(), SyncRequest.objects.count()) == (3, 3)
    call_command("purge_tombstones", stdout=out)
    assert "Purged 3 tombstone(s) and 2 stored push answer(s)" in out.getvalue()
    assert (Tombstone.objects.count(), SyncRequest.objects.count()) == (0, 1)


def test_purge_keeps_tombstones_within_retention(api):
    Item.objects.create(name="a").delete()
    with override_settings(OFFLINE_SYNC={"TOMBSTONE_RETENTION": timedelta(hours=1)}):
        call_command("purge_tombstones")
    assert Tombstone.objects.count() == 1


def test_throttling_answers_in_the_envelope_with_retry_after():
    from rest_framework.exceptions import Throttled

    from offline_sync.rest_framework.errors import sync_exception_handler

    response = sync_exception_handler(Throttled(wait=7), {})
    assert (response.status_code, response.data["error"], response["Retry-After"]) == (429, "throttled", "7")
