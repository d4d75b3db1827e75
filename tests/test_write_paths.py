"""Every ORM write path keeps version, modified_on and the stamp right, and deletes leave tombstones."""

import pytest
from django.contrib.contenttypes.models import ContentType

from offline_sync.models import Tombstone
from tests.testapp.models import Item, Note

# transaction=True: on PostgreSQL one transaction has one stamp, and these tests
# need each write to be a transaction of its own, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def tombstoned(model):
    return set(
        Tombstone.objects.filter(content_type=ContentType.objects.get_for_model(model)).values_list(
            "object_pk", flat=True
        )
    )


def test_create_starts_at_version_1_with_a_stamp():
    item = Item.objects.create(name="a")
    assert (item.version, fresh(item).version) == (1, 1)
    assert item.sync_stamp > 0
    assert item.modified_on is not None


def test_save_bumps_version_stamp_and_modified_on():
    item = Item.objects.create(name="a")
    before = fresh(item)
    item.name = "b"
    item.save()
    after = fresh(item)
    assert (item.version, after.version, after.name) == (2, 2, "b")
    assert after.sync_stamp > before.sync_stamp
    assert after.modified_on > before.modified_on


def test_save_with_update_fields_still_bumps_metadata():
    item = Item.objects.create(name="a", category="x")
    item.name, item.category = "b", "y"
    item.save(update_fields=["name"])
    after = fresh(item)
    assert (after.version, after.name, after.category) == (2, "b", "x")


def test_save_with_empty_update_fields_is_a_no_op():
    item = Item.objects.create(name="a")
    item.save(update_fields=[])
    assert fresh(item).version == 1


def test_stale_instances_never_reuse_a_version():
    item = Item.objects.create(name="a")
    first, second = fresh(item), fresh(item)
    first.name = "first"
    first.save()
    second.name = "second"
    second.save()
    assert (first.version, second.version, fresh(item).version) == (2, 3, 3)


def test_queryset_update_bumps_every_row():
    a, b = Item.objects.create(name="a"), Item.objects.create(name="b")
    untouched = Item.objects.create(name="c")
    assert Item.objects.exclude(pk=untouched.pk).update(category="new") == 2
    for obj in (a, b):
        after = fresh(obj)
        assert (after.version, after.category) == (2, "new")
        assert after.sync_stamp > obj.sync_stamp
        assert after.modified_on > obj.modified_on
    assert fresh(untouched).version == 1


def test_bulk_create_sets_version_and_stamp():
    items = Item.objects.bulk_create([Item(name=f"i{n}") for n in range(3)])
    rows = list(Item.objects.values_list("version", "sync_stamp"))
    assert len(rows) == 3
    assert all(version == 1 and stamp > 0 for version, stamp in rows)
    assert all(item.version == 1 for item in items)


def test_bulk_update_bumps_versions_and_refreshes_instances():
    items = Item.objects.bulk_create([Item(name=f"i{n}") for n in range(3)])
    stamp = items[0].sync_stamp
    for item in items:
        item.name += "!"
    Item.objects.bulk_update(items, ["name"])
    assert all(item.version == 2 and item.sync_stamp > stamp for item in items)
    assert set(Item.objects.values_list("name", "version")) == {("i0!", 2), ("i1!", 2), ("i2!", 2)}


def test_instance_delete_leaves_a_tombstone():
    item = Item.objects.create(name="a")
    pk = item.pk
    item.delete()
    tomb = Tombstone.objects.get()
    assert (tomb.object_pk, tomb.content_type.model_class()) == (str(pk), Item)
    assert tomb.sync_stamp > 0


def test_queryset_delete_leaves_one_tombstone_per_row():
    items = Item.objects.bulk_create([Item(name=f"i{n}") for n in range(5)])
    Item.objects.filter(pk__in=[i.pk for i in items[:3]]).delete()
    assert tombstoned(Item) == {str(i.pk) for i in items[:3]}
    assert Tombstone.objects.count() == 3


def test_cascade_delete_leaves_tombstones_with_scope(django_user_model):
    owner = django_user_model.objects.create_user("owner")
    notes = [Note.objects.create(owner=owner, text=str(n)) for n in range(2)]
    owner_pk = owner.pk
    owner.delete()
    assert tombstoned(Note) == {str(n.pk) for n in notes}
    assert {t.scope["owner_id"] for t in Tombstone.objects.all()} == {owner_pk}


def test_cascade_set_null_is_synced(django_user_model):
    owner = django_user_model.objects.create_user("owner")
    item = Item.objects.create(name="a")
    note = Note.objects.create(owner=owner, item=item)
    item.delete()
    after = fresh(note)
    assert (after.item_id, after.version) == (None, 2)
    assert after.sync_stamp > note.sync_stamp


def test_changing_owner_tombstones_the_record_for_the_old_owner(django_user_model):
    alice, bob = (django_user_model.objects.create_user(name) for name in ("alice", "bob"))
    moved_by_save = Note.objects.create(owner=alice)
    moved_by_update = Note.objects.create(owner=alice)
    stays = Note.objects.create(owner=alice)
    moved_by_save.owner = bob
    moved_by_save.save()
    Note.objects.filter(pk=moved_by_update.pk).update(owner=bob)
    stays.text = "edited"
    stays.save()
    Note.objects.filter(pk=stays.pk).update(text="again")
    assert tombstoned(Note) == {str(moved_by_save.pk), str(moved_by_update.pk)}
    assert {t.scope["owner_id"] for t in Tombstone.objects.all()} == {alice.pk}


def test_bulk_update_of_owner_tombstones_for_old_owner(django_user_model):
    alice, bob = (django_user_model.objects.create_user(name) for name in ("alice", "bob"))
    notes = [Note.objects.create(owner=alice) for _ in range(2)]
    notes[0].owner = bob
    Note.objects.bulk_update(notes, ["owner"])
    assert tombstoned(Note) == {str(notes[0].pk)}


def test_bulk_rows_of_a_push_that_change_the_owner_tombstone_for_the_old_owner(django_user_model):
    from offline_sync.push import modify_rows

    alice, bob = (django_user_model.objects.create_user(name) for name in ("alice", "bob"))
    moved, stays = Note.objects.create(owner=alice), Note.objects.create(owner=alice)
    modify_rows(Note, [(moved.pk, {"owner_id": bob.pk}), (stays.pk, {"text": "edited"})], "default")
    assert tombstoned(Note) == {str(moved.pk)}
    assert Tombstone.objects.get().scope == {"owner_id": alice.pk}
    assert (fresh(moved).owner, fresh(moved).version, fresh(stays).version) == (bob, 2, 2)
