"""Default permissions of sync endpoints: Django model permissions per entity."""

from rest_framework.permissions import BasePermission


class SyncModelPermissions(BasePermission):
    """Authenticated, and the Django model permissions the request needs on every entity.

    Pulling needs ``view`` on each entity. A view sets ``required_actions`` per
    method, e.g. a push asks for ``add``/``change``/``delete`` as its changes need.
    """

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return all(
            user.has_perm(f"{model._meta.app_label}.{action}_{model._meta.model_name}")
            for model, action in view.get_required_permissions(request)
        )
