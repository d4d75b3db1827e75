"""Sync endpoints: one concrete view per sync pattern over the engine.

``SyncAPIView`` resolves the request (entities, scope, filters, cursor, limit)
and answers errors in the protocol's envelope; ``ReadOnlySyncView`` is the
Read-Only and Read-Only Optimized pattern (full and delta pulls);
``LastWriteWinsSyncView`` adds pushes applied by last write wins.
"""

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from ..conf import sync_settings
from ..cursors import Position
from ..endpoints import Endpoint, PushRequest
from ..exceptions import PayloadTooLarge
from ..pull import EntityQuery
from .errors import sync_exception_handler
from .parsers import SyncJSONParser, SyncRequest
from .permissions import SyncModelPermissions
from .schema import SyncSchema
from .serializers import parse_push


class SyncAPIView(APIView):
    """Base of every sync endpoint: set ``entities`` to a list of ``SyncEntity``."""

    entities = ()
    detect_conflicts = False  # conflict detection (protocol 4.2) instead of last write wins
    permission_classes = [SyncModelPermissions]
    parser_classes = [SyncJSONParser]
    renderer_classes = [JSONRenderer]
    schema = SyncSchema()  # drf-spectacular's, imported only when a schema is asked for

    def get_exception_handler(self):
        return sync_exception_handler

    def initialize_request(self, request, *args, **kwargs):
        return SyncRequest(
            request,
            parsers=self.get_parsers(),
            authenticators=self.get_authenticators(),
            negotiator=self.get_content_negotiator(),
            parser_context=self.get_parser_context(request),
        )

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

    def get_endpoint(self):
        """The engine's ``Endpoint`` for this request: the entities as the caller sees them."""
        return Endpoint(self.get_entity_queries(), name=self.request.path_info, detect_conflicts=self.detect_conflicts)

    def get_limit(self):
        raw = self.request.query_params.get("limit")
        if raw is None:
            return sync_settings.PAGE_SIZE
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise exceptions.ValidationError({"limit": ["Must be a positive integer."]})
        return min(int(raw), sync_settings.MAX_PAGE_SIZE)

    def get_since(self):
        raw = self.request.query_params.get("since")
        return None if raw is None else Position.decode(raw)


class ReadOnlySyncView(SyncAPIView):
    """Read-Only sync: ``GET`` pulls the subset in full or the delta ``since`` a cursor."""

    def get(self, request, *args, **kwargs):
        since, limit, endpoint = self.get_since(), self.get_limit(), self.get_endpoint()
        self.check_permissions(request)
        return Response(self.perform_pull(endpoint, since, limit))

    def perform_pull(self, endpoint, since, limit):
        """The page to answer, as a dict (the hook, as DRF's ``perform_create``)."""
        return endpoint.pull(since=since, limit=limit).as_dict()


class LastWriteWinsSyncView(ReadOnlySyncView):
    """Read/Write sync, last write wins: ``POST`` applies a push, then answers the delta."""

    # Which Django model permission each list of a push needs.
    push_permissions = {"added": "add", "modified": "change", "deleted": "delete"}

    def get_required_permissions(self, request):
        required = super().get_required_permissions(request)
        if request.method == "POST":
            by_name = {entity.name: entity for entity in self.get_entities()}
            for name, lists in self.push_changes.items():
                required += [(by_name[name].model, self.push_permissions[key]) for key, items in lists.items() if items]
        return required

    def post(self, request, *args, **kwargs):
        declared = request.META.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and int(declared) > sync_settings.MAX_PUSH_BYTES:
            raise PayloadTooLarge(sync_settings.MAX_PUSH_RECORDS, sync_settings.MAX_PUSH_BYTES)
        body = request.data
        sync_id, last_sync, device_id, self.push_changes = parse_push(body, self.get_entities())
        push = PushRequest(sync_id, self.push_changes, last_sync, device_id, body)
        return Response(self.perform_push(self.get_endpoint(), push))

    def perform_push(self, endpoint, push):
        """Apply a validated push through the engine; return the answer (the hook, as DRF's ``perform_create``)."""
        return endpoint.push(
            push,
            user=self.request.user,
            server_values={entity.name: entity.get_server_values(self.request) for entity in self.get_entities()},
            limit=self.get_limit(),
            check_permissions=lambda: self.check_permissions(self.request),
        )


class ConflictDetectionSyncView(LastWriteWinsSyncView):
    """Read/Write sync with conflict detection: changes to records that changed first are set aside.

    A set-aside change becomes a pending ``Conflict`` (listed in the response);
    the rest of the push applies. Until the user's conflicts on the endpoint
    are resolved, their pushes there answer ``409 unresolved_conflicts``.
    """

    detect_conflicts = True
