"""Resolving a conflict by the rules of the endpoint that recorded it: shared by the conflicts API and the admin.

The endpoint is found when it is needed, from the conflict's URL path
(``django.urls.resolve()``), and asked for its entities (``get_entities()``):
nothing here imports a view, so the admin loads neither the REST views nor DRF's.
Values to apply are validated by the entity's serializer, as a push's would be.
"""

import copy
from typing import NamedTuple

from django.db import router
from django.urls import Resolver404, resolve

from . import conflicts
from .exceptions import ResolutionInvalid
from .local_ids import LocalRef
from .models import Conflict
from .records import RecordFormat, default_fields

ENDPOINT_GONE = "The endpoint that recorded this conflict no longer offers its entity: keep the server version."


class ModelEntity(NamedTuple):
    """A conflict's entity as its model's defaults show it: for display when its endpoint no longer offers it."""

    name: str
    model: type
    fields: list
    read_only_fields: tuple = ()


def find_endpoint(conflict, request=None):
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
    """The entity that recorded ``conflict``; for display, its model's defaults when it is gone."""
    return find_endpoint(conflict, request)[1] or _model_entity(conflict)


def _model_entity(conflict):
    model = conflict.content_type.model_class()
    return ModelEntity(conflict.entity, model, default_fields(model))


def validate_values(entity, values, path, view=None):
    """``values`` checked by the entity's serializer as a pushed ``modified`` record; ``ResolutionInvalid`` if not.

    The serializer gets the context a push's would (``request``, ``view``), for per-user validators.
    """
    # Imported here: only a resolution that applies values needs DRF.
    from rest_framework.exceptions import ValidationError

    from .rest_framework.serializers import validate_record

    context = {"request": getattr(view, "request", None), "view": view}
    serializer = entity.get_serializer_class()(partial=True, context=context)
    try:
        values = validate_record(entity, values, path, partial=True, serializer=serializer)
    except ValidationError as exc:
        raise ResolutionInvalid(exc.detail) from exc
    local = sorted(name for name, value in values.items() if isinstance(value, LocalRef))
    if local:  # a resolution adds no records for a local id to name
        names = {f.attname: f.name for f in entity.model._meta.concrete_fields}
        raise ResolutionInvalid({path[0]: {names.get(n, n): ["Name the related record by its id."] for n in local}})
    return values


def resolve_conflict(conflict, resolution, merge_record, *, by, request=None, expect_version=...):
    """Validate a resolution of ``conflict`` and apply it (``conflicts.resolve()``); return the conflict, resolved.

    The change applies with the endpoint's fields, read-only fields and scope,
    and only to a record its user may still see. When the endpoint no longer
    offers the entity, only ``"server"`` (which applies nothing) is allowed:
    the model's defaults would loosen the endpoint's rules. Raises
    ``ResolutionInvalid`` for values the entity refuses, and what
    ``conflicts.resolve()`` raises.
    """
    view, entity = find_endpoint(conflict, request)
    if entity is None:
        if resolution != "server":
            raise ResolutionInvalid({"resolution": [ENDPOINT_GONE]})
        entity = _model_entity(conflict)
        scope, visible = {}, {}
    else:
        scope = entity.get_scope(view.request)
        visible = {e.model: view.get_visible_queryset(e) for e in view.get_entities()}
    values = None
    if resolution == "client" and conflict.kind == Conflict.Kind.MODIFIED:
        sent = {k: v for k, v in conflict.client.items() if k != "base_version"}
        values = validate_values(entity, sent, ["client"], view)  # as when it was pushed
    elif resolution == "merge":
        if not isinstance(merge_record, dict):
            raise ResolutionInvalid({"record": ["Required for a merge: the field values to keep."]})
        values = validate_values(entity, merge_record, ["record"], view)
    return conflicts.resolve(
        conflict.pk,
        resolution,
        values,
        by=by,
        fmt=RecordFormat(entity.model, entity.fields),
        using=router.db_for_write(Conflict),  # a write: never on a read replica
        asked=merge_record if resolution == "merge" else None,
        expect_version=expect_version,
        scope=scope,
        visible=visible,
    )
