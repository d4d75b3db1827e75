"""The local store: a SQLite table per entity with the seeds' sync metadata, and the sync bookkeeping.

Every entity table has these columns (the seeds' ``LocalCompany``):

- ``local_id``: the row's key on this device, never changed (sent as ``local_id``
  while the record is not on the server);
- ``id``: the server id, NULL until the server assigned one;
- ``version``, ``modified_on``: the server's, as last received;
- ``data``: the record's fields as a JSON object; a foreign key holds the
  parent's server id, or ``{"local_id": ...}`` while the parent is not on the server;
- ``is_from_server``, ``is_modified``, ``is_active``: the seeds' flags;
- ``base_version``: the version the local changes were made on (NULL when clean);
- ``modified_fields``: ``{field: change_seq}``, the fields changed locally since
  the record was last in step with the server, each with the ``change_seq`` of
  its last change, so that a push sends only those, and an edit made while a
  push was in flight is told apart from what that push carried;
- ``change_seq``: bumped by every local action on the row;
- ``stale``: set while a full pull has not yet sent the record again.

Bookkeeping tables: ``sync_endpoints`` (the cursor per endpoint, ``LastSync``),
``sync_pending_pushes`` (a push's ``sync_id`` and exact body, stored before it
is sent), ``sync_pushed_rows`` (which rows, at which ``change_seq``, that push
carries) and ``sync_conflicts`` (the seeds' ``ConflictingCompany``).

Whatever the sync receives is applied with ``apply_answer``, one transaction
per page: the data and the cursor that covers it commit together, with the
pending push's removal, so a crash leaves either the state before the page
(the page is fetched again) or the state after it.
"""

import json
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

from . import errors
from .endpoints import SERVER_KEYS
from .errors import StoreError, SyncError

SCHEMA_VERSION = 1

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS sync_endpoints (
    endpoint TEXT PRIMARY KEY,
    cursor TEXT,
    params TEXT,
    full_pull_pending INTEGER NOT NULL DEFAULT 0,
    server_time TEXT
);
CREATE TABLE IF NOT EXISTS sync_pending_pushes (
    endpoint TEXT PRIMARY KEY,
    sync_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_pushed_rows (
    endpoint TEXT NOT NULL,
    entity TEXT NOT NULL,
    local_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    change_seq INTEGER NOT NULL,
    PRIMARY KEY (entity, local_id)
);
CREATE TABLE IF NOT EXISTS sync_conflicts (
    conflict_id PRIMARY KEY,
    endpoint TEXT NOT NULL,
    entity TEXT NOT NULL,
    id,
    kind TEXT NOT NULL,
    client TEXT NOT NULL,
    server TEXT,
    detected_on TEXT,
    device_id TEXT
);
"""

_ENTITY_TABLE = """
CREATE TABLE IF NOT EXISTS "{name}" (
    local_id TEXT PRIMARY KEY,
    id UNIQUE,
    version INTEGER,
    modified_on TEXT,
    data TEXT NOT NULL,
    is_from_server INTEGER NOT NULL DEFAULT 0,
    is_modified INTEGER NOT NULL DEFAULT 0,
    is_active INTEGER NOT NULL DEFAULT 1,
    base_version INTEGER,
    modified_fields TEXT NOT NULL DEFAULT '{{}}',
    change_seq INTEGER NOT NULL DEFAULT 0,
    stale INTEGER NOT NULL DEFAULT 0
)
"""


@dataclass(frozen=True)
class LocalRecord:
    """A row of an entity table, as the app sees it."""

    entity: str
    local_id: str
    id: object
    version: int | None
    modified_on: str | None
    data: dict
    is_from_server: bool
    is_modified: bool
    is_active: bool
    base_version: int | None
    modified_fields: tuple


@dataclass(frozen=True)
class Conflict:
    """A change of this user's that the server set aside (PROTOCOL.md 4.2), kept until resolved."""

    conflict_id: object
    endpoint: str
    entity: str
    id: object
    kind: str
    client: dict
    server: dict | None
    detected_on: str | None
    device_id: str | None

    @classmethod
    def from_wire(cls, endpoint, wire):
        return cls(
            wire["conflict_id"],
            endpoint,
            wire["entity"],
            wire["id"],
            wire["kind"],
            wire.get("client") or {},
            wire.get("server"),
            wire.get("detected_on"),
            wire.get("device_id"),
        )


@dataclass(frozen=True)
class EndpointState:
    cursor: str | None
    full_pull_pending: bool
    server_time: str | None


def _dumps(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _local_ref(value):
    """The ``local_id`` a foreign-key value points at, or None when it is a server id."""
    if isinstance(value, dict) and set(value) == {"local_id"} and isinstance(value["local_id"], str):
        return value["local_id"]
    return None


class LocalStore:
    """The device's SQLite database: entity tables, local actions, and what a sync needs to be crash-safe.

    One connection, shared by the app's threads and the sync's behind one
    lock; a store file is for one process at a time.
    """

    def __init__(self, path, endpoints):
        self.endpoints = {}
        self._owner = {}  # entity name -> endpoint
        for endpoint in endpoints:
            if endpoint.name in self.endpoints:
                raise ValueError(f"Two endpoints are named {endpoint.name!r}.")
            self.endpoints[endpoint.name] = endpoint
            for entity in endpoint.entities:
                if entity.name in self._owner:
                    raise ValueError(
                        f"Entity {entity.name!r} is on endpoints {self._owner[entity.name].name!r} and "
                        f"{endpoint.name!r}: a store syncs each entity through one endpoint."
                    )
                self._owner[entity.name] = endpoint
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        with self.transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} was written by a newer client (schema {version}).")
            for statement in _BOOKKEEPING.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            for name in self._owner:
                self._db.execute(_ENTITY_TABLE.format(name=name))
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self):
        with self._lock:
            self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def transaction(self):
        """One SQLite transaction (nested calls join the outer one): all of it commits, or none of it."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    # -- reading ----------------------------------------------------------------------------------

    def get(self, entity, local_id):
        """The record with this ``local_id`` (deleted locally or not), or None."""
        row = self._row(self._table(entity), local_id)
        return self._record(entity, row) if row else None

    def find(self, entity, server_id):
        """The record with this server ``id``, or None."""
        table = self._table(entity)
        with self._lock:
            row = self._db.execute(f'SELECT * FROM "{table}" WHERE id = ?', (server_id,)).fetchone()
        return self._record(entity, row) if row else None

    def records(self, entity, *, include_deleted=False):
        """The entity's records in insertion order; those deleted locally (not yet synced) only if asked."""
        table = self._table(entity)
        where = "" if include_deleted else "WHERE is_active = 1"
        with self._lock:
            rows = self._db.execute(f'SELECT * FROM "{table}" {where} ORDER BY rowid').fetchall()
        return [self._record(entity, row) for row in rows]

    def ref(self, entity, local_id):
        """What a foreign key to this record holds: its server id, or ``{"local_id": ...}`` before it has one."""
        record = self.get(entity, local_id)
        if record is None:
            raise StoreError(f"No {entity} record with local_id {local_id!r}.")
        return record.id if record.is_from_server else {"local_id": local_id}

    def conflicts(self, endpoint=None):
        """The conflicts waiting to be resolved, oldest first; only ``endpoint``'s if given."""
        sql, args = "SELECT * FROM sync_conflicts", ()
        if endpoint is not None:
            sql, args = sql + " WHERE endpoint = ?", (endpoint,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY rowid", args).fetchall()
        return [self._conflict(row) for row in rows]

    def has_pending_changes(self, endpoint):
        """Whether ``endpoint`` has local changes not yet on the server (or a push waiting for its answer)."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM sync_pending_pushes WHERE endpoint = ?", (endpoint,)).fetchone():
                return True
            for entity in self.endpoints[endpoint].entities:
                sql = f'SELECT 1 FROM "{entity.name}" WHERE is_from_server = 0 OR is_modified = 1 OR is_active = 0'
                if self._db.execute(sql + " LIMIT 1").fetchone():
                    return True
        return False

    def state(self, endpoint):
        """The endpoint's cursor (None: the next pull is a full one) and whether a full pull is under way."""
        with self._lock:
            row = self._db.execute("SELECT * FROM sync_endpoints WHERE endpoint = ?", (endpoint,)).fetchone()
        if row is None or row["params"] != self._params_key(endpoint):
            return EndpointState(None, False, None)  # never synced, or synced with other filters
        return EndpointState(row["cursor"], bool(row["full_pull_pending"]), row["server_time"])

    # -- local actions (the seeds' CreateOrUpdateLocal<Entity>ForSync, UpdateLocal..., DeleteLocal...) ----

    def create(self, entity, values, *, local_id=None):
        """Add a record that is not on the server yet; return its ``local_id``."""
        table = self._writable_table(entity)
        with self.transaction():
            values = self._clean_values(entity, values)
            local_id = str(uuid.uuid4()) if local_id is None else local_id
            if not isinstance(local_id, str) or not 1 <= len(local_id) <= 64:
                raise StoreError("A local_id is a string of 1 to 64 characters.")
            if self._row(table, local_id) is not None:
                raise StoreError(f"{entity} already has a record with local_id {local_id!r}.")
            self._db.execute(
                f'INSERT INTO "{table}" (local_id, data, is_from_server, is_modified, is_active, modified_fields,'
                " change_seq) VALUES (?, ?, 0, 1, 1, ?, 1)",
                (local_id, _dumps(values), _dumps(dict.fromkeys(values, 1))),
            )
        return local_id

    def update(self, entity, local_id, values):
        """Change some fields of a record; they are pushed (only they, with ``base_version``) at the next sync."""
        table = self._writable_table(entity)
        with self.transaction():
            row = self._active_row(entity, table, local_id)
            values = self._clean_values(entity, values)
            seq = row["change_seq"] + 1
            data = {**json.loads(row["data"]), **values}
            fields = {**json.loads(row["modified_fields"]), **dict.fromkeys(values, seq)}
            self._db.execute(
                f'UPDATE "{table}" SET data = ?, modified_fields = ?, is_modified = 1, change_seq = ?,'
                " base_version = COALESCE(base_version, version) WHERE local_id = ?",
                (_dumps(data), _dumps(fields), seq, local_id),
            )

    def create_or_update(self, entity, values, local_id=None):
        """Update the record ``local_id`` if it exists, else create it; return its ``local_id``."""
        with self.transaction():
            if local_id is not None and self._row(self._writable_table(entity), local_id) is not None:
                self.update(entity, local_id, values)
                return local_id
            return self.create(entity, values, local_id=local_id)

    def delete(self, entity, local_id):
        """Delete a record: a record on the server becomes inactive until the deletion is pushed.

        A record never pushed is removed at once, unless a push carrying it is
        waiting for its answer: then it stays, inactive, and its deletion is
        pushed once the server has given it an id.
        """
        table = self._writable_table(entity)
        with self.transaction():
            row = self._active_row(entity, table, local_id)
            if not row["is_from_server"]:
                children = self._children_of(entity, local_id)
                if children:
                    raise StoreError(
                        f"{entity} {local_id!r} is not on the server yet and these records point at it: "
                        f"{', '.join(children)}. Delete them or point them elsewhere first."
                    )
                in_flight = self._db.execute(
                    "SELECT 1 FROM sync_pushed_rows WHERE entity = ? AND local_id = ?", (entity, local_id)
                ).fetchone()
                if not in_flight:
                    self._db.execute(f'DELETE FROM "{table}" WHERE local_id = ?', (local_id,))
                    return
            self._db.execute(
                f'UPDATE "{table}" SET is_active = 0, change_seq = change_seq + 1,'
                " base_version = COALESCE(base_version, version) WHERE local_id = ?",
                (local_id,),
            )

    # -- what a sync uses ---------------------------------------------------------------------------

    def pending_push(self, endpoint):
        """``(sync_id, body)`` of the push stored for ``endpoint`` and not yet answered, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT sync_id, body FROM sync_pending_pushes WHERE endpoint = ?", (endpoint,)
            ).fetchone()
        return (row["sync_id"], row["body"]) if row else None

    def prepare_push(self, endpoint, *, device_id=None, max_records=None):
        """Gather the endpoint's local changes into a push and store it before it is sent.

        Returns ``(sync_id, body)`` (the exact JSON text to send, again on every
        retry), or None when there is nothing to push. Added, modified and
        deleted records are gathered as the seeds' aggregates filter them;
        ``max_records`` caps one push (children of parents left out wait too).
        """
        end = self.endpoints[endpoint]
        with self.transaction():
            if self.pending_push(endpoint) is not None:
                raise StoreError(f"{endpoint} has a push waiting for its answer: send that one again first.")
            changes, pushed, count, added = {}, [], 0, {}
            for entity in end.entities:
                lists = {"added": [], "modified": [], "deleted": []}
                added[entity.name] = set()
                rows = self._db.execute(
                    f'SELECT * FROM "{entity.name}" WHERE is_from_server = 0 AND is_active = 1'
                    " OR is_from_server = 1 AND (is_modified = 1 OR is_active = 0) ORDER BY rowid"
                ).fetchall()
                for row in rows:
                    if max_records is not None and count >= max_records:
                        break
                    data = json.loads(row["data"])
                    if not row["is_from_server"]:
                        kind, item = "added", {"local_id": row["local_id"], **data}
                    elif not row["is_active"]:
                        kind, item = "deleted", {"id": row["id"], "base_version": self._base(row)}
                    else:
                        kind = "modified"
                        fields = json.loads(row["modified_fields"])
                        item = {"id": row["id"], "base_version": self._base(row)}
                        item.update({name: data[name] for name in fields if name in data})
                    if kind != "deleted" and not self._parents_pushed(entity, item, added):
                        continue  # its parent is not in this push: it goes in a later one
                    if kind == "added":
                        added[entity.name].add(row["local_id"])
                    lists[kind].append(item)
                    pushed.append((endpoint, entity.name, row["local_id"], kind, row["change_seq"]))
                    count += 1
                lists = {key: items for key, items in lists.items() if items}
                if lists:
                    changes[entity.name] = lists
            if not changes:
                return None
            state = self.state(endpoint)
            sync_id = str(uuid.uuid4())
            body = {"sync_id": sync_id, "last_sync": state.cursor, "changes": changes}
            if device_id is not None:
                body["device_id"] = device_id
            body = _dumps(body)
            self._db.execute(
                "INSERT INTO sync_pending_pushes (endpoint, sync_id, body) VALUES (?, ?, ?)",
                (endpoint, sync_id, body),
            )
            self._db.executemany(
                "INSERT INTO sync_pushed_rows (endpoint, entity, local_id, kind, change_seq) VALUES (?, ?, ?, ?, ?)",
                pushed,
            )
        return sync_id, body

    def discard_pending_push(self, endpoint):
        """Forget a push the server refused (it applied nothing); its records stay pending for the next one."""
        with self.transaction():
            self._drop_pending_push(endpoint)
            for entity in self.endpoints[endpoint].entities:
                # Deleted while that push was in flight, and never created on the server after all.
                self._db.execute(f'DELETE FROM "{entity.name}" WHERE is_from_server = 0 AND is_active = 0')

    def reset_cursor(self, endpoint):
        """Forget the cursor: the next pull is a full one (after ``410 cursor_expired``)."""
        with self.transaction():
            self._db.execute(
                "UPDATE sync_endpoints SET cursor = NULL, full_pull_pending = 0 WHERE endpoint = ?", (endpoint,)
            )

    def apply_answer(self, endpoint, answer, *, pushed=False):
        """Apply a pull page or a push answer (``pushed``) in one transaction, with its cursor.

        For a push: map ``id_map`` (children's foreign keys too), settle the
        pushed rows (an edit made since the push was gathered stays pending),
        record ``conflicts``; then, for both: upsert ``records``, remove
        ``deleted`` (a record with unsent changes stays for the push to
        settle), finish a full pull's replacement on its last page, and store
        the cursor.
        """
        end = self.endpoints[endpoint]
        with self.transaction():
            conflicts = []
            if pushed:
                conflicts = [Conflict.from_wire(endpoint, c) for c in answer.get("conflicts") or []]
                conflicts = [c for c in conflicts if c.entity in self._owner]
                self._apply_id_map(end, answer.get("id_map") or {})
                self._settle_pushed_rows(endpoint, {(c.entity, c.id) for c in conflicts})
            full = bool(answer.get("full"))
            if full:
                for entity in end.entities:
                    self._db.execute(f'UPDATE "{entity.name}" SET stale = 1 WHERE is_from_server = 1')
            for conflict in conflicts:
                self._store_conflict(conflict)
                if conflict.server is not None:
                    self._upsert(conflict.entity, conflict.server)
                else:
                    self._remove(conflict.entity, conflict.id)
            for entity in end.entities:
                change = (answer.get("changes") or {}).get(entity.name) or {}
                for record in change.get("records") or []:
                    self._upsert(entity.name, record)
                for server_id in change.get("deleted") or []:
                    self._remove(entity.name, server_id)
            state = self.state(endpoint)
            full_pull_pending = full or state.full_pull_pending
            if full_pull_pending and not answer.get("has_more"):
                for entity in end.entities:
                    # Not sent again by the full pull: gone from this device's subset (unless changed here).
                    self._db.execute(
                        f'DELETE FROM "{entity.name}" WHERE stale = 1 AND NOT (is_modified = 1 AND is_active = 1)'
                    )
                    self._db.execute(f'UPDATE "{entity.name}" SET stale = 0 WHERE stale = 1')
                full_pull_pending = False
            self._db.execute(
                "INSERT INTO sync_endpoints (endpoint, cursor, params, full_pull_pending, server_time)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (endpoint) DO UPDATE SET cursor = excluded.cursor,"
                " params = excluded.params, full_pull_pending = excluded.full_pull_pending,"
                " server_time = excluded.server_time",
                (
                    endpoint,
                    answer["cursor"],
                    self._params_key(endpoint),
                    int(full_pull_pending),
                    answer.get("server_time"),
                ),
            )
            if pushed:
                self._drop_pending_push(endpoint)
        return conflicts

    def replace_conflicts(self, endpoint, pending):
        """Make the local conflicts of ``endpoint`` the server's pending list (wire form) for its entities."""
        entities = {e.name for e in self.endpoints[endpoint].entities}
        with self.transaction():
            self._db.execute("DELETE FROM sync_conflicts WHERE endpoint = ?", (endpoint,))
            for wire in pending:
                if isinstance(wire, dict) and wire.get("entity") in entities:
                    self._store_conflict(Conflict.from_wire(endpoint, wire))
        return self.conflicts(endpoint)

    def apply_resolution(self, conflict, record):
        """A conflict was resolved (here or elsewhere): take the server's resulting record, forget the conflict."""
        with self.transaction():
            if record is not None:
                self._upsert(conflict.entity, record)
            else:
                self._remove(conflict.entity, conflict.id)
            self._db.execute("DELETE FROM sync_conflicts WHERE conflict_id = ?", (conflict.conflict_id,))

    def conflict(self, conflict_id):
        with self._lock:
            row = self._db.execute("SELECT * FROM sync_conflicts WHERE conflict_id = ?", (conflict_id,)).fetchone()
        return self._conflict(row) if row else None

    # -- internals ----------------------------------------------------------------------------------

    def _apply_id_map(self, endpoint, id_map):
        for entity in endpoint.entities:
            mapping = id_map.get(entity.name) or {}
            for local_id, server_id in mapping.items():
                # A row the server already sent under that id is the same record: the local row keeps its state.
                self._db.execute(f'DELETE FROM "{entity.name}" WHERE id = ? AND local_id != ?', (server_id, local_id))
                self._db.execute(
                    f'UPDATE "{entity.name}" SET id = ?, version = 1, is_from_server = 1 WHERE local_id = ?',
                    (server_id, local_id),
                )
            if mapping:
                self._rewrite_references(endpoint, entity.name, mapping)

    def _rewrite_references(self, endpoint, parent, mapping):
        """Children's ``{"local_id": ...}`` foreign keys to ``parent`` become the new server ids."""
        for child in endpoint.entities:
            fks = [field for field, target in child.foreign_keys.items() if target == parent]
            if not fks:
                continue
            rows = self._db.execute(
                f'SELECT local_id, data FROM "{child.name}" WHERE data LIKE \'%"local_id"%\''
            ).fetchall()
            for row in rows:
                data = json.loads(row["data"])
                changed = False
                for field in fks:
                    ref = _local_ref(data.get(field))
                    if ref is not None and ref in mapping:
                        data[field] = mapping[ref]
                        changed = True
                if changed:
                    self._db.execute(
                        f'UPDATE "{child.name}" SET data = ? WHERE local_id = ?', (_dumps(data), row["local_id"])
                    )

    def _settle_pushed_rows(self, endpoint, conflicted):
        """The pushed rows are now as the server has them, except for what changed here since they were gathered."""
        pushed = self._db.execute(
            "SELECT entity, local_id, kind, change_seq FROM sync_pushed_rows WHERE endpoint = ?", (endpoint,)
        ).fetchall()
        for entity, local_id, kind, seq in pushed:
            row = self._row(entity, local_id)
            if row is None:
                continue
            if kind == "added" and not row["is_from_server"]:
                raise SyncError(errors.BAD_RESPONSE, f"The push answer has no id_map entry for {entity} {local_id!r}.")
            if row["change_seq"] == seq:  # untouched since the push was gathered
                if kind == "deleted" and (entity, row["id"]) not in conflicted:
                    self._db.execute(f'DELETE FROM "{entity}" WHERE local_id = ?', (local_id,))
                else:
                    # Applied, or set aside as a conflict (the change now lives in the conflicts table and
                    # the row shows the server's version until the conflict is resolved).
                    self._db.execute(
                        f"UPDATE \"{entity}\" SET is_modified = 0, is_active = 1, modified_fields = '{{}}',"
                        " base_version = NULL WHERE local_id = ?",
                        (local_id,),
                    )
                continue
            # Edited (or deleted) while the push was in flight: those changes are still to be pushed,
            # on top of the version this push made.
            fields = {name: s for name, s in json.loads(row["modified_fields"]).items() if s > seq}
            if kind == "added":
                base = 1
            elif kind == "modified" and (entity, row["id"]) not in conflicted:
                base = self._base(row) + 1
            else:
                base = self._base(row)
            self._db.execute(
                f'UPDATE "{entity}" SET is_modified = ?, modified_fields = ?, base_version = ? WHERE local_id = ?',
                (int(bool(fields)), _dumps(fields), base, local_id),
            )

    def _upsert(self, entity, record):
        """Take the server's record; fields changed here and not yet pushed keep their local values."""
        data = {key: value for key, value in record.items() if key not in SERVER_KEYS}
        row = self._db.execute(f'SELECT * FROM "{entity}" WHERE id = ?', (record["id"],)).fetchone()
        if row is None:
            self._db.execute(
                f'INSERT INTO "{entity}" (local_id, id, version, modified_on, data, is_from_server)'
                " VALUES (?, ?, ?, ?, ?, 1)",
                (str(uuid.uuid4()), record["id"], record.get("version"), record.get("modified_on"), _dumps(data)),
            )
            return
        local = json.loads(row["data"])
        data.update({name: local[name] for name in json.loads(row["modified_fields"]) if name in local})
        self._db.execute(
            f'UPDATE "{entity}" SET data = ?, version = ?, modified_on = ?, stale = 0 WHERE local_id = ?',
            (_dumps(data), record.get("version"), record.get("modified_on"), row["local_id"]),
        )

    def _remove(self, entity, server_id):
        """The server no longer has the record for this device; a record changed here stays for its push."""
        self._db.execute(
            f'DELETE FROM "{entity}" WHERE id = ? AND NOT (is_modified = 1 AND is_active = 1)', (server_id,)
        )

    def _store_conflict(self, conflict):
        self._db.execute(
            "INSERT OR REPLACE INTO sync_conflicts (conflict_id, endpoint, entity, id, kind, client, server,"
            " detected_on, device_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                conflict.conflict_id,
                conflict.endpoint,
                conflict.entity,
                conflict.id,
                conflict.kind,
                _dumps(conflict.client),
                None if conflict.server is None else _dumps(conflict.server),
                conflict.detected_on,
                conflict.device_id,
            ),
        )

    def _drop_pending_push(self, endpoint):
        self._db.execute("DELETE FROM sync_pending_pushes WHERE endpoint = ?", (endpoint,))
        self._db.execute("DELETE FROM sync_pushed_rows WHERE endpoint = ?", (endpoint,))

    def _parents_pushed(self, entity, item, added):
        """False when a foreign key of ``item`` names a local parent that this push does not add."""
        for field, target in entity.foreign_keys.items():
            ref = _local_ref(item.get(field))
            if ref is not None and ref not in added.get(target, ()):
                return False
        return True

    def _children_of(self, entity, local_id):
        found = []
        for child in self._owner[entity].entities:
            fks = [field for field, target in child.foreign_keys.items() if target == entity]
            for row in self._db.execute(
                f'SELECT local_id, data FROM "{child.name}" WHERE is_active = 1 AND data LIKE ?',
                (f"%{json.dumps(local_id)}%",),
            ):
                data = json.loads(row["data"])
                if any(_local_ref(data.get(field)) == local_id for field in fks):
                    found.append(f"{child.name} {row['local_id']!r}")
        return found

    def _clean_values(self, entity, values):
        if not isinstance(values, dict) or not all(isinstance(key, str) for key in values):
            raise StoreError("Values are a dict of field names to JSON values.")
        owned = sorted(set(values) & {*SERVER_KEYS, "local_id"})
        if owned:
            raise StoreError(f"{', '.join(owned)}: set by the server or the store, not by a local action.")
        try:
            values = json.loads(_dumps(values))
        except (TypeError, ValueError) as error:
            raise StoreError(f"Values must be JSON values (decimals as strings): {error}") from None
        for field, target in self._owner[entity].entity(entity).foreign_keys.items():
            ref = _local_ref(values.get(field))
            if ref is None:
                continue
            parent = self._row(target, ref)
            if parent is None or not parent["is_active"]:
                raise StoreError(f"{entity}.{field}: no {target} record with local_id {ref!r}.")
            if parent["is_from_server"]:
                values[field] = parent["id"]
        return values

    def _table(self, entity):
        if entity not in self._owner:
            raise StoreError(f"Unknown entity {entity!r}; this store has {', '.join(self._owner)}.")
        return entity

    def _writable_table(self, entity):
        table = self._table(entity)
        if not self._owner[entity].writable:
            raise StoreError(f"{entity} comes from the read-only endpoint {self._owner[entity].name!r}.")
        return table

    def _row(self, table, local_id):
        with self._lock:
            return self._db.execute(f'SELECT * FROM "{table}" WHERE local_id = ?', (local_id,)).fetchone()

    def _active_row(self, entity, table, local_id):
        row = self._row(table, local_id)
        if row is None or not row["is_active"]:
            state = "is deleted (its deletion is not pushed yet)" if row is not None else "does not exist"
            raise StoreError(f"The {entity} record with local_id {local_id!r} {state}.")
        return row

    def _params_key(self, endpoint):
        return _dumps(dict(sorted(self.endpoints[endpoint].params.items())))

    @staticmethod
    def _base(row):
        return row["base_version"] if row["base_version"] is not None else row["version"]

    @staticmethod
    def _record(entity, row):
        return LocalRecord(
            entity=entity,
            local_id=row["local_id"],
            id=row["id"],
            version=row["version"],
            modified_on=row["modified_on"],
            data=json.loads(row["data"]),
            is_from_server=bool(row["is_from_server"]),
            is_modified=bool(row["is_modified"]),
            is_active=bool(row["is_active"]),
            base_version=row["base_version"],
            modified_fields=tuple(json.loads(row["modified_fields"])),
        )

    @staticmethod
    def _conflict(row):
        return Conflict(
            row["conflict_id"],
            row["endpoint"],
            row["entity"],
            row["id"],
            row["kind"],
            json.loads(row["client"]),
            None if row["server"] is None else json.loads(row["server"]),
            row["detected_on"],
            row["device_id"],
        )
