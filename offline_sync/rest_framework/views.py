"""Sync endpoints: one concrete view per sync pattern over the engine.

``SyncAPIView`` resolves the request (entities, scope, filters, cursor, limit)
and answers errors in the protocol's envelope; ``ReadOnlySyncView`` is the
Read-Only and Read-Only Optimized pattern (full and delta pulls);
``LastWriteWinsSyncView`` adds pushes applied by last write wins.
"""

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, router, transaction
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import conflicts, idempotency
from ..conf import sync_settings
from ..cursors import Position
from ..exceptions import CursorExpired, PayloadTooLarge, UnresolvedConflicts
from ..pull import EntityQuery, check_not_expired, pull
from ..push import EntityPush, apply_push
from .errors import sync_exception_handler
from .parsers import SyncJSONParser, SyncRequest
from .permissions import SyncModelPermissions
from .schema import SyncAutoSchema
from .serializers import parse_push


class SyncAPIView(APIView):
    """Base of every sync endpoint: set ``entities`` to a list of ``SyncEntity``."""

    entities = ()
    permission_classes = [SyncModelPermissions]
    parser_classes = [SyncJSONParser]
    renderer_classes = [JSONRenderer]
    schema = SyncAutoSchema()

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
        since, limit, queries = self.get_since(), self.get_limit(), self.get_entity_queries()
        self.check_permissions(request)
        return Response(pull(queries, since=since, limit=limit).as_dict())


class LastWriteWinsSyncView(ReadOnlySyncView):
    """Read/Write sync, last write wins: ``POST`` applies a push, then answers the delta."""

    # Which Django model permission each list of a push needs.
    push_permissions = {"added": "add", "modified": "change", "deleted": "delete"}
    detect_conflicts = False

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
        entities = self.get_entities()
        sync_id, last_sync, device_id, self.push_changes = parse_push(body, entities)
        limit, queries = self.get_limit(), self.get_entity_queries()
        using = router.db_for_write(entities[0].model)
        try:
            with transaction.atomic(using=using):
                claim, outcome = idempotency.claim(
                    user=request.user, sync_id=sync_id, endpoint=request.path_info, body=body, using=using
                )
                self.check_permissions(request)
                if claim is not None:
                    check_not_expired(last_sync, using)
                    self.check_no_pending_conflicts(using)
                    outcome = self.apply(entities, queries, last_sync, device_id, using)
                    idempotency.store_outcome(claim, outcome, using)
                try:
                    page = pull(queries, since=last_sync, limit=limit, using=using).as_dict()
                except CursorExpired:
                    if claim is not None:
                        raise  # a purge committed meanwhile: roll the push back, 410, nothing applied
                    # A retry answers its stored outcome, never 410 (which says "nothing was applied").
                    page = pull(queries, since=None, limit=limit, using=using).as_dict()
        except IntegrityError:
            raise exceptions.ValidationError(
                {"changes": ["The push breaks a database constraint (a unique value, say); nothing was applied."]}
            ) from None
        for name, ids in outcome["gone"].items():
            deleted = page["changes"][name]["deleted"]
            deleted += [pk for pk in ids if pk not in deleted]
        return Response({**page, "id_map": outcome["id_map"], "conflicts": outcome["conflicts"]})

    def check_no_pending_conflicts(self, using):
        """Conflict detection refuses pushes while the user has conflicts pending here."""

    def apply(self, entities, queries, last_sync, device_id, using):
        """Apply the validated push; return the outcome a retry must answer the same."""
        pushes = [
            EntityPush(
                query=query,
                rank=2 * index,
                server_values=entity.get_server_values(self.request),
                **self.push_changes.get(entity.name, {}),
            )
            for index, (entity, query) in enumerate(zip(entities, queries))
        ]
        result = apply_push(pushes, using=using, detect_conflicts=self.detect_conflicts, last_sync=last_sync)
        stored = conflicts.record(
            result.conflicts, user=self.request.user, device_id=device_id, endpoint=self.request.path_info, using=using
        )
        return {
            "id_map": result.id_map,
            "gone": result.gone,
            "conflicts": [conflicts.as_wire(conflict) for conflict in stored],
        }


class ConflictDetectionSyncView(LastWriteWinsSyncView):
    """Read/Write sync with conflict detection: changes to records that changed first are set aside.

    A set-aside change becomes a pending ``Conflict`` (listed in the response);
    the rest of the push applies. Until the user's conflicts on the endpoint
    are resolved, their pushes there answer ``409 unresolved_conflicts``.
    """

    detect_conflicts = True

    def check_no_pending_conflicts(self, using):
        waiting = conflicts.pending(user=self.request.user, endpoint=self.request.path_info, using=using)
        if waiting.exists():
            raise UnresolvedConflicts([conflicts.as_wire(conflict) for conflict in waiting])
