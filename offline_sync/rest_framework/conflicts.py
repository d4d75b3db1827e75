"""The conflicts API (protocol section 5): list your pending conflicts, resolve one."""

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


def entity_for(conflict, request=None):
    """The ``SyncEntity`` of the endpoint that recorded ``conflict``, so its fields and serializer apply."""
    model = conflict.content_type.model_class()
    try:
        match = resolve(conflict.endpoint)
        view = match.func.view_class(request=request, args=match.args, kwargs=match.kwargs)
        for entity in view.get_entities():
            if entity.name == conflict.entity and entity.model is model:
                return entity
    except (Resolver404, AttributeError):
        pass
    return SyncEntity(conflict.entity, model)  # the endpoint is gone: the model's defaults


def client_values(conflict, entity):
    """The client's change as field values, validated as when it was pushed."""
    sent = {k: v for k, v in conflict.client.items() if k != "base_version"}
    return validate_record(entity, sent, ["client"], partial=True)


def resolve_conflict(conflict, resolution, merge_record, *, by, request=None, expect_version=...):
    """Validate a resolution of ``conflict`` and apply it; shared by the API and the admin."""
    entity = entity_for(conflict, request)
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
        request=merge_record if resolution == "merge" else None,
        expect_version=expect_version,
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
        if resolution == "server":
            return
        model = conflict.content_type.model_class()
        deleting = resolution == "client" and conflict.kind == Conflict.Kind.DELETED
        codename = f"{model._meta.app_label}.{'delete' if deleting else 'change'}_{model._meta.model_name}"
        if not self.request.user.has_perm(codename):
            raise exceptions.PermissionDenied()
