"""Records on the wire: which fields an entity sends, and fast JSON-ready rows.

Rows come from ``values_list()`` and only the columns that JSON cannot carry
as they are get converted, so a pull costs about what ``.values()`` does, not
what a DRF serializer does per field.
"""

import datetime
from collections.abc import Iterable, Iterator

from django.db import models

from .options import options_for

WIRE_META = ("id", "version", "modified_on")


def format_datetime(value: datetime.datetime | None) -> str | None:
    """ISO 8601 in UTC with six fractional digits and ``Z`` (protocol section 1)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _converter(field):
    if isinstance(field, models.DateTimeField):
        return format_datetime
    if isinstance(field, (models.DecimalField, models.UUIDField)):
        return lambda v: None if v is None else str(v)
    if isinstance(field, (models.DateField, models.TimeField)):
        return lambda v: None if v is None else v.isoformat()
    if isinstance(field, models.DurationField):
        return lambda v: None if v is None else v.total_seconds()
    if isinstance(field, models.ForeignKey):
        return _converter(field.target_field)
    return None


def default_fields(model: type) -> list:
    """Wire fields of a synced model: id, version, modified_on, then its own concrete fields."""
    sync_fields = options_for(model).sync_fields
    own = [f.name for f in model._meta.concrete_fields if not f.primary_key and f.name not in sync_fields]
    return [*WIRE_META, *own]


class RecordFormat:
    """Turns ``values_list(*columns)`` rows of one model into wire dicts."""

    def __init__(self, model: type, fields: Iterable[str]) -> None:
        self.fields = list(fields)
        resolved = [model._meta.pk if name == "id" else model._meta.get_field(name) for name in self.fields]
        # values_list() names a foreign key by its field name and yields the id.
        self.columns = ["pk" if name == "id" else name for name in self.fields]
        self._converters = [(i, c) for i, c in enumerate(map(_converter, resolved)) if c is not None]
        self.convert_pk = _converter(model._meta.pk) or (lambda v: v)
        self.pk_from_text = model._meta.pk.to_python

    def rows(self, values: Iterable[tuple]) -> Iterator[dict]:
        names, converters = self.fields, self._converters
        for row in values:
            if converters:
                row = list(row)
                for i, convert in converters:
                    row[i] = convert(row[i])
            yield dict(zip(names, row))
