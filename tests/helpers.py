"""Helpers shared by the sync tests: users with every permission, API clients, pushes, held transactions."""

import threading
import time
import uuid

from django.contrib.auth.models import Permission, User
from django.db import connection, transaction
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

MODELS = ("item", "note", "document", "label", "folder", "task", "step")
EVERY_PERM = [f"{a}_{m}" for a in ("view", "add", "change", "delete") for m in MODELS]


def make_user(name, *, zoo=False):
    """A user with every model permission of the test apps (and of the zoo with ``zoo``)."""
    user = User.objects.create_user(name)
    perms = Permission.objects.filter(codename__in=EVERY_PERM)
    if zoo:
        perms = perms | Permission.objects.filter(content_type__app_label="zoo")
    user.user_permissions.set(perms)
    return user


def client_for(user, *, token=False, **kwargs):
    """An API client for ``user``: forced authentication, or a real token with ``token``."""
    client = APIClient(**kwargs)
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    else:
        client.force_authenticate(user)
    return client


def push(client, url, changes, *, last_sync=None, sync_id=None, params="", **extra):
    """POST a push of ``changes`` with a fresh ``sync_id``; ``extra`` adds body keys (``device_id``)."""
    body = {"sync_id": str(sync_id or uuid.uuid4()), "last_sync": last_sync, "changes": changes, **extra}
    return client.post(url + params, body, format="json")


class HeldTransaction:
    """Runs ``work`` in a transaction on another connection and keeps it open until ``release()``."""

    def __init__(self, work):
        self._ready, self._release, self.error = threading.Event(), threading.Event(), None
        self._thread = threading.Thread(target=self._run, args=(work,))
        self._thread.start()
        assert self._ready.wait(10), "the held transaction did not start"
        if self.error:
            raise self.error

    def _run(self, work):
        try:
            with transaction.atomic():
                work()
                self._ready.set()
                self._release.wait(30)
        except Exception as exc:  # surfaced by release()
            self.error = exc
            self._ready.set()
        finally:
            connection.close()

    def release(self):
        self._release.set()
        self._thread.join(30)
        if self.error:
            raise self.error


def wait_until_blocked_on_a_lock(seconds=10):
    """Wait until some other PostgreSQL backend waits for a row lock."""
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("no backend ever waited for the lock")
