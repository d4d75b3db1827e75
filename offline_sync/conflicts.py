"""Conflicts: recording the changes a push set aside, and resolving them.

Plain Django, no HTTP. Resolving applies through the same bulk writes as a
push (versions, stamps, tombstones), inside one transaction, on the conflict
row locked so two resolutions cannot race.
"""

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import integrity, signals, tombstones
from .exceptions import AlreadyResolved, ConflictChanged, RecordsNotFound
from .models import Conflict
from .options import options_for
from .push import modify_rows
from .records import format_datetime


def record(specs, *, user, device_id, endpoint, using):
    """Store ``ConflictSpec``s as pending ``Conflict`` rows; return them."""
    if not specs:
        return []
    content_types = ContentType.objects.db_manager(using)
    conflicts = Conflict.objects.using(using).bulk_create(
        [
            Conflict(
                user=user,
                device_id=device_id or "",
                endpoint=endpoint,
                entity=spec.entity,
                content_type=content_types.get_for_model(spec.model),
                object_pk=str(spec.pk),
                kind=spec.kind,
                client=spec.client,
                server=spec.server,
            )
            for spec in specs
        ]
    )
    transaction.on_commit(lambda: signals.conflict_detected.send(sender=Conflict, conflicts=conflicts), using=using)
    return conflicts


def as_wire(conflict):
    """A conflict as the protocol shows it (section 4.2)."""
    model = conflict.content_type.model_class()
    return {
        "conflict_id": conflict.pk,
        "entity": conflict.entity,
        "id": model._meta.pk.to_python(conflict.object_pk) if model else conflict.object_pk,
        "kind": conflict.kind,
        "client": conflict.client,
        "server": conflict.server,
        "detected_on": format_datetime(conflict.detected_on),
        "device_id": conflict.device_id,
    }


def pending(*, user, endpoint=None, using="default"):
    conflicts = Conflict.objects.using(using).filter(user=user, status=Conflict.Status.PENDING)
    if endpoint is not None:
        conflicts = conflicts.filter(endpoint=endpoint)
    return conflicts.select_related("content_type").order_by("pk")


def current_record(conflict, fmt, using, scope=None):
    """The conflicting record as it is now (wire format), or None if it is deleted or outside ``scope``."""
    model = conflict.content_type.model_class()
    pk = model._meta.pk.to_python(conflict.object_pk)
    rows = model._base_manager.using(using).filter(pk=pk, **(scope or {})).values_list(*fmt.columns)
    return next(fmt.rows(rows), None)


def required_permission(conflict, resolution):
    """The model permission that applying ``resolution`` needs, as a push of it would; None when it applies nothing."""
    if resolution == "server":
        return None
    meta = conflict.content_type.model_class()._meta
    action = "delete" if resolution == "client" and conflict.kind == Conflict.Kind.DELETED else "change"
    return f"{meta.app_label}.{action}_{meta.model_name}"


def resolve(
    conflict_id, resolution, values=None, *, by, fmt, using, asked=None, expect_version=..., scope=None, visible=None
):
    """Resolve a conflict; return the conflict, resolved.

    - ``resolution``: ``"server"`` keeps the server's record; ``"client"`` and
      ``"merge"`` apply ``values`` (validated field values) over it, restoring
      a deleted record with its id; ``"client"`` on a deletion deletes.
    - ``asked``: what was asked (a merge's record), to answer a repeat the same.
    - ``expect_version``: the server version the resolver saw (None: deleted);
      if the record changed since, ``ConflictChanged`` and nothing applies.
    - ``scope``: ``{attname: value}`` the record must be in now (the scope of
      the user whose change it was): a record that moved to another owner is
      not theirs to change, nor to see in the answer.
    - ``visible``: ``{model: queryset}`` that foreign keys in ``values`` must point into.
    Raises ``AlreadyResolved`` when it was resolved otherwise before, and
    ``RecordsNotFound`` or ``RecordsInvalid`` (nothing applied) as a push would.
    """
    scope = scope or {}
    with transaction.atomic(using=using):
        conflict = (
            Conflict.objects.using(using)
            .select_for_update(of=("self",))  # not the content type's row, which every push reads
            .select_related("content_type")
            .get(pk=conflict_id)
        )
        if conflict.status == Conflict.Status.RESOLVED:
            if (conflict.resolution, conflict.resolution_input) != (resolution, asked):
                raise AlreadyResolved(conflict.resolution, conflict.resolved_record)
            return conflict
        model = conflict.content_type.model_class()
        pk = model._meta.pk.to_python(conflict.object_pk)
        manager = model._base_manager.using(using)
        rows = manager.select_for_update().filter(pk=pk)
        versions = list(rows.values_list(options_for(model).version_field, flat=True))
        exists = bool(versions)
        if expect_version is not ... and (versions[0] if exists else None) != expect_version:
            raise ConflictChanged()
        before = current_record(conflict, fmt, using) if exists else None
        applies = resolution in ("client", "merge")
        if applies and exists and not rows.filter(**scope).exists():
            raise RecordsNotFound({conflict.entity: [pk]})
        row = integrity.Row({"id": pk}, ("record" if resolution == "merge" else "client",), values or {}, pk)
        if resolution == "client" and conflict.kind == Conflict.Kind.DELETED:
            if exists:
                manager.filter(pk=pk).delete()
        elif applies and exists:
            integrity.check(model, [row], visible=visible or {}, using=using, name=conflict.entity)
            modify_rows(model, [(pk, values)], using)
        elif applies:
            state = _last_state(model, pk, using)
            if any(state.get(name) != value for name, value in scope.items()):
                raise RecordsNotFound({conflict.entity: [pk]})
            restored = row._replace(values={**state, **values}, pk=None)
            integrity.check(model, [restored], visible=visible or {}, using=using, name=conflict.entity)
            _restore(model, pk, restored.values, using)
        conflict.status = Conflict.Status.RESOLVED
        conflict.resolution = resolution
        conflict.resolution_input = asked
        conflict.server_before_resolution = {"record": before}
        conflict.resolved_record = current_record(conflict, fmt, using, scope)
        conflict.resolved_by = by
        conflict.resolved_on = timezone.now()
        conflict.save()
        transaction.on_commit(
            lambda: signals.conflict_resolved.send(sender=Conflict, conflict=conflict, resolution=resolution, by=by),
            using=using,
        )
    return conflict


def _last_state(model, pk, using):
    """A deleted record's last state, by attname, from its newest tombstone that kept it."""
    data = tombstones.last_state(model, pk, using)
    if data is None:
        raise RecordsNotFound({"detail": f"{model._meta.label} {pk} is deleted and its last state was purged."})
    fields = {f.attname: f for f in model._meta.concrete_fields}
    return {name: fields[name].to_python(value) for name, value in data.items() if name in fields}


def _restore(model, pk, state, using):
    """Bring a deleted record back with its id and ``state``."""
    obj = model(**state)
    obj.pk = pk
    obj.save(force_insert=True, using=using)
    # A restored record continues its history: its version follows the last one.
    # (QuerySet.update itself, not SyncQuerySet's, which would make it version 2.)
    version = options_for(model).version_field
    QuerySet.update(model._base_manager.using(using).filter(pk=pk), **{version: (state.get(version) or 0) + 1})
