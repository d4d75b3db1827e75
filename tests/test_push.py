"""Read/Write sync, last write wins (protocol sections 4, 4.1, 6, 7)."""

import json
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.db import DatabaseError
from django.test import override_settings
from django.utils import timezone

from offline_sync.models import SyncRequest, Tombstone
from tests import helpers
from tests.testapp.models import Item, Note

pytestmark = pytest.mark.django_db(transaction=True)

ITEMS = "/sync/items-lww/"
NOTES = "/sync/notes-lww/"


@pytest.fixture
def writer(api, make_user):
    return api(make_user("writer", perms="all"))


def push(client, changes, *, url=ITEMS, **options):
    return helpers.push(client, url, changes, **options)


def snapshot():
    """Everything a push may change, to prove that a refused one changed nothing."""
    return (
        sorted(Item.objects.values_list("pk", "name", "category", "price", "version")),
        sorted(Note.objects.values_list("pk", "owner_id", "text", "version")),
        Tombstone.objects.count(),
        SyncRequest.objects.count(),
    )


def test_first_push_adds_records_and_answers_the_full_subset(writer):
    existing = Item.objects.create(name="existing")
    response = push(writer, {"items": {"added": [{"local_id": "c-7", "name": "New", "price": "1.25"}]}})
    assert response.status_code == 200, response.json()
    body = response.json()
    new = Item.objects.get(name="New")
    assert body["id_map"] == {"items": {"c-7": new.pk}}
    assert body["conflicts"] == []
    assert body["full"] is True
    assert {r["id"]: r["version"] for r in body["changes"]["items"]["records"]} == {existing.pk: 1, new.pk: 1}
    assert (new.version, new.price) == (1, pytest.approx(1.25))


def test_push_with_last_sync_answers_the_delta_including_its_own_changes(writer):
    kept, edited, doomed = (Item.objects.create(name=n, category="c") for n in ("kept", "edited", "doomed"))
    cursor = writer.get(ITEMS).json()["cursor"]
    response = push(
        writer,
        {"items": {"modified": [{"id": edited.pk, "name": "edited!"}], "deleted": [{"id": doomed.pk}]}},
        last_sync=cursor,
    )
    body = response.json()
    assert body["full"] is False
    records = {r["id"]: r for r in body["changes"]["items"]["records"]}
    assert list(records) == [edited.pk]
    assert (records[edited.pk]["name"], records[edited.pk]["category"], records[edited.pk]["version"]) == (
        "edited!",
        "c",
        2,
    )
    assert body["changes"]["items"]["deleted"] == [doomed.pk]
    assert not Item.objects.filter(pk=doomed.pk).exists()
    assert Item.objects.get(pk=kept.pk).version == 1


def test_modified_is_partial_and_last_write_wins_over_base_version(writer):
    item = Item.objects.create(name="a", category="x", price="2.00")
    Item.objects.filter(pk=item.pk).update(name="someone else")
    push(writer, {"items": {"modified": [{"id": item.pk, "base_version": 1, "category": "y"}]}})
    item.refresh_from_db()
    assert (item.name, item.category, str(item.price), item.version) == ("someone else", "y", "2.00", 3)


def test_rows_with_different_fields_update_in_one_push(writer):
    a, b, c = (Item.objects.create(name=n, category="old", price="1.00") for n in "abc")
    push(
        writer,
        {
            "items": {
                "modified": [
                    {"id": a.pk, "name": "A"},
                    {"id": b.pk, "category": "new", "price": "9.99"},
                    {"id": c.pk, "name": "C", "category": "new"},
                ]
            }
        },
    )
    rows = {
        pk: (n, cat, str(p), v)
        for pk, n, cat, p, v in Item.objects.values_list("pk", "name", "category", "price", "version")
    }
    assert rows == {
        a.pk: ("A", "old", "1.00", 2),
        b.pk: ("b", "new", "9.99", 2),
        c.pk: ("C", "new", "1.00", 2),
    }


def test_modifying_a_record_deleted_meanwhile_leaves_it_deleted(writer):
    item = Item.objects.create(name="a")
    cursor = writer.get(ITEMS).json()["cursor"]
    pk = item.pk
    item.delete()
    body = push(writer, {"items": {"modified": [{"id": pk, "name": "b"}]}}, last_sync=cursor).json()
    assert body["changes"]["items"]["deleted"] == [pk]
    assert not Item.objects.filter(pk=pk).exists()
    # A later client with a newer cursor is told too, though it may have missed the tombstone.
    body = push(writer, {"items": {"modified": [{"id": pk, "name": "c"}]}}, last_sync=body["cursor"]).json()
    assert body["changes"]["items"]["deleted"] == [pk]


def test_deleting_what_is_gone_is_a_no_op(writer):
    item = Item.objects.create(name="a")
    pk = item.pk
    item.delete()
    response = push(writer, {"items": {"deleted": [{"id": pk}]}})
    assert response.status_code == 200
    assert Tombstone.objects.count() == 1


def test_ids_that_never_existed_are_not_found_and_nothing_applies(writer):
    item = Item.objects.create(name="a")
    before = snapshot()
    response = push(
        writer,
        {
            "items": {
                "added": [{"local_id": "x", "name": "new"}],
                "modified": [{"id": item.pk, "name": "changed"}, {"id": 9999, "name": "ghost"}],
                "deleted": [{"id": 8888}],
            }
        },
    )
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": {"items": [8888, 9999]}}
    assert snapshot() == before


def test_another_users_record_is_not_found_like_a_missing_one(api, make_user):
    alice, bob = make_user("alice", perms="all"), make_user("bob", perms="all")
    bobs = Note.objects.create(owner=bob, text="private")
    bobs_deleted = Note.objects.create(owner=bob, text="gone")
    gone_pk = bobs_deleted.pk
    bobs_deleted.delete()
    client = api(alice)
    for changes in ({"modified": [{"id": bobs.pk, "text": "mine now"}]}, {"deleted": [{"id": gone_pk}]}):
        response = push(client, {"notes": changes}, url=NOTES)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    assert Note.objects.get(pk=bobs.pk).text == "private"


def test_owner_is_set_by_the_server_and_never_changed_by_a_client(api, make_user):
    alice, bob = make_user("alice", perms="all"), make_user("bob", perms="all")
    client = api(alice)
    body = push(client, {"notes": {"added": [{"local_id": "n", "text": "hi", "owner": bob.pk}]}}, url=NOTES).json()
    note = Note.objects.get(pk=body["id_map"]["notes"]["n"])
    assert note.owner == alice
    push(client, {"notes": {"modified": [{"id": note.pk, "owner": bob.pk, "text": "edited"}]}}, url=NOTES)
    note.refresh_from_db()
    assert (note.owner, note.text) == (alice, "edited")


def test_server_owned_fields_are_ignored(writer):
    item = Item.objects.create(name="a")
    body = push(
        writer,
        {
            "items": {
                "added": [{"local_id": "n", "name": "b", "id": 777, "version": 50, "modified_on": "2000-01-01"}],
                "modified": [{"id": item.pk, "version": 99, "name": "a2"}],
            }
        },
    ).json()
    new = Item.objects.get(name="b")
    assert (new.pk != 777, new.version) == (True, 1)
    assert body["id_map"]["items"]["n"] == new.pk
    assert Item.objects.get(pk=item.pk).version == 2


def test_strings_are_stored_exactly_as_sent(writer):
    push(writer, {"items": {"added": [{"local_id": "n", "name": "  padded  ", "category": "\tx\n"}]}})
    assert Item.objects.values_list("name", "category").get() == ("  padded  ", "\tx\n")


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        (
            {"items": {"added": [{"local_id": "a"}]}},
            {"changes": {"items": {"added": {"0": {"name": ["This field is required."]}}}}},
        ),
        (
            {"items": {"added": [{"local_id": "a", "name": "x", "colour": "red"}]}},
            {"changes": {"items": {"added": {"0": {"colour": ["Unknown field."]}}}}},
        ),
        ({"items": {"added": [{"local_id": "a", "name": "x\x00"}]}}, None),
        ({"items": {"added": [{"name": "x"}]}}, None),
        ({"items": {"added": [{"local_id": "", "name": "x"}]}}, None),
        ({"items": {"added": [{"local_id": "a" * 65, "name": "x"}]}}, None),
        ({"items": {"added": [{"local_id": "a", "name": "x"}, {"local_id": "a", "name": "y"}]}}, None),
        ({"items": {"added": [{"local_id": "a", "name": "x", "price": "abc"}]}}, None),
        ({"items": {"modified": [{"id": "abc", "name": "x"}]}}, None),
        ({"items": {"modified": [{"name": "x"}]}}, None),
        ({"items": {"modified": [{"id": 1, "base_version": 0}]}}, None),
        ({"items": {"deleted": [{"id": 1, "extra": True}]}}, None),
        ({"items": {"deleted": [{"id": True}]}}, None),
        ({"items": {"deleted": [1]}}, None),
        ({"items": {"added": {}}}, None),
        ({"items": {"removed": []}}, None),
        ({"items": []}, None),
        ({"widgets": {}}, {"changes": {"widgets": ["Unknown field."]}}),
        ([], None),
    ],
)
def test_bad_bodies_are_validation_errors_naming_the_place(writer, changes, detail):
    Item.objects.create(name="keep")
    before = snapshot()
    response = push(writer, changes)
    assert response.status_code == 400, response.json()
    assert response.json()["error"] == "validation_error"
    if detail is not None:
        assert response.json()["detail"] == detail
    assert snapshot() == before


@pytest.mark.parametrize(
    "body",
    [
        {"changes": {}},
        {"sync_id": "not-a-uuid", "changes": {}},
        {"sync_id": str(uuid.uuid4()), "last_sync": "bogus"},
        {"sync_id": str(uuid.uuid4()), "device_id": 5},
        {"sync_id": str(uuid.uuid4()), "surprise": 1},
    ],
)
def test_bad_envelopes_are_validation_errors(writer, body):
    response = writer.post(ITEMS, body, format="json")
    assert (response.status_code, response.json()["error"]) == (400, "validation_error")


def test_bad_json_is_a_validation_error(writer):
    response = writer.post(ITEMS, data="{not json", content_type="application/json")
    assert (response.status_code, response.json()["error"]) == (400, "validation_error")


def test_a_body_that_is_not_json_is_unsupported(writer):
    response = writer.post(ITEMS, data="sync_id=1", content_type="application/x-www-form-urlencoded")
    assert (response.status_code, response.json()["error"]) == (415, "unsupported_media_type")


def test_an_empty_push_just_pulls(writer):
    Item.objects.create(name="a")
    body = push(writer, {}).json()
    assert (body["full"], len(body["changes"]["items"]["records"]), body["id_map"]) == (True, 1, {"items": {}})


def test_retry_with_the_same_sync_id_applies_nothing_again(writer):
    sync_id = uuid.uuid4()
    changes = {"items": {"added": [{"local_id": "a", "name": "once"}]}}
    first = push(writer, changes, sync_id=sync_id).json()
    # The same JSON value with another key order is the same push.
    body = json.dumps({"changes": changes, "last_sync": None, "sync_id": str(sync_id)}, indent=2)
    again = writer.post(ITEMS, data=body, content_type="application/json").json()
    assert again["id_map"] == first["id_map"]
    assert Item.objects.filter(name="once").count() == 1


def test_a_sync_id_is_not_reused_for_another_body_or_endpoint(writer, api, make_user):
    sync_id = uuid.uuid4()
    push(writer, {"items": {"added": [{"local_id": "a", "name": "x"}]}}, sync_id=sync_id)
    before = snapshot()
    other_body = push(writer, {"items": {"added": [{"local_id": "a", "name": "y"}]}}, sync_id=sync_id)
    other_endpoint = push(writer, {}, url=NOTES, sync_id=sync_id)
    assert [r.status_code for r in (other_body, other_endpoint)] == [409, 409]
    assert other_body.json()["error"] == "sync_id_reused"
    assert snapshot() == before
    # sync_ids belong to their user: another user's equal sync_id is a push of its own.
    stranger = api(make_user("stranger", perms="all"))
    assert push(stranger, {"items": {"added": [{"local_id": "a", "name": "z"}]}}, sync_id=sync_id).status_code == 200


def test_a_push_that_fails_part_way_applies_nothing(writer):
    item = Item.objects.create(name="a")
    writer.raise_request_exception = False
    before = snapshot()
    with mock.patch("offline_sync.push.update_rows", side_effect=DatabaseError("disk full")):
        response = push(
            writer,
            {
                "items": {
                    "added": [{"local_id": "n", "name": "new"}],
                    "modified": [{"id": item.pk, "name": "b"}],
                }
            },
        )
    assert response.status_code == 500
    assert snapshot() == before


def test_permissions_follow_django_model_permissions(api, make_user):
    item = Item.objects.create(name="a")
    viewer = api(make_user("viewer", perms=("view_item",)))
    adder = api(make_user("adder", perms=("view_item", "add_item")))
    assert push(viewer, {}).status_code == 200
    assert push(viewer, {"items": {"added": [{"local_id": "a", "name": "x"}]}}).status_code == 403
    assert push(adder, {"items": {"added": [{"local_id": "a", "name": "x"}]}}).status_code == 200
    response = push(adder, {"items": {"modified": [{"id": item.pk, "name": "x"}]}})
    assert (response.status_code, response.json()["error"]) == (403, "permission_denied")
    assert push(adder, {"items": {"deleted": [{"id": item.pk}]}}).status_code == 403


@override_settings(OFFLINE_SYNC={"MAX_PUSH_RECORDS": 2})
def test_too_many_records_is_payload_too_large(writer):
    response = push(writer, {"items": {"added": [{"local_id": str(n), "name": "x"} for n in range(3)]}})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert response.json()["detail"]["max_records"] == 2
    assert Item.objects.count() == 0


@override_settings(OFFLINE_SYNC={"MAX_PUSH_BYTES": 200})
def test_a_body_over_the_byte_limit_is_payload_too_large(writer):
    response = push(writer, {"items": {"added": [{"local_id": "a", "name": "x" * 300}]}})
    assert (response.status_code, response.json()["detail"]["max_bytes"]) == (413, 200)
    assert Item.objects.count() == 0


@override_settings(OFFLINE_SYNC={"MAX_PUSH_BYTES": 200})
def test_a_declared_oversized_body_is_refused_before_reading(writer):
    with mock.patch("offline_sync.rest_framework.parsers.SyncJSONParser.parse") as parse:
        response = writer.generic("POST", ITEMS, "{}", content_type="application/json", CONTENT_LENGTH="5000")
    assert response.status_code == 413
    parse.assert_not_called()


def test_a_push_older_than_the_purge_horizon_is_refused(writer):
    item = Item.objects.create(name="a")
    cursor = writer.get(ITEMS).json()["cursor"]
    item.delete()
    Tombstone.objects.update(deleted_on=timezone.now() - timedelta(days=60))
    from django.core.management import call_command

    call_command("purge_tombstones")
    before = snapshot()
    response = push(writer, {"items": {"added": [{"local_id": "a", "name": "x"}]}}, last_sync=cursor)
    assert (response.status_code, response.json()["error"]) == (410, "cursor_expired")
    assert snapshot() == before


def test_unauthenticated_pushes_are_refused(client):
    response = client.post(ITEMS, {"sync_id": str(uuid.uuid4())}, content_type="application/json")
    assert (response.status_code, response.json()["error"]) == (401, "not_authenticated")


def test_the_number_of_queries_does_not_grow_with_the_push(writer, django_assert_max_num_queries):
    def run(n):
        Item.objects.bulk_create([Item(name=f"old{i}") for i in range(n)])
        targets = list(Item.objects.order_by("-pk").values_list("pk", flat=True)[:n])
        changes = {
            "items": {
                "added": [{"local_id": str(i), "name": f"new{i}"} for i in range(n)],
                "modified": [{"id": pk, "name": "m", **({"price": "1.00"} if pk % 2 else {})} for pk in targets],
            }
        }
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert push(writer, changes).status_code == 200
        return len(queries)

    small, large = run(10), run(1000)
    assert small == large, (small, large)


def test_deletes_add_only_djangos_delete_batches(writer):
    """Deletes go through Django's collector (cascades, SET_NULL, signals stay exact); it deletes
    100 rows per statement, so only those statements grow with the push."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def run(n):
        Item.objects.bulk_create([Item(name="x") for _ in range(n)])
        pks = list(Item.objects.values_list("pk", flat=True))
        with CaptureQueriesContext(connection) as queries:
            assert push(writer, {"items": {"deleted": [{"id": pk} for pk in pks]}}).status_code == 200
        assert Tombstone.objects.count() >= n
        return [q["sql"] for q in queries]

    run(1)  # warm Django's content type cache
    small, large = run(10), run(1000)
    deletes = [sql for sql in large if sql.startswith('DELETE FROM "testapp_item"')]
    assert len(deletes) == 10
    assert len(large) - len(deletes) == len(small) - 1


def test_foreign_keys_are_ids_and_must_point_at_something_the_caller_may_see(api, make_user):
    client = api(make_user("writer", perms="all"))
    item = Item.objects.create(name="parent")
    body = push(client, {"notes": {"added": [{"local_id": "n", "item": item.pk}]}}, url=NOTES).json()
    note = Note.objects.get(pk=body["id_map"]["notes"]["n"])
    assert note.item == item
    before = snapshot()
    response = push(
        client,
        {"notes": {"added": [{"local_id": "m", "item": 99999}], "modified": [{"id": note.pk, "item": 88888}]}},
        url=NOTES,
    )
    assert response.status_code == 404
    assert response.json()["detail"] == {"notes": [{"local_id": "m", "item": 99999}, {"id": note.pk, "item": 88888}]}
    assert snapshot() == before


@pytest.mark.parametrize("bad_id", [2**63, -(2**63) - 1, "12abc", 1.5])
def test_ids_the_column_cannot_hold_are_validation_errors(writer, bad_id):
    response = push(writer, {"items": {"deleted": [{"id": bad_id}]}})
    assert response.status_code == 400
    assert response.json()["detail"] == {"changes": {"items": {"deleted": {"0": {"id": ["Not a valid id."]}}}}}


@pytest.mark.parametrize(("field", "value"), [("name", 5), ("name", ["x"]), ("price", 1.5), ("category", True)])
def test_values_of_the_wrong_json_type_are_refused(writer, field, value):
    record = {"local_id": "a", "name": "x", field: value}
    response = push(writer, {"items": {"added": [record]}})
    assert response.status_code == 400
    assert response.json()["detail"] == {"changes": {"items": {"added": {"0": {field: ["Must be a string."]}}}}}


def test_records_that_leave_a_field_to_its_default_mix_with_ones_that_send_it(writer):
    added = [{"local_id": "a", "name": "a", "price": "2.50"}, {"local_id": "b", "name": "b"}]
    assert push(writer, {"items": {"added": added}}).status_code == 200
    assert sorted(str(p) for p in Item.objects.values_list("price", flat=True)) == ["0.00", "2.50"]


@pytest.mark.parametrize(
    ("extra", "changes", "where"),
    [
        (
            {},
            {"items": {"added": [{"local_id": "a\x00", "name": "x"}]}},
            ["changes", "items", "added", "0", "local_id"],
        ),
        ({"device_id": "ph\x00ne"}, {}, ["device_id"]),
        ({}, {"items": {"modified": [{"id": 1, "version": "\x00"}]}}, ["changes", "items", "modified", "0", "version"]),
    ],
)
def test_a_nul_anywhere_is_a_validation_error(writer, extra, changes, where):
    Item.objects.create(name="x")
    before = snapshot()
    response = push(writer, changes, **extra)
    detail = ["A NUL character cannot be stored."]
    for key in reversed(where):
        detail = {key: detail}
    assert (response.status_code, response.json()["detail"]) == (400, detail)
    assert snapshot() == before


def test_a_lone_surrogate_is_a_validation_error(writer):
    added = '[{"local_id": "a", "name": "x\\ud800"}]'
    body = f'{{"sync_id": "{uuid.uuid4()}", "changes": {{"items": {{"added": {added}}}}}}}'
    response = writer.post(ITEMS, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"] == {
        "changes": {"items": {"added": {"0": {"name": ["Not valid Unicode: a lone surrogate."]}}}}
    }
    paired = body.replace("x\\ud800", "x\\ud83d\\ude00")
    assert writer.post(ITEMS, data=paired, content_type="application/json").status_code == 200
    assert Item.objects.get().name == "x\U0001f600"


def test_a_modified_foreign_key_is_written(api, make_user):
    client = api(make_user("writer", perms="all"))
    first, second = Item.objects.create(name="first"), Item.objects.create(name="second")
    note = Note.objects.create(owner=client.user, item=first)
    assert push(client, {"notes": {"modified": [{"id": note.pk, "item": second.pk}]}}, url=NOTES).status_code == 200
    note.refresh_from_db()
    assert (note.item, note.version) == (second, 2)
