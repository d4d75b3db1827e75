"""Schemas of wire values: record fields, ids, decimals, durations, strings without NUL."""

import re

from django.core.validators import ProhibitNullCharactersValidator
from django.db import connections, models, router
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import append_meta, build_basic_type
from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers

from ... import local_ids
from ...records import WIRE_META
from ..serializers import ForeignKeyIdField, SecondsDurationField

# No string anywhere in a body may hold a NUL character (protocol section 2; SyncJSONParser).
NO_NUL = "^[^\\u0000]*$"

LOCAL_ID = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_NUL}

IGNORED = {
    "description": "Ignored: the server owns this field; a value sent is not applied. Like every string "
    "in a body, one in it may not hold a NUL character."
}


def camel(name):
    """``"company_contacts"`` -> ``"CompanyContacts"``: a component name part."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name)) or "Sync"


class RecordSerializer(serializers.ModelSerializer):
    """Base of the serializers built per entity, typed as ``records.py`` puts values on the wire."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DurationField: serializers.FloatField,  # seconds
        models.FileField: serializers.CharField,  # the stored name
        models.ImageField: serializers.CharField,
    }

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if issubclass(field_class, serializers.DecimalField):
            kwargs["coerce_to_string"] = True  # decimals are strings, whatever REST_FRAMEWORK says
        return field_class, kwargs

    def get_fields(self):
        fields = super().get_fields()
        # The primary key is "id" on the wire whatever its model name.
        pk_name = self.Meta.model._meta.pk.name
        if pk_name != "id" and pk_name in fields:
            fields["id"] = fields.pop(pk_name)
            fields["id"].source = pk_name
        return {name: fields[name] for name in self.Meta.wire_fields}


def read_only_fields(entity):
    """Wire fields a client may not write: the server's own, scope fields, and ``entity.read_only_fields``."""
    names = [*WIRE_META, *getattr(entity, "read_only_fields", ())]
    if entity.scope is not None:
        names += entity.model.sync_scope_fields
    return [name for name in dict.fromkeys(names) if name in entity.fields]


def record_serializer(entity):
    """A ModelSerializer instance with exactly the entity's wire fields."""
    model = entity.model
    pk_name = model._meta.pk.name
    read_only = [pk_name if name == "id" else name for name in read_only_fields(entity)]
    meta = type(
        "Meta",
        (),
        {
            "model": model,
            "fields": [pk_name if name == "id" else name for name in entity.fields],
            "wire_fields": list(entity.fields),
            "extra_kwargs": {name: {"read_only": True} for name in read_only},
        },
    )
    doc = f"A record of `{entity.name}` ({model._meta.label}) as the server sends it."
    cls = type(f"{camel(entity.name)}RecordSerializer", (RecordSerializer,), {"Meta": meta, "__doc__": doc})
    return cls()


def nullable(schema):
    return append_meta(schema, {"nullable": True})


def strip_meta(schema):
    """A property's type without what only applies to the property (``readOnly``, ``description``...)."""
    return {k: v for k, v in schema.items() if k not in ("readOnly", "writeOnly", "description", "title", "default")}


def id_type(pk_field):
    """A record id as a push may send it (``serializers.parse_id()``): of the key's type, within its column's range."""
    while pk_field.is_relation:
        pk_field = pk_field.target_field
    if isinstance(pk_field, models.UUIDField):
        return build_basic_type(OpenApiTypes.UUID)
    if not isinstance(pk_field, models.IntegerField):
        return {**build_basic_type(OpenApiTypes.STR), "pattern": NO_NUL}
    schema = build_basic_type(OpenApiTypes.INT)
    ops = connections[router.db_for_read(pk_field.model)].ops
    low, high = ops.integer_field_range(pk_field.get_internal_type())
    if low is not None:
        schema["minimum"] = low
    if high is not None:
        schema["maximum"] = high
    return schema


def digits(low, high):
    """A regular expression for ``low`` to ``high`` (None: any number of) ASCII digits."""
    if high is None:
        return "[0-9]*" if low == 0 else "[0-9]+"
    return f"[0-9]{{{low},{high}}}"


def decimal_pattern(field):
    """The strings in plain notation that ``field`` (a DRF DecimalField) accepts: exactly these.

    Leading zeros do not count as digits (``Decimal`` drops them), trailing ones after the point do. The
    server also takes exponents (``"1e5"``), a ``+`` and surrounding spaces (Python's ``Decimal``), but
    which of those fit ``max_digits`` depends on the exponent's value, which a regular expression cannot count.
    """
    places, max_digits = field.decimal_places, field.max_digits
    whole = None if max_digits is None or places is None else max_digits - places
    alternatives = []
    if whole != 0:  # with digits before the point ("0" alone is one)
        fraction = "\\.?" if places == 0 else f"(?:\\.{digits(0, places)})?"
        alternatives.append(f"0*{digits(1, whole)}{fraction}")
    if places != 0:  # with digits after it only
        alternatives.append(f"0*\\.{digits(1, places)}")
    if not alternatives:
        return "^$"  # max_digits=0: no number fits
    number = f"-?(?:{'|'.join(alternatives)})"
    if field.allow_null:
        number = f"(?:{number})?"  # a blank string is null
    return f"^{number}$"


# drf-spectacular registers an extension when its class is made: with SyncAutoSchema's first use.
LOCAL_REF = {
    "type": "object",
    "description": "A record added in the same push (protocol 4.3).",
    "properties": {"local_id": {"type": "string", "minLength": 1, "maxLength": 64}},
    "required": ["local_id"],
    "additionalProperties": False,
}


class ForeignKeyIdFieldExtension(OpenApiSerializerFieldExtension):
    """A pushed foreign key is the related record's id (``serializers.ForeignKeyIdField``), or a
    ``{"local_id": ...}`` where the endpoint carries the related entity."""

    target_class = ForeignKeyIdField

    def map_serializer_field(self, auto_schema, direction):
        server_id = id_type(self.target.target_pk)
        view = getattr(auto_schema, "view", None)
        entities = view.get_entities() if hasattr(view, "get_entities") else []
        related = self.target.target_pk.model._meta.concrete_model
        if local_ids.takes_local_ids(self.target.model_field) and any(
            entity.model._meta.concrete_model is related for entity in entities
        ):
            return {"oneOf": [server_id, LOCAL_REF]}
        return server_id


def char_string(field, schema):
    """A CharField's schema with what spectacular leaves out: not blank, no NUL (DRF refuses both)."""
    schema = dict(schema)
    if not field.allow_blank:
        schema["minLength"] = max(schema.get("minLength", 0), 1)
    if "pattern" not in schema and any(isinstance(v, ProhibitNullCharactersValidator) for v in field.validators):
        # DRF trims before the blank check unless trim_whitespace=False (SyncRecordSerializer's).
        non_blank = not field.allow_blank and field.trim_whitespace
        schema["pattern"] = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$" if non_blank else NO_NUL
    return schema


def duration_seconds(field):
    """A duration: a number of seconds, as pulls send it (``SecondsDurationField``)."""
    schema = {
        "type": "number",
        "minimum": -SecondsDurationField.MAX_SECONDS,
        "maximum": SecondsDurationField.MAX_SECONDS,
        "description": "Seconds, as pulls send it; a string in Django's duration formats is taken too.",
    }
    return nullable(schema) if field.allow_null else schema


def decimal_string(field):
    """A DecimalField's schema: a string (protocol section 2), exactly the plain notations it takes."""
    schema = {
        "type": "string",
        "format": "decimal",
        "maxLength": field.MAX_STRING_LENGTH,
        "pattern": decimal_pattern(field),
        "description": "A decimal as a string, in plain notation (`-1234.50`); the server also takes exponent "
        "notation, a leading `+` and surrounding spaces when the value fits. Pulls answer plain notation.",
    }
    return nullable(schema) if field.allow_null else schema
