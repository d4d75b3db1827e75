"""Property-based API test: schemathesis fuzzes every operation of the test project's OpenAPI schema.

Each operation of the schema that ``tests/test_schema.py`` checks is one test: schemathesis generates
requests (valid and invalid ones, from its examples, coverage and fuzzing phases) and sends them to
the Django WSGI app in-process, as a user with every permission. Checked on every response: no 5xx;
the status code, content type, headers and body are the ones the schema documents; an error body is
the ``{"error": ..., "detail": ...}`` envelope (protocol section 7); a request the schema says is valid
is not refused with a ``400``, unless for a reason the schema gives in words only (see
``said_in_words()``); a method the schema does not list (a POST to a read-only endpoint, say) is ``405``.

Random ids, cursors and sync ids would almost always be unknown, so most requests would stop at a
``404`` or ``400``. To reach the code behind those answers, each example first makes sure the fuzzing
user has records and (for the conflicts API) conflicts, and then points some of the generated values
at real ones: small record and conflict ids, cursors the server issued, fresh sync ids. Which values
are replaced depends on the value itself, so the others still probe unknown ids and bad cursors.
Every other push to the conflict-detection endpoint first resolves the user's pending conflicts
there, or all its pushes after the first conflict would be ``409 unresolved_conflicts``.

``OFFLINE_SYNC_FUZZ_EXAMPLES`` sets the examples per operation (default 40) for a longer local run.
"""

import os
import uuid

import pytest
import schemathesis
from django.contrib.auth.models import Permission, User
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis import checks

from offline_sync.models import Conflict
from tests.helpers import push
from tests.testapp.models import Item, Note
from tests.thirdparty.models import Label

schema = schemathesis.openapi.from_dict(
    SchemaGenerator().get_schema(request=None, public=True), config=schemathesis.Config()
)
schema.app = get_wsgi_application()  # requests go to the Django app in-process
BASE_URL = "http://testserver"  # in ALLOWED_HOSTS under test (django.test.utils.setup_test_environment)

PERMISSIONS = [f"{a}_{m}" for a in ("view", "add", "change", "delete") for m in ("item", "note", "label")]
CATEGORIES = ["", "0", "a"]  # values Hypothesis generates often, so the category filter matches records
ENTITIES = {"items": Item, "notes": Note, "labels": Label}
CONFLICTS = "/sync/conflicts/"
CONFLICT_DETECTION = "/sync/items-cd/"


def error_envelope(ctx, response, case):
    """Every error is ``{"error": <code>, "detail": ...}`` (protocol section 7)."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {response.text[:200]!r}") from None
    assert isinstance(body, dict), f"error body is not an object: {body!r}"
    assert isinstance(body.get("error"), str), f"error body without an `error` code: {body!r}"
    assert "detail" in body, f"error body without `detail`: {body!r}"
    return None


def leaves(detail, path=()):
    """``(path, message)`` for every message of an error's ``detail``."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from leaves(value, (*path, key))
    elif isinstance(detail, list) and all(isinstance(message, str) for message in detail):
        for message in detail:
            yield path, message
    else:
        yield path, detail


def said_in_words(path, message):
    """Whether a ``400`` for a schema-valid request is one the schema announces in its descriptions only."""
    if path in (("since",), ("last_sync",)):
        return True  # a string the server never issued as a cursor
    if path[:1] == ("record",):
        return True  # a merge's record holds fields of the conflict's entity, which the schema cannot name
    if "NUL" in message:
        return True  # no string in a body may hold a NUL, not even inside a JSON field's value or an ignored field
    if len(path) == 5 and path[0] == "changes" and path[2] in ("added", "modified", "deleted"):
        # A local_id, and a record, once per entity and push: JSON Schema has no uniqueness of a property.
        if path[4] in ("local_id", "id") and ("Duplicate" in message or "twice" in message):
            return True
        # A foreign key's {"local_id": ...} names a record added in the same push: a cross-reference.
        return message.startswith("No record with local_id")
    # Records of a push that name each other (by local ids) in a cycle.
    return len(path) == 3 and path[0] == "changes" and "in a cycle" in message


def valid_data_accepted(ctx, response, case):
    """Schemathesis's positive data acceptance (a schema-valid request gets no ``400``), but for ``said_in_words()``."""
    if response.status_code == 400:
        detail = response.json().get("detail")
        if isinstance(detail, dict) and detail and all(said_in_words(*leaf) for leaf in leaves(detail)):
            return None
    return checks.positive_data_acceptance(ctx, response, case)


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    error_envelope,
    valid_data_accepted,
    checks.unsupported_method,
]


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def pushed_records(body):
    """``(entity, kind, record)`` for every record object of a push body, however malformed the rest."""
    changes = body.get("changes") if isinstance(body, dict) else None
    for entity, lists in changes.items() if isinstance(changes, dict) else ():
        for kind in ("added", "modified", "deleted"):
            records = lists.get(kind) if isinstance(lists, dict) else None
            for record in records if isinstance(records, list) else ():
                if isinstance(record, dict):
                    yield entity, kind, record


class World:
    """The fuzzing user and the cursors the server gave it, for one test (the database is flushed after each)."""

    current = None

    def __init__(self):
        self.user = User.objects.create_user("fuzz")
        self.user.user_permissions.set(Permission.objects.filter(codename__in=PERMISSIONS))
        self.token = Token.objects.create(user=self.user).key
        self.cursors = {}  # path -> the cursors the server answered there
        self.pushes = 0

    @classmethod
    def get(cls):
        if cls.current is None or not Token.objects.filter(key=cls.current.token).exists():
            cls.current = cls()
        return cls.current

    def seed(self):
        """A few records of each entity, so generated ids can name real ones."""
        for n in range(3 - Item.objects.count()):
            Item.objects.create(name=f"seed {n}", category=CATEGORIES[n % len(CATEGORIES)], price="1.50")
        items = [*Item.objects.order_by("pk").values_list("pk", flat=True)[:2], None]
        for n in range(3 - Note.objects.filter(owner=self.user).count()):
            Note.objects.create(owner=self.user, item_id=items[n % len(items)], text=f"seed {n}")
        for n in range(2 - Label.objects.filter(owner=self.user).count()):
            Label.objects.create(owner=self.user, name=f"seed {n}")

    def make_conflicts(self):
        """Pending conflicts of each kind, made by a push to /sync/items-cd/, unless the user has some."""
        if Conflict.objects.filter(user=self.user, status=Conflict.Status.PENDING).exists():
            return
        modified, deleted, gone = (Item.objects.create(name=f"conflicting {n}") for n in range(3))
        gone_id = gone.pk
        gone.delete()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {self.token}")
        changes = {
            "modified": [{"id": modified.pk, "name": "client edit"}, {"id": gone_id, "name": "edit of a deleted"}],
            "deleted": [{"id": deleted.pk}],
        }
        response = push(client, CONFLICT_DETECTION, {"items": changes})  # no base_version, no last_sync: conflicts
        assert response.status_code == 200, response.content
        assert len(response.json()["conflicts"]) == 3, response.content

    def unblock(self, case):
        """Resolve the pending conflicts on the conflict-detection endpoint before every other push there."""
        if case.method.upper() != "POST" or case.operation.path != CONFLICT_DETECTION:
            return
        self.pushes += 1
        if self.pushes % 2:
            return
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {self.token}")
        for pk in Conflict.objects.filter(user=self.user, status=Conflict.Status.PENDING).values_list("pk", flat=True):
            response = client.post(f"{CONFLICTS}{pk}/resolve/", {"resolution": "server"}, format="json")
            assert response.status_code == 200, response.content

    @staticmethod
    def real(value, ids):
        """One of ``ids`` for an int from 0 to 999; ``value`` itself otherwise (negative and big ones: unknown)."""
        if ids and is_int(value) and 0 <= value < 1000:
            return ids[value % len(ids)]
        return value

    def cursor(self, value, path):
        """A cursor the server issued on ``path`` for most strings; ``value`` itself for the rest."""
        cursors = self.cursors.get(path)
        if cursors and isinstance(value, str) and len(value) % 3:
            return cursors[len(value) % len(cursors)]
        return value

    def anchor(self, case):
        """Point some generated ids, cursors and sync ids at real ones (see the module docstring)."""
        path = case.operation.path
        if isinstance(case.query, dict) and "since" in case.query:
            case.query["since"] = self.cursor(case.query["since"], path)
        if path.startswith(CONFLICTS):
            if isinstance(case.path_parameters, dict) and "conflict_id" in case.path_parameters:
                ids = list(Conflict.objects.filter(user=self.user).order_by("pk").values_list("pk", flat=True))
                case.path_parameters["conflict_id"] = self.real(case.path_parameters["conflict_id"], ids)
            return
        body = case.body
        if case.method.upper() != "POST" or not isinstance(body, dict):
            return
        try:
            if not str(uuid.UUID(body["sync_id"])).endswith("0"):  # the all-zero UUID stays: retries, reuse
                body["sync_id"] = str(uuid.uuid4())
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
        if "last_sync" in body:
            body["last_sync"] = self.cursor(body["last_sync"], path)
        item_ids = list(Item.objects.order_by("pk").values_list("pk", flat=True))
        for entity, kind, record in pushed_records(body):
            if entity in ENTITIES and kind != "added" and "id" in record:
                ids = list(ENTITIES[entity].objects.order_by("pk").values_list("pk", flat=True))
                record["id"] = self.real(record["id"], ids)
            if entity == "notes" and "item" in record:
                record["item"] = self.real(record["item"], item_ids)

    def learn(self, case, response):
        if response.status_code == 200 and isinstance(body := response.json(), dict) and "cursor" in body:
            self.cursors.setdefault(case.operation.path, []).append(body["cursor"])


@pytest.mark.django_db(transaction=True)  # requests commit, as in production; the flush after each test resets
@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("OFFLINE_SYNC_FUZZ_EXAMPLES", "40")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_api(case):
    world = World.get()
    world.seed()
    if case.operation.path.startswith(CONFLICTS):
        world.make_conflicts()
    world.unblock(case)
    world.anchor(case)
    headers = {"Authorization": f"Token {world.token}"}
    response = case.call_and_validate(BASE_URL, headers=headers, checks=CHECKS)
    world.learn(case, response)
