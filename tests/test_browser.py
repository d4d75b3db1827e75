"""The conflict admin in a real browser: Playwright driving Debian's chromium against the live server.

Without playwright or /usr/bin/chromium these tests skip, except under CI=true
where they fail: scripts/test installs both (``pip install -e .[test]``,
``apt-get install chromium``).
"""

import os
import uuid

import pytest

from offline_sync.models import Conflict
from tests.testapp.models import Item

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


def unavailable(reason):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true the browser tests must run: scripts/test installs it.", pytrace=False)
    pytest.skip(f"{reason} (scripts/test installs it; under CI=true this fails instead of skipping)")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: pip install -e '.[test]'")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    # Playwright's sync API runs an event loop in this thread, which Django's
    # async-unsafe guard would take for async code calling the ORM.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def conflict(api, make_user):
    """A pending conflict: alice changed "Kettle" from version 1, the server has version 2."""
    item = Item.objects.create(name="Kettle", category="kitchen")
    item.name = "Kettle (server)"
    item.save()
    alice = api(make_user("alice", perms="all"))
    change = {"id": item.pk, "base_version": 1, "name": "Kettle (client)", "category": "<b>tea</b>"}
    body = {"sync_id": str(uuid.uuid4()), "device_id": "phone-1", "changes": {"items": {"modified": [change]}}}
    response = alice.post("/sync/items-cd/", body, format="json")
    return Conflict.objects.get(pk=response.json()["conflicts"][0]["conflict_id"])


@pytest.fixture
def staff(make_user):
    user = make_user("staff", perms=("view_conflict", "resolve_conflict", "change_item", "delete_item"))
    user.is_staff = True
    user.save()
    return user


def open_conflict(page, conflict):
    """Log in through the admin's form as staff who may resolve, then open the conflict from the list."""
    page.goto("/admin/offline_sync/conflict/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.locator("#result_list").get_by_role("link", name="Kettle (server)", exact=True).click()
    page.wait_for_url(f"**/admin/offline_sync/conflict/{conflict.pk}/change/")
    name = page.locator("tr[data-field=name]")
    assert "conflict-differs" in name.get_attribute("class")
    assert name.locator("td").all_inner_texts()[:3] == ["Kettle (server)", "Kettle (server)", "Kettle (client)"]
    assert page.locator("tr[data-field=category] td").all_inner_texts()[:3] == ["kitchen", "kitchen", "<b>tea</b>"]


def pending_in_list(page):
    page.goto("/admin/offline_sync/conflict/")
    return page.locator("#result_list tbody tr").count() if page.locator("#result_list").count() else 0


def test_apply_client_version(page, staff, conflict):
    open_conflict(page, conflict)
    page.get_by_role("button", name="Apply client version").click()
    page.wait_for_url("**/admin/offline_sync/conflict/")
    assert (
        page.locator(".messagelist .success").inner_text()
        == "Resolved the conflict on Kettle (client): Apply client version."
    )
    item = Item.objects.get(pk=conflict.object_pk)
    assert (item.name, item.category, item.version) == ("Kettle (client)", "<b>tea</b>", 3)
    assert Conflict.objects.get(pk=conflict.pk).status == "resolved"
    assert pending_in_list(page) == 0


def test_keep_server_version(page, staff, conflict):
    open_conflict(page, conflict)
    page.get_by_role("button", name="Keep server version").click()
    page.wait_for_url("**/admin/offline_sync/conflict/")
    assert "Keep server version" in page.locator(".messagelist .success").inner_text()
    item = Item.objects.get(pk=conflict.object_pk)
    assert (item.name, item.category, item.version) == ("Kettle (server)", "kitchen", 2)
    assert Conflict.objects.get(pk=conflict.pk).resolution == "server"
    assert pending_in_list(page) == 0


def test_a_record_changed_while_the_page_is_open_applies_nothing(page, staff, conflict):
    open_conflict(page, conflict)
    Item.objects.filter(pk=conflict.object_pk).update(name="Kettle (changed again)")
    page.get_by_role("button", name="Apply client version").click()
    page.wait_for_url(f"**/admin/offline_sync/conflict/{conflict.pk}/change/")
    error = page.locator(".messagelist .error").inner_text()
    assert "changed since this page was drawn (you saw version 2, it is now version 3)" in error
    assert "Nothing was applied" in error
    assert Item.objects.get(pk=conflict.object_pk).name == "Kettle (changed again)"
    assert Conflict.objects.get(pk=conflict.pk).status == "pending"
    # The page now shows the new server version.
    assert page.locator("tr[data-field=name] td").first.inner_text() == "Kettle (changed again)"
    assert pending_in_list(page) == 1


def test_the_resolution_buttons_stay_in_view_at_1280_px(page, staff, conflict):
    """However long the page, the choices stay on screen: a short window, at the top and at the bottom."""
    page.set_viewport_size({"width": 1280, "height": 560})
    open_conflict(page, conflict)
    in_view = """e => { const r = e.getBoundingClientRect();
        return r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth; }"""
    for scroll in ("0", "document.body.scrollHeight"):
        page.evaluate(f"window.scrollTo(0, {scroll})")
        for name in ("Keep server version", "Apply client version", "Merge chosen values"):
            assert page.get_by_role("button", name=name).evaluate(in_view), (name, scroll)


def test_the_conflict_page_breadcrumbs_look_like_the_admins(page, staff, conflict):
    open_conflict(page, conflict)
    style = "e => { const s = getComputedStyle(e); return [s.backgroundColor, s.paddingLeft]; }"
    ours = page.locator(".breadcrumbs").evaluate(style)
    page.goto("/admin/testapp/item/")
    assert ours == page.locator(".breadcrumbs").evaluate(style)


def test_the_conflict_list_fits_1280_px(page, staff, api, make_user):
    item = Item.objects.create(name="An electric kettle with a long descriptive product name")
    item.save()
    alice = api(make_user("alice.longname@example.com", perms="all"))
    change = {"id": item.pk, "base_version": 1, "name": "client"}
    device = "android-" + uuid.uuid4().hex
    body = {"sync_id": str(uuid.uuid4()), "device_id": device, "changes": {"items": {"modified": [change]}}}
    assert alice.post("/sync/items-cd/", body, format="json").json()["conflicts"]
    page.goto("/admin/offline_sync/conflict/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    scroll_width, client_width = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll_width <= client_width
