"""The README's walk-through, against the demo project served by runserver, as a new user would.

The demo runs in its own processes with its own SQLite file: the tests never
import demo_project.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

# It runs on SQLite files of its own, never the test database: the PostgreSQL passes leave it out.
pytestmark = pytest.mark.own_sqlite

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    env = {
        **os.environ,
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('demo') / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)
    subprocess.run([*manage, "load_demo_data"], env=env, check=True, cwd=ROOT, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{base}/api/schema/", timeout=1)
            break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)

    def shell(code):
        subprocess.run([*manage, "shell", "-c", code], env=env, check=True, cwd=ROOT, capture_output=True)

    yield base, shell
    server.terminate()
    server.wait(timeout=10)


def call(base, method, path, body=None, token=None):
    request = urllib.request.Request(f"{base}{path}", method=method)
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def token(base, username):
    status, body = call(base, "POST", "/api/auth/token/", {"username": username, "password": username})
    assert status == 200, body
    return body["token"]


def test_pull_then_delta_after_staff_edits(demo):
    base, shell = demo
    mobile = token(base, "mobile")
    status, full = call(base, "GET", "/api/sync/products/", token=mobile)
    assert (status, full["full"], len(full["changes"]["products"]["records"])) == (200, True, 20)
    by_name = {r["name"]: r["id"] for r in full["changes"]["products"]["records"]}
    shell(
        "from demo_project.catalog.models import Product;"
        "p = Product.objects.get(name='Espresso'); p.price = '2.40'; p.save();"
        "Product.objects.get(name='Bagel').delete()"
    )
    status, delta = call(base, "GET", f"/api/sync/products/?since={full['cursor']}", token=mobile)
    assert delta["full"] is False
    assert [(r["id"], r["price"], r["version"]) for r in delta["changes"]["products"]["records"]] == [
        (by_name["Espresso"], "2.40", 2)
    ]
    assert delta["changes"]["products"]["deleted"] == [by_name["Bagel"]]
    status, drinks = call(base, "GET", "/api/sync/products/?category=Drinks", token=mobile)
    assert {r["category"] for r in drinks["changes"]["products"]["records"]} == {"Drinks"}
    assert call(base, "GET", "/api/sync/products/")[0] == 401
    status, schema = call(base, "GET", "/api/schema/?format=json")
    assert status == 200
    assert "/api/sync/companies/" in schema["paths"]


def test_two_devices_push_companies_last_write_wins(demo):
    base, _ = demo
    one, two = token(base, "mobile"), token(base, "mobile2")
    push = {
        "sync_id": str(uuid.uuid4()),
        "last_sync": None,
        "changes": {"companies": {"added": [{"local_id": "c-1", "name": "New Co", "address": "", "phone": ""}]}},
    }
    status, first = call(base, "POST", "/api/sync/companies-lww/", push, one)
    assert status == 200, first
    status, retry = call(base, "POST", "/api/sync/companies-lww/", push, one)
    assert retry["id_map"] == first["id_map"]
    new_id = first["id_map"]["companies"]["c-1"]
    edit = {"sync_id": str(uuid.uuid4()), "last_sync": first["cursor"]}
    status, _ = call(
        base,
        "POST",
        "/api/sync/companies-lww/",
        {**edit, "changes": {"companies": {"modified": [{"id": new_id, "phone": "1"}]}}},
        two,
    )
    assert status == 200
    status, bad = call(
        base,
        "POST",
        "/api/sync/companies-lww/",
        {"sync_id": str(uuid.uuid4()), "last_sync": None, "changes": {"companies": {"added": [{"local_id": "x"}]}}},
        two,
    )
    assert (status, bad["detail"]) == (
        400,
        {"changes": {"companies": {"added": {"0": {"name": ["This field is required."]}}}}},
    )
    status, pulled = call(base, "GET", f"/api/sync/companies-lww/?since={first['cursor']}", token=one)
    assert [(r["id"], r["phone"]) for r in pulled["changes"]["companies"]["records"]] == [(new_id, "1")]


def test_a_company_and_its_contacts_created_offline_sync_in_one_push(demo):
    base, _ = demo
    one, two = token(base, "mobile"), token(base, "mobile2")
    url = "/api/sync/company-contacts/"
    contacts = [
        {"local_id": f"p-{n}", "name": f"Person {n}", "email": f"p{n}@example.com", "company": {"local_id": "c"}}
        for n in range(3)
    ]
    offline = {
        "sync_id": str(uuid.uuid4()),
        "changes": {"companies": {"added": [{"local_id": "c", "name": "Offline Co"}]}, "contacts": {"added": contacts}},
    }
    status, first = call(base, "POST", url, offline, one)
    assert status == 200, first
    company = first["id_map"]["companies"]["c"]
    assert sorted(first["id_map"]["contacts"]) == ["p-0", "p-1", "p-2"]
    mine = {r["id"]: r for r in first["changes"]["contacts"]["records"]}
    assert set(mine) == set(first["id_map"]["contacts"].values())
    assert {r["company"] for r in mine.values()} == {company}
    status, again = call(base, "POST", url, offline, one)
    assert (status, again["id_map"]) == (200, first["id_map"])

    # Another user sees the company, none of the contacts, and cannot touch them.
    status, theirs = call(base, "GET", url, token=two)
    assert company in {r["id"] for r in theirs["changes"]["companies"]["records"]}
    assert not set(mine) & {r["id"] for r in theirs["changes"]["contacts"]["records"]}
    contact = next(iter(mine))
    for change in ({"modified": [{"id": contact, "name": "Mine"}]}, {"deleted": [{"id": contact}]}):
        status, refused = call(base, "POST", url, {"sync_id": str(uuid.uuid4()), "changes": {"contacts": change}}, two)
        assert (status, refused["error"]) == (404, "not_found")

    # Deleting the company takes its contacts off their owner's device, and off no one else's.
    status, _ = call(
        base, "POST", url, {"sync_id": str(uuid.uuid4()), "changes": {"companies": {"deleted": [{"id": company}]}}}, one
    )
    assert status == 200
    status, after = call(base, "GET", f"{url}?since={first['cursor']}", token=one)
    assert sorted(after["changes"]["contacts"]["deleted"]) == sorted(mine)
    status, others = call(base, "GET", f"{url}?since={theirs['cursor']}", token=two)
    assert others["changes"]["companies"]["deleted"] == [company]
    assert others["changes"]["contacts"]["deleted"] == []


def test_the_sample_conflict_blocks_pushes_until_resolved(demo):
    base, _ = demo
    two = token(base, "mobile2")
    empty = {"sync_id": str(uuid.uuid4()), "last_sync": None, "changes": {}}
    status, blocked = call(base, "POST", "/api/sync/companies/", empty, two)
    assert (status, blocked["error"]) == (409, "unresolved_conflicts")
    status, pending = call(base, "GET", "/api/sync/conflicts/", token=two)
    [conflict] = pending["conflicts"]
    assert conflict["client"]["phone"] == "555-0999"
    status, resolved = call(
        base, "POST", f"/api/sync/conflicts/{conflict['conflict_id']}/resolve/", {"resolution": "client"}, two
    )
    assert (status, resolved["record"]["phone"]) == (200, "555-0999")
    status, body = call(base, "POST", "/api/sync/companies/", {**empty, "sync_id": str(uuid.uuid4())}, two)
    assert status == 200
    assert "555-0999" in {r["phone"] for r in body["changes"]["companies"]["records"]}


def test_staff_see_the_sample_conflict_under_conflicting_companies(demo):
    import http.cookiejar
    import re

    base, _ = demo
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    login = opener.open(f"{base}/admin/login/").read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login).group(1)
    form = urllib.parse.urlencode({"username": "admin", "password": "admin", "csrfmiddlewaretoken": csrf})
    opener.open(urllib.request.Request(f"{base}/admin/login/?next=/admin/", data=form.encode()))
    page = opener.open(f"{base}/admin/crm/conflictingcompany/?status=all").read().decode()
    assert "Conflicting companies" in page
    assert "demo-phone" in page


def post_raw(base, path, data):
    """POST ``data`` (bytes) as JSON; return the status and the headers, error or not."""
    request = urllib.request.Request(f"{base}{path}", data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


def test_hostile_requests_get_json_answers(demo):
    base, _ = demo
    deep = ('{"a": ' * 1000 + "1" + "}" * 1000).encode()
    assert post_raw(base, "/api/auth/token/", deep)[0] == 400
    # A mistyped sync URL, POSTed without a CSRF token (the demo has CSRF middleware): the JSON 404.
    status, body = call(base, "POST", "/api/sync/companies-lww", {"sync_id": str(uuid.uuid4())})
    assert (status, body["error"]) == (404, "not_found")


def test_token_logins_are_throttled(demo):
    """Last in this module: it spends the address's login budget."""
    base, _ = demo
    wrong = json.dumps({"username": "mobile", "password": "wrong"}).encode()
    statuses = []
    for _ in range(30):
        status, headers = post_raw(base, "/api/auth/token/", wrong)
        statuses.append(status)
        if status == 429:
            assert int(headers["Retry-After"]) > 0
            break
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {400}


def test_restarting_the_demo_keeps_the_users_edits(tmp_path):
    """`scripts/demo` runs load_demo_data at every start: a product staff deleted must not come back."""
    env = {**os.environ, "DJANGO_DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    env["DJANGO_SETTINGS_MODULE"] = "demo_project.settings"
    manage = [sys.executable, str(ROOT / "manage.py")]

    def run(*args):
        done = subprocess.run([*manage, *args], env=env, check=True, cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""  # shell: the printed line

    run("migrate", "--noinput", "-v0")
    run("load_demo_data")
    code = "from demo_project.catalog.models import Product; from demo_project.crm.models import Company; "
    run("shell", "-c", code + "Product.objects.get(name='Bagel').delete(); Company.objects.get(name='Globex').delete()")
    run("load_demo_data")  # the next start
    names = run("shell", "-c", code + "print(sorted(Product.objects.values_list('name', flat=True)))")
    assert "Bagel" not in names
    assert names.count("'") == 2 * 19  # the other 19 products are there
    companies = run("shell", "-c", code + "print(sorted(Company.objects.values_list('name', flat=True)))")
    assert companies == "['Acme', 'Initech']"
