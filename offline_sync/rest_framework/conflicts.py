"""The conflicts API (protocol section 5): list your pending conflicts, resolve one."""

import copy

from django.http import Http404
from django.urls import Resolver404, resolve
from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from .. import conflicts
from ..models import Conflict
from ..records import RecordFormat
from .entities import SyncEntity
from .serializers import validate_record
from .views import SyncAPIView

RESOLUTIONS = ("server", "client", "merge")
ENDPOINT_GONE = "The endpoint that recorded this conflict no longer offers its entity: keep the server version."


def endpoint_for(conflict, request=None):
    """``(view, entity)``: the endpoint that recorded ``conflict`` and its entity, or ``(None, None)`` if gone.

    The view is set up for ``request`` as if the conflict's user had sent it,
    so that scopes and visible records are that user's (whoever resolves).
    """
    model = conflict.content_type.model_class()
    if request is not None and getattr(request, "user", None) != conflict.user:
        request = copy.copy(request)
        request.user = conflict.user
    try:
        match = resolve(conflict.endpoint)
        view = match.func.view_class(request=request, args=match.args, kwargs=match.kwargs)
        for entity in view.get_entities():
            # A proxy model's conflict is recorded under its concrete model's content type.
            if entity.name == conflict.entity and entity.model._meta.concrete_model is model:
                return view, entity
    except (Resolver404, AttributeError):
        pass
    return None, None


def entity_for(conflict, request=None):
    """The ``SyncEntity`` that recorded ``conflict``; for display, the model's defaults when it is gone."""
    return endpoint_for(conflict, request)[1] or SyncEntity(conflict.entity, conflict.content_type.model_class())


def client_values(conflict, entity):
    """The client's change as field values, validated as when it was pushed."""
    sent = {k: v for k, v in conflict.client.items() if k != "base_version"}
    return validate_record(entity, sent, ["client"], partial=True)


def resolve_conflict(conflict, resolution, merge_record, *, by, request=None, expect_version=...):
    """Validate a resolution of ``conflict`` and apply it; shared by the API and the admin.

    The change applies with the endpoint's fields, read-only fields and scope,
    and only to a record its user may still see. When the endpoint no longer
    offers the entity, only ``"server"`` (which applies nothing) is allowed:
    the model's defaults would loosen the endpoint's rules.
    """
    view, entity = endpoint_for(conflict, request)
    if entity is None:
        if resolution != "server":
            raise exceptions.ValidationError({"resolution": [ENDPOINT_GONE]})
        entity = SyncEntity(conflict.entity, conflict.content_type.model_class())
        scope, visible = {}, {}
    else:
        scope = entity.get_scope(view.request)
        visible = {e.model: view.get_visible_queryset(e) for e in view.get_entities()}
    values = None
    if resolution == "client" and conflict.kind == Conflict.Kind.MODIFIED:
        values = client_values(conflict, entity)
    elif resolution == "merge":
        if not isinstance(merge_record, dict):
            raise exceptions.ValidationError({"record": ["Required for a merge: the field values to keep."]})
        values = validate_record(entity, merge_record, ["record"], partial=True)
    return conflicts.resolve(
        conflict.pk,
        resolution,
        values,
        by=by,
        fmt=RecordFormat(entity.model, entity.fields),
        using=Conflict.objects.db,
        asked=merge_record if resolution == "merge" else None,
        expect_version=expect_version,
        scope=scope,
        visible=visible,
    )


def resolution_response(conflict):
    return {
        "conflict_id": conflict.pk,
        "status": conflict.status,
        "resolution": conflict.resolution,
        "record": conflict.resolved_record,
    }


class ConflictAPIView(SyncAPIView):
    permission_classes = [IsAuthenticated]

    def get_entities(self):
        return []

    def get_required_permissions(self, request):
        return []


class ConflictListView(ConflictAPIView):
    """``GET``: the caller's pending conflicts, on every endpoint."""

    conflicts_api = "list"  # for the schema

    def get(self, request, *args, **kwargs):
        self.check_permissions(request)
        return Response({"conflicts": [conflicts.as_wire(c) for c in conflicts.pending(user=request.user)]})


class ConflictResolveView(ConflictAPIView):
    """``POST <conflict_id>/resolve/`` with ``{"resolution": "server" | "client" | "merge", "record": {...}}``."""

    conflicts_api = "resolve"  # for the schema

    def post(self, request, conflict_id, *args, **kwargs):
        body = request.data
        if not isinstance(body, dict):
            raise exceptions.ValidationError({"body": ["Must be an object."]})
        unknown = sorted(set(body) - {"resolution", "record"})
        if unknown:
            raise exceptions.ValidationError({key: ["Unknown field."] for key in unknown})
        resolution = body.get("resolution")
        if resolution not in RESOLUTIONS:
            raise exceptions.ValidationError({"resolution": [f"Must be one of {', '.join(RESOLUTIONS)}."]})
        if resolution != "merge" and "record" in body:
            raise exceptions.ValidationError({"record": ["Only a merge takes a record."]})
        self.check_permissions(request)
        # Someone else's conflict answers like a missing one.
        conflict = Conflict.objects.filter(pk=conflict_id, user=request.user).select_related("content_type").first()
        if conflict is None:
            raise Http404
        self.check_model_permission(conflict, resolution)
        conflict = resolve_conflict(conflict, resolution, body.get("record"), by=request.user, request=request)
        return Response(resolution_response(conflict))

    def check_model_permission(self, conflict, resolution):
        """Applying a change needs the permission a push of it would need."""
        permission = conflicts.required_permission(conflict, resolution)
        if permission and not self.request.user.has_perm(permission):
            raise exceptions.PermissionDenied()
