"""Default permissions of sync endpoints: Django model permissions per entity."""

from functools import cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import connections, router
from rest_framework.permissions import BasePermission

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


class SyncModelPermissions(BasePermission):
    """Authenticated, and the Django model permissions the request needs on every entity.

    Pulling needs ``view`` on each entity. A view sets ``required_actions`` per
    method, e.g. a push asks for ``add``/``change``/``delete`` as its changes need.
    """

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        load_permissions(user)
        return all(
            user.has_perm(f"{model._meta.app_label}.{action}_{model._meta.model_name}")
            for model, action in view.get_required_permissions(request)
        )


def load_permissions(user):
    """Fill ``ModelBackend``'s permission cache of ``user`` in one statement instead of its two.

    Devices poll, so a request's fixed cost counts: ``ModelBackend`` reads a
    user's own and their groups' permissions in two queries. This reads both
    at once into the cache ``user.has_perm()`` then answers from
    (``_perm_cache``, the set of ``"app_label.codename"`` it would build). Only
    with ``ModelBackend`` as the sole backend, for an active non-superuser of a
    user model with Django's ``user_permissions`` and ``groups``; otherwise,
    or once the cache is filled, it does nothing and ``has_perm()`` works as
    it always does.
    """
    if hasattr(user, "_perm_cache") or not user.is_active or user.is_superuser:
        return
    if list(settings.AUTHENTICATION_BACKENDS) != [MODEL_BACKEND]:
        return
    from django.contrib.auth.models import Permission

    using = router.db_for_read(Permission, instance=user)
    sql = _permissions_sql(type(user), using)
    if sql is None:
        return
    with connections[using].cursor() as cursor:
        cursor.execute(sql, [user.pk, user.pk])
        user._perm_cache = {f"{app_label}.{codename}" for app_label, codename in cursor.fetchall()}


@cache
def _permissions_sql(user_model, using):
    """What ModelBackend's two queries read, as one statement; None for a user model without Django's fields."""
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    if user_model is not get_user_model():
        return None
    try:
        user_permissions = user_model._meta.get_field("user_permissions")
        groups = user_model._meta.get_field("groups")
    except FieldDoesNotExist:
        return None
    if user_permissions.related_model is not Permission or groups.related_model is not Group:
        return None
    q = connections[using].ops.quote_name

    def through(field):
        return q(field.m2m_db_table()), q(field.m2m_column_name()), q(field.m2m_reverse_name())

    own_table, own_user, own_permission = through(user_permissions)
    member_table, member_user, member_group = through(groups)
    granted_table, granted_group, granted_permission = through(Group._meta.get_field("permissions"))
    permission_id = q(Permission._meta.pk.column)
    content_type = q(Permission._meta.get_field("content_type").column)
    return (
        f"SELECT ct.{q('app_label')}, p.{q('codename')} FROM {q(Permission._meta.db_table)} p "
        f"INNER JOIN {q(ContentType._meta.db_table)} ct ON ct.{q(ContentType._meta.pk.column)} = p.{content_type} "
        f"WHERE p.{permission_id} IN ("
        f"SELECT {own_permission} FROM {own_table} WHERE {own_user} = %s "
        f"UNION SELECT g.{granted_permission} FROM {granted_table} g "
        f"INNER JOIN {member_table} m ON m.{member_group} = g.{granted_group} WHERE m.{member_user} = %s)"
    )
