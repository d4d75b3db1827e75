"""The admin of conflicts: list, side-by-side page, resolutions, the "changed again" guard, permissions."""

import datetime
import re
import uuid
from urllib.parse import urlencode

import pytest
from django.contrib import admin as django_admin
from django.contrib.admin import AdminSite
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import path
from django.utils import timezone

from offline_sync.admin import ConflictAdmin
from offline_sync.diff import DELETED, NOT_SENT, diff_records, format_value
from offline_sync.models import Conflict
from tests import urls as test_urls
from tests.testapp.models import Item, Note

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/sync/items-cd/"
ADMIN = "/admin/offline_sync/conflict/"


@pytest.fixture
def staff(make_user):
    """A logged-in admin client: ``staff()`` may view and resolve item conflicts, ``staff(perms=...)`` chooses."""

    def login(username="staff", perms=("view_conflict", "resolve_conflict", "change_item", "delete_item")):
        user = make_user(username, perms=perms)
        user.is_staff = True
        user.save()
        client = Client()
        client.force_login(user)
        client.user = user
        return client

    return login


def push(client, changes, *, device_id="phone-1"):
    body = {"sync_id": str(uuid.uuid4()), "last_sync": None, "device_id": device_id, "changes": changes}
    response = client.post(URL, body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def conflict_on(client, item, *, device_id="phone-1", **change):
    """A pending conflict: ``client`` changed ``item`` from version 1 while the server is further."""
    body = push(client, {"items": {"modified": [{"id": item.pk, "base_version": 1, **change}]}}, device_id=device_id)
    return Conflict.objects.get(pk=body["conflicts"][0]["conflict_id"])


def changed_item(**fields):
    """An item at version 2, so that a change based on version 1 conflicts."""
    item = Item.objects.create(**fields)
    item.save()
    return item


def page_url(conflict):
    return f"{ADMIN}{conflict.pk}/change/"


def resolve_url(conflict):
    return f"{ADMIN}{conflict.pk}/resolve/"


def shown(staff_client, conflict):
    response = staff_client.get(page_url(conflict))
    assert response.status_code == 200
    return response.content.decode()


def row(html, field):
    """``(css classes, [(cell class, cell text), ...])`` of a field's row in the comparison table."""
    match = re.search(rf'<tr class="([^"]*)" data-field="{field}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {field!r} in the page"
    return match[1], [(c, t.strip()) for c, t in re.findall(r'<td class="([^"]*)">(.*?)</td>', match[2], re.S)]


def version_on(html):
    versions = set(re.findall(r'name="version" value="(\d*)"', html))
    assert len(versions) == 1, versions
    return versions.pop()


def post(staff_client, conflict, resolution, version, **picks):
    data = {"resolution": resolution, "version": version, **{f"pick_{k}": v for k, v in picks.items()}}
    return staff_client.post(resolve_url(conflict), data, follow=True)


def messages_of(response):
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def listed(staff_client, query="", url=ADMIN):
    response = staff_client.get(url + query)
    assert response.status_code == 200
    return {c.pk for c in response.context["cl"].result_list}


def test_the_list_shows_pending_conflicts_and_filters_and_searches(alice, api, make_user, staff):
    bob = api(make_user("bob", perms="all"))
    first, second = changed_item(name="a"), changed_item(name="b")
    admin = staff()
    done = conflict_on(alice, changed_item(name="c"), name="z")
    post(admin, done, "server", "2")  # pending conflicts block alice's next push
    mine = conflict_on(alice, first, name="x")
    bobs = conflict_on(bob, second, name="y", device_id="tablet-7")
    Conflict.objects.filter(pk=bobs.pk).update(detected_on=timezone.now() - datetime.timedelta(days=30))

    assert listed(admin) == {mine.pk, bobs.pk}  # pending by default
    assert listed(admin, "?status=resolved") == {done.pk}
    assert listed(admin, "?status=all") == {mine.pk, bobs.pk, done.pk}
    assert listed(admin, "?entity=items&status=all") == {mine.pk, bobs.pk, done.pk}
    assert listed(admin, "?entity=notes") == set()
    assert listed(admin, f"?user__id__exact={bob.user.pk}") == {bobs.pk}
    # The "Past 7 days" link of the date filter.
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    past_week = {
        "detected_on__gte": today - datetime.timedelta(days=7),
        "detected_on__lt": today + datetime.timedelta(1),
    }
    assert listed(admin, f"?{urlencode(past_week)}") == {mine.pk}
    assert listed(admin, "?q=tablet-7") == {bobs.pk}
    assert listed(admin, "?q=bob") == {bobs.pk}
    assert listed(admin, f"?q={first.pk}") == {mine.pk}
    assert listed(admin, "?q=items") == {mine.pk, bobs.pk}

    html = admin.get(ADMIN).content.decode()
    for column in ("record", "entity", "kind", "pushed by", "detected on", "status"):
        assert f">{column.capitalize()}<" in html.replace("</a>", "<"), column
    assert "tablet-7" in html


def test_the_page_shows_both_versions_and_highlights_the_differing_fields(alice, staff):
    item = changed_item(name="server name", category="same", price="3.50")
    conflict = conflict_on(alice, item, name="client name", price="3.5")
    Item.objects.filter(pk=item.pk).update(category="server moved on")  # version 3, after the detection
    html = shown(staff(), conflict)

    classes, cells = row(html, "name")
    assert "conflict-differs" in classes
    # Server now, server at detection, client; then the merge choice.
    assert [text for _, text in cells[:3]] == ["server name", "server name", "client name"]
    classes, cells = row(html, "category")
    assert "conflict-differs" not in classes
    assert [text for _, text in cells[:3]] == ["server moved on", "same", "not sent (unchanged)"]
    # "3.5" and "3.50" are one value: no difference to resolve.
    assert "conflict-differs" not in row(html, "price")[0]
    assert "Server now (version 3)" in html
    assert "Server at detection (version 2)" in html
    assert "based on version 1" in html
    assert "changed again since this conflict was detected" in html
    assert version_on(html) == "3"
    assert 'value="Keep server version"' in html
    assert 'value="Apply client version"' in html
    assert 'name="pick_name"' in html
    assert 'name="pick_price"' not in html


def test_every_value_is_escaped(alice, staff):
    item = changed_item(name="<b>bold</b>")
    conflict = conflict_on(alice, item, name="<script>alert(1)</script>", category='"><img src=x onerror=alert(2)>')
    html = shown(staff(), conflict)
    assert "<script>alert(1)</script>" not in html
    assert "<b>bold</b>" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in html


def test_keep_server_version_keeps_the_record_and_resolves(alice, staff):
    item = changed_item(name="server")
    conflict = conflict_on(alice, item, name="client")
    admin = staff()
    # Opened from a filtered list, the page returns to it.
    html = admin.get(f"{page_url(conflict)}?_changelist_filters=entity%3Ditems").content.decode()
    assert f'action="{resolve_url(conflict)}?_changelist_filters=entity%3Ditems"' in html
    data = {"resolution": "server", "version": version_on(html)}
    response = admin.post(f"{resolve_url(conflict)}?_changelist_filters=entity%3Ditems", data, follow=True)
    assert response.redirect_chain[-1][0] == f"{ADMIN}?entity=items"
    assert messages_of(response) == [("success", "Resolved the conflict on server: Keep server version.")]
    conflict.refresh_from_db()
    assert (conflict.status, conflict.resolution, conflict.resolved_by) == ("resolved", "server", admin.user)
    assert (Item.objects.get(pk=item.pk).name, Item.objects.get(pk=item.pk).version) == ("server", 2)
    assert conflict.pk not in listed(admin)
    assert LogEntry.objects.get().change_message == "Resolved: Keep server version."
    # The client can push again.
    assert push(alice, {})["conflicts"] == []


def test_apply_client_version_writes_the_clients_change(alice, staff):
    item = changed_item(name="server", category="kept")
    conflict = conflict_on(alice, item, name="client")
    admin = staff()
    response = post(admin, conflict, "client", version_on(shown(admin, conflict)))
    assert messages_of(response) == [("success", "Resolved the conflict on client: Apply client version.")]
    item.refresh_from_db()
    assert (item.name, item.category, item.version) == ("client", "kept", 3)
    conflict.refresh_from_db()
    assert (conflict.status, conflict.resolution, conflict.resolved_record["name"]) == ("resolved", "client", "client")
    assert conflict.pk not in listed(admin)


def test_merge_takes_each_field_from_the_chosen_side(alice, staff):
    item = changed_item(name="server name", category="server cat", price="1.00")
    conflict = conflict_on(alice, item, name="client name", category="client cat", price="9.00")
    admin = staff()
    html = shown(admin, conflict)
    response = post(admin, conflict, "merge", version_on(html), name="client", category="server", price="client")
    assert messages_of(response) == [("success", "Resolved the conflict on client name: Merge.")]
    item.refresh_from_db()
    assert (item.name, item.category, str(item.price), item.version) == ("client name", "server cat", "9.00", 3)
    conflict.refresh_from_db()
    assert conflict.resolution_input == {"name": "client name", "category": "server cat", "price": "9.00"}


def test_a_merge_needs_a_choice_for_every_differing_field(alice, staff):
    item = changed_item(name="server", category="s")
    conflict = conflict_on(alice, item, name="client", category="c")
    admin = staff()
    response = post(admin, conflict, "merge", "2", name="client")
    [(level, text)] = messages_of(response)
    assert level == "error"
    assert "choose the server or the client value of category" in text
    assert (Item.objects.get(pk=item.pk).name, Conflict.objects.get(pk=conflict.pk).status) == ("server", "pending")


def test_a_record_changed_after_the_page_was_drawn_applies_nothing(alice, staff):
    item = changed_item(name="server")
    conflict = conflict_on(alice, item, name="client")
    admin = staff()
    for resolution, picks in [("client", {}), ("server", {}), ("merge", {"name": "client"})]:
        html = shown(admin, conflict)
        Item.objects.filter(pk=item.pk).update(name=f"again before {resolution}")
        response = post(admin, conflict, resolution, version_on(html), **picks)
        [(level, text)] = messages_of(response)
        assert level == "error"
        assert "The server record changed since this page was drawn" in text
        assert "Nothing was applied" in text
        assert response.redirect_chain[-1][0] == page_url(conflict)  # back to the page, which shows it anew
        assert Item.objects.get(pk=item.pk).name == f"again before {resolution}"
        assert Conflict.objects.get(pk=conflict.pk).status == "pending"
    # A page drawn after the change resolves.
    post(admin, conflict, "client", version_on(shown(admin, conflict)))
    assert Item.objects.get(pk=item.pk).name == "client"


def test_a_missing_version_applies_nothing(alice, staff):
    conflict = conflict_on(alice, changed_item(name="server"), name="client")
    admin = staff()
    response = admin.post(resolve_url(conflict), {"resolution": "client"}, follow=True)
    assert "reload it" in messages_of(response)[0][1]
    assert Conflict.objects.get(pk=conflict.pk).status == "pending"


def test_an_invalid_value_is_shown_and_applies_nothing(alice, staff):
    item = changed_item(name="server")
    conflict = conflict_on(alice, item, name="client")
    # A value the entity's serializer refuses (the push would have refused it too).
    Conflict.objects.filter(pk=conflict.pk).update(client={"id": item.pk, "base_version": 1, "price": "abc"})
    admin = staff()
    response = post(admin, conflict, "client", "2")
    assert messages_of(response) == [("error", "Nothing was applied: price: A valid number is required.")]
    assert (Item.objects.get(pk=item.pk).version, Conflict.objects.get(pk=conflict.pk).status) == (2, "pending")


def test_a_deleted_side_says_deleted(alice, staff):
    deleted_on_client = changed_item(name="kept on server")
    body = push(alice, {"items": {"deleted": [{"id": deleted_on_client.pk, "base_version": 1}]}})
    client_deletion = Conflict.objects.get(pk=body["conflicts"][0]["conflict_id"])
    admin = staff()
    html = shown(admin, client_deletion)
    assert [text for _, text in row(html, "name")[1][:3]] == ["kept on server", "kept on server", "deleted"]
    assert "conflict-differs" in row(html, "name")[0]
    assert 'name="pick_name"' not in html  # nothing to merge with a deletion
    post(admin, client_deletion, "client", version_on(html))
    assert not Item.objects.filter(pk=deleted_on_client.pk).exists()

    gone = changed_item(name="last state", category="c")
    pk = gone.pk
    gone.delete()
    server_deletion = conflict_on(alice, Item(pk=pk), name="revived")
    html = shown(admin, server_deletion)
    assert [(c, t) for c, t in row(html, "name")[1][:3]] == [
        ("conflict-deleted", "deleted"),
        ("conflict-deleted", "deleted"),
        ("conflict-value", "revived"),
    ]
    assert version_on(html) == ""
    post(admin, server_deletion, "client", "")
    assert (Item.objects.get(pk=pk).name, Item.objects.get(pk=pk).category) == ("revived", "c")


def test_a_resolved_conflict_shows_its_outcome_without_buttons(alice, staff):
    item = changed_item(name="server")
    conflict = conflict_on(alice, item, name="client")
    admin = staff()
    post(admin, conflict, "client", "2")
    html = shown(admin, conflict)
    assert "Resolved conflict" in html
    assert "Apply client version" in html
    assert "<td>staff</td>" in html
    assert "Result (version 3)" in html
    # Server just before resolution, server at detection, client, result.
    assert [text for _, text in row(html, "name")[1]] == ["server", "server", "client", "client"]
    assert 'name="resolution"' not in html
    assert '<input type="submit"' not in html
    # Posting again does not apply anything twice.
    response = post(admin, conflict, "server", "3")
    assert messages_of(response)[0][0] == "warning"
    assert "already resolved" in messages_of(response)[0][1]
    assert Item.objects.get(pk=item.pk).version == 3


def test_the_resolved_page_shows_the_server_as_it_was_just_before_resolution(alice, staff):
    item = changed_item(name="at detection", category="kept")
    conflict = conflict_on(alice, item, name="client")
    Item.objects.filter(pk=item.pk).update(name="changed since")  # version 3, after the detection
    admin = staff()
    post(admin, conflict, "client", "3")
    html = shown(admin, conflict)
    assert "Server just before resolution (version 3)" in html
    assert "Server at detection (version 2)" in html
    assert [text for _, text in row(html, "name")[1]] == ["changed since", "at detection", "client", "client"]
    conflict.refresh_from_db()
    assert conflict.server_before_resolution["record"]["name"] == "changed since"


def test_records_are_named_by_their_str_in_the_list_the_page_and_the_messages(alice, bob, api, make_user, staff):
    kettle, lamp = changed_item(name="Kettle"), changed_item(name="Lamp")
    on_kettle, on_lamp = conflict_on(alice, kettle, name="x"), conflict_on(bob, lamp, name="y")
    conflict_on(api(make_user("carol", perms="all")), kettle, name="z")  # two conflicts on one record
    lamp_pk = lamp.pk
    lamp.delete()
    admin = staff()
    with CaptureQueriesContext(connection) as queries:
        html = admin.get(ADMIN).content.decode()
    assert html.count(">Kettle</a>") == 2
    assert f">item {lamp_pk} (deleted)</a>" in html
    # The records are loaded once per model, not once per row.
    assert sum(f'"{Item._meta.db_table}"' in q["sql"] for q in queries.captured_queries) == 1
    page = shown(admin, on_kettle)
    assert "<title>Conflict on Kettle |" in page
    assert "Kettle: modified conflict (pending)" in re.search(r'class="breadcrumbs">(.*?)</(div|ol)>', page, re.S)[1]
    assert f"Kettle</a> (id {kettle.pk})" in page
    assert "<h1>Conflict on item" in shown(admin, on_lamp)
    assert messages_of(post(admin, on_kettle, "server", "2")) == [
        ("success", "Resolved the conflict on Kettle: Keep server version.")
    ]


def test_when_the_client_deleted_the_main_button_keeps_the_server_version(alice, bob, staff):
    item = changed_item(name="server")
    body = push(alice, {"items": {"deleted": [{"id": item.pk, "base_version": 1}]}})
    conflict = Conflict.objects.get(pk=body["conflicts"][0]["conflict_id"])
    html = shown(admin := staff(), conflict)
    assert '<input type="submit" class="default" value="Keep server version">' in html
    assert '<input type="submit" class="conflict-destructive" value="Apply client version: delete the record">' in html
    assert html.count('class="default"') == 1
    # A change (not a deletion) keeps "Apply client version" as the main button.
    other = conflict_on(bob, changed_item(name="other"), name="client")
    html = shown(admin, other)
    assert '<input type="submit" class="default" value="Apply client version">' in html
    assert html.count('class="default"') == 1


def test_the_bulk_action_keeps_the_server_version_and_skips_resolved_ones(alice, api, make_user, staff):
    bob = api(make_user("bob", perms="all"))
    first, second = changed_item(name="first"), changed_item(name="second")
    a, b = conflict_on(alice, first, name="x"), conflict_on(bob, second, name="y")
    done = conflict_on(api(make_user("carol", perms="all")), changed_item(name="third"), name="z")
    admin = staff()
    post(admin, done, "client", "2")
    data = {"action": "keep_server_version", "_selected_action": [a.pk, b.pk, done.pk]}
    response = admin.post(f"{ADMIN}?status=all", data, follow=True)
    assert messages_of(response) == [
        ("success", "Kept the server version of 2 conflicts."),
        ("warning", "Skipped 1 conflict already resolved."),
    ]
    statuses = dict(Conflict.objects.values_list("pk", "resolution"))
    assert (statuses[a.pk], statuses[b.pk], statuses[done.pk]) == ("server", "server", "client")
    assert [i.name for i in Item.objects.order_by("pk")] == ["first", "second", "z"]
    assert listed(admin) == set()


def test_without_resolve_permission_staff_see_no_buttons_and_cannot_resolve(alice, staff):
    item = changed_item(name="server")
    conflict = conflict_on(alice, item, name="client")
    viewer = staff("viewer", perms=("view_conflict",))
    assert listed(viewer) == {conflict.pk}
    html = shown(viewer, conflict)
    assert "server" in html
    assert "client" in html
    assert 'value="Keep server version"' not in html
    assert 'value="Apply client version"' not in html
    assert 'name="pick_name"' not in html
    assert "needs the “Can resolve sync conflicts” permission" in html
    for resolution in ("server", "client", "merge"):
        response = viewer.post(resolve_url(conflict), {"resolution": resolution, "version": "2", "pick_name": "client"})
        assert response.status_code == 403
    response = viewer.post(ADMIN, {"action": "keep_server_version", "_selected_action": [conflict.pk]}, follow=True)
    assert (response.status_code, messages_of(response)) == (200, [])  # no actions for them: nothing ran
    assert "keep_server_version" not in viewer.get(ADMIN).content.decode()
    assert (Conflict.objects.get(pk=conflict.pk).status, Item.objects.get(pk=item.pk).name) == ("pending", "server")
    # Nobody adds, edits or deletes conflict rows.
    assert staff("boss", perms="all").get(f"{ADMIN}add/").status_code == 403
    assert viewer.post(page_url(conflict), {"status": "resolved"}).status_code == 405
    assert viewer.get(f"{ADMIN}{conflict.pk}/delete/").status_code == 403
    # Without view permission there is nothing to see.
    nobody = staff("nobody", perms=())
    assert nobody.get(ADMIN).status_code == 403
    assert nobody.get(page_url(conflict)).status_code == 403


def test_the_entity_admin_shows_only_its_models_conflicts(alice, staff, admin_user):
    item_conflict = conflict_on(alice, changed_item(name="server"), name="client")
    note = Note.objects.create(owner=alice.user, text="n")
    note_conflict = Conflict.objects.create(
        user=alice.user,
        endpoint="/sync/notes-lww/",
        entity="notes",
        content_type=ContentType.objects.get_for_model(Note),
        object_pk=str(note.pk),
        kind="modified",
        client={"id": note.pk, "base_version": 1, "text": "client", "owner": admin_user.pk},
        server={"id": note.pk, "version": 1, "text": "n"},
    )
    admin = staff()
    # A scope field is read-only to clients: applying their change never writes it, so it is no choice.
    note_page = shown(admin, note_conflict)
    assert "conflict-differs" in row(note_page, "text")[0]
    assert "conflict-differs" not in row(note_page, "owner")[0]
    proxy = "/admin/testapp/conflictingitem/"
    assert listed(admin) == {item_conflict.pk, note_conflict.pk}
    assert listed(admin, url=proxy) == {item_conflict.pk}
    assert "Conflicting items" in admin.get("/admin/").content.decode()
    assert admin.get(f"{proxy}{note_conflict.pk}/change/", follow=True).redirect_chain[-1][0] == "/admin/"
    assert (
        admin.post(f"{proxy}{note_conflict.pk}/resolve/", {"resolution": "server", "version": "1"}).status_code == 404
    )
    # Its page resolves like the main one, and returns to its own list.
    html = admin.get(f"{proxy}{item_conflict.pk}/change/").content.decode()
    assert f'action="{proxy}{item_conflict.pk}/resolve/"' in html
    response = admin.post(f"{proxy}{item_conflict.pk}/resolve/", {"resolution": "client", "version": "2"}, follow=True)
    assert response.redirect_chain[-1][0] == proxy
    assert Conflict.objects.get(pk=item_conflict.pk).resolution == "client"
    # The proxy's own view permission is enough to look, not to resolve.
    proxy_viewer = staff("proxy-viewer", perms=())
    proxy_viewer.user.user_permissions.set(Permission.objects.filter(codename="view_conflictingitem"))
    assert listed(proxy_viewer, "?status=all", url=proxy) == {item_conflict.pk}
    assert proxy_viewer.get(ADMIN).status_code == 403


def test_diffs_compare_values_as_the_model_field_does():
    server = {"name": "a", "category": "", "price": "3.50"}
    diff = diff_records(["name", "category", "price"], server, {"name": "b", "price": 3.5}, model=Item)
    assert [(f.field, f.server, f.client, f.differs) for f in diff.fields] == [
        ("name", "a", "b", True),
        ("category", "", NOT_SENT, False),
        ("price", "3.50", 3.5, False),
    ]
    deleted = diff_records(["name"], None, {"name": "b"}, model=Item)
    assert (deleted.server_deleted, deleted.fields[0].server, deleted.fields[0].differs) == (True, DELETED, True)
    assert [format_value(v).text for v in (None, "", True, {"b": 1, "a": "<"}, DELETED)] == [
        "(none)",
        "(empty)",
        "true",
        '{"a": "<", "b": 1}',
        "deleted",
    ]


def test_applying_a_change_needs_the_permission_a_push_would_need(alice, staff):
    item = changed_item(name="server")
    conflict = conflict_on(alice, item, name="client")
    resolver = staff("resolver", perms=("view_conflict", "resolve_conflict"))
    response = post(resolver, conflict, "client", version_on(shown(resolver, conflict)))
    assert messages_of(response) == [("error", "Nothing was applied: you lack the testapp.change_item permission.")]
    conflict.refresh_from_db()
    assert conflict.status == Conflict.Status.PENDING
    assert Item.objects.get(pk=item.pk).name == "server"
    response = post(resolver, conflict, "server", version_on(shown(resolver, conflict)))
    assert messages_of(response)[0][0] == "success"


def test_the_admin_index_says_how_many_conflicts_are_pending(alice, bob, staff, admin_user, monkeypatch):
    monkeypatch.setattr(django_admin.site, "index_template", "offline_sync/admin/index.html")
    conflict_on(alice, changed_item(name="a"), name="x")
    done = conflict_on(bob, changed_item(name="b"), name="y")
    Conflict.objects.create(  # a conflict on another model: in the overall list, not in the items' one
        user=alice.user,
        endpoint="/sync/notes-lww/",
        entity="notes",
        content_type=ContentType.objects.get_for_model(Note),
        object_pk="1",
        kind="modified",
        client={"id": 1, "base_version": 1, "text": "client"},
        server=None,
    )
    post(staff(), done, "server", "2")

    html = staff("viewer").get("/admin/").content.decode()
    assert '<a href="/admin/offline_sync/conflict/">Conflicts</a>: <strong>2 pending</strong>' in html
    assert '<a href="/admin/testapp/conflictingitem/">Conflicting items</a>: <strong>1 pending</strong>' in html
    # Staff who may not view conflicts are not told about them.
    html = staff("outsider", perms=("change_item",)).get("/admin/").content.decode()
    assert "Sync conflicts" not in html
    assert "pending" not in html


class BrandedAdminSite(AdminSite):
    """A project's own site, keeping the default name "admin" (AdminSite() without name=), as admin.site."""

    index_template = "offline_sync/admin/index.html"


branded = BrandedAdminSite()
branded.register(Conflict, ConflictAdmin)
# Served instead of admin.site, on which offline_sync and testapp still register their models.
urlpatterns = [path("branded/", branded.urls), *test_urls.urlpatterns[1:]]


@override_settings(ROOT_URLCONF=__name__)
def test_the_index_count_comes_from_the_site_that_serves_the_index(alice, staff):
    conflict_on(alice, changed_item(name="a"), name="x")
    response = staff().get("/branded/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<a href="/branded/offline_sync/conflict/">Conflicts</a>: <strong>1 pending</strong>' in html
    assert "Conflicting items" not in html  # registered on admin.site only


def test_the_index_count_works_without_the_request_context_processor(alice, staff, monkeypatch, settings):
    """The admin runs without context_processors.request (check admin.W411 is only a warning)."""
    monkeypatch.setattr(django_admin.site, "index_template", "offline_sync/admin/index.html")
    conflict_on(alice, changed_item(name="a"), name="x")
    admin = staff()
    options = settings.TEMPLATES[0]["OPTIONS"]
    processors = [p for p in options["context_processors"] if p != "django.template.context_processors.request"]
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "OPTIONS": {**options, "context_processors": processors}}]
    response = admin.get("/admin/")
    assert response.status_code == 200
    assert "<strong>1 pending</strong>" in response.content.decode()


def test_the_conflict_page_uses_the_admins_own_breadcrumbs_and_one_history_button(alice, staff):
    """Django 6 marks breadcrumbs up as <ol> (5.2: <div>) and shows the object tools beside the title."""
    conflict = conflict_on(alice, changed_item(name="Kettle"), name="x")
    admin = staff()
    stock = admin.get("/admin/testapp/item/").content.decode()
    html = shown(admin, conflict)

    def breadcrumbs_tag(page):
        return re.search(r'<(\w+) class="breadcrumbs">', page)[1]

    assert breadcrumbs_tag(html) == breadcrumbs_tag(stock)
    assert html.count('class="object-tools"') == 1
    assert f"/admin/offline_sync/conflict/{conflict.pk}/history/" in html


def test_one_conflict_with_an_unparsable_object_pk_does_not_break_the_list(alice, staff):
    """E.g. conflicts kept from before the model's primary key changed type."""
    conflict_on(alice, changed_item(name="fine"), name="x")
    Conflict.objects.create(
        user=alice.user,
        endpoint="/sync/items-cd/",
        entity="items",
        content_type=ContentType.objects.get_for_model(Item),
        object_pk="not-a-number",
        kind="modified",
        client={"id": "not-a-number", "base_version": 1},
        server=None,
    )
    response = staff().get(ADMIN)
    assert response.status_code == 200
    assert ">fine</a>" in response.content.decode()
    assert ">item not-a-number (deleted)</a>" in response.content.decode()


def api_resolve(client, conflict_id, resolution, record=None):
    body = {"resolution": resolution, **({"record": record} if record is not None else {})}
    return client.post(f"/sync/conflicts/{conflict_id}/resolve/", body, format="json")


def test_the_api_records_the_server_before_a_merge(alice):
    item = changed_item(name="a", category="c")
    conflict = conflict_on(alice, item, name="client")
    Item.objects.filter(pk=item.pk).update(category="since")  # version 3
    assert api_resolve(alice, conflict.pk, "merge", {"name": "merged"}).status_code == 200
    conflict.refresh_from_db()
    before = conflict.server_before_resolution["record"]
    assert (before["version"], before["name"], before["category"]) == (3, "a", "since")
    assert conflict.resolved_record["version"] == 4


def test_the_api_records_the_server_before_applying_a_deletion(alice):
    item = changed_item(name="a")
    body = push(alice, {"items": {"deleted": [{"id": item.pk, "base_version": 1}]}})
    conflict_id = body["conflicts"][0]["conflict_id"]
    assert api_resolve(alice, conflict_id, "client").json()["record"] is None
    conflict = Conflict.objects.get(pk=conflict_id)
    assert conflict.server_before_resolution["record"]["name"] == "a"
    assert conflict.resolved_record is None


def test_restoring_a_record_deleted_since_detection_records_it_deleted_before(alice, staff):
    item = changed_item(name="a")
    conflict = conflict_on(alice, item, name="revived")
    Item.objects.filter(pk=item.pk).delete()
    assert api_resolve(alice, conflict.pk, "client").status_code == 200
    conflict.refresh_from_db()
    assert conflict.server_before_resolution == {"record": None}
    html = shown(staff(), conflict)
    assert "Server just before resolution (deleted)" in html
    assert [t for _, t in row(html, "name")[1]] == ["deleted", "a", "revived", "revived"]


def test_a_conflict_resolved_before_that_was_kept_shows_the_detection_snapshot(alice, staff):
    item = changed_item(name="at detection")
    conflict = conflict_on(alice, item, name="client")
    Item.objects.filter(pk=item.pk).update(name="changed since")
    admin = staff()
    post(admin, conflict, "client", "3")
    Conflict.objects.filter(pk=conflict.pk).update(server_before_resolution=None)  # as rows resolved before 0003
    html = shown(admin, conflict)
    assert "Server just before resolution (not kept: as at detection, version 2)" in html
    assert [t for _, t in row(html, "name")[1]] == ["at detection", "at detection", "client", "client"]
