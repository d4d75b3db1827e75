"""Validation of push bodies: the envelope, then each record through a serializer.

Every error carries its path, ``{"changes": {"companies": {"added": {"0":
{"name": [...]}}}}}``, and the whole body is validated before any record is
looked up in the database.
"""

import datetime
import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections, models, router
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.validators import ProhibitSurrogateCharactersValidator, UniqueValidator

from ..conf import sync_settings
from ..cursors import Position
from ..endpoints import PushRequest
from ..exceptions import PayloadTooLarge
from ..local_ids import LocalRef
from ..push import Added, Deleted, Modified
from ..records import WIRE_META

SERVER_OWNED = frozenset(WIRE_META)
_LIST_KEYS = ("added", "modified", "deleted")


class ForeignKeyIdField(serializers.Field):
    """A foreign key as the related record's server id, or ``{"local_id": ...}`` of one added in the push.

    Checked for type only: whether the related record exists (and may be seen),
    or the local id names a record of the push, is checked for all records at
    once by the engine (protocol 4.3), not with a query per record.
    """

    def __init__(self, model_field, **kwargs):
        self.model_field = model_field
        self.target_pk = model_field.target_field
        # Validated data carries the column (item_id), ready for bulk writes.
        super().__init__(source=model_field.attname, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            local_id = data.get("local_id")
            if set(data) != {"local_id"} or not isinstance(local_id, str) or not 1 <= len(local_id) <= 64:
                self.fail("invalid_local")
            return LocalRef(local_id)
        try:
            return parse_id(self.target_pk, data)
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value):
        return value

    default_error_messages = {
        "invalid": "Not a valid id.",
        # DRF formats these messages: braces doubled.
        "invalid_local": 'A record added in this push is named as {{"local_id": "<1 to 64 characters>"}}.',
    }


class SecondsDurationField(serializers.DurationField):
    """A duration as pulls send it, a number of seconds; also a string in Django's formats."""

    MAX_SECONDS = datetime.timedelta.max.total_seconds() // 2  # well inside what timedelta holds

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid", format="a number of seconds")
        if isinstance(data, (int, float)):
            if not -self.MAX_SECONDS <= data <= self.MAX_SECONDS:
                self.fail("invalid", format="a number of seconds")
            return datetime.timedelta(seconds=data)
        try:
            return super().to_internal_value(data)
        except OverflowError:
            self.fail("invalid", format="a number of seconds")


class StrictTypeMixin:
    """Refuse JSON values of another type (DRF would turn a number into a string)."""

    default_error_messages = {"type": "Must be a string."}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # SyncJSONParser already refuses lone surrogates in the whole body, far
        # faster than DRF's validator does per string.
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitSurrogateCharactersValidator)]

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("type")
        return super().to_internal_value(data)


def _strict(field_class):
    return type(f"Strict{field_class.__name__}", (StrictTypeMixin, field_class), {})


class SyncRecordSerializer(serializers.ModelSerializer):
    """Default serializer of pushed records: strings and decimals as JSON strings, kept exactly; foreign keys by id."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DurationField: SecondsDurationField,
    }

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if model_field.has_db_default():
            kwargs["required"] = False  # left out, the database's default applies
        if issubclass(field_class, serializers.CharField):
            kwargs["trim_whitespace"] = False  # protocol 2: strings are stored exactly as sent
        if issubclass(field_class, (serializers.CharField, serializers.DecimalField)):
            field_class = _strict(field_class)  # protocol 2 and 7: decimals are strings; a wrong type is a 400
        return field_class, kwargs

    def build_relational_field(self, field_name, relation_info):
        field = relation_info.model_field
        kwargs = {"required": not (field.null or field.has_default() or field.has_db_default())}
        if field.null:
            kwargs["allow_null"] = True
        return ForeignKeyIdField, {"model_field": field, **kwargs}

    # Unique validators query once per record; the engine checks unique values
    # for all records at once instead (offline_sync.integrity).
    def get_validators(self):
        return []

    def build_field(self, field_name, info, model_class, nested_depth):
        field_class, kwargs = super().build_field(field_name, info, model_class, nested_depth)
        if "validators" in kwargs:
            kwargs["validators"] = [v for v in kwargs["validators"] if not isinstance(v, UniqueValidator)]
        return field_class, kwargs


def record_serializer_for(entity):
    """The default serializer class of an entity: every writable wire field."""
    writable = [name for name in entity.fields if name not in SERVER_OWNED]
    meta = type(
        "Meta",
        (),
        {
            "model": entity.model,
            "fields": writable,
            "read_only_fields": [name for name in entity.read_only_fields if name in writable],
        },
    )
    return type(f"{entity.model.__name__}SyncSerializer", (SyncRecordSerializer,), {"Meta": meta})


def _fail(path, message):
    detail = message if isinstance(message, (list, dict)) else [message]
    for key in reversed(path):
        detail = {key: detail}
    raise ValidationError(detail)


def parse_id(pk_field, value):
    """A record id from JSON for ``pk_field``; ``ValueError`` unless the column could hold it."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(value)
    while pk_field.is_relation:  # a multi-table child's key: its parent's
        pk_field = pk_field.target_field
    try:
        pk = pk_field.to_python(value)
    except DjangoValidationError:
        raise ValueError(value) from None
    if isinstance(pk, int):
        low, high = connections[router.db_for_read(pk_field.model)].ops.integer_field_range(
            pk_field.get_internal_type()
        )
        if not (low is None or low <= pk) or not (high is None or pk <= high):
            raise ValueError(value)
    return pk


def _parse_pk(model, value, path):
    try:
        return parse_id(model._meta.pk, value)
    except ValueError:
        _fail(path, "Not a valid id.")


def _parse_target(model, item, path, seen):
    """``(pk, base_version)`` of a modified or deleted item; each record once per push."""
    _check_object(item, path)
    if "id" not in item:
        _fail([*path, "id"], "This field is required.")
    pk = _parse_pk(model, item["id"], [*path, "id"])
    if pk in seen:
        _fail([*path, "id"], "This record appears twice in this push.")
    seen.add(pk)
    return pk, _parse_base_version(item, path)


def _parse_base_version(item, path):
    version = item.get("base_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        _fail([*path, "base_version"], "Must be a positive integer or null.")
    return version


def _check_object(value, path, allowed=None):
    if not isinstance(value, dict):
        _fail(path, "Must be an object.")
    if allowed is not None:
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            _fail(path, {key: ["Unknown field."] for key in unknown})


def validate_record(entity, values, path, *, partial, serializer=None):
    """Validate one record's fields; server-owned fields are dropped, unknown ones refused.

    ``serializer`` is an instance made once for many records (as DRF's own
    ``many=True`` does): building a ModelSerializer's fields costs far more
    than validating a record with them. It sees each record through
    ``run_validation()``; ``initial_data`` is not set.
    """
    if serializer is None:
        serializer = entity.get_serializer_class()(partial=partial)
    read_only = SERVER_OWNED | set(entity.read_only_fields)
    data = {k: v for k, v in values.items() if k not in read_only}
    unknown = sorted(set(data) - set(entity.fields))
    if unknown:
        _fail(path, {key: ["Unknown field."] for key in unknown})
    try:
        return dict(serializer.run_validation(data))
    except ValidationError as exc:
        _fail(path, exc.detail)


def parse_push(body, entities, context=None) -> PushRequest:
    """Validate a push body for ``entities`` (``SyncEntity``); return the engine's ``PushRequest``.

    ``context`` goes to each entity's serializer (a view passes ``request`` and
    ``view``, so ``CurrentUserDefault`` and per-user validators work).
    """
    _check_object(body, ["body"], allowed=("sync_id", "last_sync", "device_id", "changes"))
    try:
        sync_id = uuid.UUID(str(body["sync_id"])) if isinstance(body.get("sync_id"), str) else None
    except ValueError:
        sync_id = None
    if sync_id is None:
        _fail(["sync_id"], "Required: a UUID made once per push.")
    last_sync = body.get("last_sync")
    last_sync = None if last_sync is None else Position.decode(last_sync, field="last_sync")
    device_id = body.get("device_id")
    if device_id is not None and (not isinstance(device_id, str) or len(device_id) > 200):
        _fail(["device_id"], "Must be a string of at most 200 characters.")
    raw = body.get("changes", {})
    by_name = {entity.name: entity for entity in entities}
    _check_object(raw, ["changes"], allowed=by_name)

    total = sum(
        len(v) for lists in raw.values() if isinstance(lists, dict) for v in lists.values() if isinstance(v, list)
    )
    if total > sync_settings.MAX_PUSH_RECORDS:
        raise PayloadTooLarge(sync_settings.MAX_PUSH_RECORDS, sync_settings.MAX_PUSH_BYTES)

    changes = {}
    for entity in entities:
        if entity.name in raw:
            changes[entity.name] = _parse_entity(entity, raw[entity.name], ["changes", entity.name], context)
    return PushRequest(sync_id, changes, last_sync, device_id, body)


def _parse_entity(entity, lists, path, context):
    _check_object(lists, path, allowed=_LIST_KEYS)
    for key in _LIST_KEYS:
        if not isinstance(lists.get(key, []), list):
            _fail([*path, key], "Must be a list.")
    serializer_class = entity.get_serializer_class()
    full, partial = serializer_class(context=context or {}), serializer_class(partial=True, context=context or {})
    model = entity.model
    added, modified, deleted, local_ids, targets = [], [], [], set(), set()
    for i, item in enumerate(lists.get("added", [])):
        where = [*path, "added", str(i)]
        _check_object(item, where)
        local_id = item.get("local_id")
        if not isinstance(local_id, str) or not 1 <= len(local_id) <= 64:
            _fail([*where, "local_id"], "Required: a string of 1 to 64 characters.")
        if local_id in local_ids:
            _fail([*where, "local_id"], f"Duplicate local_id {local_id!r} in this push.")
        local_ids.add(local_id)
        values = {k: v for k, v in item.items() if k != "local_id"}
        added.append(Added(local_id, validate_record(entity, values, where, partial=False, serializer=full), i))
    for i, item in enumerate(lists.get("modified", [])):
        where = [*path, "modified", str(i)]
        pk, version = _parse_target(model, item, where, targets)
        values = {k: v for k, v in item.items() if k != "base_version"}
        values = validate_record(entity, values, where, partial=True, serializer=partial)
        modified.append(Modified(pk, version, values, item, i))
    for i, item in enumerate(lists.get("deleted", [])):
        where = [*path, "deleted", str(i)]
        _check_object(item, where, allowed=("id", "base_version"))
        deleted.append(Deleted(*_parse_target(model, item, where, targets), item, i))
    return {"added": added, "modified": modified, "deleted": deleted}
