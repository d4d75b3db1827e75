"""Sync endpoints: one concrete view per sync pattern over the engine.

``SyncAPIView`` resolves the request (entities, scope, filters, cursor, limit)
and answers errors in the protocol's envelope; ``ReadOnlySyncView`` is the
Read-Only and Read-Only Optimized pattern (full and delta pulls).
"""

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from ..conf import sync_settings
from ..cursors import Position
from ..pull import EntityQuery, pull
from .errors import sync_exception_handler
from .permissions import SyncModelPermissions


class SyncAPIView(APIView):
    """Base of every sync endpoint: set ``entities`` to a list of ``SyncEntity``."""

    entities = ()
    permission_classes = [SyncModelPermissions]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    def get_exception_handler(self):
        return sync_exception_handler

    # Protocol section 7 orders the checks: authentication, then the request's
    # shape and values, then permission. DRF checks permission in initial(), so
    # for an authenticated user it is deferred to the handler, which calls
    # check_permissions() once the request is validated.
    def initial(self, request, *args, **kwargs):
        self._permissions_checked = False
        self._in_initial = True
        try:
            super().initial(request, *args, **kwargs)
        finally:
            self._in_initial = False

    def check_permissions(self, request):
        if self._in_initial and request.user.is_authenticated and request.method != "OPTIONS":
            return
        super().check_permissions(request)
        self._permissions_checked = True

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code < 400 and not getattr(self, "_permissions_checked", True):
            raise ImproperlyConfigured(f"{type(self).__name__} answered without calling check_permissions().")
        return super().finalize_response(request, response, *args, **kwargs)

    def get_entities(self):
        if not self.entities:
            raise ImproperlyConfigured(f"{type(self).__name__} needs `entities`, a list of SyncEntity.")
        return list(self.entities)

    def get_required_permissions(self, request):
        """(model, action) pairs the request needs; pulling needs ``view``."""
        return [(entity.model, "view") for entity in self.get_entities()]

    def get_visible_queryset(self, entity):
        """The records of ``entity`` the caller may see; narrow by overriding ``entity.scope``."""
        return entity.model._default_manager.filter(**entity.get_scope(self.request))

    def get_subset_queryset(self, entity, visible):
        """The records of ``entity`` this device keeps: ``visible`` through the entity's FilterSet."""
        if entity.filterset_class is None:
            return visible
        filterset = entity.filterset_class(self.request.query_params, queryset=visible, request=self.request)
        if not filterset.is_valid():
            raise exceptions.ValidationError(filterset.errors)
        return filterset.qs

    def get_entity_queries(self):
        queries = []
        for entity in self.get_entities():
            visible = self.get_visible_queryset(entity)
            queries.append(
                EntityQuery(
                    name=entity.name,
                    subset=self.get_subset_queryset(entity, visible),
                    visible=visible,
                    tombstone_scope=entity.get_scope(self.request),
                    fields=entity.fields,
                )
            )
        return queries

    def get_limit(self):
        raw = self.request.query_params.get("limit")
        if raw is None:
            return sync_settings.PAGE_SIZE
        if not raw.isdigit() or int(raw) < 1:
            raise exceptions.ValidationError({"limit": ["Must be a positive integer."]})
        return min(int(raw), sync_settings.MAX_PAGE_SIZE)

    def get_since(self):
        raw = self.request.query_params.get("since")
        return None if raw is None else Position.decode(raw)


class ReadOnlySyncView(SyncAPIView):
    """Read-Only sync: ``GET`` pulls the subset in full or the delta ``since`` a cursor."""

    def get(self, request, *args, **kwargs):
        since, limit, queries = self.get_since(), self.get_limit(), self.get_entity_queries()
        self.check_permissions(request)
        return Response(pull(queries, since=since, limit=limit).as_dict())
