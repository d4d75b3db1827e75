"""Field-by-field comparison of a conflict's two sides, for the admin's resolution page.

Three steps, as django-simple-history does its diffs: ``diff_records`` computes
(plain dataclasses, no HTML), ``format_diff`` turns values into display text,
the template renders it, with Django's autoescape doing all the escaping.
"""

import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError

from .records import WIRE_META


class _Marker:
    """A value that is not a field value: a side that is deleted, a field the client did not send."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


DELETED = _Marker("DELETED")
NOT_SENT = _Marker("NOT_SENT")


@dataclass(frozen=True)
class FieldDiff:
    """One field of a record on both sides; ``differs`` when the client's value is not the server's."""

    field: str
    server: Any
    client: Any
    differs: bool


@dataclass(frozen=True)
class RecordDiff:
    """A client's change against one server version of a record, field by field."""

    fields: tuple[FieldDiff, ...]
    server_deleted: bool
    client_deleted: bool

    @property
    def differing(self):
        return tuple(f for f in self.fields if f.differs)


def data_fields(fields):
    """The wire fields a resolution can choose between: all but id, version and modified_on."""
    return [name for name in fields if name not in WIRE_META]


def client_values(conflict, read_only=()):
    """The client's side of a conflict: the fields it sent (but read-only ones), or None for a deletion."""
    if conflict.kind == conflict.Kind.DELETED:
        return None
    ignored = {"id", "base_version", *read_only}
    return {k: v for k, v in conflict.client.items() if k not in ignored}


def diff_records(fields, server, client, *, model=None):
    """Compare ``server`` (wire record, None if deleted) and ``client`` (sent fields, None if deleted).

    A field the client did not send never differs: applying its change leaves it as it is.
    """
    rows = []
    for name in fields:
        server_value = DELETED if server is None else server.get(name)
        client_value = DELETED if client is None else client.get(name, NOT_SENT)
        differs = client_value is not NOT_SENT and not _same(model, name, server_value, client_value)
        rows.append(FieldDiff(name, server_value, client_value, differs))
    return RecordDiff(tuple(rows), server_deleted=server is None, client_deleted=client is None)


def diff_conflict(conflict, server, fields, *, model=None, read_only=()):
    """The client's change of ``conflict`` against ``server`` (a wire record, None if deleted).

    ``read_only`` fields count as not sent: applying the change never writes them.
    """
    return diff_records(data_fields(fields), server, client_values(conflict, read_only), model=model)


def _same(model, name, a, b):
    if isinstance(a, _Marker) or isinstance(b, _Marker):
        return a is b
    if a == b:
        return True
    # The client's JSON and the server's wire format can spell one value two
    # ways ("3.5" and "3.50", 3 and "3"): compare them as the model field sees them.
    try:
        field = model._meta.get_field(name)
        return field.to_python(a) == field.to_python(b)
    except (AttributeError, FieldDoesNotExist, ValidationError, TypeError, ValueError):
        return False


@dataclass(frozen=True)
class DisplayValue:
    """A value as text for the page; ``kind`` (value, empty, deleted, not-sent) picks its style."""

    text: str
    kind: str


@dataclass(frozen=True)
class DisplayRow:
    """One row of the comparison table: the field, its formatted values, and whether they differ."""

    field: str
    server: DisplayValue
    client: DisplayValue
    differs: bool
    # Values of more records shown beside the two sides (the server's snapshot, the result).
    extra: tuple[DisplayValue, ...] = ()


def format_value(value):
    """A field value as plain text (never HTML: the template escapes it)."""
    if value is DELETED:
        return DisplayValue("deleted", "deleted")
    if value is NOT_SENT:
        return DisplayValue("not sent (unchanged)", "not-sent")
    if value is None:
        return DisplayValue("(none)", "empty")
    if value == "":
        return DisplayValue("(empty)", "empty")
    if isinstance(value, bool):
        return DisplayValue("true" if value else "false", "value")
    if isinstance(value, (dict, list)):
        return DisplayValue(json.dumps(value, ensure_ascii=False, sort_keys=True), "value")
    return DisplayValue(str(value), "value")


def format_diff(diff, extra_records=()):
    """Display rows of ``diff``, with the same fields of ``extra_records`` (wire records, None: deleted)."""
    return [
        DisplayRow(
            field=row.field,
            server=format_value(row.server),
            client=format_value(row.client),
            differs=row.differs,
            extra=tuple(format_value(DELETED if r is None else r.get(row.field)) for r in extra_records),
        )
        for row in diff.fields
    ]
