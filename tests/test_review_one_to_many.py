"""Review of one-to-many pushes (issue 10): failing tests, one per bug found."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from offline_sync.endpoints import Endpoint, PushRequest
from offline_sync.entities import Entity
from offline_sync.exceptions import SyncError
from offline_sync.local_ids import LocalRef
from offline_sync.models import Conflict
from tests.helpers import client_for, make_user, push
from tests.testapp.models import Folder, Tag, Task
from tests.zoo.models import Zone

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/sync/folder-tasks/"


def test_a_foreign_key_with_to_field_takes_no_local_id(capsys):
    # Enclosure.zone is ForeignKey(Zone, to_field="code"): its value is a zone's code, which a
    # local id cannot stand for (id_map gives ids). Once, the new zone's pk was written into
    # zone_id. Now the push is refused at the field, nothing applied, and the schema does not
    # offer {"local_id"} there.
    from tests.test_schema import body, generate, resolve

    client = client_for(make_user("keeper", zoo=True))
    answer = push(
        client,
        "/sync/zoo/enclosures-lww/",
        {
            "zones": {"added": [{"local_id": "z", "code": "AB12", "name": "Z", "climate": "arid", "capacity": 3}]},
            "enclosures": {"added": [{"local_id": "e", "zone": {"local_id": "z"}, "name": "pen", "area_m2": "1.00"}]},
        },
    )
    assert answer.status_code == 400, answer.json()
    assert answer.json()["detail"] == {
        "changes": {
            "enclosures": {
                "added": {
                    "0": {"zone": ["A local_id can only stand for the id of a record of an entity of this endpoint."]}
                }
            }
        }
    }
    assert not Zone.objects.exists()
    schema = generate(capsys)
    push_body = body(schema, schema["paths"]["/sync/zoo/enclosures-lww/"]["post"]["requestBody"])
    enclosures = resolve(schema, resolve(schema, push_body["properties"]["changes"])["properties"]["enclosures"])
    zone = resolve(schema, enclosures["properties"]["added"]["items"])["properties"]["zone"]
    assert "oneOf" not in zone


def test_a_merge_record_with_a_local_id_is_a_400_not_a_500(alice):
    # The resolve body's `record` goes through the entity's serializer, whose ForeignKeyIdField
    # turns {"local_id": ...} into a LocalRef; integrity.check() skips LocalRefs and modify_rows()
    # hands it to the database: an unhandled TypeError, 500. A resolution adds nothing, so a
    # local id there must be a 400 validation_error at record.folder.
    created = push(
        alice,
        "/sync/folder-tasks-cd/",
        {
            "folders": {"added": [{"local_id": "f", "name": "F"}]},
            "tasks": {"added": [{"local_id": "t", "title": "t", "folder": {"local_id": "f"}}]},
        },
    ).json()
    task = created["id_map"]["tasks"]["t"]
    Task.objects.filter(pk=task).update(title="staff")
    stale = push(
        alice, "/sync/folder-tasks-cd/", {"tasks": {"modified": [{"id": task, "base_version": 1, "title": "me"}]}}
    )
    (conflict,) = stale.json()["conflicts"]
    alice.raise_request_exception = False
    answer = alice.post(
        f"/sync/conflicts/{conflict['conflict_id']}/resolve/",
        {"resolution": "merge", "record": {"folder": {"local_id": "f"}}},
        format="json",
    )
    assert answer.status_code == 400, answer.content
    assert answer.json()["error"] == "validation_error"
    assert Conflict.objects.get().status == Conflict.Status.PENDING


def test_a_unique_value_freed_by_a_deletion_is_reusable_when_the_push_also_moves_a_child_to_a_new_parent(alice):
    # apply_push: when any modification names a local id ("later"), every entity's additions run
    # *before* the deletions. integrity.unique_clashes() was told the deleted rows' values are
    # free (vacated=doomed), so the added tag with the deleted tag's code passes the check and
    # then hits the unique index: a generic 400 "breaks a database constraint" for a valid push
    # that applies fine without the unrelated task move (test_races covers that case).
    endpoint = Endpoint(
        [
            Entity("folders", Folder.objects.all()),
            Entity("tasks", Task.objects.all()),
            Entity("tags", Tag.objects.all()),
        ],
        name="review-tags",
    )
    folder = Folder.objects.create(name="old")
    task = Task.objects.create(folder=folder, owner=alice.user, title="t")
    tag = Tag.objects.create(code="x")
    changes = {
        "folders": {"added": [("new", {"name": "new"})]},
        "tasks": {
            "modified": [
                (task.pk, None, {"folder_id": LocalRef("new")}, {"id": task.pk, "folder": {"local_id": "new"}})
            ]
        },
        "tags": {"added": [("again", {"code": "x"})], "deleted": [(tag.pk, None, {"id": tag.pk})]},
    }
    try:
        answer = endpoint.push(PushRequest(uuid.uuid4(), changes), user=alice.user)
    except SyncError as exc:
        pytest.fail(f"refused: {exc.detail}")
    assert list(Tag.objects.values_list("pk", "code")) == [(answer["id_map"]["tags"]["again"], "x")]
    assert Task.objects.get(pk=task.pk).folder_id == answer["id_map"]["folders"]["new"]


def test_a_child_added_to_a_parent_the_same_push_deletes_is_refused_whatever_else_the_push_holds(alice):
    # Without a local id in `modified`, adding a task to folder F while deleting F is refused
    # (a generic 400 at commit, nothing applied). Add an unrelated move of another task to a new
    # folder and the additions run before the deletions: the push answers 200 with an id_map
    # entry for a task that the same push's cascade already deleted (the answer has no trace of
    # it). Expected: the same refusal (better: a 404/400 naming the task and the folder).
    doomed = Folder.objects.create(name="doomed")
    other = Task.objects.create(folder=doomed, owner=alice.user, title="moves away")
    answer = push(
        alice,
        URL,
        {
            "folders": {"added": [{"local_id": "n", "name": "new"}], "deleted": [{"id": doomed.pk}]},
            "tasks": {
                "added": [{"local_id": "x", "title": "into the doomed folder", "folder": doomed.pk}],
                "modified": [{"id": other.pk, "folder": {"local_id": "n"}}],
            },
        },
    )
    assert answer.status_code in (400, 404), answer.json()
    assert Folder.objects.filter(pk=doomed.pk).exists()  # nothing applied
    assert list(Task.objects.values_list("pk", "folder_id")) == [(other.pk, doomed.pk)]


def test_a_self_referencing_entity_costs_statements_per_level_not_per_record(alice):
    # _add_all() inserts a self-referencing entity level by level (local_ids.layers(), linear in
    # the records): a wide tree costs what a small one does; only the depth of the deepest chain
    # of records naming each other in one push adds statements (docs/protocol.md section 10).
    def tree(children):
        return {
            "folders": {
                "added": [
                    {"local_id": "root", "name": "root"},
                    *({"local_id": f"c{i}", "name": "x", "parent": {"local_id": "root"}} for i in range(children)),
                ]
            }
        }

    with CaptureQueriesContext(connection) as few:
        assert push(alice, URL, tree(2)).status_code == 200
    with CaptureQueriesContext(connection) as many:
        assert push(alice, URL, tree(1000)).status_code == 200
    assert len(many) <= len(few) + 2
    assert Folder.objects.count() == 2 + 1 + 1000 + 1


def test_a_resolution_validates_with_the_serializer_context_a_push_gets(alice):
    # The views now give each entity's serializer a context (request, view) so per-user
    # validators work in pushes; resolving a conflict validates the same record through
    # resolution.validate_values() -> validate_record() with no context at all: the same
    # serializer raises KeyError('request') there, a 500 on /sync/conflicts/<id>/resolve/.
    import sys
    import types

    from django.test.utils import override_settings
    from django.urls import include, path

    from offline_sync.rest_framework.entities import SyncEntity
    from offline_sync.rest_framework.views import ConflictDetectionSyncView
    from tests.test_views import NotYourNameSerializer
    from tests.testapp.models import Item

    class PerUserView(ConflictDetectionSyncView):
        entities = [SyncEntity("items", Item, serializer_class=NotYourNameSerializer)]

    urls = types.ModuleType("tests._review_per_user_urls")
    urls.urlpatterns = [
        path("sync/per-user/", PerUserView.as_view()),
        path("sync/conflicts/", include("offline_sync.rest_framework.urls")),
    ]
    sys.modules[urls.__name__] = urls
    try:
        with override_settings(ROOT_URLCONF=urls.__name__):
            item = Item.objects.create(name="server")
            item.save()  # version 2
            stale = push(
                alice, "/sync/per-user/", {"items": {"modified": [{"id": item.pk, "base_version": 1, "name": "mine"}]}}
            )
            assert stale.status_code == 200, stale.json()
            (conflict,) = stale.json()["conflicts"]
            alice.raise_request_exception = False
            answer = alice.post(
                f"/sync/conflicts/{conflict['conflict_id']}/resolve/",
                {"resolution": "merge", "record": {"name": "merged"}},
                format="json",
            )
    finally:
        del sys.modules[urls.__name__]
    assert answer.status_code == 200, answer.content
    assert Item.objects.get(pk=item.pk).name == "merged"
