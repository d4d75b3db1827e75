"""A model the project does not own, registered with offline_sync.registry.register()."""

import uuid

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save
from django.test.utils import isolate_apps

from offline_sync.models import SyncQuerySet, Tombstone
from offline_sync.options import options_for
from offline_sync.registry import (
    AlreadyRegistered,
    NotRegistered,
    get_registered_models,
    is_registered,
    register,
    unregister,
)
from tests.testapp.models import Item
from tests.thirdparty.models import Label

pytestmark = pytest.mark.django_db(transaction=True)


def fresh(obj):
    return Label.objects.get(pk=obj.pk)


def test_registration_is_visible_and_happens_once():
    assert is_registered(Label)
    assert is_registered(Item)
    assert {Label, Item} <= set(get_registered_models())
    with pytest.raises(AlreadyRegistered):
        register(Label)
    with pytest.raises(AlreadyRegistered):
        register(Item)


def test_save_create_and_update_keep_metadata():
    label = Label.objects.create(name="a")
    assert (label.version, fresh(label).version) == (1, 1)
    first_stamp = label.sync_stamp
    label.name = "b"
    label.save()
    assert (label.version, fresh(label).version, fresh(label).name) == (2, 2, "b")
    assert fresh(label).sync_stamp > first_stamp


def test_save_with_update_fields_and_stale_instances():
    label = Label.objects.create(name="a")
    first, second = fresh(label), fresh(label)
    first.name = "first"
    first.save(update_fields=["name"])
    second.name = "second"
    second.save()
    assert (first.version, second.version, fresh(label).version) == (2, 3, 3)


def test_bulk_paths_keep_metadata():
    labels = Label.objects.bulk_create([Label(name=str(n)) for n in range(3)])
    assert set(Label.objects.values_list("version", flat=True)) == {1}
    assert Label.objects.filter(pk__in=[lb.pk for lb in labels[:2]]).update(name="x") == 2
    for label in labels:
        label.name += "!"
    Label.objects.bulk_update(labels, ["name"])
    assert sorted(Label.objects.values_list("version", flat=True)) == [2, 3, 3]


def test_deletes_leave_tombstones_and_owner_changes_scope_exits(django_user_model):
    alice, bob = (django_user_model.objects.create_user(n) for n in ("alice", "bob"))
    label_ct = ContentType.objects.get_for_model(Label)
    single, bulk, moved = (Label.objects.create(name=n, owner=alice) for n in ("single", "bulk", "moved"))
    single_pk, bulk_pk = single.pk, bulk.pk
    single.delete()
    Label.objects.filter(pk=bulk_pk).delete()
    moved.owner = bob
    moved.save()
    tombs = Tombstone.objects.filter(content_type=label_ct)
    assert {t.object_pk for t in tombs} == {str(single_pk), str(bulk_pk), str(moved.pk)}
    assert {t.scope["owner_id"] for t in tombs} == {alice.pk}


def test_registered_models_sync_over_http(api, make_user):
    from django.contrib.auth.models import Permission

    user = make_user("alice", perms=())
    user.user_permissions.set(Permission.objects.filter(content_type=ContentType.objects.get_for_model(Label)))
    client = api(user)
    mine = Label.objects.create(name="mine", owner=user)
    Label.objects.create(name="someone else's")
    full = client.get("/sync/labels/").json()
    assert [(r["id"], r["name"], r["version"]) for r in full["changes"]["labels"]["records"]] == [(mine.pk, "mine", 1)]
    body = {
        "sync_id": str(uuid.uuid4()),
        "last_sync": full["cursor"],
        "changes": {
            "labels": {"added": [{"local_id": "n", "name": "new"}], "modified": [{"id": mine.pk, "name": "m"}]}
        },
    }
    pushed = client.post("/sync/labels/", body, format="json").json()
    new = Label.objects.get(pk=pushed["id_map"]["labels"]["n"])
    assert (new.owner, new.version, fresh(mine).version, fresh(mine).name) == (user, 1, 2, "m")
    assert {r["id"] for r in pushed["changes"]["labels"]["records"]} == {new.pk, mine.pk}


def test_an_unsynced_model_is_refused_by_sync_entity():
    from django.contrib.auth.models import Group

    from offline_sync.rest_framework.entities import SyncEntity

    with pytest.raises(ImproperlyConfigured, match="register"):
        SyncEntity("groups", Group)


@isolate_apps("tests.thirdparty")
def test_unregister_gives_the_model_back_as_it_was():
    class Sticker(models.Model):
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "thirdparty"

        def __str__(self):
            return self.name

    save, delete, queryset_class = Sticker.save, Sticker.delete, Sticker.objects._queryset_class
    register(Sticker, scope_fields=("name",))
    assert is_registered(Sticker)
    assert options_for(Sticker).scope_fields == ("name",)
    assert (Sticker.save.__wrapped__, Sticker.delete.__wrapped__) == (save, delete)
    assert issubclass(Sticker.objects._queryset_class, SyncQuerySet)
    assert all(signal.has_listeners(Sticker) for signal in (pre_save, post_save, post_delete))

    unregister(Sticker)
    assert not is_registered(Sticker)
    assert (Sticker.save, Sticker.delete) == (save, delete)
    assert Sticker.objects._queryset_class is Sticker._base_manager._queryset_class is queryset_class
    assert not any(signal.has_listeners(Sticker) for signal in (pre_save, post_save, post_delete))
    with pytest.raises(NotRegistered):
        unregister(Sticker)
    with pytest.raises(NotRegistered):
        unregister(Item)  # a SyncModel subclass is synced by its class, not by register()
