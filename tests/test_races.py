"""Races and inputs found by an adversarial review of the change stream work; each failed before its fix.

Every test names what PROTOCOL.md or docs/architecture.md promises and builds the
input or interleaving that once broke it.
"""

import threading

import pytest
from django.db import connection, transaction
from django.db.models import Q

from offline_sync.models import Tombstone
from tests.helpers import HeldTransaction, client_for, make_user, push, wait_until_blocked_on_a_lock
from tests.sync_client import Replica
from tests.testapp.models import Item, Note
from tests.zoo.models import Animal, Species, Zone, team_of

pytestmark = pytest.mark.django_db(transaction=True)

# -- deletions leave their tombstone under the row's scope at deletion --------------------------------


def test_deleting_a_stale_instance_after_an_owner_move_reaches_the_new_owner():
    # Invariant 3: "A deleted row ... leaves a tombstone under its old scope values" -- the
    # values the row has when it is deleted. Bob's device received the note after it moved to
    # him; an instance loaded before the move (a script, an admin action running in another
    # process) then deletes it. The tombstone is written from the stale instance (owner alice),
    # so bob's device never learns of the deletion and keeps a record that no longer exists.
    alice, bob = make_user("alice"), make_user("bob")
    note = Note.objects.create(owner=alice, text="x")
    stale = Note.objects.get(pk=note.pk)
    Note.objects.filter(pk=note.pk).update(owner=bob)
    bobs = Replica(client_for(bob), "/sync/notes/")
    bobs.sync()
    assert bobs.ids("notes") == {note.pk}
    stale.delete()
    assert not Note.objects.filter(pk=note.pk).exists()
    bobs.sync()
    assert bobs.ids("notes") == set(), "bob's device keeps a note that was deleted"


@pytest.mark.postgres
def test_a_queryset_delete_racing_an_owner_move_reaches_the_new_owner():
    # Same invariant, the QuerySet.delete() path (what a push's "deleted" and admin actions use).
    # Worst order: a move alice -> bob holds its row lock; a delete reads the row's scope
    # without a lock (alice), writes its tombstone, then blocks on the row; the move commits and
    # bob's device pulls the note; the delete goes on and deletes bob's row, with the tombstone
    # under alice. scope_exits locks rows before reading their scope; deletions do not.
    alice, bob = make_user("alice"), make_user("bob")
    note = Note.objects.create(owner=alice, text="x")
    move = HeldTransaction(lambda: Note.objects.filter(pk=note.pk).update(owner=bob))
    deleted, release_delete, errors = threading.Event(), threading.Event(), []

    def delete():
        try:
            with transaction.atomic():
                Note.objects.filter(pk=note.pk).delete()
                deleted.set()
                release_delete.wait(30)
        except Exception as exc:
            errors.append(exc)
            deleted.set()
        finally:
            connection.close()

    thread = threading.Thread(target=delete)
    thread.start()
    try:
        wait_until_blocked_on_a_lock()
        move.release()
        assert deleted.wait(30)
        bobs = Replica(client_for(bob), "/sync/notes/")
        bobs.sync()  # the move is committed; the delete still runs
    finally:
        release_delete.set()
        thread.join(30)
    assert not errors, errors
    assert not Note.objects.filter(pk=note.pk).exists()
    bobs.sync()
    assert bobs.ids("notes") == set(), "bob's device keeps a note that was deleted"


# -- every ORM write path works --------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    "narrow",
    [
        lambda qs: qs.filter(Q(item__name="lamp") | Q(text="move me")),  # a LEFT OUTER JOIN
        lambda qs: qs.filter(text="move me").distinct(),
    ],
    ids=["outer-join", "distinct"],
)
def test_an_owner_change_through_queryset_update_works_on_any_queryset(narrow):
    # Protocol 2: "Every change made through the ORM is synced: ... QuerySet.update()". Before the
    # change these updates worked; now scope_exits() locks the queryset's rows with
    # SELECT ... FOR UPDATE, which PostgreSQL refuses on the nullable side of an outer join and
    # with DISTINCT: a plain ORM update raises instead of moving the record.
    alice, bob = make_user("alice"), make_user("bob")
    note = Note.objects.create(owner=alice, text="move me")
    assert narrow(Note.objects.all()).update(owner=bob) == 1
    assert Note.objects.get(pk=note.pk).owner == bob


# -- a push answer carries the push's own changes --------------------------------------------------


# -- saves keep versions and scope exits -----------------------------------------------------------


def test_a_forced_update_of_a_new_instance_with_a_pk_default_continues_the_version_and_leaves_a_trace():
    # models.py: "a new instance saved over an existing row ... continues that row's version";
    # protocol 2: version +1 on every change; invariant 3: a row that left a scope leaves a
    # tombstone under its old scope. current_version() assumes Django inserts whenever the
    # instance is new and its pk has a default, but save(force_update=True) makes Django UPDATE.
    # The version goes back to 1 and the team change leaves no tombstone.
    alice, bob = make_user("alice", zoo=True), make_user("bob", zoo=True)
    species = Species.objects.create(latin_name="Panthera leo")
    animal = Animal.objects.create(team=team_of(alice), species=species, name="Leo")
    animal.save()
    animal.save()  # version 3
    Animal(id=animal.id, team=team_of(bob), species=species, name="Leo").save(force_update=True)
    row = Animal.objects.get(pk=animal.pk)
    assert row.team == team_of(bob)
    assert row.version == 4, "the version went back"
    assert Tombstone.objects.filter(object_pk=str(animal.pk), scope__team=str(team_of(alice))).exists()


# -- unique values inside one push -----------------------------------------------------------------


def _zone(code):
    return Zone.objects.create(code=code, name=code, climate="arid", capacity=5)


# -- a purge racing a push -------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_purge_that_commits_while_a_push_resolves_its_targets_answers_410_not_404():
    # Protocol 7: checks run in order, "last_sync expiry" before "records out of scope or gone";
    # 4.1: a modified record another client deleted "stays deleted: it comes back in deleted".
    # The push checks the horizon before applying; a purge that commits right after (taking the
    # tombstone of the record the device modifies) makes _resolve() find neither the row nor
    # its tombstone, and the push answers 404 not_found for a record the device legitimately
    # held, before the answer's pull could see the raised horizon and answer 410.
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone

    from offline_sync import push as push_engine
    from offline_sync import tombstones

    alice = make_user("alice")
    client = client_for(alice)
    note = Note.objects.create(owner=alice, text="x")
    cursor = client.get("/sync/notes/").json()["cursor"]
    Note.objects.filter(pk=note.pk).delete()
    Tombstone.objects.update(deleted_on=timezone.now() - timedelta(days=365))
    resolve = push_engine._resolve

    def purge_meanwhile(*args, **kwargs):
        def run():
            try:
                tombstones.purge()
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(30)
        return resolve(*args, **kwargs)

    with mock.patch.object(push_engine, "_resolve", purge_meanwhile):
        response = push(
            client, "/sync/notes-lww/", {"notes": {"modified": [{"id": note.pk, "text": "y"}]}}, last_sync=cursor
        )
    assert not Tombstone.objects.exists()  # the purge did commit
    assert response.status_code == 410, response.json()


def test_a_push_that_renames_a_unique_value_and_reuses_it_is_applied():
    # The push is valid: after it, every code is unique. When pushes inserted added rows before
    # updating modified ones, the INSERT hit the old value and every retry was refused with a 400.
    client = client_for(make_user("keeper", zoo=True))
    zone = _zone("AB01")
    changes = {
        "zones": {
            "modified": [{"id": zone.pk, "code": "AB02"}],
            "added": [{"local_id": "n", "name": "new", "code": "AB01", "climate": "arid", "capacity": 3}],
        }
    }
    response = push(client, "/sync/zoo/zones-lww/", changes)
    assert response.status_code == 200, response.json()
    assert set(Zone.objects.values_list("code", flat=True)) == {"AB01", "AB02"}


def test_a_push_that_deletes_a_record_and_adds_one_with_its_unique_value_is_applied():
    # A device deletes a zone and creates a new one with its code (offline, one sync run). The
    # final state is valid; when deletions ran last, the doomed row still held the code and the
    # push was refused with a 400 it could never get past.
    client = client_for(make_user("keeper", zoo=True))
    zone = _zone("AB01")
    changes = {
        "zones": {
            "deleted": [{"id": zone.pk}],
            "added": [{"local_id": "n", "name": "new", "code": "AB01", "climate": "arid", "capacity": 3}],
        }
    }
    response = push(client, "/sync/zoo/zones-lww/", changes)
    assert response.status_code == 200, response.json()
    assert list(Zone.objects.values_list("code", flat=True)) == ["AB01"]


@pytest.mark.postgres
def test_a_push_answer_that_says_no_more_carries_the_pushed_records():
    # Protocol 4: "changes: ... the whole subset when last_sync was null (full: true) ... which
    # includes the client's own applied changes with their new versions. It may be paged
    # (has_more)". While another transaction is open, the push's own rows are above the
    # watermark. They were once added only when they fit, and dropped otherwise with has_more
    # false: the device took the full page as its whole subset, without its two new records.
    client = client_for(make_user("writer"))
    slow = HeldTransaction(lambda: Item.objects.create(name="slow"))
    try:
        changes = {"items": {"added": [{"local_id": "a", "name": "a"}, {"local_id": "b", "name": "b"}]}}
        response = push(client, "/sync/items-lww/", changes, params="?limit=1")
    finally:
        slow.release()
    assert response.status_code == 200, response.json()
    body = response.json()
    pushed = set(body["id_map"]["items"].values())
    sent = {r["id"] for r in body["changes"]["items"]["records"]}
    assert body["has_more"] or pushed <= sent, body
