"""The change stream through PgBouncer in transaction pooling mode: the watermark still loses nothing.

PgBouncer (Debian's ``pgbouncer``, which scripts/test installs) runs in front of the test
PostgreSQL server with ``pool_mode = transaction``, and every connection of the tests below goes
through it: each transaction, and each autocommit statement, may run on another server
connection. The watermark needs no session state (it reads ``pg_current_snapshot()``, global to
the server, and a push's stamp and its rows share one transaction, which PgBouncer keeps on one
server connection), so the existing concurrency tests must pass unchanged through it.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.db import connection, connections

from tests import test_change_stream, test_concurrency
from tests.helpers import HeldTransaction
from tests.history import run
from tests.testapp.models import Item

pytestmark = [pytest.mark.servers, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

POOL_SIZE = 20  # server connections: above the history's threads, so none waits on another's pool slot


def pgbouncer_binary():
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None)
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("pgbouncer is missing: scripts/test installs Debian's pgbouncer as root; under CI it must run")
    pytest.skip("pgbouncer is missing: apt-get install pgbouncer (scripts/test does, as root)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pgbouncer(django_db_setup, django_db_blocker):
    """A PgBouncer in transaction mode in front of the test database; yields its port."""
    binary = pgbouncer_binary()
    target = connections["default"].settings_dict
    root = os.geteuid() == 0
    workdir = Path(tempfile.mkdtemp(prefix="offline_sync_pgbouncer."))
    port = free_port()
    (workdir / "userlist.txt").write_text(f'"{target["USER"]}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={target["HOST"]} port={target["PORT"]}

[pgbouncer]
pool_mode = transaction
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/userlist.txt
default_pool_size = {POOL_SIZE}
max_client_conn = 200
admin_users = {target["USER"]}
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
"""
    )
    command = [binary, "-d", str(workdir / "pgbouncer.ini")]  # -d: it writes its pid to pidfile
    if root:  # PgBouncer refuses to run as root
        shutil.chown(workdir, "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, cwd=workdir, timeout=30)
    pid = None
    try:
        deadline = time.monotonic() + 30
        while pid is None or not _accepts(port):
            assert time.monotonic() < deadline, f"PgBouncer did not start:\n{_read(workdir / 'pgbouncer.log')}"
            if (workdir / "pgbouncer.pid").exists():
                pid = int(_read(workdir / "pgbouncer.pid") or 0) or None
            time.sleep(0.1)
        yield port
    finally:
        if pid is not None:
            os.kill(pid, 15)
            _wait_gone(pid)
        shutil.rmtree(workdir, ignore_errors=True)


def _read(path):
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _accepts(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_gone(pid, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


@pytest.fixture
def through_pgbouncer(transactional_db, pgbouncer):
    """Point the default database at PgBouncer, with the settings transaction pooling needs."""
    settings_dict = connections["default"].settings_dict  # shared by the connections of every thread
    saved = {key: settings_dict.get(key) for key in ("PORT", "DISABLE_SERVER_SIDE_CURSORS", "OPTIONS")}
    connections.close_all()
    settings_dict.update(
        PORT=pgbouncer,
        DISABLE_SERVER_SIDE_CURSORS=True,  # as demo_project's DATABASE_TRANSACTION_POOLING=1
        OPTIONS={**(saved["OPTIONS"] or {}), "prepare_threshold": None, "server_side_binding": False},
    )
    try:
        yield pgbouncer
    finally:
        connections.close_all()
        settings_dict.update(saved)


def server_pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_one_connection_s_statements_run_on_several_server_connections(through_pgbouncer):
    """Transaction pooling is real here: what the tests below pass through multiplexes connections."""
    connection.ensure_connection()
    assert connection.connection.info.port == through_pgbouncer
    first = server_pid()  # the pool's only server connection, idle again once the statement ends
    held = HeldTransaction(lambda: Item.objects.create(name="held"))  # takes that idle one for its transaction
    try:
        second = server_pid()  # so this statement of the same client connection runs on another
    finally:
        held.release()
    assert first != second


def test_a_push_answer_never_skips_a_transaction_still_running(through_pgbouncer):
    test_change_stream.test_a_push_answer_never_skips_a_transaction_still_running()


def test_a_push_answer_pages_its_own_records_while_an_older_transaction_runs(through_pgbouncer):
    test_change_stream.test_a_push_answer_pages_its_own_records_while_an_older_transaction_runs()


def test_a_paging_reader_misses_nothing_committed_by_concurrent_writers(through_pgbouncer):
    test_concurrency.test_paging_reader_misses_nothing_committed_by_concurrent_writers()


def test_a_history_of_devices_writers_and_purges(through_pgbouncer):
    """tests/history.py's checker over PgBouncer: a shorter run than test_history's, same verdict."""
    history = run(seed=1, seconds=float(os.environ.get("PGBOUNCER_HISTORY_SECONDS", 6)), workers=8)
    assert not history.violations, history.report()
    assert history.stats["pages with has_more"], history.report()  # it paged while others wrote
