"""``SyncAutoSchema``: drf-spectacular's ``AutoSchema`` hooks for sync views, and component naming."""

import json

from django.core.exceptions import ImproperlyConfigured
from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ComponentIdentity, ResolvedComponent
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from ...conf import sync_settings
from .components import PULL_ERRORS, PUSH_ERRORS, SyncComponentsMixin
from .conflicts import ConflictsSchemaMixin
from .fields import NO_NUL, camel, read_only_fields

# Component names derived from an entity's base name, and from a view's.
ENTITY_SUFFIXES = ("Record", "Changes", "PushChanges", "Added", "Modified", "Deletion")
VIEW_SUFFIXES = ("Page", "Changes", "Push", "PushChanges", "IdMap", "PushResult")


class SyncAutoSchema(ConflictsSchemaMixin, SyncComponentsMixin, AutoSchema):
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
        return {200: ok, **self.error_responses(errors)}

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
