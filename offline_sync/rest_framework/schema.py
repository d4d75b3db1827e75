"""OpenAPI 3 schemas of the sync endpoints, through drf-spectacular.

``SyncAPIView`` sets ``schema = SyncAutoSchema()``, which documents each
endpoint from its ``entities`` (protocol sections 2, 3, 4 and 7):

- per entity (named after ``SyncEntity.name``; ``items`` gives ``Items...``):
  ``ItemsRecord`` (the wire record, typed from the model), ``ItemsChanges``
  (``records`` and ``deleted``) and, for endpoints that accept pushes,
  ``ItemsPushChanges``, ``ItemsAdded``, ``ItemsModified``, ``ItemsDeletion``;
- per view (named after the view class without ``View``; ``ProductSyncView``
  gives ``ProductSync...``): ``ProductSyncPage`` (the pull response) and
  ``ProductSyncChanges``; with a ``post`` method also ``ProductSyncPush`` (the
  request), ``ProductSyncPushChanges``, ``ProductSyncIdMap`` and
  ``ProductSyncPushResult``;
- shared: ``Error`` (the envelope), ``Conflict``, ``LocalRef``.

If two endpoints carry entities with the same name but different models or
fields, the later one's components get the view's name in front
(``ItemsAndNotesPullItemsRecord``), so no component is reused wrongly.

GET takes ``since``, ``limit`` and one query parameter per filter of every
entity's FilterSet; POST takes the filters (they choose the subset of the
response). Operation ids end in ``_pull`` and ``_push``.
"""

import re

from django.core.exceptions import ImproperlyConfigured
from django.db import models
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
    400: "`validation_error`: bad JSON, types, missing or unknown fields or entities, duplicate or dangling "
    "`local_id`; `detail` gives the path.",
    401: "`not_authenticated`: no or bad credentials.",
    403: "`permission_denied`: the user may not make these changes.",
    404: "`not_found`: a record id (or a parent) that does not exist or is outside the caller's scope.",
    409: "`unresolved_conflicts` (with `conflicts`: the pending ones) or `sync_id_reused`. Nothing was applied.",
    410: "`cursor_expired`: `last_sync` is older than the purge horizon; pull in full, then push again.",
    413: "`payload_too_large`: too many records or too large a body; `detail` states the limits.",
    415: "`unsupported_media_type`: the body is not `application/json`.",
    429: "`throttled`: too many requests; retry after `Retry-After` seconds.",
}

LOCAL_ID = {"type": "string", "minLength": 1, "maxLength": 64}

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


class SyncAutoSchema(AutoSchema):
    """Documents a ``SyncAPIView`` from its ``entities``; other views are left to ``AutoSchema``."""

    # --- hooks of AutoSchema -------------------------------------------------

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation and "requestBody" in operation and self.sync_entities():
            operation["requestBody"]["required"] = True
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
                    OpenApiTypes.STR,
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
                for parameter in extension.resolve_filter_field(
                    self, entity.model, filterset_class, name, filter_field
                ):
                    # One query string feeds every entity's FilterSet: a shared name is one parameter.
                    parameters.setdefault(parameter["name"], parameter)
        return list(parameters.values())

    # --- the conflicts API (views with ``conflicts_api = "list"`` or ``"resolve"``) --

    def conflicts_api(self):
        return getattr(self.view, "conflicts_api", None)

    def conflicts_request(self):
        def build():
            return build_object_type(
                description="How to resolve a conflict (protocol section 5).",
                properties={
                    "resolution": {"type": "string", "enum": ["server", "client", "merge"]},
                    "record": {
                        **build_basic_type(OpenApiTypes.OBJECT),
                        "description": "With `merge` only: the field values to apply.",
                    },
                },
                required=["resolution"],
            )

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
                        "status": {"type": "string", "enum": ["resolved"]},
                        "resolution": {"type": "string", "enum": ["server", "client", "merge"]},
                        "record": nullable(
                            {**build_basic_type(OpenApiTypes.OBJECT), "description": "The record now; null if deleted."}
                        ),
                    },
                    required=["conflict_id", "status", "resolution", "record"],
                )

            ok = self.shared_component("ResolvedConflict", build).ref
            errors = {
                400: "`validation_error`: an unknown resolution, or a merge record with bad values.",
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

    def local_ref_component(self):
        def build():
            return build_object_type(
                description="A foreign key to a record added in the same push.",
                properties={"local_id": LOCAL_ID},
                required=["local_id"],
            )

        return self.shared_component("LocalRef", build)

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

    def writable_properties(self, entity):
        """Properties and required names of what a client may write, foreign keys also as ``LocalRef``."""
        schema = self._map_serializer(record_serializer(entity), "request")
        properties, required = {}, []
        for name, prop in schema.get("properties", {}).items():
            if prop.get("readOnly") or name == "id":
                continue
            field = entity.model._meta.get_field(name)
            if isinstance(field, models.ForeignKey):
                prop = {"oneOf": [prop, self.local_ref_component().ref]}
            properties[name] = prop
            if name in schema.get("required", ()):
                required.append(name)
        return properties, required

    def added_component(self, entity):
        def build():
            properties, required = self.writable_properties(entity)
            return build_object_type(
                description=f"A new `{entity.name}` record. The server assigns `id`; fields it owns are ignored.",
                properties={"local_id": {**LOCAL_ID, "description": "Unique per entity in this push."}, **properties},
                required=["local_id", *required],
            )

        return self.entity_component(entity, "Added", build)

    def modified_component(self, entity):
        def build():
            properties, _ = self.writable_properties(entity)
            return build_object_type(
                description=f"A change to a `{entity.name}` record: `id` and the changed fields only.",
                properties={"id": self.id_schema(entity), "base_version": self.base_version(), **properties},
                required=["id"],
            )

        return self.entity_component(entity, "Modified", build)

    def deletion_component(self, entity):
        def build():
            return build_object_type(
                description=f"A deleted `{entity.name}` record.",
                properties={"id": self.id_schema(entity), "base_version": self.base_version()},
                required=["id"],
            )

        return self.entity_component(entity, "Deletion", build)

    def base_version(self):
        return {
            "type": "integer",
            "minimum": 1,
            "description": "The version the client last saw; without it the server compares with `last_sync`.",
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
                        "description": "The cursor of this client's last successful sync; null on the first.",
                    }
                ),
                "device_id": {**build_basic_type(OpenApiTypes.STR), "description": "Informational."},
                "changes": changes.ref,
            },
            required=["sync_id", "last_sync", "changes"],
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
