"""The demo's offline web app (/app/) in a real browser: offline edits, back online, conflicts with staff's admin edit.

The demo project runs in a subprocess (``manage.py runserver`` on a free loopback port, a SQLite file of its own);
Playwright drives Debian's chromium. ``context.set_offline(True)`` cuts the page's network as a lost connection
would. The app's bundle is built from clients/js by ``npm run build:app`` (scripts/test does it first). Without
the bundle, playwright or chromium this skips, except under CI=true where it fails. Marked ``own_sqlite``: the
PostgreSQL passes of scripts/test leave it out (they would run the same thing again).
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests import test_browser
from tests.test_browser import TIMEOUT_MS, unavailable

pytestmark = [pytest.mark.servers, pytest.mark.own_sqlite]  # its demo server has a SQLite file of its own

browser = test_browser.browser  # the admin tests' Chromium fixture, shared

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "demo_project/offline_app/static/offline_app/build/app.js"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo project with its demo data (users mobile/mobile and admin/admin), on a free port."""
    if not BUNDLE.exists():
        unavailable(f"{BUNDLE.relative_to(ROOT)} is not built: cd clients/js && npm ci && npm run build:app")
    directory = tmp_path_factory.mktemp("offline-app")
    env = {
        **os.environ,
        "DJANGO_DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    prepare = "from django.core.management import call_command as c; c('migrate', verbosity=0); c('load_demo_data')"
    command = [*manage, "shell", "--no-imports", "-c", prepare]
    subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)
    port = free_port()
    with open(directory / "server.log", "ab") as log:
        server = subprocess.Popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"], env=env, cwd=ROOT, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"the demo server exited; see {directory / 'server.log'}"
            try:
                httpx.get(f"{url}/app/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the demo server did not answer within 60 s"
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


class Api:
    """The server as the API shows it to user ``mobile``."""

    def __init__(self, url):
        self.http = httpx.Client(base_url=url, timeout=30)
        token = self.http.post("/api/auth/token/", json={"username": "mobile", "password": "mobile"}).json()["token"]
        self.http.headers["Authorization"] = f"Token {token}"

    def records(self):
        page = self.http.get("/api/sync/crm/").json()
        assert not page["has_more"]
        return {name: change["records"] for name, change in page["changes"].items()}

    def company(self, name):
        [company] = [c for c in self.records()["companies"] if c["name"] == name]
        return company


def open_app(browser, url):
    context = browser.new_context(base_url=url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/app/")
    page.fill("#username", "mobile")
    page.fill("#password", "mobile")
    page.get_by_role("button", name="Log in").click()
    wait_for_state(page, "synced")
    return context, page


def wait_for_state(page, state):
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_have_attribute("data-state", state)


def card(page, name):
    return page.locator(f"article.company[data-company='{name}']")


def edit_company(page, name, field, value):
    card(page, name).get_by_role("button", name=f"Edit {name}").click()
    form = page.get_by_role("form", name=f"Edit {name}")
    form.locator(f"input[name={field}]").fill(value)
    form.get_by_role("button", name="Save").click()


def staff_edit_in_admin(browser, url, name, field, value):
    """Staff log in to the admin and change a company on its change page."""
    context = browser.new_context(base_url=url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/admin/crm/company/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin")
    page.click("input[type=submit]")
    page.locator("#result_list").get_by_role("link", name=name, exact=True).click()
    page.fill(f"#id_{field}", value)
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/crm/company/")
    context.close()


def test_offline_edits_sync_when_back_online_and_a_conflict_is_resolved_in_the_page(browser, demo, request):
    from playwright.sync_api import expect

    api = Api(demo)
    request.addfinalizer(api.http.close)
    context, page = open_app(browser, demo)
    for name in ("Acme", "Globex", "Initech"):
        expect(card(page, name)).to_be_visible()

    assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")  # it keeps the page for offline opens
    context.set_offline(True)
    wait_for_state(page, "offline")
    expect(page.locator("#status")).to_have_text("You're offline")
    new = f"Offline Co {uuid.uuid4().hex[:6]}"
    page.get_by_role("form", name="New company").locator("input[name=name]").fill(new)
    page.get_by_role("button", name="Add company").click()
    expect(card(page, new)).to_contain_text("not synced yet")
    for contact in ("Ann", "Bob"):
        form = page.get_by_role("form", name=f"New contact of {new}")
        form.locator("input[name=name]").fill(contact)
        form.locator("input[name=email]").fill(f"{contact.lower()}@example.com")
        form.get_by_role("button", name="Add contact").click()
        expect(card(page, new).locator(f"li[data-contact={contact}]")).to_be_visible()
    edit_company(page, "Globex", "phone", "555-7000")
    edit_company(page, "Initech", "address", "Offline edit")
    expect(card(page, "Initech")).to_contain_text("Offline edit")
    wait_for_state(page, "offline")  # nothing went out
    assert [c["name"] for c in api.records()["companies"]].count(new) == 0

    reloaded = page.reload()  # still offline: the service worker's copy of the page, the data from IndexedDB
    assert reloaded.from_service_worker
    wait_for_state(page, "offline")
    expect(card(page, new).locator("li")).to_have_count(2)
    expect(card(page, "Initech")).to_contain_text("Offline edit")

    # Meanwhile staff change Initech in the admin: the page's edit was made on the version before.
    staff_edit_in_admin(browser, demo, "Initech", "address", "Staff edit")

    context.set_offline(False)  # the browser's `online` event: the app syncs by itself
    wait_for_state(page, "conflicts")
    conflict = page.locator("article.conflict[data-conflict='Initech']")
    expect(conflict.locator("tr[data-field=address] td")).to_have_text(["address", "Offline edit", "Staff edit"])
    expect(card(page, "Initech")).to_contain_text("Staff edit")  # the server's version until resolved

    records = api.records()
    [company] = [c for c in records["companies"] if c["name"] == new]  # exactly one: no duplicates
    contacts = sorted((c["name"], c["email"], c["company"]) for c in records["contacts"])
    assert contacts == [("Ann", "ann@example.com", company["id"]), ("Bob", "bob@example.com", company["id"])]
    assert api.company("Globex")["phone"] == "555-7000"
    assert api.company("Initech")["address"] == "Staff edit"

    other_context, other = open_app(browser, demo)  # a second browser context, the same user
    expect(card(other, new).locator("li")).to_have_count(2)
    expect(card(other, new)).to_contain_text("ann@example.com")
    expect(card(other, "Globex")).to_contain_text("555-7000")
    other_context.close()

    conflict.get_by_role("button", name="Keep mine").click()
    wait_for_state(page, "synced")
    expect(page.locator("article.conflict")).to_have_count(0)
    expect(card(page, "Initech")).to_contain_text("Offline edit")
    assert api.company("Initech")["address"] == "Offline edit"
    assert api.http.get("/api/sync/conflicts/").json()["conflicts"] == []

    # A sync in flight shows "Syncing…"; a server that fails shows "Sync failed" and keeps the edit for later.
    held, failing = [], []

    def hold_or_fail(route):
        if failing:
            route.fulfill(status=503, json={"error": "server_error", "detail": "down for a moment"})
        else:
            held.append(route)

    page.route(lambda url: "/api/sync/crm/" in url, hold_or_fail)
    edit_company(page, "Acme", "phone", "555-1111")
    wait_for_state(page, "syncing")
    expect(page.locator("#status")).to_have_text("Syncing…")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not held:  # the push is on its way: the page said so before sending it
        assert time.monotonic() < deadline, "the page's push never came"
        page.wait_for_timeout(50)
    failing.append(True)
    held.pop().fulfill(status=503, json={"error": "server_error"})
    wait_for_state(page, "failed")
    expect(page.locator("#status")).to_contain_text("Sync failed")
    assert api.company("Acme")["phone"] != "555-1111"
    page.unroute_all()
    page.get_by_role("button", name="Sync now").click()
    wait_for_state(page, "synced")
    assert api.company("Acme")["phone"] == "555-1111"
    context.close()
