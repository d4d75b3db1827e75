"""OpenAPI 3 schemas of the sync endpoints, through drf-spectacular.

``SyncAPIView`` sets ``schema = SyncAutoSchema()``, which documents each
endpoint from its ``entities`` (protocol sections 2, 3, 4 and 7):

- per entity (named after ``SyncEntity.name``; ``items`` gives ``Items...``):
  ``ItemsRecord`` (the wire record, typed from the model), ``ItemsChanges``
  (``records`` and ``deleted``) and, for endpoints that accept pushes,
  ``ItemsPushChanges``, ``ItemsAdded``, ``ItemsModified``, ``ItemsDeletion``;
  pushed fields are typed from the entity's serializer (``get_serializer_class()``,
  what ``serializers.validate_record()`` runs), so their constraints are the
  server's; the fields a push may carry but the server ignores are listed too, and
  any other key is refused (``additionalProperties: false``), as the server does;
- per view (named after the view class without ``View``; ``ProductSyncView``
  gives ``ProductSync...``): ``ProductSyncPage`` (the pull response) and
  ``ProductSyncChanges``; with a ``post`` method also ``ProductSyncPush`` (the
  request), ``ProductSyncPushChanges``, ``ProductSyncIdMap`` and
  ``ProductSyncPushResult``;
- shared: ``Error`` (the envelope), ``Conflict``; for the conflicts API
  ``PendingConflicts``, ``Resolution`` (``KeepResolution`` or ``MergeResolution``)
  and ``ResolvedConflict``.

If two endpoints carry entities with the same name but different models or
fields, the later one's components get the view's name in front
(``ItemsAndNotesPullItemsRecord``), so no component is reused wrongly.

GET takes ``since``, ``limit`` and one query parameter per filter of every
entity's FilterSet; POST takes the filters (they choose the subset of the
response). Operation ids end in ``_pull`` and ``_push``.
"""

import json
import re

from django.core.exceptions import ImproperlyConfigured
from django.core.validators import ProhibitNullCharactersValidator
from django.db import connections, models, router
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import (
    ComponentIdentity,
    ResolvedComponent,
    append_meta,
    build_array_type,
    build_basic_type,
    build_object_type,
)
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from ..conf import sync_settings
from ..records import WIRE_META
from .serializers import SERVER_OWNED, ForeignKeyIdField, SecondsDurationField, StrictTypeMixin

# Every `error` code of the protocol (section 7), plus the ones DRF adds.
ERROR_CODES = (
    "validation_error",
    "not_authenticated",
    "permission_denied",
    "not_found",
    "method_not_allowed",
    "not_acceptable",
    "unresolved_conflicts",
    "sync_id_reused",
    "already_resolved",
    "conflict_changed",
    "cursor_expired",
    "payload_too_large",
    "unsupported_media_type",
    "throttled",
)

PULL_ERRORS = {
    400: "`validation_error`: a bad `limit`, `since` cursor or filter value; `detail` names it.",
    401: "`not_authenticated`: no or bad credentials.",
    403: "`permission_denied`: the user may not view these entities.",
    404: "`not_found`: no such sync endpoint.",
    410: "`cursor_expired`: deletions since `since` were purged; pull again without `since`.",
    429: "`throttled`: too many requests; retry after `Retry-After` seconds.",
}

PUSH_ERRORS = {
    400: "`validation_error`: bad JSON, types, missing or unknown fields or entities, the same `local_id` or "
    "record twice in one entity's lists, a `last_sync` the server did not issue; `detail` gives the path.",
    401: "`not_authenticated`: no or bad credentials.",
    403: "`permission_denied`: the user may not make these changes.",
    404: "`not_found`: a record id (or a parent) that does not exist or is outside the caller's scope.",
    409: "`unresolved_conflicts` (with `conflicts`: the pending ones) or `sync_id_reused`. Nothing was applied.",
    410: "`cursor_expired`: `last_sync` is older than the purge horizon; pull in full, then push again.",
    413: "`payload_too_large`: too many records or too large a body; `detail` states the limits.",
    415: "`unsupported_media_type`: the body is not `application/json`.",
    429: "`throttled`: too many requests; retry after `Retry-After` seconds.",
}

# No string anywhere in a body may hold a NUL character (protocol section 2; SyncJSONParser).
NO_NUL = "^[^\\u0000]*$"

LOCAL_ID = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_NUL}

IGNORED = {
    "description": "Ignored: the server owns this field; a value sent is not applied. Like every string "
    "in a body, one in it may not hold a NUL character."
}

# Component names derived from an entity's base name, and from a view's.
ENTITY_SUFFIXES = ("Record", "Changes", "PushChanges", "Added", "Modified", "Deletion")
VIEW_SUFFIXES = ("Page", "Changes", "Push", "PushChanges", "IdMap", "PushResult")


def camel(name):
    """``"company_contacts"`` -> ``"CompanyContacts"``: a component name part."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name)) or "Sync"


class RecordSerializer(serializers.ModelSerializer):
    """Base of the serializers built per entity, typed as ``records.py`` puts values on the wire."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DurationField: serializers.FloatField,  # seconds
        models.FileField: serializers.CharField,  # the stored name
        models.ImageField: serializers.CharField,
    }

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if issubclass(field_class, serializers.DecimalField):
            kwargs["coerce_to_string"] = True  # decimals are strings, whatever REST_FRAMEWORK says
        return field_class, kwargs

    def get_fields(self):
        fields = super().get_fields()
        # The primary key is "id" on the wire whatever its model name.
        pk_name = self.Meta.model._meta.pk.name
        if pk_name != "id" and pk_name in fields:
            fields["id"] = fields.pop(pk_name)
            fields["id"].source = pk_name
        return {name: fields[name] for name in self.Meta.wire_fields}


def read_only_fields(entity):
    """Wire fields a client may not write: the server's own, scope fields, and ``entity.read_only_fields``."""
    names = [*WIRE_META, *getattr(entity, "read_only_fields", ())]
    if entity.scope is not None:
        names += entity.model.sync_scope_fields
    return [name for name in dict.fromkeys(names) if name in entity.fields]


def record_serializer(entity):
    """A ModelSerializer instance with exactly the entity's wire fields."""
    model = entity.model
    pk_name = model._meta.pk.name
    read_only = [pk_name if name == "id" else name for name in read_only_fields(entity)]
    meta = type(
        "Meta",
        (),
        {
            "model": model,
            "fields": [pk_name if name == "id" else name for name in entity.fields],
            "wire_fields": list(entity.fields),
            "extra_kwargs": {name: {"read_only": True} for name in read_only},
        },
    )
    doc = f"A record of `{entity.name}` ({model._meta.label}) as the server sends it."
    cls = type(f"{camel(entity.name)}RecordSerializer", (RecordSerializer,), {"Meta": meta, "__doc__": doc})
    return cls()


def nullable(schema):
    return append_meta(schema, {"nullable": True})


def strip_meta(schema):
    """A property's type without what only applies to the property (``readOnly``, ``description``...)."""
    return {k: v for k, v in schema.items() if k not in ("readOnly", "writeOnly", "description", "title", "default")}


def id_type(pk_field):
    """A record id as a push may send it (``serializers.parse_id()``): of the key's type, within its column's range."""
    while pk_field.is_relation:
        pk_field = pk_field.target_field
    if isinstance(pk_field, models.UUIDField):
        return build_basic_type(OpenApiTypes.UUID)
    if not isinstance(pk_field, models.IntegerField):
        return {**build_basic_type(OpenApiTypes.STR), "pattern": NO_NUL}
    schema = build_basic_type(OpenApiTypes.INT)
    ops = connections[router.db_for_read(pk_field.model)].ops
    low, high = ops.integer_field_range(pk_field.get_internal_type())
    if low is not None:
        schema["minimum"] = low
    if high is not None:
        schema["maximum"] = high
    return schema


def digits(low, high):
    """A regular expression for ``low`` to ``high`` (None: any number of) ASCII digits."""
    if high is None:
        return "[0-9]*" if low == 0 else "[0-9]+"
    return f"[0-9]{{{low},{high}}}"


def decimal_pattern(field):
    """The strings in plain notation that ``field`` (a DRF DecimalField) accepts: exactly these.

    Leading zeros do not count as digits (``Decimal`` drops them), trailing ones after the point do. The
    server also takes exponents (``"1e5"``), a ``+`` and surrounding spaces (Python's ``Decimal``), but
    which of those fit ``max_digits`` depends on the exponent's value, which a regular expression cannot count.
    """
    places, max_digits = field.decimal_places, field.max_digits
    whole = None if max_digits is None or places is None else max_digits - places
    alternatives = []
    if whole != 0:  # with digits before the point ("0" alone is one)
        fraction = "\\.?" if places == 0 else f"(?:\\.{digits(0, places)})?"
        alternatives.append(f"0*{digits(1, whole)}{fraction}")
    if places != 0:  # with digits after it only
        alternatives.append(f"0*\\.{digits(1, places)}")
    if not alternatives:
        return "^$"  # max_digits=0: no number fits
    number = f"-?(?:{'|'.join(alternatives)})"
    if field.allow_null:
        number = f"(?:{number})?"  # a blank string is null
    return f"^{number}$"


LOCAL_REF = {
    "type": "object",
    "description": "A record added in the same push (protocol 4.3).",
    "properties": {"local_id": {"type": "string", "minLength": 1, "maxLength": 64}},
    "required": ["local_id"],
    "additionalProperties": False,
}


class ForeignKeyIdFieldExtension(OpenApiSerializerFieldExtension):
    """A pushed foreign key is the related record's id (``serializers.ForeignKeyIdField``), or a
    ``{"local_id": ...}`` where the endpoint carries the related entity."""

    target_class = ForeignKeyIdField

    def map_serializer_field(self, auto_schema, direction):
        server_id = id_type(self.target.target_pk)
        view = getattr(auto_schema, "view", None)
        entities = view.get_entities() if hasattr(view, "get_entities") else []
        related = self.target.target_pk.model._meta.concrete_model
        if any(entity.model._meta.concrete_model is related for entity in entities):
            return {"oneOf": [server_id, LOCAL_REF]}
        return server_id


class SyncAutoSchema(AutoSchema):
    """Documents a ``SyncAPIView`` from its ``entities``; other views are left to ``AutoSchema``."""

    # --- hooks of AutoSchema -------------------------------------------------

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation and "requestBody" in operation and (self.sync_entities() or self.conflicts_api()):
            operation["requestBody"]["required"] = True  # a push or a resolution without a body is a 400
        return operation

    def get_operation_id(self):
        if self.conflicts_api():
            return f"conflicts_{self.conflicts_api()}"
        if not self.sync_entities() or self.method not in ("GET", "POST"):
            return super().get_operation_id()
        tokens = [token.replace("-", "_") for token in self._tokenize_path()] or ["root"]
        action = "pull" if self.method == "GET" else "push"
        if spectacular_settings.OPERATION_ID_METHOD_POSITION == "PRE":
            return "_".join([action, *tokens])
        return "_".join([*tokens, action])

    def get_summary(self):
        summary = super().get_summary()
        if summary or not self.sync_entities():
            return summary
        return {"GET": "Pull changes", "POST": "Push changes"}.get(self.method)

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if not self.sync_entities():
            return parameters
        if self.method == "GET":
            parameters += [
                OpenApiParameter(
                    "since",
                    {"type": "string", "minLength": 1},
                    OpenApiParameter.QUERY,
                    description="The `cursor` of an earlier pull or push. Absent: a full pull.",
                ),
                OpenApiParameter(
                    "limit",
                    {"type": "integer", "minimum": 1, "default": sync_settings.PAGE_SIZE},
                    OpenApiParameter.QUERY,
                    description=(
                        "Most items (records plus deleted ids, all entities together) in this page; "
                        f"above {sync_settings.MAX_PAGE_SIZE} it is lowered to {sync_settings.MAX_PAGE_SIZE}."
                    ),
                ),
            ]
        parameters.append(
            OpenApiParameter(
                "Retry-After",
                OpenApiTypes.INT,
                OpenApiParameter.HEADER,
                response=[429],
                description="Seconds to wait before retrying.",
            )
        )
        return parameters

    def _get_filter_parameters(self):
        entities = self.sync_entities()
        if not entities:
            return super()._get_filter_parameters()
        from django_filters.rest_framework import DjangoFilterBackend
        from drf_spectacular.contrib.django_filters import DjangoFilterExtension

        extension = DjangoFilterExtension(DjangoFilterBackend())
        parameters = {}
        for entity in entities:
            filterset_class = entity.filterset_class
            if filterset_class is None:
                continue
            for name, filter_field in filterset_class.base_filters.items():
                refuses_nul = any(isinstance(v, ProhibitNullCharactersValidator) for v in filter_field.field.validators)
                for parameter in extension.resolve_filter_field(
                    self, entity.model, filterset_class, name, filter_field
                ):
                    schema = parameter.get("schema", {})
                    if refuses_nul and schema.get("type") == "string" and "pattern" not in schema:
                        schema["pattern"] = NO_NUL  # the form field refuses it: a 400
                    # One query string feeds every entity's FilterSet: a shared name is one parameter.
                    parameters.setdefault(parameter["name"], parameter)
        return list(parameters.values())

    # --- the conflicts API (views with ``conflicts_api = "list"`` or ``"resolve"``) --

    def conflicts_api(self):
        return getattr(self.view, "conflicts_api", None)

    def resolution_enum(self, name, values):
        """A named enum of resolutions (named here, not by spectacular's enum hook, which would name
        the branches' enums after their components)."""
        return self.shared_component(name, lambda: {"type": "string", "enum": list(values)})

    def conflicts_request(self):
        """``server`` or ``client`` without a ``record``, or ``merge`` with one; nothing else (protocol section 5)."""

        def keep():
            return build_object_type(
                description="`server`: keep the server's record. `client`: apply the client's change over it.",
                properties={"resolution": self.resolution_enum("KeepResolutionEnum", ("server", "client")).ref},
                required=["resolution"],
                additionalProperties=False,
            )

        def merge():
            return build_object_type(
                description="Apply these field values.",
                properties={
                    "resolution": self.resolution_enum("MergeResolutionEnum", ("merge",)).ref,
                    "record": {
                        **build_basic_type(OpenApiTypes.OBJECT),
                        "description": "The field values to apply, checked like a pushed `modified` record of the "
                        "conflict's entity: changed fields only, unknown fields refused (`400`).",
                    },
                },
                required=["resolution", "record"],
                additionalProperties=False,
            )

        def build():
            branches = {"KeepResolution": keep, "MergeResolution": merge}
            refs = {name: self.shared_component(name, branch).ref["$ref"] for name, branch in branches.items()}
            return {
                "oneOf": [{"$ref": ref} for ref in refs.values()],
                "discriminator": {
                    "propertyName": "resolution",
                    "mapping": {
                        "server": refs["KeepResolution"],
                        "client": refs["KeepResolution"],
                        "merge": refs["MergeResolution"],
                    },
                },
                "description": "How to resolve a conflict (protocol section 5): a `record` with `merge` only.",
            }

        return self.shared_component("Resolution", build)

    def conflicts_responses(self):
        if self.conflicts_api() == "list":

            def build():
                return build_object_type(
                    properties={"conflicts": build_array_type(self.conflict_component().ref)}, required=["conflicts"]
                )

            ok = self.shared_component("PendingConflicts", build).ref
            errors = {401: PULL_ERRORS[401]}
        else:

            def build():
                return build_object_type(
                    properties={
                        "conflict_id": build_basic_type(OpenApiTypes.INT),
                        "status": self.resolution_enum("ConflictStatusEnum", ("resolved",)).ref,
                        "resolution": self.resolution_enum("ResolutionEnum", ("server", "client", "merge")).ref,
                        "record": nullable(
                            {**build_basic_type(OpenApiTypes.OBJECT), "description": "The record now; null if deleted."}
                        ),
                    },
                    required=["conflict_id", "status", "resolution", "record"],
                )

            ok = self.shared_component("ResolvedConflict", build).ref
            errors = {
                400: "`validation_error`: an unknown resolution, a `record` without `merge` (or `merge` without "
                "one), or a merge record with unknown fields or bad values.",
                401: PULL_ERRORS[401],
                403: "`permission_denied`: applying the change needs the entity's change (or delete) permission.",
                404: "`not_found`: no such conflict of yours.",
                409: "`already_resolved`: it was resolved another way; `detail` says how.",
            }
        error = self.error_component().ref
        return {200: ok, **{code: OpenApiResponse(error, description=text) for code, text in errors.items()}}

    def get_request_serializer(self):
        if self.conflicts_api() == "resolve":
            return {media_type: self.conflicts_request().ref for media_type in self.map_parsers()}
        entities = self.sync_entities()
        if not entities or self.method != "POST":
            return super().get_request_serializer()
        push = self.view_component("Push", lambda: self.build_push(entities))
        return {media_type: push.ref for media_type in self.map_parsers()}

    def get_response_serializers(self):
        if self.conflicts_api():
            return self.conflicts_responses()
        entities = self.sync_entities()
        if not entities or self.method not in ("GET", "POST"):
            return super().get_response_serializers()
        if self.method == "GET":
            ok = OpenApiResponse(
                self.view_component("Page", lambda: self.build_page(entities)).ref,
                description="A page of changes; while `has_more`, pull again with `since=<cursor>`.",
            )
            errors = PULL_ERRORS
        else:
            ok = OpenApiResponse(
                self.view_component("PushResult", lambda: self.build_push_result(entities)).ref,
                description="The push was applied (conflicting changes recorded, not applied); "
                "`changes` is what the client must apply now.",
            )
            errors = PUSH_ERRORS
        error = self.error_component().ref
        return {200: ok, **{code: OpenApiResponse(error, description=text) for code, text in errors.items()}}

    # --- entities and component names ----------------------------------------

    def sync_entities(self):
        """The view's entities; empty for a view that has none (left to AutoSchema)."""
        get_entities = getattr(self.view, "get_entities", None)
        if get_entities is None:
            return []
        try:
            return list(get_entities())
        except ImproperlyConfigured:
            return []

    def view_prefix(self):
        name = type(self.view).__name__
        for suffix in ("APIView", "View"):
            if name.endswith(suffix) and name != suffix:
                return name[: -len(suffix)]
        return name

    def lookup(self, name):
        try:
            return self.registry[(name, ResolvedComponent.SCHEMA)]
        except KeyError:
            return None

    def free(self, name, identity):
        existing = self.lookup(name)
        return existing is None or existing.object == identity

    def register(self, name, identity, build):
        """The component ``name`` for ``identity``, built and registered on first use."""
        existing = self.lookup(name)
        if existing is not None:
            return existing
        component = ResolvedComponent(name, ResolvedComponent.SCHEMA, object=identity)
        self.registry.register(component)
        component.schema = build()
        return component

    def shared_component(self, name, build):
        identity = ComponentIdentity(("offline_sync", name))
        candidates = [name, f"Sync{name}", *(f"Sync{name}{n}" for n in range(2, 100))]
        return self.register(next(c for c in candidates if self.free(c, identity)), identity, build)

    def view_component(self, suffix, build):
        view_class = type(self.view)
        prefix = self.view_prefix()
        for base in [prefix, *(f"{prefix}{n}" for n in range(2, 100))]:
            if all(self.free(f"{base}{s}", ComponentIdentity((view_class, s))) for s in VIEW_SUFFIXES):
                break
        return self.register(f"{base}{suffix}", ComponentIdentity((view_class, suffix)), build)

    def entity_component(self, entity, suffix, build):
        key = (entity.model._meta.label, tuple(entity.fields), tuple(read_only_fields(entity)))
        key += (json.dumps(self.written_fields(entity), sort_keys=True, default=str),)  # its serializer's fields
        base = camel(entity.name)
        candidates = [base, f"{self.view_prefix()}{base}"]
        candidates += [f"{self.view_prefix()}{base}{n}" for n in range(2, 100)]
        for base in candidates:
            if all(self.free(f"{base}{s}", ComponentIdentity((key, s))) for s in ENTITY_SUFFIXES):
                break
        return self.register(f"{base}{suffix}", ComponentIdentity((key, suffix)), build)

    # --- shared components --------------------------------------------------

    def error_component(self):
        def build():
            return build_object_type(
                description="The envelope of every error (protocol section 7). Nothing was applied.",
                properties={
                    "error": {"type": "string", "enum": list(ERROR_CODES)},
                    "detail": {
                        **build_basic_type(OpenApiTypes.ANY),
                        "description": "What went wrong: a message, or for `validation_error` an object "
                        "giving the path to each bad value.",
                    },
                    "conflicts": {
                        **build_array_type(self.conflict_component().ref),
                        "description": "With `unresolved_conflicts`: the pending conflicts.",
                    },
                },
                required=["error"],
            )

        return self.shared_component("Error", build)

    def conflict_component(self):
        def build():
            any_type = build_basic_type(OpenApiTypes.ANY)
            return build_object_type(
                description="A change that was not applied because the server's record changed after the "
                "client saw it (protocol section 4.2).",
                properties={
                    "conflict_id": build_basic_type(OpenApiTypes.INT),
                    "entity": build_basic_type(OpenApiTypes.STR),
                    "id": {**any_type, "description": "The record's id."},
                    "kind": {**build_basic_type(OpenApiTypes.STR), "description": "`modified` or `deleted`."},
                    "client": {**build_basic_type(OpenApiTypes.OBJECT), "description": "The client's change."},
                    "server": nullable(
                        {
                            **build_basic_type(OpenApiTypes.OBJECT),
                            "description": "The server's record when the conflict was detected; null if deleted.",
                        }
                    ),
                    "detected_on": build_basic_type(OpenApiTypes.DATETIME),
                    "device_id": nullable(build_basic_type(OpenApiTypes.STR)),
                },
                required=["conflict_id", "entity", "id", "kind", "client", "server"],
            )

        return self.shared_component("Conflict", build)

    # --- per entity -------------------------------------------------------------

    def record_component(self, entity):
        def build():
            schema = self._map_serializer(record_serializer(entity), "response")
            schema["required"] = list(schema.get("properties", {}))  # a record always carries every field
            return schema

        return self.entity_component(entity, "Record", build)

    def id_schema(self, entity):
        return strip_meta(self.record_component(entity).schema["properties"]["id"])

    def changes_component(self, entity):
        def build():
            return build_object_type(
                properties={
                    "records": build_array_type(self.record_component(entity).ref),
                    "deleted": {
                        **build_array_type(self.id_schema(entity)),
                        "description": "Ids the client must remove: deleted, or no longer in its subset.",
                    },
                },
                required=["records", "deleted"],
            )

        return self.entity_component(entity, "Changes", build)

    def written_fields(self, entity):
        """``(properties, required)`` of the fields a push writes, from the entity's serializer.

        These are the fields ``serializers.validate_record()`` hands to
        ``entity.get_serializer_class()``: wire fields that neither the server
        nor ``read_only_fields`` own. A foreign key is the related record's id.
        """
        serializer = entity.get_serializer_class()()
        schema = self._map_serializer(serializer, "request")
        owned = {*SERVER_OWNED, *entity.read_only_fields}
        properties, required = {}, []
        for name, prop in schema.get("properties", {}).items():
            field = serializer.fields[name]
            if field.read_only or name not in entity.fields or name in owned:
                continue
            if isinstance(field, serializers.DecimalField) and (
                isinstance(field, StrictTypeMixin) or prop.get("type") == "string"
            ):
                prop = self.decimal_string(field)  # StrictTypeMixin: strings only, whatever COERCE_DECIMAL_TO_STRING
            elif isinstance(field, serializers.CharField) and prop.get("type") == "string":
                prop = self.char_string(field, prop)
            elif isinstance(field, serializers.DurationField):
                prop = self.duration_seconds(field)
            elif isinstance(field, serializers.JSONField) and not field.allow_null:
                prop = {**prop, "anyOf": [{"type": t} for t in ("object", "array", "string", "number", "boolean")]}
            properties[name] = prop
            if name in schema.get("required", ()):
                required.append(name)
        return properties, required

    def char_string(self, field, schema):
        """A CharField's schema with what spectacular leaves out: not blank, no NUL (DRF refuses both)."""
        schema = dict(schema)
        if not field.allow_blank:
            schema["minLength"] = max(schema.get("minLength", 0), 1)
        if "pattern" not in schema and any(isinstance(v, ProhibitNullCharactersValidator) for v in field.validators):
            # DRF trims before the blank check unless trim_whitespace=False (SyncRecordSerializer's).
            non_blank = not field.allow_blank and field.trim_whitespace
            schema["pattern"] = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$" if non_blank else NO_NUL
        return schema

    def duration_seconds(self, field):
        """A duration: a number of seconds, as pulls send it (``SecondsDurationField``)."""
        schema = {
            "type": "number",
            "minimum": -SecondsDurationField.MAX_SECONDS,
            "maximum": SecondsDurationField.MAX_SECONDS,
            "description": "Seconds, as pulls send it; a string in Django's duration formats is taken too.",
        }
        return nullable(schema) if field.allow_null else schema

    def decimal_string(self, field):
        """A DecimalField's schema: a string (protocol section 2), exactly the plain notations it takes."""
        schema = {
            "type": "string",
            "format": "decimal",
            "maxLength": field.MAX_STRING_LENGTH,
            "pattern": decimal_pattern(field),
            "description": "A decimal as a string, in plain notation (`-1234.50`); the server also takes exponent "
            "notation, a leading `+` and surrounding spaces when the value fits. Pulls answer plain notation.",
        }
        return nullable(schema) if field.allow_null else schema

    def ignored_fields(self, entity, written, skip=()):
        """Fields a pushed record may carry that the server drops: its own, read-only ones, others not written."""
        names = [*WIRE_META, *SERVER_OWNED, *entity.read_only_fields, *entity.fields]  # WIRE_META first: its order
        return {name: dict(IGNORED) for name in dict.fromkeys(names) if name not in written and name not in skip}

    def added_component(self, entity):
        def build():
            properties, required = self.written_fields(entity)
            return build_object_type(
                description=f"A new `{entity.name}` record. The server assigns `id`; fields it owns are ignored; "
                "any other field is refused.",
                properties={
                    "local_id": {**LOCAL_ID, "description": "Unique per entity in this push."},
                    **properties,
                    **self.ignored_fields(entity, properties),
                },
                required=["local_id", *required],
                additionalProperties=False,
            )

        return self.entity_component(entity, "Added", build)

    def modified_component(self, entity):
        def build():
            properties, _ = self.written_fields(entity)
            return build_object_type(
                description=f"A change to a `{entity.name}` record: `id` and the changed fields only. "
                "Fields the server owns are ignored; any other field is refused.",
                properties={
                    "id": self.request_id(entity),
                    "base_version": self.base_version(),
                    **properties,
                    **self.ignored_fields(entity, properties, skip=("id",)),
                },
                required=["id"],
                additionalProperties=False,
            )

        return self.entity_component(entity, "Modified", build)

    def deletion_component(self, entity):
        def build():
            return build_object_type(
                description=f"A deleted `{entity.name}` record.",
                properties={"id": self.request_id(entity), "base_version": self.base_version()},
                required=["id"],
                additionalProperties=False,
            )

        return self.entity_component(entity, "Deletion", build)

    def request_id(self, entity):
        return {
            **id_type(entity.model._meta.pk),
            "description": "The record's id; once per entity and push, in `modified` or `deleted`.",
        }

    def base_version(self):
        return {
            "type": "integer",
            "minimum": 1,
            "nullable": True,
            "description": "The version the client last saw; without it (or null) the server compares with "
            "`last_sync`.",
        }

    def push_changes_component(self, entity):
        def build():
            return build_object_type(
                properties={
                    "added": build_array_type(self.added_component(entity).ref),
                    "modified": build_array_type(self.modified_component(entity).ref),
                    "deleted": build_array_type(self.deletion_component(entity).ref),
                },
                additionalProperties=False,
            )

        return self.entity_component(entity, "PushChanges", build)

    # --- per view -------------------------------------------------------------

    def view_changes(self, entities):
        return self.view_component(
            "Changes",
            lambda: build_object_type(
                description="Every entity of the endpoint, each with `records` to upsert and `deleted` ids.",
                properties={entity.name: self.changes_component(entity).ref for entity in entities},
                required=[entity.name for entity in entities],
            ),
        )

    def page_properties(self, entities):
        return {
            "full": {
                **build_basic_type(OpenApiTypes.BOOL),
                "description": "True: these records (with the pages that follow) are the whole subset; "
                "the client replaces what it holds. False: a delta.",
            },
            "changes": self.view_changes(entities).ref,
            "cursor": {**build_basic_type(OpenApiTypes.STR), "description": "Opaque; send it back as `since`."},
            "has_more": {
                **build_basic_type(OpenApiTypes.BOOL),
                "description": "Pull again with `since=<cursor>` for the next page.",
            },
            "server_time": build_basic_type(OpenApiTypes.DATETIME),
        }

    def build_page(self, entities):
        properties = self.page_properties(entities)
        return build_object_type(properties=properties, required=list(properties))

    def build_push(self, entities):
        changes = self.view_component(
            "PushChanges",
            lambda: build_object_type(
                description="The client's changes per entity; entities and lists may be omitted.",
                properties={entity.name: self.push_changes_component(entity).ref for entity in entities},
                additionalProperties=False,
            ),
        )
        return build_object_type(
            properties={
                "sync_id": {
                    **build_basic_type(OpenApiTypes.UUID),
                    "description": "Made once per push and kept until it succeeds; a retry sends the same.",
                },
                "last_sync": nullable(
                    {
                        **build_basic_type(OpenApiTypes.STR),
                        "minLength": 1,
                        "description": "The cursor of this client's last successful sync; null or omitted on the "
                        "first. A cursor the server did not issue is a `400`.",
                    }
                ),
                "device_id": nullable(
                    {
                        **build_basic_type(OpenApiTypes.STR),
                        "maxLength": 200,
                        "pattern": NO_NUL,
                        "description": "Informational: recorded with conflicts, so staff see which device.",
                    }
                ),
                "changes": changes.ref,
            },
            required=["sync_id"],
            additionalProperties=False,
        )

    def build_push_result(self, entities):
        id_map = self.view_component(
            "IdMap",
            lambda: build_object_type(
                description="Per entity, `local_id` to the new server `id`.",
                properties={
                    entity.name: build_object_type(additionalProperties=self.id_schema(entity)) for entity in entities
                },
                required=[entity.name for entity in entities],
            ),
        )
        properties = {
            **self.page_properties(entities),
            "id_map": id_map.ref,
            "conflicts": build_array_type(self.conflict_component().ref),
        }
        return build_object_type(properties=properties, required=list(properties))
