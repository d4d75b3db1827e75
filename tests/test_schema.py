"""The OpenAPI schema of the sync endpoints (drf-spectacular, offline_sync.rest_framework.schema)."""

import copy
import itertools
import re

import jsonschema
import pytest
from django.urls import path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.test import APIClient

from offline_sync import exceptions
from offline_sync.rest_framework import errors
from offline_sync.rest_framework.entities import SyncEntity
from offline_sync.rest_framework.serializers import SyncRecordSerializer, parse_push
from offline_sync.rest_framework.views import ReadOnlySyncView
from tests.testapp.filters import ItemFilter
from tests.testapp.models import Item, Note
from tests.testapp.views import ItemPullView


class ItemNoteReadWriteView(ReadOnlySyncView):
    """A read/write endpoint as far as the schema can tell: it has ``post``."""

    entities = [
        SyncEntity("items", Item, filterset_class=ItemFilter),
        SyncEntity("notes", Note, scope=lambda request: {"owner": request.user}),
    ]

    def post(self, request, *args, **kwargs):
        return Response({})


class ShortNameSerializer(SyncRecordSerializer):
    """A project's own serializer: a shorter name, trimmed (DRF's default), and no price (sent, it is ignored)."""

    name = serializers.CharField(max_length=20)

    class Meta:
        model = Item
        fields = ["name", "category"]


class ShortNamesView(ReadOnlySyncView):
    entities = [SyncEntity("items", Item, serializer_class=ShortNameSerializer)]

    def post(self, request, *args, **kwargs):
        return Response({})


class ItemNamesPullView(ReadOnlySyncView):
    """Another ``items`` entity, with other fields than the test project's."""

    entities = [SyncEntity("items", Item, fields=["id", "version", "modified_on", "name"])]


def generate(capsys, patterns=None):
    """The schema, checked to be valid OpenAPI and generated without a warning or error."""
    capsys.readouterr()
    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)
    stderr = capsys.readouterr().err
    assert not GENERATOR_STATS, (dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache))
    assert stderr == ""
    validate_schema(schema)
    return schema


@pytest.fixture
def schema(capsys):
    return generate(capsys)


@pytest.fixture
def rw_schema(capsys):
    return generate(capsys, [path("sync/rw/", ItemNoteReadWriteView.as_view())])


def resolve(schema, node):
    while "$ref" in node:
        prefix = "#/components/schemas/"
        assert node["$ref"].startswith(prefix)
        node = schema["components"]["schemas"][node["$ref"][len(prefix) :]]
    return node


def body(schema, node):
    return resolve(schema, node["content"]["application/json"]["schema"])


def ok(schema, url, method="get"):
    return body(schema, schema["paths"][url][method]["responses"]["200"])


def parameters(schema, url, method="get"):
    return {p["name"]: p for p in schema["paths"][url][method].get("parameters", [])}


def as_json_schema(schema, node):
    """A schema node as plain JSON Schema (OpenAPI 3.0 ``nullable`` -> ``null``), to check real responses."""

    def convert(node):
        if isinstance(node, list):
            return [convert(n) for n in node]
        if not isinstance(node, dict):
            return node
        node = {key: convert(value) for key, value in node.items()}
        if node.pop("nullable", False):
            node = {**node, "type": [node["type"], "null"]} if "type" in node else {"anyOf": [node, {"type": "null"}]}
        return node

    return {**convert(copy.deepcopy(node)), "components": convert(copy.deepcopy(schema["components"]))}


def test_pull_response_is_typed_from_the_entities(schema):
    page = ok(schema, "/sync/items/")
    assert set(page["required"]) == {"full", "changes", "cursor", "has_more", "server_time"}
    assert page["properties"]["full"]["type"] == "boolean"
    assert page["properties"]["has_more"]["type"] == "boolean"
    assert page["properties"]["cursor"]["type"] == "string"
    assert page["properties"]["server_time"] == {"type": "string", "format": "date-time"}

    changes = resolve(schema, page["properties"]["changes"])
    assert changes["required"] == ["items"]
    items = resolve(schema, changes["properties"]["items"])
    assert set(items["required"]) == {"records", "deleted"}
    assert items["properties"]["deleted"]["items"] == {"type": "integer"}

    records = items["properties"]["records"]
    assert records["type"] == "array"
    assert records["items"] == {"$ref": "#/components/schemas/ItemsRecord"}
    record = resolve(schema, records["items"])
    props = record["properties"]
    assert list(props) == ["id", "version", "modified_on", "name", "category", "price"]
    assert set(record["required"]) == set(props)
    assert props["id"]["type"] == "integer"
    assert props["version"]["type"] == "integer"
    assert props["modified_on"]["type"] == "string"
    assert props["modified_on"]["format"] == "date-time"
    assert props["price"]["type"] == "string"  # decimals are strings on the wire
    assert props["price"]["format"] == "decimal"
    assert props["name"] == {"type": "string", "maxLength": 200}
    for name in ("id", "version", "modified_on"):
        assert props[name]["readOnly"] is True
    for name in ("name", "category", "price"):
        assert "readOnly" not in props[name]


def test_every_entity_of_an_endpoint_is_in_changes(schema):
    changes = resolve(schema, ok(schema, "/sync/items-notes/")["properties"]["changes"])
    assert set(changes["required"]) == {"items", "notes"}
    # The same entity on two endpoints is one component.
    assert changes["properties"]["items"] == {"$ref": "#/components/schemas/ItemsChanges"}
    notes = resolve(schema, resolve(schema, changes["properties"]["notes"])["properties"]["records"]["items"])
    props = notes["properties"]
    assert list(props) == ["id", "version", "modified_on", "owner", "item", "text"]
    assert props["item"] == {"type": "integer", "nullable": True}  # a foreign key is the related id
    assert props["owner"]["type"] == "integer"
    assert props["owner"]["readOnly"] is True  # a scope field: the server sets it


def test_pull_parameters(schema):
    for url in ("/sync/items/", "/sync/notes/", "/sync/items-notes/"):
        params = parameters(schema, url)
        assert params["since"]["in"] == "query"
        assert params["since"]["schema"] == {"type": "string", "minLength": 1}  # "" is no cursor
        assert params["limit"]["in"] == "query"
        assert params["limit"]["schema"]["type"] == "integer"
        assert params["limit"]["schema"]["minimum"] == 1
        assert not params["since"].get("required")
        assert not params["limit"].get("required")
    category = parameters(schema, "/sync/items/")["category"]
    # The form field refuses NUL characters (a 400), so the schema says so.
    assert category == {"in": "query", "name": "category", "schema": {"type": "string", "pattern": "^[^\\u0000]*$"}}
    assert "category" in parameters(schema, "/sync/items-notes/")
    assert "category" not in parameters(schema, "/sync/notes/")


def test_error_responses(schema):
    responses = schema["paths"]["/sync/items/"]["get"]["responses"]
    assert set(responses) == {"200", "400", "401", "403", "404", "410", "429"}
    for status in ("400", "401", "403", "404", "410", "429"):
        assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert responses["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}

    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert "detail" in error["properties"]
    codes = set(resolve(schema, error["properties"]["error"])["enum"])
    protocol = {
        "validation_error",
        "not_authenticated",
        "permission_denied",
        "not_found",
        "method_not_allowed",
        "unresolved_conflicts",
        "sync_id_reused",
        "already_resolved",
        "cursor_expired",
        "payload_too_large",
        "unsupported_media_type",
        "throttled",
    }
    assert protocol <= codes
    # Every code the error handler can answer with is documented.
    assert {code for _, _, code in errors._DRF_CODES} <= codes
    raised = {cls.code for cls in vars(exceptions).values() if isinstance(cls, type) and issubclass(cls, Exception)}
    assert raised - {exceptions.SyncError.code} <= codes


def test_operation_ids_are_unique_and_stable(schema, rw_schema):
    ids = [op["operationId"] for item in schema["paths"].values() for op in item.values()]
    assert sorted(ids) == [
        "conflicts_list",
        "conflicts_resolve",
        "documents_pull",
        "documents_push",
        "folder_tasks_cd_pull",
        "folder_tasks_cd_push",
        "folder_tasks_pull",
        "folder_tasks_push",
        "items_cd_pull",
        "items_cd_push",
        "items_lww_pull",
        "items_lww_push",
        "items_narrowed_pull",
        "items_notes_lww_pull",
        "items_notes_lww_push",
        "items_notes_pull",
        "items_pull",
        "labels_pull",
        "labels_push",
        "notes_all_pull",
        "notes_cd_pull",
        "notes_cd_push",
        "notes_lww_pull",
        "notes_lww_push",
        "notes_pull",
        "zoo_animals_cd_pull",
        "zoo_animals_cd_push",
        "zoo_animals_lww_pull",
        "zoo_animals_lww_push",
        "zoo_animals_pull",
        "zoo_aquariums_cd_pull",
        "zoo_aquariums_cd_push",
        "zoo_aquariums_lww_pull",
        "zoo_aquariums_lww_push",
        "zoo_aquariums_pull",
        "zoo_enclosures_cd_pull",
        "zoo_enclosures_cd_push",
        "zoo_enclosures_lww_pull",
        "zoo_enclosures_lww_push",
        "zoo_enclosures_pull",
        "zoo_exhibits_cd_pull",
        "zoo_exhibits_cd_push",
        "zoo_exhibits_lww_pull",
        "zoo_exhibits_lww_push",
        "zoo_exhibits_pull",
        "zoo_field_notes_cd_pull",
        "zoo_field_notes_cd_push",
        "zoo_field_notes_lww_pull",
        "zoo_field_notes_lww_push",
        "zoo_field_notes_pull",
        "zoo_observations_cd_pull",
        "zoo_observations_cd_push",
        "zoo_observations_lww_pull",
        "zoo_observations_lww_push",
        "zoo_observations_pull",
        "zoo_species_cd_pull",
        "zoo_species_cd_push",
        "zoo_species_lww_pull",
        "zoo_species_lww_push",
        "zoo_species_pull",
        "zoo_volunteers_cd_pull",
        "zoo_volunteers_cd_push",
        "zoo_volunteers_lww_pull",
        "zoo_volunteers_lww_push",
        "zoo_volunteers_pull",
        "zoo_zones_cd_pull",
        "zoo_zones_cd_push",
        "zoo_zones_lww_pull",
        "zoo_zones_lww_push",
        "zoo_zones_pull",
    ]
    assert [op["operationId"] for op in rw_schema["paths"]["/sync/rw/"].values()] == ["sync_rw_pull", "sync_rw_push"]


def test_read_only_endpoints_take_no_body(schema):
    for url in ("/sync/items/", "/sync/notes/", "/sync/items-notes/"):
        item = schema["paths"][url]
        assert set(item) == {"get"}
        assert "requestBody" not in item["get"]


def test_push_request(rw_schema):
    operation = rw_schema["paths"]["/sync/rw/"]["post"]
    assert operation["requestBody"]["required"] is True
    push = body(rw_schema, operation["requestBody"])
    assert push["required"] == ["sync_id"]  # last_sync may be null or omitted, changes omitted
    assert push["additionalProperties"] is False
    assert push["properties"]["sync_id"]["format"] == "uuid"
    assert push["properties"]["last_sync"]["type"] == "string"
    assert push["properties"]["last_sync"]["nullable"] is True
    device_id = push["properties"]["device_id"]
    assert (device_id["type"], device_id["maxLength"], device_id["nullable"]) == ("string", 200, True)

    changes = resolve(rw_schema, push["properties"]["changes"])
    assert set(changes["properties"]) == {"items", "notes"}
    assert "required" not in changes  # entities may be omitted
    assert changes["additionalProperties"] is False  # an unknown entity is a validation_error
    items = resolve(rw_schema, changes["properties"]["items"])
    assert set(items["properties"]) == {"added", "modified", "deleted"}
    assert "required" not in items
    assert items["additionalProperties"] is False

    # Typed from the entity's serializer; the fields the server owns may be sent, and are ignored.
    added = resolve(rw_schema, items["properties"]["added"]["items"])
    assert list(added["properties"]) == ["local_id", "name", "category", "price", "id", "version", "modified_on"]
    assert set(added["required"]) == {"local_id", "name"}
    assert added["additionalProperties"] is False
    props = added["properties"]
    assert props["local_id"]["minLength"] == 1
    assert props["local_id"]["maxLength"] == 64
    assert props["name"]["minLength"] == 1  # blank=False
    assert props["name"]["maxLength"] == 200
    assert "minLength" not in props["category"]  # blank=True
    assert props["category"]["maxLength"] == 100
    assert props["price"]["type"] == "string"  # a JSON string only (StrictTypeMixin)
    assert props["price"]["format"] == "decimal"
    for name in ("id", "version", "modified_on"):
        assert "type" not in props[name]
        assert props[name]["description"].startswith("Ignored")

    modified = resolve(rw_schema, items["properties"]["modified"]["items"])
    assert list(modified["properties"]) == ["id", "base_version", "name", "category", "price", "version", "modified_on"]
    assert modified["required"] == ["id"]  # partial: only the changed fields
    assert modified["additionalProperties"] is False
    assert modified["properties"]["name"] == added["properties"]["name"]
    record_id = modified["properties"]["id"]
    assert record_id["type"] == "integer"
    assert (record_id["minimum"], record_id["maximum"]) == (-(2**63), 2**63 - 1)  # a BigAutoField's range
    base_version = modified["properties"]["base_version"]
    assert (base_version["type"], base_version["minimum"], base_version["nullable"]) == ("integer", 1, True)

    deleted = resolve(rw_schema, items["properties"]["deleted"]["items"])
    assert list(deleted["properties"]) == ["id", "base_version"]
    assert deleted["required"] == ["id"]
    assert deleted["additionalProperties"] is False

    # A foreign key to an entity of the endpoint is the parent's id or the local id of one added
    # in the same push (protocol 4.3); the scope field is the server's.
    notes = resolve(rw_schema, changes["properties"]["notes"])
    note_added = resolve(rw_schema, notes["properties"]["added"]["items"])
    assert list(note_added["properties"]) == ["local_id", "item", "text", "id", "version", "modified_on", "owner"]
    item = note_added["properties"]["item"]
    server_id, local = item["oneOf"]
    assert (server_id["type"], server_id["maximum"], item["nullable"]) == ("integer", 2**63 - 1, True)
    assert local["required"] == ["local_id"]
    assert local["additionalProperties"] is False
    assert note_added["properties"]["owner"]["description"].startswith("Ignored")


SYNC_ID = "6f1c2d9e-0b7a-4c55-9d1e-3f5a2b8c4d10"


def push_body(**changes):
    return {"sync_id": SYNC_ID, "changes": changes}


# Push bodies for ItemNoteReadWriteView, and whether the server accepts them.
PUSH_SAMPLES = [
    ({"sync_id": SYNC_ID}, True),
    ({"sync_id": SYNC_ID, "last_sync": None, "device_id": None, "changes": {}}, True),
    ({"sync_id": SYNC_ID, "device_id": "d" * 200}, True),
    ({"sync_id": SYNC_ID, "device_id": "d" * 201}, False),
    ({"sync_id": SYNC_ID, "device_id": 7}, False),
    ({"sync_id": SYNC_ID, "extra": 1}, False),
    ({"last_sync": None, "changes": {}}, False),
    ({"sync_id": SYNC_ID, "changes": None}, False),
    (push_body(unknown={}), False),
    (push_body(items={"created": []}), False),
    (push_body(items={"added": None}), False),
    (push_body(items={"added": [], "modified": [], "deleted": []}, notes={}), True),
    (push_body(items={"added": [{"local_id": "a", "name": "x"}]}), True),
    (push_body(items={"added": [{"local_id": "a", "name": " "}]}), True),  # not trimmed (protocol section 2)
    (push_body(items={"added": [{"local_id": "a", "name": ""}]}), False),
    (push_body(items={"added": [{"local_id": "a", "name": "x" * 201}]}), False),
    (push_body(items={"added": [{"local_id": "a", "name": "a\x00b"}]}), False),
    (push_body(items={"added": [{"local_id": "a", "name": 5}]}), False),
    (push_body(items={"added": [{"local_id": "a"}]}), False),
    (push_body(items={"added": [{"name": "x"}]}), False),
    (push_body(items={"added": [{"local_id": "", "name": "x"}]}), False),
    (push_body(items={"added": [{"local_id": "a", "name": "x", "colour": "red"}]}), False),
    (push_body(items={"added": [{"local_id": "a", "name": "x", "base_version": 1}]}), False),
    (push_body(items={"added": [{"local_id": "a", "name": "x", "id": 5, "version": "?", "modified_on": None}]}), True),
    (push_body(items={"added": [{"local_id": "a", "name": "x", "category": ""}]}), True),
    *(
        (push_body(items={"added": [{"local_id": "a", "name": "x", "price": price}]}), ok)
        for price, ok in [
            ("12.50", True),
            ("-0.5", True),
            (".5", True),
            ("007", True),
            ("12345678.99", True),
            ("", False),
            ("-", False),
            (".", False),
            ("-.", False),
            ("1.234", False),
            ("123456789", False),
            ("1,5", False),
            ("NaN", False),
            (12.5, False),
            (None, False),
        ]
    ),
    (push_body(items={"modified": [{"id": 1, "base_version": None, "name": "y"}]}), True),
    (push_body(items={"modified": [{"id": 1, "base_version": 0}]}), False),
    (push_body(items={"modified": [{"id": 1, "base_version": True}]}), False),
    (push_body(items={"modified": [{"id": 2**63}]}), False),
    (push_body(items={"modified": [{"id": 1.5}]}), False),
    (push_body(items={"modified": [{"name": "y"}]}), False),
    (push_body(items={"modified": [{"id": 1, "local_id": "a"}]}), False),
    (push_body(items={"modified": [{"id": 1, "version": 3, "modified_on": "x"}]}), True),
    (push_body(items={"modified": [{"id": 1, "name": ""}]}), False),
    (push_body(items={"deleted": [{"id": 1, "base_version": None}]}), True),
    (push_body(items={"deleted": [{"id": 1, "name": "x"}]}), False),
    (push_body(items={"deleted": [{"id": 1, "version": 1}]}), False),
    (push_body(notes={"added": [{"local_id": "n", "item": 1, "text": ""}]}), True),
    (push_body(notes={"added": [{"local_id": "n", "item": None}]}), True),
    (push_body(notes={"added": [{"local_id": "n", "owner": 99}]}), True),  # the scope field: the server sets it
    (push_body(notes={"added": [{"local_id": "n", "item": {"local_id": "a"}}]}), True),  # an item of this push
    (push_body(notes={"added": [{"local_id": "n", "item": {"local_id": ""}}]}), False),
    (push_body(notes={"added": [{"local_id": "n", "item": {"local_id": "a", "id": 1}}]}), False),
    (push_body(notes={"modified": [{"id": 1, "item": {"local_id": "a"}}]}), True),
    (push_body(notes={"added": [{"local_id": "n", "item": "1"}]}), None),  # the server also takes a numeric string
    (push_body(notes={"added": [{"local_id": "n", "item": 2**63}]}), False),
    (push_body(notes={"modified": [{"id": 1, "owner": 99, "text": "t"}]}), True),
    (push_body(items={"added": [{"local_id": "a", "name": "x", "price": "1e5"}]}), None),  # see the decimal test
]


def server_accepts(body, entities):
    try:
        parse_push(body, entities)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(("push", "accepted"), PUSH_SAMPLES)
def test_push_schema_accepts_what_the_server_accepts(rw_schema, push, accepted):
    request = rw_schema["paths"]["/sync/rw/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    valid = jsonschema.Draft202012Validator(as_json_schema(rw_schema, request)).is_valid(push)
    server = server_accepts(push, ItemNoteReadWriteView.entities)
    if accepted is None:  # the server is more lenient than the schema: what a client should send is the schema's
        assert server
        assert not valid
    else:
        assert (valid, server) == (accepted, accepted)


def test_decimal_pattern_is_what_the_server_takes_in_plain_notation(rw_schema):
    """Every string of digits, points and minus signs (up to 6) matches the pattern iff the server takes it."""
    items = resolve(rw_schema, body(rw_schema, rw_schema["paths"]["/sync/rw/"]["post"]["requestBody"]))
    items = resolve(rw_schema, resolve(rw_schema, items["properties"]["changes"])["properties"]["items"])
    price = resolve(rw_schema, items["properties"]["added"]["items"])["properties"]["price"]
    pattern = re.compile(price["pattern"])
    field = SyncEntity("items", Item).get_serializer_class()().fields["price"]
    assert field.max_digits - field.decimal_places == 8  # so "12345678" fits, "123456789" does not
    for n in range(7):
        for chars in itertools.product("019.-", repeat=n):
            value = "".join(chars)
            try:
                field.run_validation(value)
                takes = True
            except ValidationError:
                takes = False
            assert bool(pattern.fullmatch(value)) == takes, value
    assert pattern.fullmatch("12345678.99")
    # Exponents, a "+" and spaces are taken too, but which fit depends on the exponent's value: described only.
    for value in ("1e5", "+1", " 1 "):
        field.run_validation(value)
        assert not pattern.fullmatch(value)
    assert "exponent" in price["description"]


def test_pushed_fields_come_from_the_entitys_serializer(capsys):
    schema = generate(
        capsys, [path("sync/rw/", ItemNoteReadWriteView.as_view()), path("sync/s/", ShortNamesView.as_view())]
    )
    default = resolve(schema, {"$ref": "#/components/schemas/ItemsAdded"})
    assert default["properties"]["name"]["maxLength"] == 200
    push = body(schema, schema["paths"]["/sync/s/"]["post"]["requestBody"])
    items = resolve(schema, resolve(schema, push["properties"]["changes"])["properties"]["items"])
    added_ref = items["properties"]["added"]["items"]
    assert added_ref == {"$ref": "#/components/schemas/ShortNamesItemsAdded"}  # not the default serializer's
    added = resolve(schema, added_ref)
    assert list(added["properties"]) == ["local_id", "name", "category", "id", "version", "modified_on", "price"]
    name = added["properties"]["name"]
    assert (name["minLength"], name["maxLength"]) == (1, 20)
    assert not re.fullmatch(name["pattern"], "   ")  # DRF trims, then finds it blank
    assert re.fullmatch(name["pattern"], " a ")
    assert added["properties"]["price"]["description"].startswith("Ignored")  # the serializer does not write it

    request = as_json_schema(
        schema, schema["paths"]["/sync/s/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    )
    for record, accepted in [
        ({"name": "a" * 20, "price": "?"}, True),
        ({"name": "a" * 21}, False),
        ({"name": " "}, False),
    ]:
        push = push_body(items={"added": [{"local_id": "a", **record}]})
        assert jsonschema.Draft202012Validator(request).is_valid(push) is accepted
        assert server_accepts(push, ShortNamesView.entities) is accepted


def test_resolution_request(schema):
    operation = schema["paths"]["/sync/conflicts/{conflict_id}/resolve/"]["post"]
    assert operation["requestBody"]["required"] is True
    resolution = body(schema, operation["requestBody"])
    keep, merge = (resolve(schema, branch) for branch in resolution["oneOf"])
    assert resolve(schema, keep["properties"]["resolution"])["enum"] == ["server", "client"]
    assert keep["required"] == ["resolution"]
    assert resolve(schema, merge["properties"]["resolution"])["enum"] == ["merge"]
    assert set(merge["required"]) == {"resolution", "record"}
    assert merge["properties"]["record"]["type"] == "object"
    assert keep["additionalProperties"] is False
    assert merge["additionalProperties"] is False
    mapping = resolution["discriminator"]["mapping"]
    assert mapping == {
        "server": resolution["oneOf"][0]["$ref"],
        "client": resolution["oneOf"][0]["$ref"],
        "merge": resolution["oneOf"][1]["$ref"],
    }

    validator = jsonschema.Draft202012Validator(
        as_json_schema(schema, operation["requestBody"]["content"]["application/json"]["schema"])
    )
    for value in ({"resolution": "server"}, {"resolution": "client"}, {"resolution": "merge", "record": {}}):
        assert validator.is_valid(value), value
    for value in (
        {},
        {"resolution": "other"},
        {"resolution": "server", "record": {}},  # a record with merge only
        {"resolution": "merge"},
        {"resolution": "merge", "record": None},
        {"resolution": "client", "note": "x"},
    ):
        assert not validator.is_valid(value), value
    # The response's resolution is one of the three.
    resolved = ok(schema, "/sync/conflicts/{conflict_id}/resolve/", "post")
    assert resolve(schema, resolved["properties"]["resolution"])["enum"] == ["server", "client", "merge"]


def test_push_response(rw_schema):
    responses = rw_schema["paths"]["/sync/rw/"]["post"]["responses"]
    assert set(responses) == {"200", "400", "401", "403", "404", "409", "410", "413", "415", "429"}
    result = ok(rw_schema, "/sync/rw/", "post")
    assert set(result["required"]) == {
        "full",
        "changes",
        "cursor",
        "has_more",
        "server_time",
        "id_map",
        "conflicts",
    }
    assert result["properties"]["changes"] == ok(rw_schema, "/sync/rw/")["properties"]["changes"]
    id_map = resolve(rw_schema, result["properties"]["id_map"])
    assert set(id_map["required"]) == {"items", "notes"}
    assert id_map["properties"]["items"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    conflict = resolve(rw_schema, result["properties"]["conflicts"]["items"])
    assert {"conflict_id", "entity", "id", "kind", "client", "server"} <= set(conflict["properties"])
    assert parameters(rw_schema, "/sync/rw/", "post").keys() == {"category"}


def test_same_entity_name_with_other_fields_gets_its_own_component(capsys):
    schema = generate(capsys, [path("sync/a/", ItemPullView.as_view()), path("sync/b/", ItemNamesPullView.as_view())])
    a = resolve(schema, ok(schema, "/sync/a/")["properties"]["changes"])["properties"]["items"]
    b = resolve(schema, ok(schema, "/sync/b/")["properties"]["changes"])["properties"]["items"]
    assert a == {"$ref": "#/components/schemas/ItemsChanges"}
    assert b == {"$ref": "#/components/schemas/ItemNamesPullItemsChanges"}
    record = resolve(schema, resolve(schema, b)["properties"]["records"]["items"])
    assert list(record["properties"]) == ["id", "version", "modified_on", "name"]


@pytest.mark.django_db(transaction=True)  # one transaction per write, as in production (PostgreSQL stamps)
def test_real_responses_match_the_schema(schema, api):
    client = api()
    item = Item.objects.create(name="Widget", category="tools", price="12.50")
    Note.objects.create(owner=client.user, item=item, text="first")
    Note.objects.create(owner=client.user, text="no item")
    responses = schema["paths"]["/sync/items-notes/"]["get"]["responses"]
    page_schema = as_json_schema(schema, responses["200"]["content"]["application/json"]["schema"])
    assert resolve(schema, page_schema)["properties"]["changes"]

    full = client.get("/sync/items-notes/")
    assert full.status_code == 200
    jsonschema.validate(full.json(), page_schema)
    record = full.json()["changes"]["items"]["records"][0]
    assert set(record) == set(schema["components"]["schemas"]["ItemsRecord"]["properties"])

    Item.objects.create(name="Other", price="1.00")
    item.delete()
    delta = client.get("/sync/items-notes/", {"since": full.json()["cursor"]})
    assert delta.status_code == 200
    assert delta.json()["changes"]["items"]["deleted"]
    jsonschema.validate(delta.json(), page_schema)

    error_schema = as_json_schema(schema, responses["400"]["content"]["application/json"]["schema"])
    bad_limit = client.get("/sync/items/", {"limit": "0"})
    assert bad_limit.status_code == 400
    jsonschema.validate(bad_limit.json(), error_schema)
    anonymous = APIClient().get("/sync/items/")
    assert anonymous.status_code == 401
    jsonschema.validate(anonymous.json(), error_schema)


def test_a_local_id_is_offered_only_where_the_endpoint_carries_the_parent(schema):
    def note_item(path):
        push = body(schema, schema["paths"][path]["post"]["requestBody"])
        changes = resolve(schema, push["properties"]["changes"])
        notes = resolve(schema, changes["properties"]["notes"])
        return resolve(schema, notes["properties"]["added"]["items"])["properties"]["item"]

    assert "oneOf" in note_item("/sync/items-notes-lww/")
    assert "oneOf" not in note_item("/sync/notes-lww/")
    assert note_item("/sync/notes-lww/")["type"] == "integer"
