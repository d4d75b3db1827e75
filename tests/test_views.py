"""The DRF layer as DRF users expect it: serializer context, perform_* hooks, the order of checks."""

import uuid

import pytest
from django.contrib.auth.models import User
from rest_framework import serializers
from rest_framework.test import APIRequestFactory, force_authenticate

from offline_sync.rest_framework.entities import SyncEntity
from offline_sync.rest_framework.serializers import SyncRecordSerializer
from offline_sync.rest_framework.views import LastWriteWinsSyncView, ReadOnlySyncView
from tests.helpers import make_user
from tests.testapp.models import Item

pytestmark = pytest.mark.django_db

factory = APIRequestFactory()


class NotYourNameSerializer(SyncRecordSerializer):
    """A per-user validator: it needs the request in its context."""

    class Meta:
        model = Item
        fields = ["name", "category", "price"]

    def validate_name(self, value):
        if value == self.context["request"].user.username:
            raise serializers.ValidationError("Not your own name.")
        return value


class ContextView(LastWriteWinsSyncView):
    entities = [SyncEntity("items", Item, serializer_class=NotYourNameSerializer)]


def call(view, method, user, body=None, **params):
    request = (
        getattr(factory, method)("/sync/view/", body, format="json") if body else factory.get("/sync/view/", params)
    )
    if user is not None:
        force_authenticate(request, user)
    return view.as_view()(request)


def body(*names):
    return {"sync_id": str(uuid.uuid4()), "changes": {"items": {"added": [{"local_id": n, "name": n} for n in names]}}}


def test_the_entity_serializer_sees_the_request_and_the_view():
    alice = make_user("alice")
    refused = call(ContextView, "post", alice, body("alice"))
    assert refused.status_code == 400, refused.data
    assert refused.data["detail"] == {"changes": {"items": {"added": {"0": {"name": ["Not your own name."]}}}}}
    assert not Item.objects.exists()
    assert call(ContextView, "post", alice, body("bob")).status_code == 200
    assert list(Item.objects.values_list("name", flat=True)) == ["bob"]


def test_perform_push_and_perform_pull_are_the_hooks():
    class AuditedView(LastWriteWinsSyncView):
        entities = [SyncEntity("items", Item)]
        seen = []

        def perform_push(self, push):
            self.seen.append(("push", push.sync_id, [a.local_id for a in push.changes["items"]["added"]]))
            return super().perform_push(push)

        def perform_pull(self, since):
            self.seen.append(("pull", since))
            return {**super().perform_pull(since), "audited": True}

    alice = make_user("alice")
    sent = body("a", "b")
    assert call(AuditedView, "post", alice, sent).status_code == 200
    pulled = call(AuditedView, "get", alice)
    assert pulled.data["audited"] is True
    assert [r["name"] for r in pulled.data["changes"]["items"]["records"]] == ["a", "b"]
    assert AuditedView.seen == [("push", uuid.UUID(sent["sync_id"]), ["a", "b"]), ("pull", None)]


@pytest.mark.parametrize(
    ("who", "request_body", "status"),
    [
        # Authentication first: a bad body from nobody is a 401.
        (None, {"changes": "nonsense"}, 401),
        # The body's shape before permission: a user without permissions sees the 400.
        ("nobody", {"changes": "nonsense"}, 400),
        ("nobody", "valid", 403),
    ],
)
def test_checks_run_in_the_protocol_order(who, request_body, status):
    user = None if who is None else User.objects.create_user(who)
    request_body = body("a") if request_body == "valid" else request_body
    assert call(ContextView, "post", user, request_body).status_code == status
    assert not Item.objects.exists()


def test_a_pull_validates_its_query_before_the_permission_check():
    nobody = User.objects.create_user("nobody")

    class View(ReadOnlySyncView):
        entities = [SyncEntity("items", Item)]

    assert call(View, "get", nobody, limit="x").status_code == 400
    assert call(View, "get", nobody).status_code == 403
    assert call(View, "get", make_user("alice")).status_code == 200
