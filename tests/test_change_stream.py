"""The change stream loses nothing (protocol section 3): one test per way it once did.

Each test builds the worst interleaving of writers and a reader on purpose (a
transaction held open on another connection, a purge run in the middle of a
pull), so it fails deterministically when the mechanism it guards breaks.
"""

import threading
import time
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core import checks
from django.db import connection, connections, models, transaction
from django.test import override_settings
from django.test.utils import isolate_apps
from django.utils import timezone

from offline_sync import tombstones
from offline_sync.models import SyncManager, SyncModel, Tombstone
from offline_sync.records import RecordFormat, default_fields
from tests.helpers import HeldTransaction, client_for, make_user, push, wait_until_blocked_on_a_lock
from tests.sync_client import Replica
from tests.testapp.models import Document, Item, Note, Tag
from tests.thirdparty.models import Label

pytestmark = pytest.mark.django_db(transaction=True)

# -- the watermark: a cursor never jumps over a transaction still running ------------------------


@pytest.mark.postgres
def test_a_push_answer_never_skips_a_transaction_still_running():
    client = client_for(make_user("writer"))
    slow = HeldTransaction(lambda: Item.objects.create(name="slow"))  # began first, commits last
    response = push(client, "/sync/items-lww/", {"items": {"added": [{"local_id": "a", "name": "fast"}]}})
    assert response.status_code == 200, response.json()
    body = response.json()
    # The push's own record is in its answer, although its cursor cannot cover it yet.
    assert [r["name"] for r in body["changes"]["items"]["records"]] == ["fast"]
    slow.release()
    replica = Replica(client, "/sync/items/")
    replica.cursor = body["cursor"]
    replica.sync()
    assert {r["name"] for r in replica.data["items"].values()} >= {"slow"}


@pytest.mark.postgres
def test_a_push_answer_pages_its_own_records_while_an_older_transaction_runs():
    client = client_for(make_user("writer"))
    item = Item.objects.create(name="seen")
    cursor = client.get("/sync/items/").json()["cursor"]
    slow = HeldTransaction(lambda: Item.objects.create(name="slow"))
    try:
        added = [{"local_id": f"l{n}", "name": f"new{n}"} for n in range(3)]
        changes = {"items": {"added": added, "modified": [{"id": item.pk, "name": "edited"}]}}
        body = push(client, "/sync/items-cd/?limit=2", changes, last_sync=cursor).json()
        names = [r["name"] for r in body["changes"]["items"]["records"]]
        while body["has_more"]:  # the rest of the push's own records, while "slow" still runs
            body = client.get("/sync/items/", {"since": body["cursor"], "limit": 2}).json()
            names += [r["name"] for r in body["changes"]["items"]["records"]]
        assert sorted(names) == ["edited", "new0", "new1", "new2"]
        # Conflict detection by last_sync: the edit this device just made counts as seen.
        edit = {"items": {"modified": [{"id": item.pk, "name": "edited again"}]}}
        assert push(client, "/sync/items-cd/", edit, last_sync=body["cursor"]).json()["conflicts"] == []
    finally:
        slow.release()
    replica = Replica(client, "/sync/items/")
    replica.cursor = body["cursor"]
    replica.sync()
    assert "slow" in {r["name"] for r in replica.data["items"].values()}


@pytest.mark.postgres
def test_two_devices_pushing_at_once_both_end_with_every_record():
    from offline_sync import idempotency

    a, b = client_for(make_user("a")), client_for(make_user("b"))
    a_applied, b_answered = threading.Event(), threading.Event()
    store = idempotency.Claim.store

    def store_then_wait(claim, outcome):  # device A's push stays open until B has its answer
        store(claim, outcome)
        if threading.current_thread().name == "device-a":
            a_applied.set()
            assert b_answered.wait(30)

    answers = {}

    def push_a():
        try:
            changes = {"items": {"added": [{"local_id": f"a{n}", "name": f"a{n}"} for n in range(50)]}}
            answers["a"] = push(a, "/sync/items-lww/", changes)
        finally:
            connection.close()

    with mock.patch.object(idempotency.Claim, "store", store_then_wait):
        thread = threading.Thread(target=push_a, name="device-a")
        thread.start()
        assert a_applied.wait(30)
        answers["b"] = push(b, "/sync/items-lww/", {"items": {"added": [{"local_id": "b", "name": "b"}]}})
        b_answered.set()
        thread.join(30)
    assert {answer.status_code for answer in answers.values()} == {200}
    for name, answer in answers.items():
        replica = Replica(a if name == "a" else b, "/sync/items/")
        replica.data["items"] = {r["id"]: r for r in answer.json()["changes"]["items"]["records"]}
        replica.cursor = answer.json()["cursor"]
        replica.sync()
        assert len(replica.ids("items")) == 51, name


# -- every write path takes its stamp in the transaction that writes ------------------------------


def _create():
    return Item.objects.create(name="a")


def _save():
    item = Item.objects.create(name="a")
    item.name = "b"
    item.save()
    return item


def _save_update_fields():
    item = Item.objects.create(name="a")
    item.name = "b"
    item.save(update_fields=["name"])
    return item


def _update():
    item = Item.objects.create(name="a")
    Item.objects.filter(pk=item.pk).update(name="b")
    return item


def _bulk_create():
    return Item.objects.bulk_create([Item(name="a")])[0]


def _bulk_update():
    item = Item.objects.create(name="a")
    item.name = "b"
    Item.objects.bulk_update([item], ["name"])
    return item


def _upsert():
    Tag.objects.create(code="x")
    Tag.objects.bulk_create(
        [Tag(code="x", name="new")], update_conflicts=True, unique_fields=["code"], update_fields=["name"]
    )
    return Tag.objects.get(code="x")


def _owner_move():
    note = Note.objects.create(owner=User.objects.create_user("alice"))
    Note.objects.filter(pk=note.pk).update(owner=User.objects.create_user("bob"))
    return note


def _set_null_cascade():
    item = Item.objects.create(name="a")
    note = Note.objects.create(owner=User.objects.create_user("alice"), item=item)
    item.delete()
    return note


def _delete():
    Item.objects.create(name="a").delete()
    return Tombstone.objects.get()


def _registered_save():
    label = Label.objects.create(name="a")
    label.name = "b"
    label.save()
    return label


def _registered_update():
    label = Label.objects.create(name="a")
    Label.objects.filter(pk=label.pk).update(name="b")
    return label


WRITE_PATHS = [
    _create,
    _save,
    _save_update_fields,
    _update,
    _bulk_create,
    _bulk_update,
    _upsert,
    _owner_move,
    _set_null_cascade,
    _delete,
    _registered_save,
    _registered_update,
]


@pytest.mark.postgres
@pytest.mark.parametrize("write", WRITE_PATHS, ids=lambda write: write.__name__[1:])
def test_an_autocommit_write_is_stamped_by_its_own_transaction(write):
    """A row's stamp is the id of the transaction that wrote it (PostgreSQL's ``xmin``).

    A stamp taken in a transaction of its own commits before the rows it
    stamps, so a pull in between hands out a cursor past them.
    """
    row = write()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT sync_stamp, xmin::text::bigint FROM {row._meta.db_table} WHERE id = %s",
            [row.pk],
        )
        stamp, xmin = cursor.fetchone()
    assert stamp % 2**32 == xmin


def test_stamps_are_never_taken_in_autocommit():
    from offline_sync.stamps import next_stamp

    with pytest.raises(transaction.TransactionManagementError, match=r"transaction\.atomic"):
        next_stamp(connection)


# -- purges: a pull or a retry that meets one ----------------------------------------------------


def _age_tombstones():
    Tombstone.objects.update(deleted_on=timezone.now() - timedelta(days=365))


def test_a_purge_that_commits_while_a_pull_runs_answers_410():
    from offline_sync import pull

    client = client_for(make_user("reader"))
    Item.objects.create(name="doomed")
    cursor = client.get("/sync/items/").json()["cursor"]
    Item.objects.all().delete()
    _age_tombstones()
    read_tombstones = pull._tombstones

    def purge_first(*args, **kwargs):  # the purge commits after the pull began, before it reads tombstones
        tombstones.purge()
        return read_tombstones(*args, **kwargs)

    with mock.patch.object(pull, "_tombstones", purge_first):
        response = client.get("/sync/items/", {"since": cursor})
    assert response.status_code == 410, response.json()


def test_a_retry_after_a_purge_answers_its_outcome_with_a_full_pull():
    client = client_for(make_user("writer"))
    Item.objects.create(name="doomed")
    cursor = client.get("/sync/items/").json()["cursor"]
    Item.objects.all().delete()
    _age_tombstones()
    sync_id = uuid.uuid4()
    changes = {"items": {"added": [{"local_id": "n", "name": "new"}]}}
    first = push(client, "/sync/items-lww/", changes, last_sync=cursor, sync_id=sync_id)
    assert first.status_code == 200, first.json()
    assert tombstones.purge().tombstones == 1  # the deletion under last_sync goes; the push's outcome stays
    retry = push(client, "/sync/items-lww/", changes, last_sync=cursor, sync_id=sync_id)
    assert retry.status_code == 200, retry.json()
    assert retry.json()["id_map"] == first.json()["id_map"]
    assert retry.json()["full"] is True
    assert Item.objects.filter(name="new").count() == 1


def test_a_paged_full_pull_goes_on_after_a_purge_of_older_deletions():
    client = client_for(make_user("reader"))
    Item.objects.bulk_create([Item(name="a"), Item(name="b")])
    Item.objects.filter(name="b").update(category="x")  # a newer stamp than a's
    Item.objects.create(name="doomed").delete()
    _age_tombstones()
    tombstones.purge()  # the horizon now lies above the records' stamps
    replica = Replica(client, "/sync/items/")
    assert replica.sync(limit=1) == 2
    assert {r["name"] for r in replica.data["items"].values()} == {"a", "b"}


def test_a_paged_full_pull_answers_410_when_a_deletion_it_needs_was_purged():
    client = client_for(make_user("reader"))
    first, _ = Item.objects.bulk_create([Item(name="a"), Item(name="b")])
    Item.objects.filter(name="b").update(category="x")
    page = client.get("/sync/items/", {"limit": 1}).json()
    assert [r["name"] for r in page["changes"]["items"]["records"]] == ["a"]
    Item.objects.filter(pk=first.pk).delete()  # after the page was read: the device needs this deletion
    _age_tombstones()
    tombstones.purge()
    assert client.get("/sync/items/", {"since": page["cursor"]}).status_code == 410


# -- scope exits ----------------------------------------------------------------------------------


def test_a_staff_device_keeps_a_record_that_changed_owner_across_a_page_break():
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    note = Note.objects.create(owner=alice)
    replica = Replica(client_for(make_user("staff")), "/sync/notes-all/")
    replica.sync()
    note.owner = bob
    note.save()  # the record and its scope-exit tombstone (for alice) share a stamp
    replica.sync(limit=1)
    assert replica.ids("notes") == {note.pk}


def test_a_record_moved_out_of_its_scope_and_back_in_one_transaction_stays():
    alice = make_user("alice")
    note = Note.objects.create(owner=alice)
    replica = Replica(client_for(alice), "/sync/notes/")
    replica.sync()
    with transaction.atomic():
        note.owner = User.objects.create_user("bob")
        note.save()
        note.owner = alice
        note.save()
    replica.sync(limit=1)
    assert replica.ids("notes") == {note.pk}


@pytest.mark.postgres
@pytest.mark.parametrize("second_move", ["update", "save"])
def test_the_second_of_two_concurrent_owner_changes_leaves_its_tombstone_under_the_middle_owner(second_move):
    alice, bob, carol = (User.objects.create_user(name) for name in ("alice", "bob", "carol"))
    note = Note.objects.create(owner=alice)
    stale = Note.objects.get(pk=note.pk)

    def to_bob():
        note.owner = bob
        note.save()

    first = HeldTransaction(to_bob)

    def to_carol():
        try:
            if second_move == "update":
                Note.objects.filter(pk=note.pk).update(owner=carol)
            else:
                stale.owner = carol
                stale.save()
        finally:
            connection.close()

    second = threading.Thread(target=to_carol)
    second.start()
    wait_until_blocked_on_a_lock()
    first.release()
    second.join(30)
    scopes = sorted(Tombstone.objects.filter(object_pk=str(note.pk)).values_list("scope__owner_id", flat=True))
    assert scopes == sorted([alice.pk, bob.pk])


# -- other write paths ----------------------------------------------------------------------------


def test_an_upsert_bumps_version_and_stamp_of_the_rows_it_updates():
    old = Tag.objects.create(code="a", name="old")
    tags = Tag.objects.bulk_create(
        [Tag(code="a", name="new"), Tag(code="b", name="fresh")],
        update_conflicts=True,
        unique_fields=["code"],
        update_fields=["name"],
    )
    rows = {
        code: (name, version, stamp)
        for code, name, version, stamp in Tag.objects.values_list("code", "name", "version", "sync_stamp")
    }
    assert rows["a"][:2] == ("new", 2)
    assert rows["a"][2] > old.sync_stamp
    assert rows["b"][:2] == ("fresh", 1)
    assert [tag.version for tag in tags] == [2, 1]


@pytest.mark.parametrize("model", [Item, Label])
def test_saving_a_new_instance_over_an_existing_row_continues_its_version(model):
    row = model.objects.create(name="a")
    row.save()
    model(pk=row.pk, name="b").save()
    assert model.objects.get(pk=row.pk).version == 3


@pytest.mark.parametrize("model", [Item, Label])
def test_saving_an_instance_whose_row_was_deleted_meanwhile_continues_its_version(model):
    row = model.objects.create(name="a")
    row.save()  # version 2
    stale = model.objects.get(pk=row.pk)
    model.objects.filter(pk=row.pk).delete()
    stale.name = "back"
    stale.save()  # Django inserts the row again, as for any model
    assert model.objects.get(pk=row.pk).version == 3


@pytest.mark.postgres
def test_a_parent_deleted_while_a_child_is_pushed_is_a_404():
    from offline_sync import integrity

    writer = make_user("writer")
    item = Item.objects.create(name="parent")
    deleter = threading.Thread(target=lambda: (Item.objects.filter(pk=item.pk).delete(), connection.close()))
    check_unique = integrity.unique_clashes

    def delete_parent_meanwhile(*args, **kwargs):  # after the push found the parent, before it writes
        deleter.start()
        deadline = time.monotonic() + 5
        while deleter.is_alive() and time.monotonic() < deadline:
            try:
                wait_until_blocked_on_a_lock(0.2)
                break
            except AssertionError:
                continue
        return check_unique(*args, **kwargs)

    changes = {"notes": {"added": [{"local_id": "n", "item": item.pk, "text": "child"}]}}
    with mock.patch.object(integrity, "unique_clashes", delete_parent_meanwhile):
        response = push(client_for(writer), "/sync/notes-lww/", changes)
    deleter.join(10)
    # The deletion goes through; the push answers as if it had come first: 404, naming child and parent.
    assert (response.status_code, response.json()["detail"]) == (404, {"notes": [{"local_id": "n", "item": item.pk}]})
    assert not Note.objects.exists()
    assert not Item.objects.exists()


# -- managers that hide rows ----------------------------------------------------------------------


def test_a_soft_deleted_record_leaves_the_devices_and_a_push_to_it_finds_it_gone():
    client = client_for(make_user("writer"))
    kept, hidden = Document.objects.create(title="kept"), Document.objects.create(title="hidden")
    replica = Replica(client, "/sync/documents/")
    replica.sync()
    Document.all_objects.filter(pk=hidden.pk).update(active=False)
    cursor = replica.cursor
    replica.sync()
    assert replica.ids("documents") == {kept.pk}
    response = push(
        client, "/sync/documents/", {"documents": {"modified": [{"id": hidden.pk, "title": "x"}]}}, last_sync=cursor
    )
    assert response.status_code == 200, response.json()
    assert response.json()["changes"]["documents"]["deleted"] == [hidden.pk]
    assert Document.all_objects.get(pk=hidden.pk).title == "hidden"


def test_a_record_that_get_visible_queryset_stops_showing_leaves_the_devices():
    kept, archived = Item.objects.create(name="kept"), Item.objects.create(name="archived")
    replica = Replica(client_for(make_user("reader")), "/sync/items-narrowed/")
    replica.sync()
    Item.objects.filter(pk=archived.pk).update(category="archived")
    replica.sync()
    assert replica.ids("items") == {kept.pk}


@isolate_apps("tests.thirdparty")
def test_a_base_manager_that_filters_rows_is_a_configuration_error():
    class Hiding(SyncManager):
        def get_queryset(self):
            return super().get_queryset().filter(flag=True)

    class Hidden(SyncModel):
        flag = models.BooleanField(default=True)
        objects = Hiding()

        class Meta(SyncModel.Meta):
            app_label = "thirdparty"

    from offline_sync.checks import check_model

    errors = check_model(Hidden)
    assert [error.id for error in errors] == ["offline_sync.E004"]
    assert isinstance(errors[0], checks.Error)


# -- a primary and a read replica -----------------------------------------------------------------

replicated = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, databases=["default", "replica"]),
    override_settings(DATABASE_ROUTERS=["tests.routers.PrimaryReplicaRouter"]),
]


def _apply(marks):
    def decorate(test):
        for mark in reversed(marks):
            test = mark(test)
        return test

    return decorate


@_apply(replicated)
def test_with_a_replica_a_push_answer_is_read_in_the_push_transaction():
    client = client_for(make_user("writer"))
    response = push(client, "/sync/items-lww/", {"items": {"added": [{"local_id": "a", "name": "mine"}]}})
    assert response.status_code == 200, response.json()
    assert [r["name"] for r in response.json()["changes"]["items"]["records"]] == ["mine"]


@_apply(replicated)
def test_with_a_replica_a_rolled_back_delete_leaves_no_tombstone():
    item = Item.objects.create(name="a")

    def delete_then_fail():
        with transaction.atomic():
            Item.objects.filter(pk=item.pk).delete()
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        delete_then_fail()
    assert not Tombstone.objects.using("default").exists()
    assert Item.objects.using("default").filter(pk=item.pk).exists()


# -- locks ----------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_resolving_a_conflict_does_not_lock_the_content_type_row():
    from django.contrib.contenttypes.models import ContentType

    from offline_sync import conflicts
    from offline_sync.models import Conflict

    client = client_for(make_user("writer"))
    item = Item.objects.create(name="a")
    item.save()
    stale_edit = {"id": item.pk, "base_version": 1, "name": "b"}
    response = push(client, "/sync/items-cd/", {"items": {"modified": [stale_edit]}})
    assert len(response.json()["conflicts"]) == 1
    conflict = Conflict.objects.get()
    inside, done = threading.Event(), threading.Event()
    current = conflicts.current_record

    def pause(*args, **kwargs):
        inside.set()
        assert done.wait(30)
        return current(*args, **kwargs)

    def resolve():
        try:
            conflicts.resolve(
                conflict.pk, "server", by=None, fmt=RecordFormat(Item, default_fields(Item)), using="default"
            )
        finally:
            connection.close()

    with mock.patch.object(conflicts, "current_record", pause):
        thread = threading.Thread(target=resolve)
        thread.start()
        assert inside.wait(30)
        try:
            # What a push's tombstone or conflict insert takes on the content type it references.
            with transaction.atomic(), connections["default"].cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM django_content_type WHERE id = %s FOR KEY SHARE NOWAIT",
                    [ContentType.objects.get_for_model(Item).pk],
                )
        finally:
            done.set()
            thread.join(30)
