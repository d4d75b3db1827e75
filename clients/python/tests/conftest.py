"""A live demo server for the client's tests, and the tools to break things.

The demo project runs in its own process (``manage.py runserver`` on a free
loopback port, a SQLite file of its own), started once per session by the
``server`` fixture. Nothing here imports Django: the server is driven through
its HTTP API and ``manage.py shell -c`` for what staff or cron would do.
Under ``CI=true`` as anywhere else, a server that cannot start fails the
tests; they never skip.
"""

import html
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from offline_sync_client import (
    CONFLICT_DETECTION,
    LAST_WRITE_WINS,
    READ_ONLY,
    Connection,
    Endpoint,
    Entity,
    LocalStore,
    SyncClient,
)

# The server to test against: this repository's (clients/python/tests/ -> ../../..), or another checkout.
ROOT = Path(os.environ.get("OFFLINE_SYNC_SERVER_ROOT") or Path(__file__).resolve().parents[3])
SERVER_PYTHON = os.environ.get("OFFLINE_SYNC_SERVER_PYTHON", sys.executable)
POOL = 150  # users with a token each, handed out one per test that needs a fresh user

PRODUCTS = Endpoint("products", "/api/sync/products/", READ_ONLY, [Entity("products")])
COMPANIES_LWW = Endpoint("companies-lww", "/api/sync/companies-lww/", LAST_WRITE_WINS, [Entity("companies")])
COMPANIES = Endpoint("companies", "/api/sync/companies/", CONFLICT_DETECTION, [Entity("companies")])
COMPANY_CONTACTS = Endpoint(
    "company-contacts",
    "/api/sync/company-contacts/",
    LAST_WRITE_WINS,
    [Entity("companies"), Entity("contacts", foreign_keys={"company": "companies"})],
)


MAKE_USERS = """
import json
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
codenames = ["view_product"] + [f"{a}_{m}" for a in ("view", "add", "change", "delete") for m in ("company", "contact")]
perms = list(Permission.objects.filter(content_type__app_label__in=["catalog", "crm"], codename__in=codenames))
tokens = {}
for i in range(%d):
    user = User.objects.create_user(f"dev{i:02}")
    user.user_permissions.set(perms)
    tokens[user.username] = Token.objects.create(user=user).key
print(json.dumps(tokens))
"""

# What staff or cron do to the server, as code for `manage.py shell -c`.
AGE_AND_PURGE_TOMBSTONES = """
from datetime import timedelta
from django.utils import timezone
from offline_sync import tombstones
from offline_sync.models import Tombstone
Tombstone.objects.update(deleted_on=timezone.now() - timedelta(days=365))
print(tombstones.purge().tombstones)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoServer:
    """The demo project in a subprocess; ``restart()`` kills it hard and starts it again on the same port."""

    def __init__(self, directory, pool=POOL, **settings):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}",
            "DJANGO_SETTINGS_MODULE": "demo_project.settings",
            "DEMO_SYNC_RATE": "100000/min",
            "DEMO_AUTH_RATE": "1000/min",
            **settings,
        }
        self.log_path = directory / "server.log"
        self.process = None
        self.manage("migrate", "--noinput", "-v0")
        self.manage("load_demo_data")
        self.tokens = json.loads(self.shell(MAKE_USERS % pool))
        self._free = sorted(self.tokens)
        self.start()

    def manage(self, *args):
        result = subprocess.run(
            [SERVER_PYTHON, str(ROOT / "manage.py"), *args], env=self.env, cwd=ROOT, capture_output=True, text=True
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def shell(self, code):
        return self.manage("shell", "--no-imports", "-c", code)

    def start(self):
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [SERVER_PYTHON, str(ROOT / "manage.py"), "runserver", "--noreload", f"127.0.0.1:{self.port}"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the demo server exited with {self.process.returncode}; see {self.log_path}")
            try:
                httpx.get(f"{self.base_url}/api/schema/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the demo server did not answer within 60 s; see {self.log_path}")

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)

    def restart(self):
        self.kill()
        self.start()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def user(self):
        """A user of its own for one test: ``(username, token)``."""
        if not self._free:
            raise RuntimeError(f"more than {len(self.tokens)} tests asked for a fresh user: raise POOL in conftest.py")
        name = self._free.pop(0)
        return name, self.tokens[name]

    # -- looking at the server as it is ---------------------------------------------------------------

    def request(self, token, method, path, body=None, **params):
        response = httpx.request(
            method,
            f"{self.base_url}{path}",
            params=params,
            json=body,
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        )
        return response.status_code, response.json()

    def state(self, token, endpoint):
        """The server's records of ``endpoint`` for this user, by a full pull: ``{entity: {id: record}}``."""
        state = {entity.name: {} for entity in endpoint.entities}
        status, page = self.request(token, "GET", endpoint.path, **endpoint.params)
        while True:
            assert status == 200, page
            for name, change in page["changes"].items():
                for record in change["records"]:
                    state[name][record["id"]] = record
                for gone in change["deleted"]:
                    state[name].pop(gone, None)
            if not page["has_more"]:
                return state
            status, page = self.request(token, "GET", endpoint.path, since=page["cursor"], **endpoint.params)

    def staff_resolve(self, conflict_id, resolution, admin_path="/admin/offline_sync/conflict/"):
        """Staff open the conflict's page in the admin and press "Keep server version" or "Apply client version".

        Returns the page's HTML (before the choice).
        """
        button = {"server": "Keep server version", "client": "Apply client version"}[resolution]
        with httpx.Client(base_url=self.base_url, timeout=30) as browser:
            login = browser.get("/admin/login/").text
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login).group(1)
            data = {"username": "admin", "password": "admin", "csrfmiddlewaretoken": csrf}
            assert browser.post("/admin/login/?next=/admin/", data=data).status_code == 302
            page = browser.get(f"{admin_path}{conflict_id}/change/")
            assert page.status_code == 200, page.text
            forms = re.findall(r'<form class="conflict-choice"[^>]*action="([^"]+)">(.*?)</form>', page.text, re.S)
            [(action, form)] = [(a, f) for a, f in forms if f'name="resolution" value="{resolution}"' in f]
            assert button in form
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
            version = re.search(r'name="version" value="(\d*)"', form).group(1)
            answer = browser.post(
                html.unescape(action), data={"csrfmiddlewaretoken": token, "resolution": resolution, "version": version}
            )
            assert answer.status_code == 302, answer.text
            done = browser.get(f"{admin_path}{conflict_id}/change/").text
            assert "Resolution" in done
        return page.text

    def push(self, token, endpoint, changes, last_sync=None):
        """A push from another device (raw), asserted to succeed; returns the answer."""
        body = {"sync_id": str(uuid.uuid4()), "last_sync": last_sync, "changes": changes}
        status, answer = self.request(token, "POST", endpoint.path, body)
        assert status == 200, answer
        return answer


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    demo = DemoServer(tmp_path_factory.mktemp("demo"))
    yield demo
    demo.stop()


class FaultTransport(httpx.BaseTransport):
    """An httpx transport that forwards to the real one, except for the faults planned with ``add()``.

    ``log`` lists every request seen, as ``(method, path, outcome)``; ``sent`` the POST bodies.
    """

    def __init__(self):
        self.inner = httpx.HTTPTransport()
        self.rules = []
        self.log = []
        self.sent = []  # the bodies of the POSTs that went out, as bytes

    def add(self, action, *, method=None, path=None, times=1):
        """Do ``action(request, inner)`` instead of forwarding, for the next ``times`` matching requests."""
        self.rules.append({"action": action, "method": method, "path": path, "left": times})

    def handle_request(self, request):
        if request.method == "POST":
            self.sent.append(request.read())
        for rule in self.rules:
            if rule["left"] and rule["method"] in (None, request.method) and rule["path"] in (None, request.url.path):
                rule["left"] -= 1
                self.log.append((request.method, request.url.path, rule["action"].__name__))
                return rule["action"](request, self.inner)
        response = self.inner.handle_request(request)
        self.log.append((request.method, request.url.path, response.status_code))
        return response

    def close(self):
        self.inner.close()


def drop_response(request, inner):
    """The server gets the request and answers; the answer is lost on the way back."""
    response = inner.handle_request(request)
    response.read()
    response.close()
    raise httpx.ReadError("connection reset after the server answered", request=request)


def refuse_connection(request, inner):
    raise httpx.ConnectError("connection refused", request=request)


def respond(status, body=None, headers=None):
    def respond(request, inner):
        return httpx.Response(status, json=body or {"error": "server_error"}, headers=headers, request=request)

    respond.__name__ = f"respond_{status}"
    return respond


def before(hook):
    """Run ``hook(request)`` (an edit made while the request is in flight, say), then forward."""

    def before(request, inner):
        hook(request)
        return inner.handle_request(request)

    return before


class Device:
    """A device: its own store file, a client with a fault transport, and the user's token."""

    def __init__(self, server, directory, endpoints, token, name="device", **options):
        self.server, self.path, self.endpoints, self.token, self.name = (
            server,
            directory / f"{name}.sqlite3",
            endpoints,
            token,
            name,
        )
        self.options = options
        self.transport = FaultTransport()
        self.open()

    def open(self):
        self.store = LocalStore(self.path, self.endpoints)
        connection = Connection(
            self.server.base_url, token=self.token, transport=self.transport, backoff=0, max_attempts=3
        )
        self.client = SyncClient(self.store, connection, device_id=self.name, **self.options)

    def restart(self):
        """The app restarts: the store is reopened from its file, everything in memory is new."""
        self.store.close()
        self.client.close()
        self.transport = FaultTransport()
        self.open()

    def sync(self, unit=None):
        return self.client.sync(unit)

    def rows(self, entity, **kwargs):
        return {r.id: r for r in self.store.records(entity, **kwargs)}


@pytest.fixture
def device(server, tmp_path):
    """``device(endpoints, token=None, name=...)``: a new device; a fresh user unless ``token`` is given."""
    made = []

    def make(endpoints, token=None, name="device", **options):
        if token is None:
            _, token = server.user()
        made.append(Device(server, tmp_path, endpoints, token, name, **options))
        return made[-1]

    yield make
    for d in made:
        d.store.close()
        d.client.close()


def assert_in_step(device, endpoint, server):
    """The device holds exactly the server's subset, at the server's versions, with nothing left to push."""
    state = server.state(device.token, endpoint)
    for entity in endpoint.entities:
        local = device.store.records(entity.name, include_deleted=True)
        assert all(r.is_from_server and not r.is_modified and r.is_active for r in local), local
        assert {r.id: (r.version, r.data) for r in local} == {
            i: (rec["version"], {k: v for k, v in rec.items() if k not in ("id", "version", "modified_on")})
            for i, rec in state[entity.name].items()
        }
    assert device.store.pending_push(endpoint.name) is None
