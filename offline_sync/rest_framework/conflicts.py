"""The conflicts API (protocol section 5): list your pending conflicts, resolve one.

Resolving is the engine's (``offline_sync.resolution``), shared with the admin.
"""

from django.db import router
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from .. import conflicts
from ..models import Conflict
from ..resolution import resolve_conflict
from .views import SyncAPIView

# The resolutions (protocol section 5) and what each does.
RESOLUTIONS = {
    "server": "keep the server's record",
    "client": "apply the client's change over it",
    "merge": "apply the field values in `record`",
}

UNKNOWN_RESOLUTION = f"Must be one of {', '.join(RESOLUTIONS)}."


class ResolveConflictSerializer(serializers.Serializer):
    """How to resolve a conflict (protocol section 5): a `record` with `merge` only."""

    record_resolutions = ("merge",)  # the resolutions that take a `record` (the schema: and need one)

    resolution = serializers.ChoiceField(
        list(RESOLUTIONS.items()),
        error_messages=dict.fromkeys(("required", "null", "invalid_choice"), UNKNOWN_RESOLUTION),
    )
    # Any value passes here: resolve_conflict() refuses a merge record that is not an
    # object, with the record's other checks, once the conflict is found and the
    # caller's permission checked (protocol section 7's order).
    record = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="The field values to apply, checked like a pushed `modified` record of the conflict's entity: "
        "changed fields only, unknown fields refused (`400`).",
    )

    def run_validation(self, data=serializers.empty):
        # The body's shape first, alone, as for a push: an object, with known keys only.
        if not isinstance(data, dict):
            raise exceptions.ValidationError({"body": ["Must be an object."]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise exceptions.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().run_validation(data)

    def validate(self, attrs):
        if "record" in attrs and attrs["resolution"] not in self.record_resolutions:
            raise exceptions.ValidationError({"record": ["Only a merge takes a record."]})
        return attrs


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
        return Response({"conflicts": [conflicts.as_wire(c) for c in conflicts.pending(user=request.user)]})


class ConflictResolveView(ConflictAPIView):
    """``POST <conflict_id>/resolve/`` with ``{"resolution": "server" | "client" | "merge", "record": {...}}``."""

    conflicts_api = "resolve"  # for the schema
    serializer_class = ResolveConflictSerializer  # validates the body; the schema documents it

    def validate_request(self, request):
        if request.method == "POST":
            self.body = self.serializer_class(data=request.data)
            self.body.is_valid(raise_exception=True)

    def post(self, request, conflict_id, *args, **kwargs):
        resolution, record = self.body.validated_data["resolution"], self.body.validated_data.get("record")
        # Someone else's conflict answers like a missing one.
        # Read where the resolution writes: a read replica may not have the conflict yet.
        pending = Conflict.objects.db_manager(router.db_for_write(Conflict))
        conflict = pending.filter(pk=conflict_id, user=request.user).select_related("content_type").first()
        if conflict is None:
            raise Http404
        self.check_model_permission(conflict, resolution)
        conflict = resolve_conflict(conflict, resolution, record, by=request.user, request=request)
        return Response(resolution_response(conflict))

    def check_model_permission(self, conflict, resolution):
        """Applying a change needs the permission a push of it would need."""
        permission = conflicts.required_permission(conflict, resolution)
        if permission and not self.request.user.has_perm(permission):
            raise exceptions.PermissionDenied()
