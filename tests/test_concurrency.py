"""Concurrent writers beside a paging reader, on PostgreSQL: the reader loses nothing.

Writers hold their transactions open for a random while after writing, so
transactions commit out of the order in which they began (and got their ids).
A cursor of plain timestamps or sequence numbers loses records here.
"""

import random
import threading
import time
import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection, transaction
from rest_framework.test import APIClient

from tests.sync_client import Replica
from tests.testapp.models import Item

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITERS = 6
SECONDS = 4


def write_for(seconds, seed, stop_at):
    rng = random.Random(seed)
    try:
        while time.monotonic() < stop_at:
            with transaction.atomic():
                kind = rng.random()
                if kind < 0.6:
                    Item.objects.create(name=f"w{seed}", category="a")
                elif kind < 0.85:
                    Item.objects.filter(pk__in=Item.objects.order_by("?").values("pk")[:2]).update(name=f"u{seed}")
                else:
                    victim = Item.objects.order_by("?").first()
                    if victim:
                        victim.delete()
                time.sleep(rng.uniform(0, 0.05))  # commit late, after younger transactions
    finally:
        connection.close()


def test_paging_reader_misses_nothing_committed_by_concurrent_writers():
    user = User.objects.create_user("reader")
    user.user_permissions.add(Permission.objects.get(codename="view_item"))
    Item.objects.bulk_create([Item(name=f"seed{n}", category="a") for n in range(50)])
    client = APIClient()
    client.force_authenticate(user)
    replica = Replica(client, "/sync/items/")

    stop_at = time.monotonic() + SECONDS
    writers = [threading.Thread(target=write_for, args=(SECONDS, n, stop_at)) for n in range(WRITERS)]
    for thread in writers:
        thread.start()
    pages = 0
    while time.monotonic() < stop_at:
        replica.page(limit=7)
        pages += 1
    for thread in writers:
        thread.join()
    replica.sync(limit=7)

    expected = dict(Item.objects.values_list("pk", "version"))
    assert pages > 20
    assert len(expected) > 50
    assert {pk: record["version"] for pk, record in replica.data["items"].items()} == expected


def test_concurrent_retries_of_one_push_apply_it_once():
    from django.contrib.auth.models import Permission

    user = User.objects.create_user("pusher")
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_item", "add_item"]))
    body = {
        "sync_id": "6f1c2d9e-0b7a-4c55-9d1e-3f5a2b8c4d10",
        "last_sync": None,
        "changes": {"items": {"added": [{"local_id": f"c-{n}", "name": f"n{n}"} for n in range(200)]}},
    }
    answers, start = [], threading.Barrier(6)

    def send():
        client = APIClient()
        client.force_authenticate(user)
        start.wait()
        try:
            response = client.post("/sync/items-lww/", body, format="json")
            answers.append((response.status_code, response.json()["id_map"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [200] * 6
    assert all(id_map == answers[0][1] for _, id_map in answers)
    assert Item.objects.count() == 200


def test_racing_edits_of_one_version_apply_exactly_once():
    from django.contrib.auth.models import Permission

    from offline_sync.models import Conflict

    perms = Permission.objects.filter(codename__in=["view_item", "change_item"])
    users = []
    for n in range(8):
        user = User.objects.create_user(f"racer{n}")
        user.user_permissions.set(perms)
        users.append(user)
    item = Item.objects.create(name="contested")
    statuses, start = [], threading.Barrier(len(users))

    def edit(user):
        client = APIClient()
        client.force_authenticate(user)
        body = {
            "sync_id": str(uuid.uuid4()),
            "last_sync": None,
            "changes": {"items": {"modified": [{"id": item.pk, "base_version": 1, "name": user.username}]}},
        }
        start.wait()
        try:
            response = client.post("/sync/items-cd/", body, format="json")
            statuses.append((response.status_code, len(response.json()["conflicts"])))
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    item.refresh_from_db()
    assert sorted(statuses) == [(200, 0)] + [(200, 1)] * 7
    assert item.version == 2
    assert Conflict.objects.count() == 7
    assert set(Conflict.objects.values_list("user__username", flat=True)) == {u.username for u in users} - {item.name}
