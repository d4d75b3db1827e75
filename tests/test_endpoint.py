"""The engine's entry point without HTTP: ``Endpoint.pull()`` and ``Endpoint.push()`` (no DRF involved)."""

import uuid

import pytest
from django.contrib.auth.models import User

from offline_sync.cursors import Position
from offline_sync.endpoints import Endpoint, PushRequest
from offline_sync.entities import Entity
from offline_sync.exceptions import UnresolvedConflicts
from offline_sync.models import Conflict
from tests.testapp.models import Item

pytestmark = pytest.mark.django_db(transaction=True)


def items(detect_conflicts=False):
    return Endpoint([Entity("items", Item.objects.all())], name="items", detect_conflicts=detect_conflicts)


def added(*names):
    return {"items": {"added": [(f"l-{name}", {"name": name}) for name in names]}}


def test_a_push_applies_once_and_a_retry_answers_the_same():
    user = User.objects.create_user("task")
    request = PushRequest(uuid.uuid4(), added("a", "b"))
    first = items().push(request, user=user)
    again = items().push(request, user=user)
    assert first["full"] is True
    assert set(first["id_map"]["items"]) == {"l-a", "l-b"}
    assert again["id_map"] == first["id_map"]
    assert sorted(Item.objects.values_list("name", flat=True)) == ["a", "b"]
    page = items().pull()
    assert {r["name"] for r in page.changes["items"]["records"]} == {"a", "b"}
    assert items().pull(since=Position.decode(page.cursor)).changes == {"items": {"records": [], "deleted": []}}


def test_conflicts_are_recorded_and_then_refuse_pushes_until_resolved():
    user = User.objects.create_user("task")
    item = Item.objects.create(name="server")
    item.save()  # version 2
    stale = {"items": {"modified": [(item.pk, 1, {"name": "mine"}, {"id": item.pk, "base_version": 1})]}}
    answer = items(detect_conflicts=True).push(PushRequest(uuid.uuid4(), stale), user=user)
    assert [c["kind"] for c in answer["conflicts"]] == ["modified"]
    assert Conflict.objects.get().endpoint == "items"
    with pytest.raises(UnresolvedConflicts):
        items(detect_conflicts=True).push(PushRequest(uuid.uuid4()), user=user)
    assert Item.objects.get(pk=item.pk).name == "server"
