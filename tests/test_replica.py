"""Pulls from PostgreSQL streaming replicas (hot standbys) lose nothing (docs/deployment.md, "Read replicas").

Two hot standbys of the test database (``scripts/pg_cluster replica``, pg_basebackup -R): ``standby_a`` streams,
``standby_b`` pauses its replay now and then, so it lags behind ``standby_a`` and behind the cursors that pushes
answer on the primary. A router sends the devices' reads to a random standby and every write to the primary
(``offline_sync.routers.PullsFromReplicas``); the writers and the checker of tests/history.py use the primary.
"""

import contextlib
import contextvars
import logging
import random
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

import psycopg
import pytest
from django.db import connection, connections
from django.test import override_settings

from offline_sync import pull as pull_module
from offline_sync.routers import PullsFromReplicas
from tests import history
from tests.helpers import HeldTransaction, client_for, make_user, push
from tests.sync_client import Replica
from tests.testapp.models import Item

ROOT = Path(__file__).resolve().parents[1]
STANDBYS = ("standby_a", "standby_b")

pytestmark = [
    pytest.mark.servers,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, databases=["default", *STANDBYS]),
]

# Which database the reads of the current request go to: None, the primary (writers, the checker, set-up);
# "any", the router's random standby (the history's devices); or one alias.
reading_from = contextvars.ContextVar("reading_from", default=None)


class Router(PullsFromReplicas):
    replicas = STANDBYS

    def db_for_read(self, model, **hints):
        alias = reading_from.get()
        if alias is None:
            return self.primary
        return super().db_for_read(model, **hints) if alias == "any" else alias


@contextlib.contextmanager
def reads_from(alias):
    token = reading_from.set(alias)
    try:
        yield
    finally:
        reading_from.reset(token)


def _url(settings, port=None):
    return f"postgres://{settings['USER']}@{settings['HOST']}:{port or settings['PORT']}/{settings['NAME']}"


class Standbys:
    """The two standbys, driven over connections of their own (any thread may call)."""

    def __init__(self, primary_url):
        self.primary_url, self.urls, self.dirs = primary_url, {}, []

    def start(self, aliases):
        """Start a standby per alias, one after the other (each asks the kernel for a free port); ``{alias: port}``."""
        for alias in aliases:
            directory = tempfile.mkdtemp(prefix=f"offline_sync_{alias}.")
            self.dirs.append(directory)
            command = [ROOT / "scripts/pg_cluster", "replica", self.primary_url, directory]
            run = subprocess.run(command, capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, f"scripts/pg_cluster replica failed:\n{run.stderr}"
            self.urls[alias] = run.stdout.strip()
        return {alias: int(url.rsplit(":", 1)[1].split("/")[0]) for alias, url in self.urls.items()}

    def stop(self):
        stops = [
            subprocess.Popen([ROOT / "scripts/pg_cluster", "stop", d], stderr=subprocess.DEVNULL) for d in self.dirs
        ]
        for stop in stops:
            stop.wait(timeout=120)

    def sql(self, alias, query, *args):
        with psycopg.connect(self.urls[alias] if alias != "default" else self.primary_url, autocommit=True) as conn:
            return conn.execute(query, args).fetchone()

    def pause(self, alias):
        self.sql(alias, "SELECT pg_wal_replay_pause()")

    def resume(self, alias):
        self.sql(alias, "SELECT pg_wal_replay_resume()")

    def catch_up(self, *aliases):
        """Resume replay and wait until each standby has replayed every commit made on the primary so far."""
        with psycopg.connect(self.primary_url, autocommit=True) as conn:
            # The test cluster commits asynchronously, and a standby gets only flushed WAL: one synchronous
            # commit of a transaction that wrote WAL (a message that nothing reads) flushes them all.
            with conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = on")
                conn.execute("SELECT pg_logical_emit_message(true, 'offline_sync_test', 'flush')")
            target = conn.execute("SELECT pg_current_wal_flush_lsn()").fetchone()[0]
        for alias in aliases or STANDBYS:
            self.resume(alias)
            deadline = time.monotonic() + 30
            while not self.sql(alias, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", target)[0]:
                assert time.monotonic() < deadline, f"{alias} did not replay up to {target} in 30 s"
                time.sleep(0.005)


@pytest.fixture(scope="module")
def standbys(django_db_setup, django_db_blocker):
    """Start the standbys of the test database (made by django_db_setup) and add them as mirror aliases."""
    primary = connections["default"].settings_dict
    pool = Standbys(_url(primary))
    try:
        for alias, port in pool.start(STANDBYS).items():
            # A mirror: the test framework neither creates nor flushes it (it is read-only anyway).
            connections.settings[alias] = {**primary, "PORT": port, "TEST": {**primary["TEST"], "MIRROR": "default"}}
        with override_settings(DATABASE_ROUTERS=[Router()]):
            yield pool
    finally:
        for alias in STANDBYS:
            if alias in connections.settings:
                connections[alias].close()
                del connections.settings[alias]
        pool.stop()


class ServerErrors(logging.Handler):
    """Collects the server errors (5xx, logged on django.request) whose exception mentions ``text``."""

    def __init__(self, text):
        super().__init__(logging.ERROR)
        self.text, self.seen = text, []

    def emit(self, record):
        if record.exc_info and self.text in str(record.exc_info[1]):
            self.seen.append(f"{record.getMessage()}: {record.exc_info[1]}")

    def __enter__(self):
        logging.getLogger("django.request").addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("django.request").removeHandler(self)


def test_a_pull_from_a_standby_never_skips_a_transaction_still_running_on_the_primary(standbys):
    client = client_for(make_user("reader"))
    slow = HeldTransaction(lambda: Item.objects.create(name="slow"))  # began first, commits last
    Item.objects.create(name="fast")
    standbys.catch_up()
    replica = Replica(client, "/sync/items/")
    with reads_from("standby_a"):
        replica.sync()  # "fast" waits behind "slow", as on the primary: the cursor must not pass "slow"
        slow.release()
        standbys.catch_up()
        replica.sync()
    assert {r["name"] for r in replica.data["items"].values()} == {"fast", "slow"}


def test_a_pull_whose_cursor_is_ahead_of_a_lagging_standby_goes_on_from_the_primary(standbys):
    client = client_for(make_user("reader"))
    standbys.catch_up()  # both have the user
    standbys.pause("standby_b")
    items = Item.objects.bulk_create(Item(name=f"item{n}") for n in range(5))
    standbys.catch_up("standby_a")
    replica = Replica(client, "/sync/items/")
    with reads_from("standby_a"):
        assert replica.page(limit=2)["has_more"]
    with reads_from("standby_b"):  # it has none of the items: its answer would say nothing and has_more false
        assert replica.sync(limit=2) == 2
    assert replica.ids("items") == {item.pk for item in items}
    standbys.resume("standby_b")


def test_a_conflict_made_on_the_primary_is_resolved_there_while_reads_go_to_a_lagging_standby(standbys):
    client = client_for(make_user("phone"))
    item = Item.objects.create(name="a")
    Item.objects.filter(pk=item.pk).update(name="server edit")  # version 2
    standbys.catch_up()
    standbys.pause("standby_b")  # it will not have the conflict
    with reads_from("standby_b"):
        pushed = push(
            client, "/sync/items-cd/", {"items": {"modified": [{"id": item.pk, "base_version": 1, "name": "mine"}]}}
        )
        assert pushed.status_code == 200, pushed.json()
        [conflict] = pushed.json()["conflicts"]
        resolved = client.post(
            f"/sync/conflicts/{conflict['conflict_id']}/resolve/", {"resolution": "server"}, format="json"
        )
    assert (resolved.status_code, resolved.json().get("status")) == (200, "resolved"), resolved.json()
    standbys.resume("standby_b")


def test_history_of_devices_pulling_from_lagging_standbys(standbys, capsys):
    """tests/history.py's devices, writers and purger; the devices read from the standbys, one lagging."""
    fallbacks = mock.MagicMock(wraps=pull_module.pull)  # pull() calls itself only to answer from the primary
    read_only = ServerErrors("read-only transaction")  # a write sent to a standby: a routing fault
    real_call, real_settle, real_rounds = history.Device.call, history.Device.settle, history.run_threads
    real_world = history.make_world

    def make_world(seed):
        users = real_world(seed)
        standbys.catch_up()  # the devices' users and permissions, read on the standbys
        return users

    def call(device, method, url, params, body=None):
        with reads_from("any"):
            status, answer = real_call(device, method, url, params, body)
        return status, answer

    def settle(device, full=False):
        standbys.catch_up()  # a checkpoint compares with the primary: the standbys must have replayed it all
        return real_settle(device, full)

    def rounds(hist, actors, workers, until, seed):
        rng = random.Random(f"{seed}:lag")

        def lag():
            while time.monotonic() < until:
                standbys.pause("standby_b")
                time.sleep(rng.uniform(0.2, 1.0))
                standbys.resume("standby_b")
                time.sleep(rng.uniform(0.1, 0.4))

        lagging = threading.Thread(target=lag)
        lagging.start()
        try:
            real_rounds(hist, actors, workers, until, seed)
        finally:
            lagging.join()

    class EveryAlias:
        """tests.history's ``connection``, whose close() (a worker thread's last act) closes the standbys' too."""

        def __getattr__(self, name):
            return getattr(connection, name)

        def close(self):
            connections.close_all()

    with (
        read_only,
        mock.patch.object(history, "connection", EveryAlias()),
        mock.patch.object(history.Device, "call", call),
        mock.patch.object(history.Device, "settle", settle),
        mock.patch.object(history, "run_threads", rounds),
        mock.patch.object(history, "make_world", make_world),
        mock.patch.object(pull_module, "pull", fallbacks),
    ):
        run = history.run(seed=7, seconds=10, workers=6, exercise=("push dropped", "pages with has_more"))
    with capsys.disabled():
        stats = ", ".join(f"{k}={v}" for k, v in sorted(run.stats.items()))
        print(f"\nreplica history: answered from the primary={fallbacks.call_count}, {stats}")
    assert not run.violations, run.report()
    assert not read_only.seen, read_only.seen
    assert fallbacks.call_count, "no pull met a standby behind its cursor: the lag did not happen"
