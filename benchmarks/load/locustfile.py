"""Simulated devices against the demo server: each locust user is one device of the Python client.

Run by scripts/load (which starts the server, creates the device users and writes their tokens). Each
device keeps a local SQLite store (``offline_sync_client.LocalStore``) of the read-only products (some
with a category filter) and of one writable endpoint: companies by last write wins, companies with
conflict detection, or companies with their contacts (one-to-many). Its tasks:

- pull: a sync with nothing to push, so delta pulls of each endpoint;
- edit: change a company's phone (most often one of the few everyone edits, so devices collide),
  add a company, or add a contact (with a new company in the same push now and then), delete one
  of its own companies (not on the contacts devices); then sync, a small push;
- a push's answer is lost on the way now and then (``LOAD_DROP_RATE``): the server applied it, the
  client sees a network error and sends the same body with the same sync_id again;
- a push refused with 409 while conflicts wait: the device resolves them (client or server wins)
  and syncs again.

Every request is reported to locust under its kind ("pull delta", "push conflict detection",
"push retry", ...). A 409 ``unresolved_conflicts`` is the protocol's expected answer and counts as
a success under its own name; any other error status is a failure.

At the end (locust's test_stop), unmeasured: every device syncs until it has nothing pending and
no conflicts, then once more, and its store is compared with a fresh full pull of each endpoint
(``benchmarks.devices.server_records``): a device drifted when its ids or versions differ, or it
holds a record the server never numbered. The verdict goes to ``LOAD_VERDICT`` (JSON) and makes
locust exit 1 with any drift or any unexpected error.
"""

import itertools
import json
import os
import random
import sys
import time
from pathlib import Path

import httpx
from locust import User, between, events, task

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

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

from benchmarks.devices import server_records

TOKENS = json.loads(Path(os.environ["LOAD_TOKENS"]).read_text())
DATA_DIR = Path(os.environ["LOAD_DATA_DIR"])
VERDICT = Path(os.environ["LOAD_VERDICT"])
DROP_RATE = float(os.environ.get("LOAD_DROP_RATE", "0.1"))
WAIT = tuple(float(s) for s in os.environ.get("LOAD_WAIT", "0.5,2").split(","))  # seconds between tasks
SEED = os.environ.get("LOAD_SEED", "1")

CATEGORIES = [None, "Drinks", "Bakery", "Deli"]
WRITABLE = [
    Endpoint("companies-lww", "/api/sync/companies-lww/", LAST_WRITE_WINS, [Entity("companies")]),
    Endpoint("companies-cd", "/api/sync/companies/", CONFLICT_DETECTION, [Entity("companies")]),
    Endpoint(
        "company-contacts",
        "/api/sync/company-contacts/",
        LAST_WRITE_WINS,
        [Entity("companies"), Entity("contacts", foreign_keys={"company": "companies"})],
    ),
]
PUSH_KIND = {
    "/api/sync/companies-lww/": "push last write wins",
    "/api/sync/companies/": "push conflict detection",
    "/api/sync/company-contacts/": "push one-to-many",
}
HOT = 5  # the companies with the lowest ids: every device edits these most, so edits collide

numbers = itertools.count()
devices = []
failures = []  # unexpected answers and exceptions, measured part and final check
measuring = True


class Metered(httpx.BaseTransport):
    """Times each request for locust, by kind; loses some push answers after the server sent them."""

    def __init__(self, device):
        self.device, self.inner = device, httpx.HTTPTransport(retries=2)
        self.sent = set()  # sync_ids already sent once

    def handle_request(self, request):
        kind, sync_id = self.kind(request)
        retry = sync_id is not None and sync_id in self.sent
        if retry:
            kind = "push retry"
        start = time.perf_counter()
        response = self.inner.handle_request(request)
        response.read()
        elapsed = (time.perf_counter() - start) * 1000
        status, error = response.status_code, None
        if status == 409 and _code(response) == "unresolved_conflicts":
            kind += " (409 conflicts pending)"
        elif status >= 400:
            error = f"{request.method} {request.url.path}: {status} {response.content[:300]!r}"
            failures.append(f"{self.device.name}: {error}")
        if measuring:
            events.request.fire(
                request_type=request.method,
                name=kind,
                response_time=elapsed,
                response_length=len(response.content),
                exception=AssertionError(error) if error else None,
                context={},
            )
        if sync_id is not None:
            self.sent.add(sync_id)
            if measuring and status == 200 and not retry and self.device.rng.random() < DROP_RATE:
                raise httpx.ReadError("the answer was lost on the way (simulated)", request=request)
        return response

    @staticmethod
    def kind(request):
        path = request.url.path
        if request.method == "GET":
            if path.startswith("/api/sync/conflicts/"):
                return "conflicts list", None
            return ("pull delta" if "since" in request.url.params else "pull full"), None
        if path.endswith("/resolve/"):
            return "resolve", None
        return PUSH_KIND.get(path, path), json.loads(request.content)["sync_id"]


def _code(response):
    try:
        return response.json().get("error")
    except ValueError:
        return None


class Device(User):
    wait_time = between(*WAIT)

    def on_start(self):
        number = next(numbers)
        self.name = f"device-{number}"
        self.rng = random.Random(f"{SEED}:{number}")
        self.token = TOKENS[number]
        category = CATEGORIES[number % len(CATEGORIES)]
        params = {"category": category} if category else {}
        products = Endpoint("products", "/api/sync/products/", READ_ONLY, [Entity("products")], params=params)
        self.writable = WRITABLE[number % len(WRITABLE)]
        self.endpoints = [products, self.writable]
        store = LocalStore(DATA_DIR / f"{self.name}.sqlite3", self.endpoints)
        connection = Connection(self.host, token=self.token, transport=Metered(self), backoff=0.2, timeout=60)
        self.client = SyncClient(store, connection, device_id=self.name, page_size=200)
        self.added = itertools.count()
        devices.append(self)
        self.sync()  # the first sync: full pulls

    @task(6)
    def pull(self):
        self.sync()

    @task(3)
    def edit(self):
        store = self.client.store
        companies = sorted((r for r in store.records("companies") if r.id is not None), key=lambda r: r.id)
        roll = self.rng.random()
        contacts = self.writable.name == "company-contacts"
        demo = [r for r in companies if not r.data["name"].startswith("device-")]  # never deleted
        if contacts and roll < 0.5 and demo:
            # A contact's company is a demo one or a new one: a company another device may delete, or
            # one this device deletes before pushing, would refuse the contact (404), as it should.
            new = roll < 0.1  # then pushed with the contact, which names it by local id
            company = store.create("companies", self.company()) if new else self.rng.choice(demo).local_id
            reference = store.ref("companies", company)
            store.create("contacts", {"name": f"{self.name} contact", "email": "", "phone": "", "company": reference})
        elif roll < 0.7 and companies:
            company = self.rng.choice(companies[:HOT] if self.rng.random() < 0.7 else companies)
            store.update("companies", company.local_id, {"phone": f"555-{self.rng.randint(0, 9999):04d}"})
        elif roll < 0.9 or not companies:
            store.create("companies", self.company())
        elif not contacts:  # the contacts devices delete nothing: their contacts point at their companies
            mine = [r for r in companies if r.data["name"].startswith(f"{self.name} ")]
            if mine:
                store.delete("companies", self.rng.choice(mine).local_id)
        self.sync(self.writable.name)

    def company(self):
        return {"name": f"{self.name} company {next(self.added)}", "address": "", "phone": ""}

    def sync(self, unit=None):
        """One sync; then the conflicts it met are resolved. True when it left nothing to do."""
        outcome = self.client.sync(unit)
        for conflict in self.client.store.conflicts():
            self.client.resolve_conflict(conflict.conflict_id, self.rng.choice(["client", "server"]))
        error = outcome.error
        if error is not None and error.code != "unresolved_conflicts" and not error.retryable:
            failures.append(f"{self.name}: sync failed: {error.code} {error}")
        return outcome.ok and not self.client.store.conflicts()

    def settle(self):
        for _ in range(20):
            if self.sync() and not self.client.store.has_pending_changes(self.writable.name):
                return True
        failures.append(f"{self.name}: still has changes or conflicts after 20 syncs")
        return False

    def drift(self):
        """What differs from a fresh full pull of each endpoint: a list of short descriptions."""
        http = httpx.Client(base_url=self.host, headers={"Authorization": f"Token {self.token}"}, timeout=60)
        differences = []
        with http:
            for endpoint in self.endpoints:
                truth = server_records(http, endpoint.path, endpoint.params)
                for entity in endpoint.entities:
                    held = {r.id: r.version for r in self.client.store.records(entity.name)}
                    server = {pk: r["version"] for pk, r in truth.get(entity.name, {}).items()}
                    if held != server:
                        missing, extra = server.keys() - held.keys(), held.keys() - server.keys()
                        stale = sum(1 for pk in held.keys() & server.keys() if held[pk] != server[pk])
                        differences.append(f"{entity.name}: {len(missing)} missing, {len(extra)} extra, {stale} stale")
        return differences


@events.test_stop.add_listener
def check_every_device(environment, **kwargs):
    """Unmeasured: settle every device, then compare each with the server."""
    global measuring
    measuring = False
    started = time.monotonic()
    for device in devices:
        device.settle()
    for device in devices:  # changes that devices settled after this one pushed
        device.sync()
    drifted = {}
    for device in devices:
        differences = device.drift()
        if differences:
            drifted[device.name] = differences
    stats = environment.runner.stats
    verdict = {
        "devices": len(devices),
        "drifted": len(drifted),
        "drift": drifted,
        "unexpected_errors": len(failures) + len(environment.runner.exceptions),
        "errors": failures[:20] + [str(e["msg"])[:300] for e in list(environment.runner.exceptions.values())[:5]],
        "requests": stats.total.num_requests,
        "seconds": stats.last_request_timestamp - stats.start_time if stats.last_request_timestamp else 0,
        "check_seconds": round(time.monotonic() - started, 1),
    }
    VERDICT.write_text(json.dumps(verdict, indent=2))
    if drifted or verdict["unexpected_errors"] or not devices:
        environment.process_exit_code = 1
