"""A pull's records are the same bytes whichever way their values are formatted.

A pull reads datetimes already formatted by the database (``records.WireDateTime``); the conflicts API and
the admin format Django's values in Python (``RecordFormat.rows`` of ``columns``). Both must give the
protocol's text (section 1: ISO 8601 in UTC, six fractional digits, ``Z``; decimals as strings).
"""

import datetime
from decimal import Decimal

import pytest
from django.db import connection

from offline_sync.records import RecordFormat, default_fields, format_datetime
from tests.helpers import client_for, make_user
from tests.testapp.models import Item

pytestmark = pytest.mark.django_db

UTC = datetime.timezone.utc
MOMENTS = [
    datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no fraction: stored without one
    datetime.datetime(2026, 12, 31, 23, 59, 59, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=5))),
    datetime.datetime(999, 3, 4, 5, 6, 7, 890, tzinfo=UTC),  # a 3-digit year still has four
]
EXPECTED = [
    "2026-01-02T03:04:05.123456Z",
    "2026-01-02T03:04:05.000000Z",
    "2026-12-31T18:59:59.000001Z",
    "0999-03-04T05:06:07.000890Z",
]


def test_format_datetime_is_the_protocols_text():
    assert [format_datetime(moment) for moment in MOMENTS] == EXPECTED
    assert format_datetime(datetime.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000000Z"  # naive
    assert format_datetime(None) is None


def python_formatted(pks):
    """The records as the Python path formats Django's values (what the conflicts API sends)."""
    fmt = RecordFormat(Item, default_fields(Item))
    rows = Item.objects.filter(pk__in=pks).order_by("pk").values_list(*fmt.columns)
    return list(fmt.rows(rows))


def pulled(pks):
    records = client_for(make_user("reader")).get("/sync/items/").json()["changes"]["items"]["records"]
    return sorted((r for r in records if r["id"] in pks), key=lambda r: r["id"])


def test_a_pull_formats_datetimes_and_decimals_as_python_does():
    prices = [Decimal("0.00"), Decimal("12.30"), Decimal("99999.99"), Decimal("-1.05")]
    items = [Item.objects.create(name=f"item {i}", category="tools", price=p) for i, p in enumerate(prices)]
    field = Item._meta.get_field("modified_on")
    with connection.cursor() as cursor:  # as Django stores them (a synced update would set "now")
        for item, moment in zip(items, MOMENTS):
            stored = field.get_db_prep_value(moment, connection)
            cursor.execute("UPDATE testapp_item SET modified_on = %s WHERE id = %s", [stored, item.pk])
    pks = [item.pk for item in items]
    records = pulled(pks)
    assert records == python_formatted(pks)
    assert [r["modified_on"] for r in records] == EXPECTED
    assert [r["price"] for r in records] == ["0.00", "12.30", "99999.99", "-1.05"]


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_a_datetime_sqlite_holds_in_another_spelling_is_parsed_as_django_parses_it():
    """Rows written by something else than Django (a "T", an offset, a short fraction)."""
    items = [Item.objects.create(name=f"item {i}", category="tools", price=1) for i in range(3)]
    spellings = ["2026-05-06T07:08:09.5+02:00", "2026-05-06 07:08:09.25", "2026-05-06T07:08:09"]
    with connection.cursor() as cursor:
        for item, text in zip(items, spellings):
            cursor.execute("UPDATE testapp_item SET modified_on = %s WHERE id = %s", [text, item.pk])
    pks = [item.pk for item in items]
    records = pulled(pks)
    assert records == python_formatted(pks)
    assert [r["modified_on"] for r in records] == [
        "2026-05-06T05:08:09.500000Z",
        "2026-05-06T07:08:09.250000Z",
        "2026-05-06T07:08:09.000000Z",
    ]
