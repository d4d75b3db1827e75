"""docs/guide.md, "Adopting it on a table that already has rows", on a real migration of a fresh project.

A plain model's table gets rows, then the model becomes a ``SyncModel``: the migration gives the rows version 1
and stamp 0, a full pull lists them, a delta pull from an older cursor of the endpoint does not, until
``Model.objects.update()`` restamps them.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# It runs on SQLite files of its own, never the test database: the PostgreSQL passes leave it out.
pytestmark = pytest.mark.own_sqlite

SETTINGS = """
INSTALLED_APPS += ["rest_framework", "django_filters", "offline_sync", "inventory"]
"""
MODELS_BEFORE = """
from django.db import models

from offline_sync.models import SyncModel


class Note(SyncModel):
    text = models.CharField(max_length=100)


class Legacy(models.Model):
    name = models.CharField(max_length=100)
"""
VIEWS_BEFORE = """
from offline_sync.rest_framework.entities import SyncEntity
from offline_sync.rest_framework.views import ReadOnlySyncView

from .models import Note


class SharedView(ReadOnlySyncView):
    entities = [SyncEntity("notes", Note)]


class LegacyView(SharedView):
    pass
"""
VIEWS_AFTER = """
from offline_sync.rest_framework.entities import SyncEntity
from offline_sync.rest_framework.views import ReadOnlySyncView

from .models import Legacy, Note


class SharedView(ReadOnlySyncView):  # an endpoint devices already sync gains the adopted model
    entities = [SyncEntity("notes", Note), SyncEntity("legacy", Legacy)]


class LegacyView(ReadOnlySyncView):  # an endpoint of its own
    entities = [SyncEntity("legacy", Legacy)]
"""
URLS = """
from django.urls import path

from inventory import views

urlpatterns = [
    path("api/sync/shared/", views.SharedView.as_view()),
    path("api/sync/legacy/", views.LegacyView.as_view()),
]
"""
BEFORE = """
import json
from django.contrib.auth.models import User
from django.test import Client
from inventory.models import Legacy, Note

Legacy.objects.bulk_create(Legacy(name=n) for n in ("a", "b", "c"))
Note.objects.create(text="hello")
client = Client(HTTP_HOST="localhost")
client.force_login(User.objects.create_superuser("admin", password="x"))
print(json.dumps(client.get("/api/sync/shared/").json()))
"""
AFTER = """
import json, sys
from django.contrib.auth.models import User
from django.test import Client
from inventory.models import Legacy

cursor = sys.stdin.read().strip()
client = Client(HTTP_HOST="localhost")
client.force_login(User.objects.get(username="admin"))
out = {"rows": list(Legacy.objects.order_by("pk").values_list("pk", "name", "version", "sync_stamp"))}
out["full"] = client.get("/api/sync/legacy/").json()
out["delta_before"] = client.get("/api/sync/shared/", {"since": cursor}).json()
Legacy.objects.update()
out["delta_after"] = client.get("/api/sync/shared/", {"since": cursor}).json()
print(json.dumps(out))
"""


def test_adopting_syncmodel_on_a_table_with_rows(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "PYTHONPATH")}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")

    def run(*args, stdin=None):
        done = subprocess.run(args, cwd=tmp_path, env=env, input=stdin, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def write(path, text, mode="w"):
        with (tmp_path / path).open(mode) as f:
            f.write(text)

    run("django-admin", "startproject", "mysite", ".")
    run("python", "manage.py", "startapp", "inventory")
    write("mysite/settings.py", SETTINGS, "a")
    write("inventory/models.py", MODELS_BEFORE)
    write("inventory/views.py", VIEWS_BEFORE)
    write("mysite/urls.py", URLS)
    run("python", "manage.py", "makemigrations", "inventory")
    run("python", "manage.py", "migrate")
    cursor = json.loads(run("python", "manage.py", "shell", "-c", BEFORE).splitlines()[-1])["cursor"]

    write("inventory/models.py", MODELS_BEFORE.replace("class Legacy(models.Model)", "class Legacy(SyncModel)"))
    write("inventory/views.py", VIEWS_AFTER)
    run("python", "manage.py", "makemigrations", "inventory", "--noinput")  # no prompt: the fields have defaults
    run("python", "manage.py", "migrate")
    out = json.loads(run("python", "manage.py", "shell", "-c", AFTER, stdin=cursor).splitlines()[-1])

    assert [(name, version, stamp) for _, name, version, stamp in out["rows"]] == [
        ("a", 1, 0),
        ("b", 1, 0),
        ("c", 1, 0),
    ]
    ids = [pk for pk, *_ in out["rows"]]
    # A device new to the endpoint: its full pull lists every existing row, with its old primary key.
    assert out["full"]["full"] is True
    assert sorted(r["id"] for r in out["full"]["changes"]["legacy"]["records"]) == ids
    # A device with a cursor of the endpoint that gained the model: stamp 0 is below its cursor...
    assert out["delta_before"]["changes"]["legacy"]["records"] == []
    # ...until the rows are touched once.
    records = out["delta_after"]["changes"]["legacy"]["records"]
    assert sorted((r["id"], r["version"]) for r in records) == [(pk, 2) for pk in ids]
