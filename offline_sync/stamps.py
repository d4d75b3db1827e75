"""Commit-ordered change stamps: the ordering every cursor is built on.

Every write of a synced row stores a *stamp*. A pull only hands out rows whose
stamp is below the *watermark*: a value no transaction still running can write
below. So a transaction that began early and commits late can never land
behind a cursor that was already handed out (see docs/architecture.md).

- PostgreSQL: the stamp is the writing transaction's id (``pg_current_xact_id``,
  64 bits, never wraps). The watermark is the oldest transaction id that may
  still be running, read from a fresh snapshot (see ``_PG_WATERMARK``); on a
  hot standby too, from the WAL it has replayed.
- SQLite: one writer at a time holds the database lock from its first write to
  its commit, so a counter bumped inside the write is already in commit order;
  the watermark is the last committed value plus one.

A stamp must be taken in the transaction that writes the rows it stamps:
``next_stamp`` refuses to run in autocommit, where the stamp's transaction
would commit before the rows, behind a cursor a pull may hand out in between.
"""

from django.db import NotSupportedError, transaction

SUPPORTED_VENDORS = ("postgresql", "sqlite")

_STATE_TABLE = "offline_sync_syncstate"


def _vendor(connection):
    if connection.vendor not in SUPPORTED_VENDORS:
        raise NotSupportedError(
            f"offline_sync supports PostgreSQL and SQLite, not {connection.vendor}: "
            "point the synced models at one of those databases."
        )
    return connection.vendor


# A snapshot's xmax is "latest completed xid + 1", and every xid from xmax up to
# the newest one assigned belongs to a transaction still running. Its xmin is
# the smallest xid still running below xmax (xmax if none): the watermark. Not
# the smallest of pg_snapshot_xip(): on a hot standby (a streaming read
# replica) xip is always empty, the running xids the replayed WAL announced
# being kept elsewhere, while xmin counts them, so it holds there too (see
# docs/deployment.md, "Read replicas"). Our own transaction is not counted:
# when it is the only one at or above xmax (its id *is* xmax), nothing else can
# still write below our id + 1, and our own rows are included. When other ids
# lie between xmax and ours, they are running: the watermark stays at xmax, and
# the caller learns our own stamp (second column) to add its own changes to the
# answer (see pull.py).
_PG_WATERMARK = """
SELECT CASE WHEN pg_snapshot_xmin(s) = pg_snapshot_xmax(s) AND pg_snapshot_xmax(s) = pg_current_xact_id_if_assigned()
            THEN pg_snapshot_xmax(s)::text::bigint + 1
            ELSE pg_snapshot_xmin(s)::text::bigint END,
       pg_current_xact_id_if_assigned()::text::bigint FROM pg_current_snapshot() AS s
"""


def next_stamp(connection):
    """Return the stamp for rows written now, inside the current transaction."""
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError(
            "offline_sync stamps must be taken inside the transaction that writes the rows: "
            "wrap the write in transaction.atomic()."
        )
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
    """Return ``(watermark, own)``.

    Every row that will ever commit with a stamp below ``watermark`` is
    committed now. ``own`` is the stamp of the current transaction's own writes
    when they are not below the watermark (PostgreSQL, another transaction
    still running), else None.
    """
    with connection.cursor() as cursor:
        if _vendor(connection) == "postgresql":
            cursor.execute(_PG_WATERMARK)
            upper, own = cursor.fetchone()
            return upper, own if own is not None and own >= upper else None
        cursor.execute(f"SELECT clock + 1 FROM {_STATE_TABLE} WHERE id = 1")
        row = cursor.fetchone()
        return (row[0] if row else 1), None
