"""Statements per request: devices poll, so a request's round trips are most of its cost.

Each count is the request's whole work through the view (token authentication included), so a change that
adds a round trip fails here, not silently in the benchmarks (scripts/bench reports the same counts).
"""

import json
import uuid

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.helpers import client_for
from tests.testapp.models import Item

pytestmark = pytest.mark.django_db


def statements(call):
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code == 200, response.content
    return [query["sql"] for query in captured.captured_queries]


@pytest.fixture
def device(make_user):
    client = client_for(make_user("poller", perms=("view_item", "change_item")), token=True)
    Item.objects.bulk_create(Item(name=f"item {i}", category="tools", price=i) for i in range(20))
    client.cursor = client.get("/sync/items/").json()["cursor"]
    client.get("/sync/items/", {"since": client.cursor})  # ContentType's cache holds Item's, as in a running server
    return client


def test_a_delta_pull_runs_five_statements(device):
    """Token, permissions, watermark, records, tombstones with the purge horizon."""
    sql = statements(lambda: device.get("/sync/items/", {"since": device.cursor}))
    assert len(sql) == 5, sql
    assert "purge_horizon" in sql[-1]
    assert "offline_sync_tombstone" in sql[-1]


def test_a_full_pull_page_runs_four_statements(device):
    """Token, permissions, watermark, records: a full pull reads no tombstone and no horizon."""
    assert len(statements(lambda: device.get("/sync/items/"))) == 4


def test_a_small_push_runs_its_statements_once(device):
    pks = list(Item.objects.values_list("pk", flat=True)[:10])
    body = {
        "sync_id": str(uuid.uuid4()),
        "last_sync": device.cursor,
        "changes": {"items": {"modified": [{"id": pk, "name": f"renamed {pk}"} for pk in pks]}},
    }
    sql = statements(lambda: device.post("/sync/items-lww/", json.dumps(body), content_type="application/json"))
    # Token; BEGIN (a savepoint under the test's transaction); the sync_id claim (no savepoint); permissions;
    # horizon; the rows' versions; the stamp; one UPDATE for the rows; the stored outcome; the answer
    # (watermark, records, tombstones + horizon); COMMIT.
    assert len(sql) == 13, sql
    assert "offline_sync_syncrequest" in sql[2]  # right after the transaction's start: no savepoint of its own
    assert sum("auth_permission" in s for s in sql) == 1


def test_permissions_are_read_in_one_statement_from_the_user_and_their_groups(make_user):
    Item.objects.create(name="x", category="tools", price=1)
    group = Group.objects.create(name="readers")
    group.permissions.add(Permission.objects.get(codename="view_item"))
    member = make_user("member", perms=())
    member.groups.add(group)
    outsider = make_user("outsider", perms=("view_note",))
    sql = statements(lambda: client_for(member, token=True).get("/sync/items/"))
    assert sum("auth_permission" in s for s in sql) == 1
    assert client_for(outsider, token=True).get("/sync/items/").status_code == 403
    boss = User.objects.create_superuser("boss")
    assert client_for(boss, token=True).get("/sync/items/").status_code == 200


def test_other_authentication_backends_are_asked_as_django_asks_them(make_user, settings):
    """A backend of its own (here a ModelBackend that reads permissions its own way) is not bypassed."""
    settings.AUTHENTICATION_BACKENDS = ["tests.test_statements.EveryoneViewsItems"]
    client = client_for(make_user("nobody", perms=()), token=True)
    assert client.get("/sync/items/").status_code == 200


class EveryoneViewsItems(ModelBackend):
    def _get_user_permissions(self, user_obj):
        return Permission.objects.filter(codename="view_item")


def test_a_page_after_a_position_reads_a_range_of_the_stamp_index(device):
    """``stamp > s OR (stamp = s AND id > k)`` alone makes PostgreSQL walk the index from its start."""
    cursor = device.get("/sync/items/", {"limit": 5}).json()["cursor"]
    sql = statements(lambda: device.get("/sync/items/", {"limit": 5, "since": cursor}))
    records = next(s for s in sql if "testapp_item" in s and "sync_stamp" in s)
    assert '"testapp_item"."sync_stamp" >= ' in records.split(" OR ")[0]
