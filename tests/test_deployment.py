"""The demo served as docs/deployment.md says: scripts/serve, gunicorn with several workers, PostgreSQL.

One server for the module, started by ``scripts/serve`` itself on a fresh database of the test
PostgreSQL server and a free port, and talked to over HTTP only: what a person deploying the
package gets, not what the test settings do.
"""

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 3
AUTH_RATE = 4  # token logins per minute and client address, shared by every worker through the cache


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_pids(pid):
    """Pids of the processes whose parent is ``pid`` (gunicorn's workers), from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def demo_env(**overrides):
    """The caller's environment less what the settings read, so each test says what it sets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEMO_", "DATABASE_"))}
    env.pop("PORT", None)
    return {**env, **overrides}


@contextlib.contextmanager
def fresh_database():
    """A new database in the test PostgreSQL server (its URL), dropped at the end."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        # Tests marked postgres never get here on SQLite (conftest skips them); an unmarked one must not pass quietly.
        if os.environ.get("CI") == "true":
            pytest.fail("needs PostgreSQL: mark the test postgres, so that the PostgreSQL pass runs it")
        pytest.skip("needs PostgreSQL: scripts/test runs it in its PostgreSQL pass")
    name = f"deploy_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def database():
    with fresh_database() as url:
        yield url


@contextlib.contextmanager
def serving(log, **env):
    """``scripts/serve`` in the background with ``env``; yields its process once it answers; stops it by pid."""
    port = free_port()
    env = demo_env(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        PORT=str(port),
        DJANGO_STATIC_ROOT=str(log.parent / "static"),
        VIRTUAL_ENV=sys.prefix,  # this interpreter's packages, installed by scripts/test
        **env,
    )
    with log.open("wb") as out:
        # Its own process group, so that nothing of it can outlive the tests (see the end).
        process = subprocess.Popen(
            [ROOT / "scripts" / "serve"], env=env, cwd=ROOT, stdout=out, stderr=out, start_new_session=True
        )
    process.base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"scripts/serve exited {process.returncode}:\n{log.read_text()}"
            try:
                if httpx.get(f"{process.base}/admin/login/").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"scripts/serve did not answer in 120 s:\n{log.read_text()}"
            time.sleep(0.3)
        yield process
    finally:
        process.terminate()  # SIGTERM, as a person's kill would send
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)  # the group this test started, by its leader's pid
            process.wait(10)


@pytest.fixture(scope="module")
def server(database, tmp_path_factory):
    """The module's server: scripts/serve on a fresh database, ``WORKERS`` workers."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    # scripts/serve exec's gunicorn when given DATABASE_URL: its pid is the master's.
    with serving(log, DATABASE_URL=database, WORKERS=str(WORKERS), DEMO_AUTH_RATE=f"{AUTH_RATE}/min") as process:
        yield {"base": process.base, "pid": process.pid, "log": log}


def stylesheets(base):
    page = httpx.get(f"{base}/admin/login/")
    assert page.status_code == 200
    return re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text)


@pytest.fixture(scope="module")
def token(server):
    """One token login for the module: the throttle test spends the rest of the login budget."""
    response = httpx.post(f"{server['base']}/api/auth/token/", json={"username": "mobile", "password": "mobile"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Token {response.json()['token']}"}


@pytest.mark.servers
@pytest.mark.postgres
def test_the_admin_is_served_with_its_styles_by_whitenoise(server):
    links = stylesheets(server["base"])
    assert any(href.startswith("/static/admin/css/base.") for href in links), links
    for href in links:
        css = httpx.get(server["base"] + href, headers={"Accept-Encoding": "gzip"})
        assert css.status_code == 200, href
        assert css.headers["content-type"].startswith("text/css"), href
        # The manifest storage's hashed names, compressed at collectstatic, cached for good by browsers.
        assert re.search(r"\.[0-9a-f]{12}\.css$", href), href
        assert css.headers["content-encoding"] == "gzip", href
        assert "immutable" in css.headers["cache-control"], href
        assert "body" in css.text or "{" in css.text


@pytest.mark.servers
@pytest.mark.postgres
def test_pulls_and_pushes_work_across_several_workers(server, token):
    assert len(child_pids(server["pid"])) == WORKERS
    base = server["base"]
    full = httpx.get(f"{base}/api/sync/companies-lww/", headers=token)
    assert full.status_code == 200, full.text
    cursor = full.json()["cursor"]
    names = {record["name"] for record in full.json()["changes"]["companies"]["records"]}
    # gunicorn's sync workers close each connection, so every request may reach another worker:
    # each round's pull must see the push before it, whichever process answered which.
    for round_ in range(2 * WORKERS):
        name = f"Deployed {round_}"
        body = {
            "sync_id": str(uuid.uuid4()),
            "last_sync": cursor,
            "changes": {"companies": {"added": [{"local_id": f"c{round_}", "name": name}]}},
        }
        pushed = httpx.post(f"{base}/api/sync/companies-lww/", json=body, headers=token)
        assert pushed.status_code == 200, pushed.text
        assert list(pushed.json()["id_map"]["companies"]) == [f"c{round_}"]
        delta = httpx.get(f"{base}/api/sync/companies-lww/", params={"since": cursor}, headers=token)
        assert delta.status_code == 200, delta.text
        assert name in {record["name"] for record in delta.json()["changes"]["companies"]["records"]}
        cursor = delta.json()["cursor"]
        names.add(name)
    again = httpx.get(f"{base}/api/sync/companies-lww/", headers=token).json()
    assert {record["name"] for record in again["changes"]["companies"]["records"]} == names


@pytest.mark.servers
@pytest.mark.postgres
def test_debug_is_off(server, token):
    unknown = httpx.get(f"{server['base']}/api/sync/no-such-endpoint/", headers=token)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/json"
    assert unknown.json()["error"] == "not_found"
    page = httpx.get(f"{server['base']}/no-such-page/")
    assert page.status_code == 404
    # Django's debug 404 page says both.
    assert "URLconf" not in page.text
    assert "DEBUG = True" not in page.text


@pytest.mark.servers
@pytest.mark.postgres
def test_large_pulls_are_compressed(server, token):
    pull = httpx.get(f"{server['base']}/api/sync/products/", headers={**token, "Accept-Encoding": "gzip"})
    assert pull.status_code == 200
    assert pull.headers["content-encoding"] == "gzip"
    assert len(pull.json()["changes"]["products"]["records"]) == 20  # httpx decompressed it


@pytest.mark.servers
@pytest.mark.postgres
def test_token_logins_are_throttled_across_workers(server, token):
    """With a per-process cache each worker would let AUTH_RATE through: the database cache counts once."""
    answers = [
        httpx.post(f"{server['base']}/api/auth/token/", json={"username": "mobile", "password": "wrong"}).status_code
        for _ in range(AUTH_RATE + 4)
    ]
    # The module's token fixture spent one login of the budget; every worker counts in one place.
    assert answers.count(400) == AUTH_RATE - 1, answers
    assert answers[AUTH_RATE - 1 :] == [429] * 5, answers


@pytest.mark.servers
@pytest.mark.postgres
def test_scripts_serve_refuses_to_start_without_a_secret_key(database):
    process = subprocess.Popen(
        [ROOT / "scripts" / "serve"],
        env=demo_env(DATABASE_URL=database, PORT=str(free_port()), VIRTUAL_ENV=sys.prefix),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: if it does start a server, all of it goes below
    )
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.communicate()
        pytest.fail("scripts/serve started without DJANGO_SECRET_KEY")
    assert process.returncode != 0
    assert "DJANGO_SECRET_KEY" in stderr


@pytest.mark.servers
@pytest.mark.postgres
def test_scripts_serve_alone_runs_on_a_throwaway_cluster_and_deletes_it_when_stopped():
    """The command docs/deployment.md opens with: no DATABASE_URL, so scripts/pg_cluster starts one."""
    scratch = Path(tempfile.mkdtemp(prefix="offline_sync_serve_test."))
    scratch.chmod(0o755)  # as root, pg_cluster runs PostgreSQL as the postgres user, who must get in
    try:
        # One worker and no demo users: what is tested here is the cluster's life, the rest is above.
        log = scratch / "serve.log"
        with serving(log, TMPDIR=str(scratch), WORKERS="1", DEMO_KNOWN_PASSWORD_USERS="0") as process:
            [cluster] = scratch.glob("offline_sync_serve_pg.*")
            base_css = next(href for href in stylesheets(process.base) if "/css/base." in href)
            css = httpx.get(process.base + base_css)
            assert css.status_code == 200
            assert css.headers["content-type"].startswith("text/css")
            url = re.search(r"cluster \(deleted when this stops\): (\S+)", log.read_text())[1]
            assert url.startswith("postgres://")
            port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert process.returncode == 143  # it stopped on SIGTERM, having stopped gunicorn and the cluster
        assert not cluster.exists()
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "the throwaway cluster still listens"
    finally:
        for left in scratch.glob("offline_sync_serve_pg.*"):  # only when the script failed to stop it
            subprocess.run([ROOT / "scripts" / "pg_cluster", "stop", left], check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def run_demo_python(code, **env):
    """Run ``code`` with the demo's settings (DEBUG off) in a fresh interpreter; its stdout or the failure."""
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env=demo_env(DJANGO_SETTINGS_MODULE="demo_project.settings", DJANGO_ALLOWED_HOSTS="x", **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.own_sqlite  # the demo's settings, with no database given
def test_the_demo_settings_refuse_to_run_without_a_secret_key_when_not_debugging():
    done = run_demo_python("pass")
    assert done.returncode != 0
    assert "ImproperlyConfigured: Set DJANGO_SECRET_KEY" in done.stderr


@pytest.mark.servers  # three demo processes: once per scripts/test, in its SQLite pass
@pytest.mark.own_sqlite
def test_a_rotated_secret_key_keeps_devices_cursors_while_the_old_one_is_a_fallback():
    old, new = secrets.token_urlsafe(50), secrets.token_urlsafe(50)
    issued = run_demo_python(
        "from offline_sync.cursors import Position; print(Position(42).encode())", DJANGO_SECRET_KEY=old
    )
    assert issued.returncode == 0, issued.stderr
    read = (
        "import sys; from offline_sync.cursors import Position; from offline_sync.exceptions import InvalidCursor\n"
        "try: print(Position.decode(sys.argv[1]).stamp)\n"
        "except InvalidCursor: print('invalid')"
    )
    cursor = issued.stdout.strip()
    code = f"import sys; sys.argv = ['', {cursor!r}]\n{read}"
    kept = run_demo_python(code, DJANGO_SECRET_KEY=new, DJANGO_SECRET_KEY_FALLBACKS=f"unrelated,{old}")
    assert kept.stdout.strip() == "42", kept.stderr
    dropped = run_demo_python(code, DJANGO_SECRET_KEY=new)
    assert dropped.stdout.strip() == "invalid", dropped.stderr  # a 400 validation_error on the wire


@pytest.mark.servers  # the demo project in a process of its own, once per scripts/test
@pytest.mark.postgres
def test_the_gzip_benchmark_measures_smaller_pages_with_gzip():
    with fresh_database() as url:
        done = subprocess.run(
            [sys.executable, ROOT / "benchmarks" / "gzip_bytes.py", "--records", "30"],
            env=demo_env(DATABASE_URL=url),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| `")]
    assert [row[0].strip() for row in rows] == [
        "`/api/sync/products/`",
        "`/api/sync/companies-lww/`",
        "`/api/sync/company-contacts/`",
    ]
    for _, records, plain, packed, _ in rows:
        assert int(records) >= 30
        assert float(packed) < float(plain) / 2
