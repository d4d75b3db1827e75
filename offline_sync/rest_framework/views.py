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
from ..endpoints import Endpoint
from ..entities import Entity
from ..exceptions import PayloadTooLarge
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

    def initial(self, request, *args, **kwargs):
        """DRF's ``initial()`` in the order of checks of protocol section 7.

        Authentication, then the method (an unknown one is left to ``dispatch``
        to answer 405), then the request's shape and values
        (``validate_request()``), then permission. A push's permission is checked
        by the engine, once its ``sync_id`` is claimed or found: a retry is
        recognised first (``checks_permissions_later()``).
        """
        self.format_kwarg = self.get_format_suffix(**kwargs)
        request.accepted_renderer, request.accepted_media_type = self.perform_content_negotiation(request)
        request.version, request.versioning_scheme = self.determine_version(request, *args, **kwargs)
        self.perform_authentication(request)
        if not request.user.is_authenticated:
            self.check_permissions(request)  # 401 (unless anonymous callers are allowed) before the body is read
        self.check_throttles(request)
        method = request.method.lower()
        if method in self.http_method_names and hasattr(self, method):
            self.validate_request(request)
            if not self.checks_permissions_later(request):
                self.check_permissions(request)

    def checks_permissions_later(self, request):
        """Whether the handler checks permission itself, later (a push: once its ``sync_id`` is found)."""
        return False

    def validate_request(self, request):
        """Parse and check what the request asks (400 if anything is wrong); keep what the handler uses."""

    def get_serializer_context(self):
        """What each entity's serializer sees in ``context``, as in DRF's generic views."""
        return {"request": self.request, "format": self.format_kwarg, "view": self}

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

    def get_endpoint(self):
        """The engine's ``Endpoint`` for this request: the entities as the caller sees them."""
        entities = []
        for index, entity in enumerate(self.get_entities()):
            visible = self.get_visible_queryset(entity)
            entities.append(
                Entity(
                    entity.name,
                    subset=self.get_subset_queryset(entity, visible),
                    visible=visible,
                    tombstone_scope=entity.get_scope(self.request),
                    fields=entity.fields,
                    detect_conflicts=entity.detect_conflicts,
                    index=index,
                )
            )
        return Endpoint(entities, name=self.request.path_info, detect_conflicts=self.detect_conflicts)

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

    def validate_request(self, request):
        if request.method == "GET":
            self.since = self.get_since()
        self.limit = self.get_limit()
        self.endpoint = self.get_endpoint()  # the entities' FilterSets validate the query

    def get(self, request, *args, **kwargs):
        return Response(self.perform_pull(self.since))

    def perform_pull(self, since):
        """The page after ``since`` to answer, as a dict (the hook, as DRF's ``perform_create``)."""
        return self.endpoint.pull(since=since, limit=self.limit).as_dict()


class LastWriteWinsSyncView(ReadOnlySyncView):
    """Read/Write sync, last write wins: ``POST`` applies a push, then answers the delta."""

    # Which Django model permission each list of a push needs.
    push_permissions = {"added": "add", "modified": "change", "deleted": "delete"}

    def get_required_permissions(self, request):
        required = super().get_required_permissions(request)
        if request.method == "POST":
            by_name = {entity.name: entity for entity in self.get_entities()}
            for name, lists in self.push_request.changes.items():
                required += [(by_name[name].model, self.push_permissions[key]) for key, items in lists.items() if items]
        return required

    def checks_permissions_later(self, request):
        return request.method == "POST"  # Endpoint.push() calls check_permissions once the sync_id is claimed

    def validate_request(self, request):
        if request.method == "POST":
            declared = request.META.get("CONTENT_LENGTH")
            if declared and declared.isdigit() and int(declared) > sync_settings.MAX_PUSH_BYTES:
                raise PayloadTooLarge(sync_settings.MAX_PUSH_RECORDS, sync_settings.MAX_PUSH_BYTES)
            self.push_request = parse_push(request.data, self.get_entities(), self.get_serializer_context())
        super().validate_request(request)

    def post(self, request, *args, **kwargs):
        return Response(self.perform_push(self.push_request))

    def perform_push(self, push):
        """Apply a validated ``PushRequest`` through the engine; return the answer (as DRF's ``perform_create``)."""
        return self.endpoint.push(
            push,
            user=self.request.user,
            server_values={entity.name: entity.get_server_values(self.request) for entity in self.get_entities()},
            limit=self.limit,
            check_permissions=lambda: self.check_permissions(self.request),
        )


class ConflictDetectionSyncView(LastWriteWinsSyncView):
    """Read/Write sync with conflict detection: changes to records that changed first are set aside.

    A set-aside change becomes a pending ``Conflict`` (listed in the response);
    the rest of the push applies. Until the user's conflicts on the endpoint
    are resolved, their pushes there answer ``409 unresolved_conflicts``.
    """

    detect_conflicts = True
