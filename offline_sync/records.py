"""Records on the wire: which fields an entity sends, and fast JSON-ready rows.

Rows come from ``values_list()`` and only the columns that JSON cannot carry
as they are get converted, so a pull costs about what ``.values()`` does, not
what a DRF serializer does per field. A pull reads datetimes already in their
wire text (``WireDateTime``): the database formats them, and no Python parses
and re-formats each one.
"""

import datetime
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .options import options_for

WIRE_META = ("id", "version", "modified_on")


def format_datetime(value: datetime.datetime | None) -> str | None:
    """ISO 8601 in UTC with six fractional digits and ``Z`` (protocol section 1)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc)
    # isoformat() always has a 4-digit year and, with this timespec, six fractional digits.
    return value.isoformat(timespec="microseconds")[:26] + "Z"


# The wire text of a datetime as SQLite holds Django's (UTC, "YYYY-MM-DD HH:MM:SS[.ffffff]"); any other
# spelling (written by something else) comes back marked with "~", for Python to parse.
_SQLITE_WIRE_DATETIME = (
    "CASE WHEN {c} IS NULL THEN NULL "
    "WHEN length({c}) = 26 AND substr({c}, 11, 1) = ' ' AND substr({c}, 20, 1) = '.' "
    "THEN substr({c}, 1, 10) || 'T' || substr({c}, 12) || 'Z' "
    "WHEN length({c}) = 19 AND substr({c}, 11, 1) = ' ' "
    "THEN substr({c}, 1, 10) || 'T' || substr({c}, 12) || '.000000Z' "
    "ELSE '~' || {c} END"
)


class WireDateTime(models.Func):
    """A datetime column read as its wire text (``format_datetime``'s), formatted by the database.

    Only where the database's text is the same as ``format_datetime`` of the
    value Django would read (see ``wire_datetimes_in_sql``).
    """

    output_field = models.CharField()

    def as_postgresql(self, compiler, connection):
        column, params = compiler.compile(self.source_expressions[0])
        utc = " AT TIME ZONE 'UTC'" if settings.USE_TZ else ""  # without time zones: as the session shows it
        return f"""to_char({column}{utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""", params

    def as_sqlite(self, compiler, connection):
        column, params = compiler.compile(self.source_expressions[0])
        return _SQLITE_WIRE_DATETIME.format(c=column), params * _SQLITE_WIRE_DATETIME.count("{c}")


def wire_datetimes_in_sql(connection) -> bool:
    """Whether ``WireDateTime`` gives ``format_datetime``'s text on ``connection``.

    PostgreSQL: always. SQLite: when it stores UTC (its ``TIME_ZONE`` unset) or
    naive datetimes (``USE_TZ = False``), which Django sends as they are.
    """
    if connection.vendor == "postgresql":
        return True
    return connection.vendor == "sqlite" and (not settings.USE_TZ or connection.timezone_name == "UTC")


def _from_sqlite_text(value):
    """A ``WireDateTime`` value of SQLite: the wire text, or "~" and a spelling Django parses (``_SQLITE_...``)."""
    if value is None or value[0] != "~":
        return value
    parsed = parse_datetime(value[1:])
    if settings.USE_TZ and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, datetime.timezone.utc)
    return format_datetime(parsed)


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
        self._datetimes = {i for i, field in enumerate(resolved) if isinstance(field, models.DateTimeField)}

    def wire_columns(self, connection) -> tuple[list, list]:
        """``(columns, converters)``: ``columns`` to select (datetimes as ``WireDateTime`` where it
        applies), and the ``converters`` ``rows()`` then takes."""
        if not self._datetimes or not wire_datetimes_in_sql(connection):
            return self.columns, self._converters
        columns = [WireDateTime(c) if i in self._datetimes else c for i, c in enumerate(self.columns)]
        after = _from_sqlite_text if connection.vendor == "sqlite" else None
        converters = [(i, after if i in self._datetimes else c) for i, c in self._converters]
        return columns, [(i, c) for i, c in converters if c is not None]

    def rows(self, values: Iterable[tuple], converters: list | None = None) -> Iterator[dict]:
        """Wire dicts of ``values_list(*columns)`` rows (``converters``: the pair of ``wire_columns()``'s)."""
        names = self.fields
        converters = self._converters if converters is None else converters
        for row in values:
            if converters:
                row = list(row)
                for i, convert in converters:
                    row[i] = convert(row[i])
            yield dict(zip(names, row))
