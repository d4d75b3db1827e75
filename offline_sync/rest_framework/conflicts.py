"""The conflicts API (protocol section 5): list your pending conflicts, resolve one.

Resolving is the engine's (``offline_sync.resolution``), shared with the admin.
"""

from django.http import Http404
from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from .. import conflicts
from ..models import Conflict
from ..resolution import resolve_conflict
from .views import SyncAPIView

RESOLUTIONS = ("server", "client", "merge")


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
