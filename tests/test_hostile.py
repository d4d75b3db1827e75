"""Hostile and mistaken requests: each gets its documented JSON answer and leaves the database as it was.

Protocol section 7: every error on a sync URL is ``{"error": ..., "detail": ...}`` and applies nothing,
whatever raised it. The snapshot compares every row of every table the app or a push can write.
"""

import base64
import io
import json
import uuid
from unittest import mock

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.db import OperationalError
from django.test import override_settings

from offline_sync.models import Conflict
from tests.helpers import client_for, make_user
from tests.testapp.models import Item, Note

pytestmark = pytest.mark.django_db(transaction=True)

ITEMS = "/sync/items-lww/"


def snapshot():
    """Every row of every table a sync request could write, as the database holds it."""
    tables = [m for m in apps.get_models() if m._meta.app_label in ("offline_sync", "testapp", "thirdparty")]
    return {m._meta.label: sorted(map(repr, m._base_manager.order_by("pk").values_list())) for m in tables}


@pytest.fixture
def alice():
    return client_for(make_user("alice"), token=True, enforce_csrf_checks=True)


def body(changes=None, **extra):
    return {"sync_id": str(uuid.uuid4()), "last_sync": None, "changes": changes or {}, **extra}


def raw(client, url, text, **extra):
    return client.generic("POST", url, text, content_type="application/json", **extra)


def forged(stamp=10**12, source=-1, key=None):
    """A cursor in the current format with a signature of our own making."""
    payload = base64.urlsafe_b64encode(json.dumps([stamp, source, key]).encode()).decode().rstrip("=")
    return f"2.{payload}:not-the-signature"


def unsigned(stamp, source=-1, key=None):
    return "1." + base64.urlsafe_b64encode(json.dumps([stamp, source, key]).encode()).decode().rstrip("=")


def nested(depth):
    return '{"a": ' * depth + "1" + "}" * depth


HOSTILE = {
    "forged cursor (pull)": ("GET", "/sync/items/", {"since": forged()}, 400, "validation_error"),
    "edited cursor (pull)": ("GET", "/sync/items/", {"since": "EDIT"}, 400, "validation_error"),
    "truncated cursor (pull)": ("GET", "/sync/items/", {"since": "TRUNCATE"}, 400, "validation_error"),
    "cursor with a NUL key": ("GET", "/sync/items/", {"since": forged(1, 0, "a\x00")}, 400, "validation_error"),
    "old unsigned cursor": ("GET", "/sync/items/", {"since": unsigned(1, 0, 5)}, 410, "cursor_expired"),
    "forged last_sync": ("POST", ITEMS, body(last_sync=forged()), 400, "validation_error"),
    "last_sync as an object": ("POST", ITEMS, body(last_sync={"a": {"b": 1}}), 400, "validation_error"),
    "empty last_sync": ("POST", ITEMS, body(last_sync=""), 400, "validation_error"),
    "deep JSON push": ("RAW", ITEMS, nested(1000), 400, "validation_error"),
    "deep JSON within the limit of the parser but not of the app": ("RAW", ITEMS, nested(200), 400, "validation_error"),
    "deep JSON resolution": ("RAW", "/sync/conflicts/1/resolve/", nested(1000), 400, "validation_error"),
    "duplicate JSON keys": ("RAW", ITEMS, '{"sync_id": "x", "sync_id": "y"}', 400, "validation_error"),
    "unknown sync URL": ("POST", "/sync/nowhere/", body(), 404, "not_found"),
    "missing trailing slash": ("POST", "/sync/items-lww", body(), 404, "not_found"),
    "the README's literal placeholder": ("POST", "/sync/conflicts/<conflict_id>/resolve/", {}, 404, "not_found"),
    "another user's conflict": ("POST", "/sync/conflicts/999999/resolve/", {"resolution": "server"}, 404, "not_found"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_hostile_request_gets_its_json_answer_and_changes_nothing(alice, case):
    method, url, data, status, error = HOSTILE[case]
    Item.objects.create(name="kept")
    cursor = alice.get("/sync/items/").json()["cursor"]
    if isinstance(data, dict) and data.get("since") == "EDIT":
        data = {"since": cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")}
    elif isinstance(data, dict) and data.get("since") == "TRUNCATE":
        data = {"since": cursor[:-5]}
    before = snapshot()
    if method == "GET":
        response = alice.get(url, data)
    elif method == "RAW":
        response = raw(alice, url, data)
    else:
        response = alice.post(url, data, format="json")
    assert response["Content-Type"] == "application/json", response.content[:200]
    assert (response.status_code, response.json()["error"]) == (status, error), response.json()
    assert "detail" in response.json()
    assert snapshot() == before


@pytest.mark.parametrize(("last_sync", "status"), [(forged(10**15), 400), (unsigned(10**15), 410)])
def test_a_made_up_future_cursor_cannot_skip_conflict_detection(alice, last_sync, status):
    item = Item.objects.create(name="a")
    item.save()  # version 2: a change this client never saw
    changes = {"items": {"modified": [{"id": item.pk, "name": "mine"}]}}  # no base_version: last_sync decides
    response = alice.post("/sync/items-cd/", body(changes, last_sync=last_sync), format="json")
    assert response.status_code == status, response.json()
    assert Item.objects.get(pk=item.pk).name == "a"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2_621_440)  # Django's default, which must not apply to pushes
def test_a_push_of_3_mb_goes_through(alice):
    added = [{"local_id": f"l{n}", "name": "x" * 200, "category": "y" * 90} for n in range(10_000)]
    text = json.dumps(body({"items": {"added": added}}))
    assert 3_000_000 < len(text) < 10 * 1024 * 1024
    response = raw(alice, ITEMS, text)
    assert response.status_code == 200, response.content[:300]
    assert Item.objects.count() == 10_000


def test_a_push_over_the_byte_limit_is_413_in_the_envelope(alice):
    text = json.dumps(body({"items": {"added": [{"local_id": "a", "name": "x" * (11 * 1024 * 1024)}]}}))
    before = snapshot()
    response = raw(alice, ITEMS, text)
    assert (response.status_code, response.json()["error"]) == (413, "payload_too_large")
    assert snapshot() == before


def test_a_chunked_push_without_content_length_is_read(alice):
    text = json.dumps(body({"items": {"added": [{"local_id": "a", "name": "chunked"}]}})).encode()
    response = alice.generic(
        "POST",
        ITEMS,
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(text)},
    )
    assert response.status_code == 200, response.content[:300]
    assert list(Item.objects.values_list("name", flat=True)) == ["chunked"]


@pytest.mark.parametrize("debug", [False, True])
def test_a_server_failure_is_a_json_5xx_and_applies_nothing(alice, debug):
    Item.objects.create(name="kept")
    before = snapshot()
    changes = {"items": {"added": [{"local_id": "a", "name": "new"}]}}
    with (
        override_settings(DEBUG=debug),
        mock.patch("offline_sync.push.modify_rows", side_effect=OperationalError("the database went away")),
    ):
        response = alice.post(ITEMS, body(changes), format="json")
    assert (response.status_code, response.json()["error"]) == (503, "server_error")
    assert response["Retry-After"]
    assert snapshot() == before
    with mock.patch("offline_sync.push.modify_rows", side_effect=ZeroDivisionError):
        response = alice.post(ITEMS, body(changes), format="json")
    assert (response.status_code, response.json()["error"]) == (500, "server_error")
    assert snapshot() == before


def test_a_retry_with_the_sync_id_in_capitals_is_the_same_push(alice):
    sync_id = uuid.uuid4()
    changes = {"items": {"added": [{"local_id": "a", "name": "once"}]}}
    first = alice.post(ITEMS, {"sync_id": str(sync_id), "changes": changes}, format="json")
    retry = alice.post(ITEMS, {"sync_id": str(sync_id).upper(), "changes": changes}, format="json")
    assert (first.status_code, retry.status_code) == (200, 200), retry.json()
    assert retry.json()["id_map"] == first.json()["id_map"]
    assert Item.objects.count() == 1


def test_another_users_private_records_are_404_and_change_nothing(alice):
    bob = make_user("bob")
    note = Note.objects.create(owner=bob, text="bob's")
    before = snapshot()
    for change in ({"modified": [{"id": note.pk, "text": "mine now"}]}, {"deleted": [{"id": note.pk}]}):
        response = alice.post("/sync/notes-lww/", body({"notes": change}), format="json")
        assert (response.status_code, response.json()["error"]) == (404, "not_found")
    assert snapshot() == before


def test_a_merge_into_a_record_that_moved_to_another_user_is_404(alice):
    me = User.objects.get(username="alice")
    bob = User.objects.create_user("bob")
    note = Note.objects.create(owner=me, text="v1")
    cursor = alice.get("/sync/notes-cd/").json()["cursor"]
    note.text = "v2"
    note.save()
    response = alice.post(
        "/sync/notes-cd/",
        body({"notes": {"modified": [{"id": note.pk, "text": "mine"}]}}, last_sync=cursor),
        format="json",
    )
    conflict = Conflict.objects.get(pk=response.json()["conflicts"][0]["conflict_id"])
    Note.objects.filter(pk=note.pk).update(owner=bob, text="bob's now")
    before = snapshot()
    for resolution in ({"resolution": "client"}, {"resolution": "merge", "record": {"text": "merged"}}):
        response = alice.post(f"/sync/conflicts/{conflict.pk}/resolve/", resolution, format="json")
        assert (response.status_code, response.json()["error"]) == (404, "not_found"), response.json()
    assert snapshot() == before
    response = alice.post(f"/sync/conflicts/{conflict.pk}/resolve/", {"resolution": "server"}, format="json")
    assert response.status_code == 200
    assert response.json()["record"] is None  # bob's record is not shown to alice
