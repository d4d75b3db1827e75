"""Components of the sync endpoints: the shared ones, one set per entity and one per view.

Methods of ``SyncAutoSchema`` (hooks.py), whose naming (``shared_component``,
``entity_component``, ``view_component``) they build on.
"""

from drf_spectacular.plumbing import build_array_type, build_basic_type, build_object_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from ...exceptions import ERROR_STATUS
from ...records import WIRE_META
from ..serializers import SERVER_OWNED, StrictTypeMixin
from .fields import (
    IGNORED,
    LOCAL_ID,
    NO_NUL,
    char_string,
    decimal_string,
    duration_seconds,
    id_type,
    nullable,
    record_serializer,
    strip_meta,
)

# The errors each operation documents, `error` code -> when; statuses come from ERROR_STATUS.
PULL_ERRORS = {
    "validation_error": "a bad `limit`, `since` cursor or filter value; `detail` names it.",
    "not_authenticated": "no or bad credentials.",
    "permission_denied": "the user may not view these entities.",
    "not_found": "no such sync endpoint.",
    "cursor_expired": "deletions since `since` were purged; pull again without `since`.",
    "throttled": "too many requests; retry after `Retry-After` seconds.",
}

PUSH_ERRORS = {
    "validation_error": "bad JSON, types, missing or unknown fields or entities, the same `local_id` or record "
    "twice in one entity's lists, a `last_sync` the server did not issue; `detail` gives the path.",
    "not_authenticated": "no or bad credentials.",
    "permission_denied": "the user may not make these changes.",
    "not_found": "a record id (or a parent) that does not exist or is outside the caller's scope.",
    "unresolved_conflicts": "the pending conflicts are in `conflicts`. Nothing was applied.",
    "sync_id_reused": "this `sync_id` came before with another body or endpoint. Nothing was applied.",
    "cursor_expired": "`last_sync` is older than the purge horizon; pull in full, then push again.",
    "payload_too_large": "too many records or too large a body; `detail` states the limits.",
    "unsupported_media_type": "the body is not `application/json`.",
    "throttled": "too many requests; retry after `Retry-After` seconds.",
}


class SyncComponentsMixin:
    """The components of sync endpoints, registered once per identity."""

    # --- shared components --------------------------------------------------

    def error_component(self):
        def build():
            return build_object_type(
                description="The envelope of every error (protocol section 7). Nothing was applied.",
                properties={
                    "error": {"type": "string", "enum": list(ERROR_STATUS)},
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

    def error_responses(self, errors):
        """``{status: response}`` for ``{code: when}``: the ``Error`` envelope; codes of one status share it."""
        whens = {}
        for code, when in errors.items():
            whens.setdefault(ERROR_STATUS[code], []).append(f"`{code}`: {when}")
        error = self.error_component().ref
        return {status: OpenApiResponse(error, description=" ".join(texts)) for status, texts in whens.items()}

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
                prop = decimal_string(field)  # StrictTypeMixin: strings only, whatever COERCE_DECIMAL_TO_STRING
            elif isinstance(field, serializers.CharField) and prop.get("type") == "string":
                prop = char_string(field, prop)
            elif isinstance(field, serializers.DurationField):
                prop = duration_seconds(field)
            elif isinstance(field, serializers.JSONField) and not field.allow_null:
                prop = {**prop, "anyOf": [{"type": t} for t in ("object", "array", "string", "number", "boolean")]}
            properties[name] = prop
            if name in schema.get("required", ()):
                required.append(name)
        return properties, required

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
