"""The model zoo (tests/zoo): every sync path over the model features host projects actually have.

Each entity of the zoo is described once in ``SPECS`` (its endpoints, the parents a record needs, the wire
values of a new record and of a partial change). The tests drive every path over every entity through the
HTTP API (pushes with both patterns, pulls, the conflicts API, the admin) and through the ORM, and assert
what comes back on the wire.

Hostile-but-ordinary inputs (a unique clash, a value a validator refuses, a dangling foreign key, ...) must
end in a JSON 4xx in the protocol's envelope ``{"error": ..., "detail": ...}`` that applied nothing
(``refused``: every zoo table and offline_sync's tombstones, stored pushes and conflicts are compared), never
in a 500 or an HTML page. The API clients answer server errors as responses (``raise_request_exception``
is off), so a failure names the exception and where it was raised (``describe``).
"""

import json
import re
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.db import models
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from offline_sync.models import Conflict, SyncRequest, Tombstone
from tests.zoo.models import (
    Animal,
    Aquarium,
    Enclosure,
    Exhibit,
    FieldNote,
    Observation,
    Species,
    Volunteer,
    Zone,
    team_of,
)

pytestmark = pytest.mark.django_db(transaction=True)

CONFLICTS = "/sync/conflicts/"

# --- records the tests start from --------------------------------------------------------------------


def make_zone(code="PA01"):
    return Zone.objects.get_or_create(code=code, defaults={"name": f"Zone {code}", "climate": "arid", "capacity": 9})[0]


def make_species():
    return Species.objects.create(latin_name=f"Parens {uuid.uuid4().hex[:12]}")


def make_enclosure(user):
    return Enclosure.objects.create(team=team_of(user), zone=make_zone(), name=f"Pen of {user}", area_m2="10.00")


def make_animal(user):
    return Animal.objects.create(team=team_of(user), species=make_species(), name=f"Parent of {user}")


# --- the entities --------------------------------------------------------------------------------------


@dataclass
class Spec:
    """One entity of the zoo, as the tests drive it."""

    entity: str  # its name on the wire
    model: type
    group: str  # its endpoints: /sync/zoo/<group>/ pulls, <group>-lww/ last write wins, <group>-cd/ conflicts
    new: Callable  # (parents, n) -> the wire values of a new record (n tells records apart)
    edit: Callable  # (parents) -> a partial change, in wire values
    parents: Callable = lambda user: {}  # (user) -> ORM-made records a new one points at: {field: wire id}
    scope: str = None  # the scope field the server sets: "team" (a UUID) or "owner" (a user)
    conflict_admin: str = None  # model name of its EntityConflictAdmin's Conflict proxy

    def __str__(self):
        return self.entity


def observation_values(parents, n):
    return {
        "animal": parents["animal"],
        "kind": "health",
        "seen_on": "2024-02-29",
        "seen_at": "23:59:59.999999",
        "lasted": 5400.5,
        "measurements": {"temp_c": 38.6, "pulse": 72, "ok": True, "note": None, "teeth": [1, 2]},
        "text": f"Limping  slightly, day {n}\n",
    }


def observation_edit(parents):
    return {"lasted": None, "measurements": None, "text": ""}


SPECS = [
    Spec(
        "zones",
        Zone,
        "zones",
        new=lambda p, n: {
            "code": f"NA{n:02d}",
            "name": f"North {n}",
            "climate": "polar",
            "capacity": 12,
            "opened_on": "2019-04-01",
        },
        edit=lambda p: {"capacity": 40, "opened_on": None},
        conflict_admin="conflictingzone",
    ),
    Spec(
        "enclosures",
        Enclosure,
        "enclosures",
        parents=lambda user: {"zone": make_zone().code},
        new=lambda p, n: {"zone": p["zone"], "name": f"Pen {n}", "area_m2": "1250.50", "heated": True, "notes": ""},
        edit=lambda p: {"area_m2": "99.05", "notes": "  refurbished\n"},
        scope="team",
        conflict_admin="conflictingenclosure",
    ),
    Spec(
        "species",
        Species,
        "species",
        new=lambda p, n: {
            "latin_name": f"Panthera leo {n}",
            "common_name": "Lion",
            "status": "VU",
            "traits": {"social": True, "legs": 4, "diet": ["meat"], "weight_kg": {"min": 120.5, "max": 250}},
        },
        edit=lambda p: {"status": "EN", "traits": {"social": False, "note": None}},
        conflict_admin="conflictingspecies",
    ),
    Spec(
        "animals",
        Animal,
        "animals",
        parents=lambda user: {"species": make_species().code, "enclosure": make_enclosure(user).pk},
        new=lambda p, n: {
            "species": p["species"],
            "enclosure": None,
            "name": f"Leo {n}",
            "sex": "m",
            "born_on": "2015-06-30",
            "fed_at": "07:45:00",
            "weight_kg": "190.250",
            "diet": [{"food": "beef", "kg": 7.5}],
        },
        edit=lambda p: {"enclosure": p["enclosure"], "fed_at": "18:00:00.500000", "weight_kg": "201.000"},
        scope="team",
        conflict_admin="conflictinganimal",
    ),
    Spec(
        "observations",
        Observation,
        "observations",
        parents=lambda user: {"animal": str(make_animal(user).pk)},
        new=observation_values,
        edit=observation_edit,
        scope="owner",
        conflict_admin="conflictingobservation",
    ),
    Spec(
        "field_notes",
        FieldNote,
        "field-notes",
        parents=lambda user: {"animal": str(make_animal(user).pk)},
        new=observation_values,
        edit=observation_edit,
        scope="owner",
        conflict_admin="conflictingobservation",  # a proxy's conflicts are recorded under its concrete model
    ),
    Spec(
        "exhibits",
        Exhibit,
        "exhibits",
        new=lambda p, n: {
            "title": f"Night house {n}",
            "opens_at": "09:00:00",
            "closes_at": "17:30:00",
            "free_entry": False,
            "visitors_per_hour": 120,
        },
        edit=lambda p: {"free_entry": True, "closes_at": "21:00:00"},
        conflict_admin="conflictingexhibit",
    ),
    Spec(
        "aquariums",
        Aquarium,
        "aquariums",
        new=lambda p, n: {
            "title": f"Reef {n}",
            "opens_at": "10:00:00",
            "closes_at": "18:00:00",
            "free_entry": True,
            "visitors_per_hour": 200,
            "litres": 250000,
            "salt_water": True,
            "temperature_c": "24.5",
        },
        edit=lambda p: {"title": "Deep reef", "temperature_c": "26.0"},  # a parent's field and a child's
        conflict_admin="conflictingaquarium",
    ),
    Spec(
        "volunteers",
        Volunteer,
        "volunteers",
        new=lambda p, n: {
            "name": f"Volunteer {n}",
            "phone": "+44 20 7946 0958",
            "shift": 14400.0,
            "hourly_rate": None,
            "active": True,
        },
        edit=lambda p: {"hourly_rate": "12.75", "shift": 1800.25},
        conflict_admin="conflictingvolunteer",
    ),
]
SPEC = {spec.entity: spec for spec in SPECS}
SCOPED = [spec for spec in SPECS if spec.scope]


def specs(*names):
    return [SPEC[name] for name in names]


@pytest.fixture(params=SPECS, ids=str)
def spec(request):
    return request.param


@pytest.fixture(params=["lww", "cd"])
def pattern(request):
    """The push pattern: last write wins, or conflict detection."""
    return request.param


# --- clients -------------------------------------------------------------------------------------------


@pytest.fixture
def keeper(django_user_model):
    """``keeper("alice")``: an API client (token auth) of a user with every model permission of the zoo."""

    def make(username):
        user = django_user_model.objects.create_user(username=username, password="pw")
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="zoo"))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        client.raise_request_exception = False  # a server error is an outcome to assert, not a crash
        client.user = user
        return client

    return make


@pytest.fixture
def alice(keeper):
    return keeper("alice")


@pytest.fixture
def bob(keeper):
    return keeper("bob")


@pytest.fixture
def staff(admin_user):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    return client


# --- requests and what they answer ---------------------------------------------------------------------


def url(spec, pattern=None):
    return f"/sync/zoo/{spec.group}{'' if pattern is None else '-' + pattern}/"


def push(client, spec, pattern, changes, *, last_sync=None):
    body = {"sync_id": str(uuid.uuid4()), "last_sync": last_sync, "device_id": "phone-1", "changes": changes}
    return client.post(url(spec, pattern), body, format="json")


def resolve(client, conflict_id, resolution, record=None):
    body = {"resolution": resolution, **({"record": record} if record is not None else {})}
    return client.post(f"{CONFLICTS}{conflict_id}/resolve/", body, format="json")


def describe(response):
    """A response in a line or two, for assertion messages; a server error names its exception and where."""
    if getattr(response, "exc_info", None):
        exc, frames = response.exc_info[1], traceback.extract_tb(response.exc_info[2])
        ours = [f for f in frames if "/offline_sync/" in f.filename]
        where = f" in offline_sync/{ours[-1].filename.split('/offline_sync/')[-1]}:{ours[-1].lineno}" if ours else ""
        return f"{response.status_code} {type(exc).__name__}: {exc}{where}"
    if response.get("Content-Type", "").startswith("application/json"):
        return f"{response.status_code} {response.content.decode()[:3000]}"
    return f"{response.status_code} {response.get('Content-Type')}: {response.content[:300]!r}"


def ok(response):
    assert response.status_code == 200, describe(response)
    return response.json()


def snapshot():
    """Every row a push may write: the zoo's tables, offline_sync's tombstones, stored pushes and conflicts."""
    zoo = [model for model in apps.get_app_config("zoo").get_models() if not model._meta.proxy]
    return {
        model._meta.db_table: list(model._base_manager.order_by("pk").values())
        for model in [*zoo, Tombstone, SyncRequest, Conflict]
    }


def refused(response, before, status, error):
    """Assert the invariant: a JSON ``status`` with ``error`` in the envelope, that applied nothing; return detail."""
    assert response.status_code < 500, f"expected {status} {error}, got a server error: {describe(response)}"
    assert response.get("Content-Type", "").startswith("application/json"), f"not JSON: {describe(response)}"
    body = response.json()
    got = (response.status_code, body.get("error"))
    assert got == (status, error), f"expected {status} {error}: {describe(response)}"
    assert set(body) >= {"error", "detail"}, f"not the envelope: {body}"
    assert snapshot() == before, f"the refused push applied something: {describe(response)}"
    return body["detail"]


def at(detail, *path):
    """``detail[path[0]][path[1]]...``, failing with the whole detail where the path stops."""
    node = detail
    for key in path:
        assert isinstance(node, dict), f"detail has no {'.'.join(path)}: {json.dumps(detail)}"
        assert key in node, f"detail has no {'.'.join(path)}: {json.dumps(detail)}"
        node = node[key]
    return node


def pull_all(client, spec, since=None, limit=1000):
    """Pull page by page until ``has_more`` is false, as a device applies them.

    Returns ``(pages, records, deleted, cursor)``: the entity's records the device holds after the pages
    (by id) and the ids the pages told it to delete.
    """
    pages, records, deleted = [], {}, []
    while True:
        params = {"limit": limit, **({"since": since} if since else {})}
        page = ok(client.get(url(spec), params))
        pages.append(page)
        changes = page["changes"][spec.entity]
        for record in changes["records"]:
            records[record["id"]] = record
        for pk in changes["deleted"]:
            records.pop(pk, None)
            deleted.append(pk)
        since = page["cursor"]
        if not page["has_more"]:
            return pages, records, deleted, since


def cursor_of(client, spec):
    return pull_all(client, spec)[3]


# --- values: wire and ORM ------------------------------------------------------------------------------


def wire_id(obj):
    """A record's id as the wire carries it (UUIDs as strings)."""
    return str(obj.pk) if isinstance(obj.pk, uuid.UUID) else obj.pk


def server_wire(spec, user):
    """The scope values the server sets on a user's records, as pulls show them."""
    return {"team": {"team": str(team_of(user))}, "owner": {"owner": user.pk}, None: {}}[spec.scope]


def server_values(spec, user):
    return {"team": {"team": team_of(user)}, "owner": {"owner": user}, None: {}}[spec.scope]


def orm_values(model, wire):
    """Wire values as ORM keyword arguments, typed as a host's own code would write them."""
    values = {}
    for name, value in wire.items():
        field = model._meta.get_field(name)
        if field.is_relation:
            values[field.attname] = value
        elif isinstance(field, models.DurationField) and value is not None:
            values[name] = timedelta(seconds=value)
        elif isinstance(field, models.JSONField):
            values[name] = value
        else:
            values[name] = field.to_python(value)
    return values


def create(spec, user, parents, n=1):
    """A record made through the ORM (``objects.create``), at version 1."""
    return spec.model.objects.create(**orm_values(spec.model, spec.new(parents, n)), **server_values(spec, user))


def changed(spec, user, parents):
    """A record at version 2 (saved again), so that a change based on version 1 is stale."""
    obj = create(spec, user, parents)
    obj.save()
    return obj


def expected(spec, user, parents, n=1, **wire):
    """The wire record of ``create(spec, user, parents, n)`` with ``wire`` over it."""
    return {**spec.new(parents, n), **server_wire(spec, user), **wire}


def fields_of(record, like):
    """The fields of ``record`` that ``like`` names, to compare with it."""
    return {name: record.get(name, "<absent>") for name in like}


def stale_conflict(client, spec, obj, change):
    """A pending conflict: ``client`` changes ``obj`` from version 1 while the server holds version 2."""
    item = {"id": wire_id(obj), "base_version": 1, **change}
    body = ok(push(client, spec, "cd", {spec.entity: {"modified": [item]}}))
    assert len(body["conflicts"]) == 1, f"expected one conflict: {body['conflicts']}"
    return body["conflicts"][0]


def without_relations(spec, change):
    return {name: value for name, value in change.items() if not spec.model._meta.get_field(name).is_relation}


# --- pushes --------------------------------------------------------------------------------------------


def test_added_records_round_trip_every_value(spec, pattern, alice):
    parents = spec.parents(alice.user)
    added = [{"local_id": f"new-{n}", **spec.new(parents, n)} for n in (1, 2)]
    body = ok(push(alice, spec, pattern, {spec.entity: {"added": added}}))
    ids = body["id_map"][spec.entity]
    assert set(ids) == {"new-1", "new-2"}, body["id_map"]
    assert body["conflicts"] == []
    assert spec.model._base_manager.filter(pk__in=list(ids.values())).count() == 2
    answered = {record["id"]: record for record in body["changes"][spec.entity]["records"]}
    for n in (1, 2):
        want = {"id": ids[f"new-{n}"], "version": 1, **expected(spec, alice.user, parents, n)}
        assert fields_of(answered.get(ids[f"new-{n}"], {}), want) == want, "the push's answer"
    # A full pull shows the same records.
    pulled = pull_all(alice, spec)[1]
    assert {pk: pulled.get(pk) for pk in ids.values()} == {pk: answered[pk] for pk in ids.values()}


def test_modified_records_change_only_the_fields_sent(spec, pattern, alice):
    parents = spec.parents(alice.user)
    obj, untouched = create(spec, alice.user, parents, 1), create(spec, alice.user, parents, 2)
    cursor = cursor_of(alice, spec)
    change = spec.edit(parents)
    item = {"id": wire_id(obj), "base_version": 1, **change}
    body = ok(push(alice, spec, pattern, {spec.entity: {"modified": [item]}}, last_sync=cursor))
    assert body["conflicts"] == []
    records = body["changes"][spec.entity]["records"]
    assert [record["id"] for record in records] == [wire_id(obj)], "the delta holds the modified record only"
    want = {"version": 2, **expected(spec, alice.user, parents, 1, **change)}
    assert fields_of(records[0], want) == want
    assert spec.model._base_manager.get(pk=untouched.pk).version == 1


def test_deleted_records_leave_every_device(spec, pattern, alice):
    parents = spec.parents(alice.user)
    doomed, kept = create(spec, alice.user, parents, 1), create(spec, alice.user, parents, 2)
    cursor = cursor_of(alice, spec)
    item = {"id": wire_id(doomed), "base_version": 1}
    body = ok(push(alice, spec, pattern, {spec.entity: {"deleted": [item]}}, last_sync=cursor))
    assert body["changes"][spec.entity]["deleted"] == [wire_id(doomed)]
    assert not spec.model._base_manager.filter(pk=doomed.pk).exists()
    assert spec.model._base_manager.filter(pk=kept.pk).exists()
    _, records, deleted, _ = pull_all(alice, spec, since=cursor)
    assert (records, deleted) == ({}, [wire_id(doomed)]), "a delta pull from before the push"


def test_last_write_wins_applies_a_change_based_on_an_old_version(spec, alice):
    parents = spec.parents(alice.user)
    obj = changed(spec, alice.user, parents)
    change = spec.edit(parents)
    item = {"id": wire_id(obj), "base_version": 1, **change}
    body = ok(push(alice, spec, "lww", {spec.entity: {"modified": [item]}}))
    assert body["conflicts"] == []
    record = pull_all(alice, spec)[1][wire_id(obj)]
    want = {"version": 3, **expected(spec, alice.user, parents, **change)}
    assert fields_of(record, want) == want


def test_conflict_detection_sets_a_stale_change_aside(spec, alice):
    parents = spec.parents(alice.user)
    obj = changed(spec, alice.user, parents)
    change = spec.edit(parents)
    conflict = stale_conflict(alice, spec, obj, change)
    assert (conflict["entity"], conflict["id"], conflict["kind"]) == (spec.entity, wire_id(obj), "modified")
    assert conflict["client"] == {"id": wire_id(obj), "base_version": 1, **change}
    server = {"id": wire_id(obj), "version": 2, **expected(spec, alice.user, parents)}
    assert fields_of(conflict["server"], server) == server
    assert fields_of(pull_all(alice, spec)[1][wire_id(obj)], server) == server, "the conflicting change must not apply"
    refusal = push(alice, spec, "cd", {})
    assert (refusal.status_code, refusal.json()["error"]) == (409, "unresolved_conflicts"), describe(refusal)


@pytest.mark.parametrize("resolution", ["server", "client", "merge"])
def test_conflicts_resolve_through_the_api(spec, alice, resolution):
    parents = spec.parents(alice.user)
    obj = changed(spec, alice.user, parents)
    change = spec.edit(parents)
    merged = dict(list(change.items())[:1])  # the merge keeps the client's first field only
    conflict = stale_conflict(alice, spec, obj, change)
    answer = ok(resolve(alice, conflict["conflict_id"], resolution, merged if resolution == "merge" else None))
    outcome = (answer["conflict_id"], answer["status"], answer["resolution"])
    assert outcome == (conflict["conflict_id"], "resolved", resolution)
    want = {
        "server": {"version": 2, **expected(spec, alice.user, parents)},
        "client": {"version": 3, **expected(spec, alice.user, parents, **change)},
        "merge": {"version": 3, **expected(spec, alice.user, parents, **merged)},
    }[resolution]
    assert fields_of(answer["record"] or {}, want) == want, "the resolved record"
    assert pull_all(alice, spec)[1][wire_id(obj)] == answer["record"], "the next pull shows the resolved record"
    assert ok(alice.get(CONFLICTS)) == {"conflicts": []}
    ok(push(alice, spec, "cd", {}))  # no longer blocked


def test_client_resolution_restores_a_record_deleted_on_the_server(spec, alice):
    parents = spec.parents(alice.user)
    obj = create(spec, alice.user, parents)
    pk = wire_id(obj)
    obj.delete()
    change = spec.edit(parents)
    item = {"id": pk, "base_version": 1, **change}
    body = ok(push(alice, spec, "cd", {spec.entity: {"modified": [item]}}))
    [conflict] = body["conflicts"]
    assert (conflict["id"], conflict["server"]) == (pk, None)
    record = ok(resolve(alice, conflict["conflict_id"], "client"))["record"]
    want = {"id": pk, "version": 2, **expected(spec, alice.user, parents, **change)}
    assert fields_of(record or {}, want) == want, "restored with its id, its last state and the client's change"
    assert pull_all(alice, spec)[1].get(pk) == record


def test_the_admin_shows_a_conflict_side_by_side(spec, alice, staff):
    parents = spec.parents(alice.user)
    obj = changed(spec, alice.user, parents)
    change = spec.edit(parents)
    conflict_id = stale_conflict(alice, spec, obj, change)["conflict_id"]
    for page in (
        f"/admin/offline_sync/conflict/{conflict_id}/change/",
        f"/admin/zoo/{spec.conflict_admin}/{conflict_id}/change/",
    ):
        response = staff.get(page)
        assert response.status_code == 200, f"{page}: {describe(response)}"
        html = response.content.decode()
        assert 'value="Apply client version"' in html, page
        for name in change:
            assert re.search(rf'<tr class="[^"]*conflict-differs[^"]*" data-field="{name}">', html), (
                f"{page}: no highlighted row for {name}"
            )


def test_the_admin_shows_each_record(spec, alice, staff):
    obj = create(spec, alice.user, spec.parents(alice.user))
    opts = spec.model._meta
    for page in (f"/admin/zoo/{opts.model_name}/", f"/admin/zoo/{opts.model_name}/{quote(str(obj.pk))}/change/"):
        response = staff.get(page)
        assert response.status_code == 200, f"{page}: {describe(response)}"


# --- pulls and the ORM ---------------------------------------------------------------------------------


def test_full_and_delta_pulls_page_without_losing_a_change(spec, alice):
    parents = spec.parents(alice.user)
    objs = [create(spec, alice.user, parents, n) for n in range(1, 6)]
    pages, records, _, cursor = pull_all(alice, spec, limit=2)
    assert len(pages) >= 3
    assert [page["full"] for page in pages] == [True] + [False] * (len(pages) - 1)
    assert set(records) == {wire_id(obj) for obj in objs}
    for n, obj in enumerate(objs, 1):
        want = {"version": 1, **expected(spec, alice.user, parents, n)}
        assert fields_of(records[wire_id(obj)], want) == want

    edited, doomed = objs[0], objs[1]
    change = spec.edit(parents)
    for name, value in orm_values(spec.model, change).items():
        setattr(edited, name, value)
    edited.save()
    doomed_pk = wire_id(doomed)
    doomed.delete()
    new = create(spec, alice.user, parents, 6)
    pages, records, deleted, _ = pull_all(alice, spec, since=cursor, limit=1)
    assert not any(page["full"] for page in pages)
    assert set(records) == {wire_id(edited), wire_id(new)}
    assert deleted == [doomed_pk]
    want = {"version": 2, **expected(spec, alice.user, parents, 1, **change)}
    assert fields_of(records[wire_id(edited)], want) == want
    assert records[wire_id(new)]["version"] == 1


WRITE_PATHS = ["create", "save", "update", "bulk_create", "bulk_update", "delete", "queryset_delete"]


@pytest.mark.parametrize("write", WRITE_PATHS)
def test_orm_writes_reach_the_next_delta_pull(spec, alice, write):
    if write == "bulk_create" and spec.model is Aquarium:
        with pytest.raises(ValueError, match="multi-table"):  # Django refuses it: nothing to sync
            Aquarium.objects.bulk_create([Aquarium(title="x")])
        return
    parents = spec.parents(alice.user)
    obj = create(spec, alice.user, parents, 1)
    cursor = cursor_of(alice, spec)
    change = spec.edit(parents)
    values = orm_values(spec.model, change)
    edited = {wire_id(obj): {"version": 2, **expected(spec, alice.user, parents, 1, **change)}}
    gone = []
    if write == "create":
        new = create(spec, alice.user, parents, 2)
        edited = {wire_id(new): {"version": 1, **expected(spec, alice.user, parents, 2)}}
    elif write == "save":
        for name, value in values.items():
            setattr(obj, name, value)
        obj.save()
    elif write == "update":
        assert spec.model.objects.filter(pk=obj.pk).update(**values) == 1
    elif write == "bulk_create":
        scope = server_values(spec, alice.user)
        made = spec.model.objects.bulk_create(
            [spec.model(**orm_values(spec.model, spec.new(parents, n)), **scope) for n in (2, 3)]
        )
        edited = {wire_id(o): {"version": 1, **expected(spec, alice.user, parents, n)} for o, n in zip(made, (2, 3))}
    elif write == "bulk_update":
        for name, value in values.items():
            setattr(obj, name, value)
        spec.model.objects.bulk_update([obj], list(values))
    elif write == "delete":
        gone, edited = [wire_id(obj)], {}
        obj.delete()
    elif write == "queryset_delete":
        gone, edited = [wire_id(obj)], {}
        spec.model.objects.filter(pk=obj.pk).delete()
    _, records, deleted, _ = pull_all(alice, spec, since=cursor)
    assert deleted == gone
    assert {pk: fields_of(record, edited.get(pk, {})) for pk, record in records.items()} == edited


def test_a_soft_deleted_volunteer_leaves_devices_as_a_deletion(pattern, alice):
    spec = SPEC["volunteers"]
    by_orm, by_push, kept = (create(spec, alice.user, {}, n) for n in (1, 2, 3))
    cursor = cursor_of(alice, spec)
    Volunteer.objects.filter(pk=by_orm.pk).update(active=False)
    item = {"id": by_push.pk, "base_version": 1, "active": False}
    body = ok(push(alice, spec, pattern, {"volunteers": {"modified": [item]}}, last_sync=cursor))
    assert sorted(body["changes"]["volunteers"]["deleted"]) == sorted([by_orm.pk, by_push.pk])
    _, records, deleted, _ = pull_all(alice, spec, since=cursor)
    assert (records, sorted(deleted)) == ({}, sorted([by_orm.pk, by_push.pk]))
    assert Volunteer.all_objects.count() == 3, "soft-deleted rows stay"
    assert list(Volunteer.objects.values_list("pk", flat=True)) == [kept.pk]


# --- scopes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SCOPED, ids=str)
def test_scope_fields_are_set_by_the_server_never_by_a_client(spec, pattern, alice, bob):
    parents = spec.parents(alice.user)
    foreign = server_wire(spec, bob.user)
    added = {"local_id": "mine", **spec.new(parents, 1), **foreign}
    body = ok(push(alice, spec, pattern, {spec.entity: {"added": [added]}}))
    pk = body["id_map"][spec.entity]["mine"]
    item = {"id": pk, "base_version": 1, **foreign, **without_relations(spec, spec.edit(parents))}
    ok(push(alice, spec, pattern, {spec.entity: {"modified": [item]}}))
    record = pull_all(alice, spec)[1].get(pk, {})
    want = {"version": 2, **server_wire(spec, alice.user)}
    assert fields_of(record, want) == want, "the client's scope value was applied: the record left alice's scope"
    assert pull_all(bob, spec)[1] == {}, "bob sees nothing of alice's"


@pytest.mark.parametrize("spec", SCOPED, ids=str)
def test_conflict_resolution_never_moves_a_record_out_of_its_scope(spec, alice, bob):
    parents = spec.parents(alice.user)
    obj = changed(spec, alice.user, parents)
    change = {**server_wire(spec, bob.user), **without_relations(spec, spec.edit(parents))}
    conflict = stale_conflict(alice, spec, obj, change)
    record = ok(resolve(alice, conflict["conflict_id"], "client"))["record"]
    want = {"version": 3, **expected(spec, alice.user, parents, **without_relations(spec, spec.edit(parents)))}
    assert fields_of(record or {}, want) == want, "the client's scope value was applied: the record left alice's scope"
    assert fields_of(pull_all(alice, spec)[1].get(wire_id(obj), {}), want) == want, "alice's next pull"


@pytest.mark.parametrize("spec", SCOPED, ids=str)
@pytest.mark.parametrize("action", ["modified", "deleted"])
def test_another_scopes_record_is_not_found(spec, pattern, action, alice, bob):
    parents = spec.parents(bob.user)
    bobs = create(spec, bob.user, parents)
    item = {"id": wire_id(bobs), "base_version": 1}
    if action == "modified":
        item.update(without_relations(spec, spec.edit(parents)))
    before = snapshot()
    detail = refused(push(alice, spec, pattern, {spec.entity: {action: [item]}}), before, 404, "not_found")
    assert detail == {spec.entity: [wire_id(bobs)]}


# --- hostile but ordinary values -----------------------------------------------------------------------

UNIQUE = [  # (entity, the fields of its unique constraint; the constraint's error may name any of them)
    pytest.param(SPEC["zones"], {"code"}, id="zones-unique=True"),
    pytest.param(SPEC["species"], {"latin_name"}, id="species-one-field-UniqueConstraint"),
    pytest.param(SPEC["enclosures"], {"zone", "name", "non_field_errors"}, id="enclosures-two-field-UniqueConstraint"),
    pytest.param(SPEC["animals"], {"team", "name", "non_field_errors"}, id="animals-unique_together"),
]


def unique_values(spec, parents, n):
    """The values of ``spec.new(parents, n)`` that its unique constraint covers (the rest may differ)."""
    values = spec.new(parents, n)
    return {name: values[name] for name in ("code", "latin_name", "name") if name in values}


@pytest.mark.parametrize(("spec", "fields"), UNIQUE)
def test_a_unique_clash_with_an_existing_row_names_the_record_and_field(spec, fields, pattern, alice):
    parents = spec.parents(alice.user)
    create(spec, alice.user, parents, 1)
    before = snapshot()
    added = {"local_id": "dup", **spec.new(parents, 2), **unique_values(spec, parents, 1)}
    response = push(alice, spec, pattern, {spec.entity: {"added": [added]}})
    detail = refused(response, before, 400, "validation_error")
    named = set(at(detail, "changes", spec.entity, "added", "0"))
    assert named, f"the error should name {sorted(fields)}: {json.dumps(detail)}"
    assert named <= fields, f"the error should name {sorted(fields)}: {json.dumps(detail)}"


@pytest.mark.parametrize(("spec", "fields"), UNIQUE)
def test_a_unique_clash_within_one_push_names_the_record_and_field(spec, fields, pattern, alice):
    parents = spec.parents(alice.user)
    before = snapshot()
    added = [
        {"local_id": "first", **spec.new(parents, 1)},
        {"local_id": "second", **spec.new(parents, 2), **unique_values(spec, parents, 1)},
    ]
    response = push(alice, spec, pattern, {spec.entity: {"added": added}})
    detail = refused(response, before, 400, "validation_error")
    named = set(at(detail, "changes", spec.entity, "added", "1"))
    assert named, f"the error should name {sorted(fields)}: {json.dumps(detail)}"
    assert named <= fields, f"the error should name {sorted(fields)}: {json.dumps(detail)}"


@pytest.mark.parametrize(("spec", "fields"), UNIQUE)
def test_a_modification_into_a_unique_clash_names_the_record_and_field(spec, fields, pattern, alice):
    parents = spec.parents(alice.user)
    create(spec, alice.user, parents, 1)
    other = create(spec, alice.user, parents, 2)
    before = snapshot()
    item = {"id": wire_id(other), "base_version": 1, **unique_values(spec, parents, 1)}
    response = push(alice, spec, pattern, {spec.entity: {"modified": [item]}})
    detail = refused(response, before, 400, "validation_error")
    named = set(at(detail, "changes", spec.entity, "modified", "0"))
    assert named, f"the error should name {sorted(fields)}: {json.dumps(detail)}"
    assert named <= fields, f"the error should name {sorted(fields)}: {json.dumps(detail)}"


INVALID = [  # (entity, field, a value its validators or choices refuse)
    pytest.param(SPEC["zones"], "code", "north", id="zones-RegexValidator"),
    pytest.param(SPEC["zones"], "capacity", 0, id="zones-MinValueValidator"),
    pytest.param(SPEC["zones"], "climate", "jungle", id="zones-choices"),
    pytest.param(SPEC["species"], "status", "XX", id="species-choices"),
    pytest.param(SPEC["animals"], "sex", "x", id="animals-choices"),
    pytest.param(SPEC["observations"], "kind", "gossip", id="observations-choices"),
    pytest.param(SPEC["field_notes"], "kind", "gossip", id="field_notes-choices"),
]


@pytest.mark.parametrize(("spec", "field", "value"), INVALID)
@pytest.mark.parametrize("action", ["added", "modified"])
def test_a_value_the_model_refuses_names_the_record_and_field(spec, field, value, action, pattern, alice):
    parents = spec.parents(alice.user)
    obj = create(spec, alice.user, parents, 1)
    before = snapshot()
    if action == "added":
        item = {"local_id": "bad", **spec.new(parents, 2), field: value}
    else:
        item = {"id": wire_id(obj), "base_version": 1, field: value}
    response = push(alice, spec, pattern, {spec.entity: {action: [item]}})
    detail = refused(response, before, 400, "validation_error")
    assert set(at(detail, "changes", spec.entity, action, "0")) == {field}, json.dumps(detail)


MISSING_UUID = "00000000-0000-4000-8000-000000000000"
DANGLING = [  # (entity, foreign key, an id no record has)
    pytest.param(SPEC["enclosures"], "zone", "ZZ99", id="enclosures-to_field"),
    pytest.param(SPEC["animals"], "species", "sp-missing", id="animals-text-pk"),
    pytest.param(SPEC["animals"], "enclosure", 999999, id="animals-nullable"),
    pytest.param(SPEC["observations"], "animal", MISSING_UUID, id="observations-uuid-pk"),
    pytest.param(SPEC["field_notes"], "animal", MISSING_UUID, id="field_notes-uuid-pk"),
]


@pytest.mark.parametrize(("spec", "field", "value"), DANGLING)
@pytest.mark.parametrize("action", ["added", "modified"])
def test_a_dangling_foreign_key_is_not_found(spec, field, value, action, pattern, alice):
    parents = spec.parents(alice.user)
    obj = create(spec, alice.user, parents, 1)
    before = snapshot()
    if action == "added":
        item, ref = {"local_id": "orphan", **spec.new(parents, 2), field: value}, {"local_id": "orphan"}
    else:
        item, ref = {"id": wire_id(obj), "base_version": 1, field: value}, {"id": wire_id(obj)}
    response = push(alice, spec, pattern, {spec.entity: {action: [item]}})
    detail = refused(response, before, 404, "not_found")
    assert detail == {spec.entity: [{**ref, field: value}]}


@pytest.mark.parametrize("spec", specs("exhibits", "aquariums"), ids=str)
def test_a_field_with_a_database_default_may_be_omitted(spec, pattern, alice):
    values = spec.new({}, 1)
    del values["visitors_per_hour"]
    body = ok(push(alice, spec, pattern, {spec.entity: {"added": [{"local_id": "x", **values}]}}))
    pk = body["id_map"][spec.entity]["x"]
    assert spec.model._base_manager.get(pk=pk).visitors_per_hour == 60
    want = {**values, "visitors_per_hour": 60, "version": 1}
    assert fields_of(pull_all(alice, spec)[1].get(pk, {}), want) == want


PROTECTED = [  # (parent entity, child entity, the child's foreign key)
    pytest.param(SPEC["zones"], SPEC["enclosures"], "zone", id="zones-PROTECT"),
    pytest.param(SPEC["species"], SPEC["animals"], "species", id="species-RESTRICT"),
]


@pytest.mark.parametrize(("parent", "child", "fk"), PROTECTED)
def test_deleting_a_protected_parent_names_the_blocking_children(parent, child, fk, pattern, alice):
    parents = child.parents(alice.user)
    blocking = create(child, alice.user, parents)
    before = snapshot()
    item = {"id": wire_id(getattr(blocking, fk)), "base_version": 1}
    response = push(alice, parent, pattern, {parent.entity: {"deleted": [item]}})
    detail = refused(response, before, 400, "validation_error")
    text = json.dumps(detail)
    assert re.search(rf"(?<![\w-]){re.escape(str(wire_id(blocking)))}(?![\w-])", text), (
        f"the error should name the blocking {child.entity} {wire_id(blocking)}: {text}"
    )
