"""Commit-ordered change stamps: the ordering every cursor is built on.

Every write of a synced row stores a *stamp*. A pull only hands out rows whose
stamp is below the *watermark*: a value no transaction still running can write
below. So a transaction that began early and commits late can never land
behind a cursor that was already handed out (see docs/architecture.md).

- PostgreSQL: the stamp is the writing transaction's id (``pg_current_xact_id``,
  64 bits, never wraps) and the watermark is the oldest transaction a fresh
  snapshot sees running (or the snapshot's ``xmax``): every transaction with a
  smaller id has finished. The reader's own transaction does not hold it back,
  so a push's response includes the push's own changes.
- SQLite: one writer at a time holds the database lock from its first write to
  its commit, so a counter bumped inside the write is already in commit order;
  the watermark is the last committed value plus one.
"""

from django.db import NotSupportedError

SUPPORTED_VENDORS = ("postgresql", "sqlite")

_STATE_TABLE = "offline_sync_syncstate"


def _vendor(connection):
    if connection.vendor not in SUPPORTED_VENDORS:
        raise NotSupportedError(
            f"offline_sync supports PostgreSQL and SQLite, not {connection.vendor}: "
            "point the synced models at one of those databases."
        )
    return connection.vendor


# LEAST skips NULL: with no other transaction running, the watermark is the
# snapshot's xmax, or just past our own transaction's id if we wrote.
_PG_WATERMARK = """
SELECT LEAST(
    (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s) AS x),
    GREATEST(pg_snapshot_xmax(s)::text::bigint, COALESCE(pg_current_xact_id_if_assigned()::text::bigint + 1, 0))
) FROM pg_current_snapshot() AS s
"""


def next_stamp(connection):
    """Return the stamp for rows written now, inside the current transaction."""
    with connection.cursor() as cursor:
        if _vendor(connection) == "postgresql":
            cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        else:
            cursor.execute(
                f"INSERT INTO {_STATE_TABLE} (id, clock, purge_horizon) VALUES (1, 1, 0) "
                "ON CONFLICT (id) DO UPDATE SET clock = clock + 1 RETURNING clock"
            )
        return cursor.fetchone()[0]


def watermark(connection):
    """Return a stamp below which every row that will ever commit is committed now."""
    with connection.cursor() as cursor:
        if _vendor(connection) == "postgresql":
            cursor.execute(_PG_WATERMARK)
        else:
            cursor.execute(f"SELECT clock + 1 FROM {_STATE_TABLE} WHERE id = 1")
        row = cursor.fetchone()
        return row[0] if row else 1
