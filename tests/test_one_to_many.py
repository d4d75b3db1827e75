"""Read/Write One-to-Many (protocol 4.3): parents and children in one push, local ids, private children."""

import sys
import types

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import path

from offline_sync.checks import check_endpoint_entities
from offline_sync.endpoints import Endpoint
from offline_sync.entities import Entity
from offline_sync.rest_framework.entities import SyncEntity
from offline_sync.rest_framework.views import LastWriteWinsSyncView
from tests.helpers import push
from tests.testapp.models import Folder, Item, Note, Step, Task

pytestmark = pytest.mark.django_db(transaction=True)  # each request commits, as in production (stamps differ)

URL = "/sync/folder-tasks/"


def offline_folder_with_tasks():
    return {
        "folders": {"added": [{"local_id": "f", "name": "Trip"}]},
        "tasks": {
            "added": [{"local_id": f"t{n}", "title": f"task {n}", "folder": {"local_id": "f"}} for n in range(3)]
        },
        "steps": {"added": [{"local_id": "s", "text": "pack", "task": {"local_id": "t0"}}]},
    }


def pull(client, cursor=None):
    answer = client.get(URL, {"since": cursor} if cursor else {})
    assert answer.status_code == 200, answer.json()
    return answer.json()


def test_a_parent_and_its_children_created_offline_arrive_linked_once(alice):
    sync_id = "0b0e7f0c-8c1a-4a5e-9d7c-5f1d2c3b4a59"
    first = push(alice, URL, offline_folder_with_tasks(), sync_id=sync_id)
    assert first.status_code == 200, first.json()
    id_map = first.json()["id_map"]
    folder = Folder.objects.get()
    assert id_map["folders"] == {"f": folder.pk}
    assert set(id_map["tasks"]) == {"t0", "t1", "t2"}
    assert {t.folder_id for t in Task.objects.all()} == {folder.pk}
    assert Step.objects.get().task_id == id_map["tasks"]["t0"]
    assert id_map["steps"] == {"s": Step.objects.get().pk}
    # The answer carries the new records with their server ids.
    records = first.json()["changes"]["tasks"]["records"]
    assert {r["folder"] for r in records} == {folder.pk}

    again = push(alice, URL, offline_folder_with_tasks(), sync_id=sync_id)
    assert again.status_code == 200
    assert again.json()["id_map"] == id_map
    assert (Folder.objects.count(), Task.objects.count(), Step.objects.count()) == (1, 3, 1)


def test_a_self_referencing_entity_takes_local_ids_in_dependency_order(alice):
    # Listed children first: the server still inserts each folder after its parent.
    changes = {
        "folders": {
            "added": [
                {"local_id": "c", "name": "grandchild", "parent": {"local_id": "b"}},
                {"local_id": "b", "name": "child", "parent": {"local_id": "a"}},
                {"local_id": "a", "name": "root"},
            ]
        }
    }
    answer = push(alice, URL, changes)
    assert answer.status_code == 200, answer.json()
    ids = answer.json()["id_map"]["folders"]
    parents = dict(Folder.objects.values_list("pk", "parent_id"))
    assert parents == {ids["a"]: None, ids["b"]: ids["a"], ids["c"]: ids["b"]}


def test_records_naming_each_other_in_a_cycle_are_refused(alice):
    changes = {
        "folders": {
            "added": [
                {"local_id": "a", "name": "a", "parent": {"local_id": "b"}},
                {"local_id": "b", "name": "b", "parent": {"local_id": "a"}},
            ]
        }
    }
    answer = push(alice, URL, changes)
    assert answer.status_code == 400
    assert "cycle" in str(answer.json()["detail"])
    assert not Folder.objects.exists()


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        (
            {"tasks": {"added": [{"local_id": "t", "title": "x", "folder": {"local_id": "nope"}}]}},
            {
                "tasks": {
                    "added": {"0": {"folder": ["No record with local_id 'nope' is added to 'folders' in this push."]}}
                }
            },
        ),
        (  # a local id of another entity is not a folder's
            {
                "folders": {"added": [{"local_id": "f", "name": "f"}]},
                "tasks": {"added": [{"local_id": "t", "title": "x", "folder": {"local_id": "t"}}]},
            },
            {
                "tasks": {
                    "added": {"0": {"folder": ["No record with local_id 't' is added to 'folders' in this push."]}}
                }
            },
        ),
        (
            {"tasks": {"added": [{"local_id": "t", "title": "x", "folder": {"local_id": 7}}]}},
            {
                "tasks": {
                    "added": {
                        "0": {
                            "folder": ['A record added in this push is named as {"local_id": "<1 to 64 characters>"}.']
                        }
                    }
                }
            },
        ),
    ],
)
def test_a_local_id_that_names_no_added_record_is_a_400_at_its_path(alice, changes, detail):
    answer = push(alice, URL, changes)
    assert answer.status_code == 400
    assert answer.json() == {"error": "validation_error", "detail": {"changes": detail}}
    assert not Folder.objects.exists()
    assert not Task.objects.exists()


def test_a_local_id_to_a_model_the_endpoint_does_not_carry_is_refused(alice):
    answer = push(alice, "/sync/notes-lww/", {"notes": {"added": [{"local_id": "n", "item": {"local_id": "i"}}]}})
    assert answer.status_code == 400
    assert answer.json()["detail"] == {
        "changes": {
            "notes": {
                "added": {
                    "0": {"item": ["A local_id can only stand for the id of a record of an entity of this endpoint."]}
                }
            }
        }
    }


def test_a_parent_that_does_not_exist_is_a_404_naming_child_and_parent(alice):
    gone = Folder.objects.create(name="gone").pk
    Folder.objects.filter(pk=gone).delete()
    answer = push(alice, URL, {"tasks": {"added": [{"local_id": "t", "title": "x", "folder": gone}]}})
    assert answer.status_code == 404
    assert answer.json()["detail"] == {"tasks": [{"local_id": "t", "folder": gone}]}
    assert not Task.objects.exists()


def test_a_child_moves_to_a_new_parent_while_its_old_parent_is_deleted(alice):
    created = push(alice, URL, offline_folder_with_tasks()).json()
    old, task = created["id_map"]["folders"]["f"], created["id_map"]["tasks"]["t1"]
    changes = {
        "folders": {"added": [{"local_id": "new", "name": "New"}], "deleted": [{"id": old}]},
        "tasks": {"modified": [{"id": task, "folder": {"local_id": "new"}}]},
    }
    answer = push(alice, URL, changes, last_sync=created["cursor"])
    assert answer.status_code == 200, answer.json()
    new = answer.json()["id_map"]["folders"]["new"]
    assert Task.objects.get(pk=task).folder_id == new  # survived the cascade of its old folder
    assert set(Task.objects.values_list("pk", flat=True)) == {task}
    deleted = answer.json()["changes"]["tasks"]["deleted"]
    assert task not in deleted
    assert len(deleted) == 2


def test_private_children_stay_with_their_owner(alice, bob):
    created = push(alice, URL, offline_folder_with_tasks()).json()
    task = created["id_map"]["tasks"]["t0"]
    assert set(Task.objects.values_list("owner__username", flat=True)) == {"alice"}

    seen = pull(bob)
    assert [f["name"] for f in seen["changes"]["folders"]["records"]] == ["Trip"]
    assert seen["changes"]["tasks"]["records"] == []
    assert seen["changes"]["steps"]["records"] == []
    for changes in (
        {"tasks": {"modified": [{"id": task, "title": "mine now"}]}},
        {"tasks": {"deleted": [{"id": task}]}},
    ):
        answer = push(bob, URL, changes)
        assert answer.status_code == 404
        assert answer.json()["detail"] == {"tasks": [task]}
    assert Task.objects.get(pk=task).title == "task 0"

    # An owner sent by a client is ignored: the pushing user owns what they add.
    stolen = push(
        bob,
        URL,
        {
            "tasks": {
                "added": [{"local_id": "x", "title": "x", "folder": created["id_map"]["folders"]["f"], "owner": 1}]
            }
        },
    )
    assert stolen.status_code == 200, stolen.json()
    assert Task.objects.get(pk=stolen.json()["id_map"]["tasks"]["x"]).owner.username == "bob"


def test_deleting_a_parent_removes_the_children_from_their_owners_devices_only(alice, bob):
    created = push(alice, URL, offline_folder_with_tasks()).json()
    bobs = push(bob, URL, {"folders": {"added": [{"local_id": "g", "name": "Bob's"}]}}).json()
    alice_cursor, bob_cursor = created["cursor"], bobs["cursor"]
    Folder.objects.get(pk=created["id_map"]["folders"]["f"]).delete()  # staff, in the admin say

    mine = pull(alice, alice_cursor)["changes"]
    assert sorted(mine["tasks"]["deleted"]) == sorted(created["id_map"]["tasks"].values())
    assert mine["steps"]["deleted"] == [created["id_map"]["steps"]["s"]]
    theirs = pull(bob, bob_cursor)["changes"]
    assert theirs["folders"]["deleted"] == [created["id_map"]["folders"]["f"]]
    assert theirs["tasks"]["deleted"] == []
    assert theirs["steps"]["deleted"] == []


def test_a_record_whose_owner_changes_leaves_the_old_owners_devices(alice, bob):
    created = push(alice, URL, offline_folder_with_tasks()).json()
    task = Task.objects.get(pk=created["id_map"]["tasks"]["t2"])
    task.owner = bob.user
    task.save()
    assert pull(alice, created["cursor"])["changes"]["tasks"]["deleted"] == [task.pk]
    assert [t["id"] for t in pull(bob)["changes"]["tasks"]["records"]] == [task.pk]


def test_set_null_children_come_back_modified(alice):
    answer = push(
        alice,
        "/sync/items-notes-lww/",
        {
            "items": {"added": [{"local_id": "i", "name": "i"}]},
            "notes": {"added": [{"local_id": "n", "item": {"local_id": "i"}}]},
        },
    ).json()
    item, note = answer["id_map"]["items"]["i"], answer["id_map"]["notes"]["n"]
    assert Note.objects.get(pk=note).item_id == item
    deleted = push(alice, "/sync/items-notes-lww/", {"items": {"deleted": [{"id": item}]}}, last_sync=answer["cursor"])
    changes = deleted.json()["changes"]
    assert changes["items"]["deleted"] == [item]
    assert [(r["id"], r["item"], r["version"]) for r in changes["notes"]["records"]] == [(note, None, 2)]


def test_conflict_detection_can_be_chosen_per_entity(alice):
    created = push(alice, "/sync/folder-tasks-cd/", offline_folder_with_tasks()).json()
    folder, task = created["id_map"]["folders"]["f"], created["id_map"]["tasks"]["t0"]
    Folder.objects.filter(pk=folder).update(name="staff")
    Task.objects.filter(pk=task).update(title="staff")
    stale = {
        "folders": {"modified": [{"id": folder, "base_version": 1, "name": "mine"}]},
        "tasks": {"modified": [{"id": task, "base_version": 1, "title": "mine"}]},
    }
    answer = push(alice, "/sync/folder-tasks-cd/", stale)
    assert answer.status_code == 200, answer.json()
    assert [(c["entity"], c["id"]) for c in answer.json()["conflicts"]] == [("tasks", task)]
    assert Folder.objects.get(pk=folder).name == "mine"  # last write wins
    assert Task.objects.get(pk=task).title == "staff"  # set aside


def test_a_conflict_on_a_child_moved_to_a_new_parent_resolves_to_the_new_id(alice):
    created = push(alice, "/sync/folder-tasks-cd/", offline_folder_with_tasks()).json()
    task = created["id_map"]["tasks"]["t0"]
    Task.objects.filter(pk=task).update(title="staff")
    moved = {
        "folders": {"added": [{"local_id": "new", "name": "New"}]},
        "tasks": {"modified": [{"id": task, "base_version": 1, "folder": {"local_id": "new"}}]},
    }
    answer = push(alice, "/sync/folder-tasks-cd/", moved).json()
    new = answer["id_map"]["folders"]["new"]
    (conflict,) = answer["conflicts"]
    assert conflict["client"]["folder"] == new
    resolved = alice.post(
        f"/sync/conflicts/{conflict['conflict_id']}/resolve/", {"resolution": "client"}, format="json"
    )
    assert resolved.status_code == 200, resolved.json()
    assert Task.objects.get(pk=task).folder_id == new


@pytest.mark.parametrize("children", [10, 1000])
def test_the_statements_of_a_push_do_not_grow_with_its_records(alice, children, django_assert_max_num_queries):
    def body(n):
        return {
            "folders": {"added": [{"local_id": "f", "name": "f"}]},
            "tasks": {"added": [{"local_id": f"t{i}", "title": "t", "folder": {"local_id": "f"}} for i in range(n)]},
            "steps": {"added": [{"local_id": f"s{i}", "text": "s", "task": {"local_id": f"t{i}"}} for i in range(n)]},
        }

    with CaptureQueriesContext(connection) as few:
        assert push(alice, URL, body(1)).status_code == 200
    with CaptureQueriesContext(connection) as many:
        assert push(alice, URL, body(children)).status_code == 200
    assert len(many) <= len(few) + 2  # SQLite's executemany may split very large batches
    assert Step.objects.count() == children + 1


def test_an_endpoint_that_lists_children_before_parents_is_refused_at_configuration():
    with pytest.raises(ImproperlyConfigured, match="'tasks' refers to 'folders'"):
        Endpoint([Entity("tasks", Task.objects.all()), Entity("folders", Folder.objects.all())], name="x")


def test_the_system_check_names_the_view_whose_entities_are_out_of_order():
    class ChildrenFirstView(LastWriteWinsSyncView):
        entities = [SyncEntity("steps", Step), SyncEntity("tasks", Task)]

    urls = types.ModuleType("tests._children_first_urls")
    urls.urlpatterns = [
        path("bad/", ChildrenFirstView.as_view()),
        path("items/", LastWriteWinsSyncView.as_view(entities=[SyncEntity("items", Item)])),
    ]
    sys.modules[urls.__name__] = urls
    try:
        with override_settings(ROOT_URLCONF=urls.__name__):
            errors = check_endpoint_entities()
    finally:
        del sys.modules[urls.__name__]
    assert [(e.id, e.obj) for e in errors] == [("offline_sync.E005", ChildrenFirstView)]
    assert "'steps' refers to 'tasks'" in errors[0].msg
