"""The OpenAPI schema of the sync endpoints (drf-spectacular, offline_sync.rest_framework.schema)."""

import copy

import jsonschema
import pytest
from django.urls import path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.response import Response
from rest_framework.test import APIClient

from offline_sync import exceptions
from offline_sync.rest_framework import errors
from offline_sync.rest_framework.entities import SyncEntity
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
        assert params["since"]["schema"] == {"type": "string"}
        assert params["limit"]["in"] == "query"
        assert params["limit"]["schema"]["type"] == "integer"
        assert params["limit"]["schema"]["minimum"] == 1
        assert not params["since"].get("required")
        assert not params["limit"].get("required")
    category = parameters(schema, "/sync/items/")["category"]
    assert category == {"in": "query", "name": "category", "schema": {"type": "string"}}
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
        "items_cd_pull",
        "items_cd_push",
        "items_lww_pull",
        "items_lww_push",
        "items_notes_pull",
        "items_pull",
        "labels_pull",
        "labels_push",
        "notes_lww_pull",
        "notes_lww_push",
        "notes_pull",
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
    assert set(push["required"]) == {"sync_id", "last_sync", "changes"}
    assert push["properties"]["sync_id"]["format"] == "uuid"
    assert push["properties"]["last_sync"]["type"] == "string"
    assert push["properties"]["last_sync"]["nullable"] is True
    assert push["properties"]["device_id"]["type"] == "string"

    changes = resolve(rw_schema, push["properties"]["changes"])
    assert set(changes["properties"]) == {"items", "notes"}
    assert "required" not in changes  # entities may be omitted
    assert changes["additionalProperties"] is False  # an unknown entity is a validation_error
    items = resolve(rw_schema, changes["properties"]["items"])
    assert set(items["properties"]) == {"added", "modified", "deleted"}
    assert "required" not in items

    added = resolve(rw_schema, items["properties"]["added"]["items"])
    assert list(added["properties"]) == ["local_id", "name", "category", "price"]
    assert set(added["required"]) == {"local_id", "name"}
    assert added["properties"]["local_id"]["minLength"] == 1
    assert added["properties"]["local_id"]["maxLength"] == 64
    assert added["properties"]["price"]["type"] == "string"

    modified = resolve(rw_schema, items["properties"]["modified"]["items"])
    assert list(modified["properties"]) == ["id", "base_version", "name", "category", "price"]
    assert modified["required"] == ["id"]  # partial: only the changed fields
    assert modified["properties"]["id"] == {"type": "integer"}
    assert modified["properties"]["base_version"]["type"] == "integer"

    deleted = resolve(rw_schema, items["properties"]["deleted"]["items"])
    assert list(deleted["properties"]) == ["id", "base_version"]
    assert deleted["required"] == ["id"]

    # A foreign key may name a parent added in the same push; the scope field is the server's.
    notes = resolve(rw_schema, changes["properties"]["notes"])
    note_added = resolve(rw_schema, notes["properties"]["added"]["items"])
    assert list(note_added["properties"]) == ["local_id", "item", "text"]
    branches = note_added["properties"]["item"]["oneOf"]
    assert branches[0] == {"type": "integer", "nullable": True}
    assert resolve(rw_schema, branches[1])["required"] == ["local_id"]


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
