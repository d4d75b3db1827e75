/**
 * The local store: a table per entity with the seeds' sync metadata, and the sync bookkeeping.
 *
 * Each entity row (the seeds' `LocalCompany`) holds:
 * - `localId`: the row's key on this device, never changed (sent as `local_id` while the
 *   record is not on the server);
 * - `id`: the server id, null until the server assigned one;
 * - `version`, `modifiedOn`: the server's, as last received;
 * - `data`: the record's fields; a foreign key holds the parent's server id, or
 *   `{"local_id": ...}` while the parent is not on the server;
 * - `isFromServer`, `isModified`, `isActive`: the seeds' flags;
 * - `baseVersion`: the version the local changes were made on (null when clean);
 * - `modifiedFields`: `{field: changeSeq}`, the fields changed here since the row was last in
 *   step, each with the `changeSeq` of its last change, so a push sends only those and an edit
 *   made while a push was in flight is told apart from what that push carried;
 * - `changeSeq`: bumped by every local action on the row; `stale`: set while a full pull has
 *   not yet sent the record again; `order`: insertion order.
 *
 * Bookkeeping tables: `sync_endpoints` (the cursor per endpoint, `LastSync`),
 * `sync_pending_pushes` (a push's `sync_id`, exact body and the rows it carries, stored before
 * it is sent), `sync_conflicts` (the seeds' `ConflictingCompany`), `sync_meta`.
 *
 * Whatever a sync receives is applied by `applyAnswer` in one transaction per page: the data,
 * the cursor that covers it and the stored push's removal commit together, or not at all.
 */

import { SERVER_KEYS, type Endpoint, type Entity } from "./endpoints.js";
import { BAD_RESPONSE, StoreError, SyncError } from "./errors.js";
import type { Storage, StorageTransaction } from "./storage.js";

export type ServerId = number | string;
export type Values = Record<string, unknown>;
/** A record as the server sends it: `id`, `version`, `modified_on` and the fields. */
export type WireRecord = { id: ServerId; version?: number; modified_on?: string } & Values;

/** A row of an entity table, as the app sees it. */
export interface LocalRecord {
  entity: string;
  localId: string;
  id: ServerId | null;
  version: number | null;
  modifiedOn: string | null;
  data: Values;
  isFromServer: boolean;
  isModified: boolean;
  isActive: boolean;
  baseVersion: number | null;
  modifiedFields: string[];
}

/** A change of this user's that the server set aside (PROTOCOL.md 4.2), kept until resolved. */
export interface Conflict {
  conflictId: ServerId;
  endpoint: string;
  entity: string;
  id: ServerId;
  kind: string;
  client: Values;
  server: WireRecord | null;
  detectedOn: string | null;
  deviceId: string | null;
}

export interface EndpointState {
  cursor: string | null;
  fullPullPending: boolean;
  serverTime: string | null;
}

export interface PendingPush {
  syncId: string;
  /** The exact JSON text sent, again on every retry. */
  body: string;
}

/** A pull page or a push answer (PROTOCOL.md sections 3 and 4). */
export interface SyncAnswer {
  full?: boolean;
  changes: Record<string, { records?: WireRecord[]; deleted?: ServerId[] }>;
  cursor: string;
  has_more: boolean;
  server_time?: string;
  id_map?: Record<string, Record<string, ServerId>>;
  conflicts?: WireConflict[];
}

export interface WireConflict {
  conflict_id: ServerId;
  entity: string;
  id: ServerId;
  kind: string;
  client?: Values;
  server?: WireRecord | null;
  detected_on?: string;
  device_id?: string;
}

interface Row {
  localId: string;
  id: ServerId | null;
  version: number | null;
  modifiedOn: string | null;
  data: Values;
  isFromServer: boolean;
  isModified: boolean;
  isActive: boolean;
  baseVersion: number | null;
  modifiedFields: Record<string, number>;
  changeSeq: number;
  stale: boolean;
  order: number;
}

interface PushedRow {
  entity: string;
  localId: string;
  kind: "added" | "modified" | "deleted";
  changeSeq: number;
}

interface StoredPush extends PendingPush {
  endpoint: string;
  rows: PushedRow[];
}

interface StoredEndpoint {
  endpoint: string;
  cursor: string | null;
  params: string;
  fullPullPending: boolean;
  serverTime: string | null;
}

const ENDPOINTS = "sync_endpoints";
const PUSHES = "sync_pending_pushes";
const CONFLICTS = "sync_conflicts";
const META = "sync_meta";
const BOOKKEEPING = [ENDPOINTS, PUSHES, CONFLICTS, META];

export function conflictFromWire(endpoint: string, wire: WireConflict): Conflict {
  return {
    conflictId: wire.conflict_id,
    endpoint,
    entity: wire.entity,
    id: wire.id,
    kind: wire.kind,
    client: wire.client ?? {},
    server: wire.server ?? null,
    detectedOn: wire.detected_on ?? null,
    deviceId: wire.device_id ?? null,
  };
}

/** The `local_id` a foreign-key value points at, or null when it is a server id. */
export function localRef(value: unknown): string | null {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const ref = (value as Values).local_id;
    if (keys.length === 1 && typeof ref === "string") return ref;
  }
  return null;
}

function newId(): string {
  return globalThis.crypto.randomUUID();
}

function sortedJson(values: Record<string, string>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(values).sort(([a], [b]) => (a < b ? -1 : 1))));
}

/** One entity's rows inside a transaction, loaded once, with an index by server id. */
class Table {
  private byServerId = new Map<string, Row>();

  constructor(
    private readonly tx: StorageTransaction,
    readonly name: string,
    readonly rows: Map<string, Row>,
  ) {
    for (const row of rows.values()) if (row.id !== null) this.byServerId.set(String(row.id), row);
  }

  static async load(tx: StorageTransaction, name: string): Promise<Table> {
    const rows = (await tx.getAll(name)) as Row[];
    rows.sort((a, b) => a.order - b.order);
    return new Table(tx, name, new Map(rows.map((row) => [row.localId, row])));
  }

  find(id: ServerId): Row | undefined {
    return this.byServerId.get(String(id));
  }

  ordered(): Row[] {
    return [...this.rows.values()].sort((a, b) => a.order - b.order);
  }

  async put(row: Row): Promise<void> {
    const old = this.rows.get(row.localId);
    if (old && old.id !== null && this.byServerId.get(String(old.id)) === old) this.byServerId.delete(String(old.id));
    this.rows.set(row.localId, row);
    if (row.id !== null) this.byServerId.set(String(row.id), row);
    await this.tx.put(this.name, row.localId, row);
  }

  async remove(localId: string): Promise<void> {
    const old = this.rows.get(localId);
    if (!old) return;
    this.rows.delete(localId);
    if (old.id !== null && this.byServerId.get(String(old.id)) === old) this.byServerId.delete(String(old.id));
    await this.tx.delete(this.name, localId);
  }
}

/** A transaction of the store: its storage transaction and the entity tables it loaded. */
class Work {
  private tables = new Map<string, Table>();
  private nextOrder: number | null = null;

  constructor(readonly tx: StorageTransaction) {}

  async table(name: string): Promise<Table> {
    let table = this.tables.get(name);
    if (!table) this.tables.set(name, (table = await Table.load(this.tx, name)));
    return table;
  }

  async order(): Promise<number> {
    if (this.nextOrder === null) this.nextOrder = ((await this.tx.get(META, "order")) as number | undefined) ?? 1;
    const order = this.nextOrder++;
    await this.tx.put(META, "order", this.nextOrder);
    return order;
  }
}

export type ChangeListener = () => void;

/**
 * The device's data: entity tables, the local actions that replace plain writes, and what a
 * sync needs to be crash-safe. Open it with `await LocalStore.open(storage, endpoints)`.
 */
export class LocalStore {
  readonly endpoints: ReadonlyMap<string, Endpoint>;
  private readonly owner = new Map<string, Endpoint>(); // entity name -> endpoint
  private readonly listeners = new Set<ChangeListener>();

  private constructor(
    readonly storage: Storage,
    endpoints: Endpoint[],
  ) {
    const map = new Map<string, Endpoint>();
    for (const endpoint of endpoints) {
      if (map.has(endpoint.name)) throw new Error(`Two endpoints are named ${JSON.stringify(endpoint.name)}.`);
      map.set(endpoint.name, endpoint);
      for (const entity of endpoint.entities) {
        const other = this.owner.get(entity.name);
        if (other) {
          throw new Error(
            `Entity ${entity.name} is on endpoints ${other.name} and ${endpoint.name}: a store syncs each entity through one endpoint.`,
          );
        }
        this.owner.set(entity.name, endpoint);
      }
    }
    this.endpoints = map;
  }

  static async open(storage: Storage, endpoints: Endpoint[]): Promise<LocalStore> {
    const store = new LocalStore(storage, endpoints);
    await storage.open([...BOOKKEEPING, ...store.owner.keys()]);
    return store;
  }

  close(): void {
    this.storage.close();
  }

  /** Call `listener` after every committed change (local actions, syncs, resolutions); returns an unsubscribe. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // -- reading -----------------------------------------------------------------------------------

  /** The record with this `localId` (deleted locally or not), or null. */
  async get(entity: string, localId: string): Promise<LocalRecord | null> {
    this.table(entity);
    const row = await this.read([entity], async (w) => (await w.table(entity)).rows.get(localId));
    return row ? record(entity, row) : null;
  }

  /** The record with this server `id`, or null. */
  async find(entity: string, id: ServerId): Promise<LocalRecord | null> {
    this.table(entity);
    const row = await this.read([entity], async (w) => (await w.table(entity)).find(id));
    return row ? record(entity, row) : null;
  }

  /** The entity's records in insertion order; those deleted locally (not yet synced) only if asked. */
  async records(entity: string, options: { includeDeleted?: boolean } = {}): Promise<LocalRecord[]> {
    this.table(entity);
    const rows = await this.read([entity], async (w) => (await w.table(entity)).ordered());
    return rows.filter((row) => options.includeDeleted || row.isActive).map((row) => record(entity, row));
  }

  /** What a foreign key to this record holds: its server id, or `{"local_id": ...}` before it has one. */
  async ref(entity: string, localId: string): Promise<ServerId | { local_id: string }> {
    const found = await this.get(entity, localId);
    if (!found) throw new StoreError(`No ${entity} record with local_id ${JSON.stringify(localId)}.`);
    return found.isFromServer ? found.id! : { local_id: localId };
  }

  /** The conflicts waiting to be resolved, oldest first; only `endpoint`'s if given. */
  async conflicts(endpoint?: string): Promise<Conflict[]> {
    const all = await this.read([CONFLICTS], async (w) => (await w.tx.getAll(CONFLICTS)) as (Conflict & { order: number })[]);
    return all
      .filter((c) => endpoint === undefined || c.endpoint === endpoint)
      .sort((a, b) => a.order - b.order)
      .map(({ order: _order, ...conflict }) => conflict);
  }

  async conflict(conflictId: ServerId): Promise<Conflict | null> {
    return (await this.conflicts()).find((c) => String(c.conflictId) === String(conflictId)) ?? null;
  }

  /** Whether `endpoint` has local changes not yet on the server (or a push waiting for its answer). */
  async hasPendingChanges(endpoint: string): Promise<boolean> {
    const end = this.endpoint(endpoint);
    const names = end.entities.map((e) => e.name);
    return this.read([PUSHES, ...names], async (w) => {
      if (await w.tx.get(PUSHES, endpoint)) return true;
      for (const name of names) {
        for (const row of (await w.table(name)).rows.values()) {
          if (!row.isFromServer || row.isModified || !row.isActive) return true;
        }
      }
      return false;
    });
  }

  /** The endpoint's cursor (null: the next pull is a full one) and whether a full pull is under way. */
  async state(endpoint: string): Promise<EndpointState> {
    this.endpoint(endpoint);
    return this.read([ENDPOINTS], (w) => this.stateIn(w, endpoint));
  }

  // -- local actions (the seeds' CreateOrUpdateLocal<Entity>ForSync, UpdateLocal..., DeleteLocal...) --

  /** Add a record that is not on the server yet; returns its `localId`. */
  async create(entity: string, values: Values, options: { localId?: string } = {}): Promise<string> {
    this.writableTable(entity);
    const localId = options.localId ?? newId();
    if (typeof localId !== "string" || localId.length < 1 || localId.length > 64) {
      throw new StoreError("A local_id is a string of 1 to 64 characters.");
    }
    await this.write(this.entityNames(entity), async (w) => {
      const clean = await this.cleanValues(w, entity, values);
      const table = await w.table(entity);
      if (table.rows.has(localId)) throw new StoreError(`${entity} already has a record with local_id ${JSON.stringify(localId)}.`);
      await table.put({
        localId,
        id: null,
        version: null,
        modifiedOn: null,
        data: clean,
        isFromServer: false,
        isModified: true,
        isActive: true,
        baseVersion: null,
        modifiedFields: Object.fromEntries(Object.keys(clean).map((k) => [k, 1])),
        changeSeq: 1,
        stale: false,
        order: await w.order(),
      });
    });
    return localId;
  }

  /** Change some fields of a record; they are pushed (only they, with `base_version`) at the next sync. */
  async update(entity: string, localId: string, values: Values): Promise<void> {
    this.writableTable(entity);
    await this.write(this.entityNames(entity), async (w) => {
      const table = await w.table(entity);
      const row = activeRow(table, entity, localId);
      const clean = await this.cleanValues(w, entity, values);
      const seq = row.changeSeq + 1;
      await table.put({
        ...row,
        data: { ...row.data, ...clean },
        modifiedFields: { ...row.modifiedFields, ...Object.fromEntries(Object.keys(clean).map((k) => [k, seq])) },
        isModified: true,
        changeSeq: seq,
        baseVersion: row.baseVersion ?? row.version,
      });
    });
  }

  /** Update the record `localId` if it exists, else create it; returns its `localId`. */
  async createOrUpdate(entity: string, values: Values, localId?: string): Promise<string> {
    if (localId !== undefined && (await this.get(entity, localId))) {
      await this.update(entity, localId, values);
      return localId;
    }
    return this.create(entity, values, { localId });
  }

  /**
   * Delete a record: a record on the server becomes inactive until the deletion is pushed.
   * A record never pushed is removed at once, unless a push carrying it waits for its answer:
   * then it stays, inactive, and its deletion is pushed once the server has given it an id.
   */
  async delete(entity: string, localId: string): Promise<void> {
    const end = this.writableTable(entity);
    await this.write([PUSHES, ...this.entityNames(entity)], async (w) => {
      const table = await w.table(entity);
      const row = activeRow(table, entity, localId);
      if (!row.isFromServer) {
        const children = await this.childrenOf(w, entity, localId);
        if (children.length) {
          throw new StoreError(
            `${entity} ${JSON.stringify(localId)} is not on the server yet and these records point at it: ${children.join(", ")}. Delete them or point them elsewhere first.`,
          );
        }
        const push = (await w.tx.get(PUSHES, end.name)) as StoredPush | undefined;
        const inFlight = push?.rows.some((r) => r.entity === entity && r.localId === localId);
        if (!inFlight) {
          await table.remove(localId);
          return;
        }
      }
      await table.put({ ...row, isActive: false, changeSeq: row.changeSeq + 1, baseVersion: row.baseVersion ?? row.version });
    });
  }

  // -- what a sync uses ----------------------------------------------------------------------------

  /** The push stored for `endpoint` and not yet answered, or null. */
  async pendingPush(endpoint: string): Promise<PendingPush | null> {
    const push = await this.read([PUSHES], async (w) => (await w.tx.get(PUSHES, endpoint)) as StoredPush | undefined);
    return push ? { syncId: push.syncId, body: push.body } : null;
  }

  /**
   * Gather the endpoint's local changes into a push and store it before it is sent.
   *
   * Returns the push (its exact JSON text, sent again on every retry), or null when there is
   * nothing to push. `maxRecords` caps one push (children of parents left out wait too).
   */
  async preparePush(endpoint: string, options: { deviceId?: string | null; maxRecords?: number | null } = {}): Promise<PendingPush | null> {
    const end = this.endpoint(endpoint);
    const max = options.maxRecords ?? Infinity;
    return this.write([PUSHES, ENDPOINTS, ...end.entities.map((e) => e.name)], async (w) => {
      if (await w.tx.get(PUSHES, endpoint)) {
        throw new StoreError(`${endpoint} has a push waiting for its answer: send that one again first.`);
      }
      const changes: Record<string, Record<string, Values[]>> = {};
      const rows: PushedRow[] = [];
      const added: Record<string, Set<string>> = {};
      let count = 0;
      for (const entity of end.entities) {
        const lists: Record<"added" | "modified" | "deleted", Values[]> = { added: [], modified: [], deleted: [] };
        added[entity.name] = new Set();
        for (const row of (await w.table(entity.name)).ordered()) {
          const pending = row.isFromServer ? row.isModified || !row.isActive : row.isActive;
          if (!pending) continue;
          if (count >= max) break;
          let kind: PushedRow["kind"];
          let item: Values;
          if (!row.isFromServer) {
            kind = "added";
            item = { local_id: row.localId, ...row.data };
          } else if (!row.isActive) {
            kind = "deleted";
            item = { id: row.id, base_version: base(row) };
          } else {
            kind = "modified";
            item = { id: row.id, base_version: base(row) };
            for (const name of Object.keys(row.modifiedFields)) if (name in row.data) item[name] = row.data[name];
          }
          if (kind !== "deleted" && !parentsPushed(entity, item, added)) continue; // its parent goes first
          if (kind === "added") added[entity.name].add(row.localId);
          lists[kind].push(item);
          rows.push({ entity: entity.name, localId: row.localId, kind, changeSeq: row.changeSeq });
          count += 1;
        }
        const nonEmpty = Object.fromEntries(Object.entries(lists).filter(([, items]) => items.length));
        if (Object.keys(nonEmpty).length) changes[entity.name] = nonEmpty;
      }
      if (!Object.keys(changes).length) return null;
      const state = await this.stateIn(w, endpoint);
      const syncId = newId();
      const bodyValue: Values = { sync_id: syncId, last_sync: state.cursor, changes };
      if (options.deviceId != null) bodyValue.device_id = options.deviceId;
      const push: StoredPush = { endpoint, syncId, body: JSON.stringify(bodyValue), rows };
      await w.tx.put(PUSHES, endpoint, push);
      return { syncId, body: push.body };
    });
  }

  /** Forget a push the server refused (it applied nothing); its records stay pending for the next one. */
  async discardPendingPush(endpoint: string): Promise<void> {
    const end = this.endpoint(endpoint);
    await this.write([PUSHES, ...end.entities.map((e) => e.name)], async (w) => {
      await w.tx.delete(PUSHES, endpoint);
      for (const entity of end.entities) {
        const table = await w.table(entity.name);
        // Deleted while that push was in flight, and never created on the server after all.
        for (const row of [...table.rows.values()]) if (!row.isFromServer && !row.isActive) await table.remove(row.localId);
      }
    });
  }

  /** Forget the cursor: the next pull is a full one (after `410 cursor_expired`). */
  async resetCursor(endpoint: string): Promise<void> {
    await this.write([ENDPOINTS], async (w) => {
      const stored = (await w.tx.get(ENDPOINTS, endpoint)) as StoredEndpoint | undefined;
      if (stored) await w.tx.put(ENDPOINTS, endpoint, { ...stored, cursor: null, fullPullPending: false });
    });
  }

  /**
   * Apply a pull page or a push answer (`pushed`) in one transaction, with its cursor.
   *
   * For a push: map `id_map` (children's foreign keys too), settle the pushed rows (an edit made
   * since the push was gathered stays pending), record `conflicts`; then, for both: upsert
   * `records`, remove `deleted` (a record with unsent changes stays for its push to settle),
   * finish a full pull's replacement on its last page, and store the cursor. Returns the new conflicts.
   */
  async applyAnswer(endpoint: string, answer: SyncAnswer, options: { pushed?: boolean } = {}): Promise<Conflict[]> {
    const end = this.endpoint(endpoint);
    const names = end.entities.map((e) => e.name);
    return this.write([ENDPOINTS, PUSHES, CONFLICTS, META, ...names], async (w) => {
      let conflicts: Conflict[] = [];
      if (options.pushed) {
        conflicts = (answer.conflicts ?? []).map((c) => conflictFromWire(endpoint, c)).filter((c) => names.includes(c.entity));
        await this.applyIdMap(w, end, answer.id_map ?? {});
        const conflicted = new Set(conflicts.map((c) => `${c.entity}\u0000${c.id}`));
        await this.settlePushedRows(w, endpoint, conflicted);
      }
      const full = Boolean(answer.full);
      if (full) {
        for (const name of names) {
          const table = await w.table(name);
          for (const row of [...table.rows.values()]) if (row.isFromServer) await table.put({ ...row, stale: true });
        }
      }
      for (const conflict of conflicts) {
        await this.storeConflict(w, conflict);
        if (conflict.server) await this.upsert(w, conflict.entity, conflict.server);
        else await this.removeServerRecord(w, conflict.entity, conflict.id);
      }
      for (const name of names) {
        const change = answer.changes[name] ?? {};
        for (const wire of change.records ?? []) await this.upsert(w, name, wire);
        for (const id of change.deleted ?? []) await this.removeServerRecord(w, name, id);
      }
      const state = await this.stateIn(w, endpoint);
      let fullPullPending = full || state.fullPullPending;
      if (fullPullPending && !answer.has_more) {
        for (const name of names) {
          const table = await w.table(name);
          for (const row of [...table.rows.values()]) {
            if (!row.stale) continue;
            // Not sent again by the full pull: gone from this device's subset (unless changed here).
            if (row.isModified && row.isActive) await table.put({ ...row, stale: false });
            else await table.remove(row.localId);
          }
        }
        fullPullPending = false;
      }
      const stored: StoredEndpoint = {
        endpoint,
        cursor: answer.cursor,
        params: sortedJson(end.params),
        fullPullPending,
        serverTime: answer.server_time ?? null,
      };
      await w.tx.put(ENDPOINTS, endpoint, stored);
      if (options.pushed) await w.tx.delete(PUSHES, endpoint);
      return conflicts;
    });
  }

  /** Make the local conflicts of `endpoint` the server's pending list (wire form) for its entities. */
  async replaceConflicts(endpoint: string, pending: unknown[]): Promise<Conflict[]> {
    const names = this.endpoint(endpoint).entities.map((e) => e.name);
    await this.write([CONFLICTS, META], async (w) => {
      for (const c of (await w.tx.getAll(CONFLICTS)) as Conflict[]) {
        if (c.endpoint === endpoint) await w.tx.delete(CONFLICTS, String(c.conflictId));
      }
      for (const wire of pending) {
        if (wire && typeof wire === "object" && names.includes((wire as WireConflict).entity)) {
          await this.storeConflict(w, conflictFromWire(endpoint, wire as WireConflict));
        }
      }
    });
    return this.conflicts(endpoint);
  }

  /** A conflict was resolved (here or elsewhere): take the server's resulting record, forget the conflict. */
  async applyResolution(conflict: Conflict, wire: WireRecord | null): Promise<void> {
    await this.write([CONFLICTS, META, conflict.entity], async (w) => {
      if (wire) await this.upsert(w, conflict.entity, wire);
      else await this.removeServerRecord(w, conflict.entity, conflict.id);
      await w.tx.delete(CONFLICTS, String(conflict.conflictId));
    });
  }

  // -- internals ---------------------------------------------------------------------------------

  private async read<T>(tables: string[], work: (w: Work) => Promise<T>): Promise<T> {
    return this.storage.transaction(tables, "readonly", (tx) => work(new Work(tx)));
  }

  private async write<T>(tables: string[], work: (w: Work) => Promise<T>): Promise<T> {
    const result = await this.storage.transaction([...new Set(tables)], "readwrite", (tx) => work(new Work(tx)));
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (error) {
        console.error("offline-sync-client: a store listener failed", error);
      }
    }
    return result;
  }

  private async stateIn(w: Work, endpoint: string): Promise<EndpointState> {
    const stored = (await w.tx.get(ENDPOINTS, endpoint)) as StoredEndpoint | undefined;
    if (!stored || stored.params !== sortedJson(this.endpoint(endpoint).params)) {
      return { cursor: null, fullPullPending: false, serverTime: null }; // never synced, or with other filters
    }
    return { cursor: stored.cursor, fullPullPending: stored.fullPullPending, serverTime: stored.serverTime };
  }

  private async applyIdMap(w: Work, end: Endpoint, idMap: Record<string, Record<string, ServerId>>): Promise<void> {
    for (const entity of end.entities) {
      const mapping = idMap[entity.name] ?? {};
      const table = await w.table(entity.name);
      for (const [localId, id] of Object.entries(mapping)) {
        // A row the server already sent under that id is the same record: the local row keeps its state.
        const twin = table.find(id);
        if (twin && twin.localId !== localId) await table.remove(twin.localId);
        const row = table.rows.get(localId);
        if (row) await table.put({ ...row, id, version: 1, isFromServer: true });
      }
      if (Object.keys(mapping).length) await this.rewriteReferences(w, end, entity.name, mapping);
    }
  }

  /** Children's `{"local_id": ...}` foreign keys to `parent` become the new server ids. */
  private async rewriteReferences(w: Work, end: Endpoint, parent: string, mapping: Record<string, ServerId>): Promise<void> {
    for (const child of end.entities) {
      const fks = Object.entries(child.foreignKeys).filter(([, target]) => target === parent).map(([field]) => field);
      if (!fks.length) continue;
      const table = await w.table(child.name);
      for (const row of [...table.rows.values()]) {
        let data: Values | null = null;
        for (const field of fks) {
          const ref = localRef(row.data[field]);
          if (ref !== null && ref in mapping) (data ??= { ...row.data })[field] = mapping[ref];
        }
        if (data) await table.put({ ...row, data });
      }
    }
  }

  /** The pushed rows are now as the server has them, except for what changed here since they were gathered. */
  private async settlePushedRows(w: Work, endpoint: string, conflicted: Set<string>): Promise<void> {
    const push = (await w.tx.get(PUSHES, endpoint)) as StoredPush | undefined;
    for (const pushed of push?.rows ?? []) {
      const table = await w.table(pushed.entity);
      const row = table.rows.get(pushed.localId);
      if (!row) continue;
      if (pushed.kind === "added" && !row.isFromServer) {
        throw new SyncError(BAD_RESPONSE, `The push answer has no id_map entry for ${pushed.entity} ${JSON.stringify(pushed.localId)}.`);
      }
      const isConflicted = conflicted.has(`${pushed.entity}\u0000${row.id}`);
      if (row.changeSeq === pushed.changeSeq) {
        // Untouched since the push was gathered: applied, or set aside as a conflict (the change now
        // lives in the conflicts table and the row shows the server's version until it is resolved).
        if (pushed.kind === "deleted" && !isConflicted) await table.remove(row.localId);
        else await table.put({ ...row, isModified: false, isActive: true, modifiedFields: {}, baseVersion: null });
        continue;
      }
      // Edited (or deleted) while the push was in flight: those changes are still to be pushed,
      // on top of the version this push made.
      const fields = Object.fromEntries(Object.entries(row.modifiedFields).filter(([, seq]) => seq > pushed.changeSeq));
      let baseVersion: number | null;
      if (pushed.kind === "added") baseVersion = 1;
      else if (pushed.kind === "modified" && !isConflicted) baseVersion = (base(row) ?? 0) + 1;
      else baseVersion = base(row);
      await table.put({ ...row, isModified: Object.keys(fields).length > 0, modifiedFields: fields, baseVersion });
    }
  }

  /** Take the server's record; fields changed here and not yet pushed keep their local values. */
  private async upsert(w: Work, entity: string, wire: WireRecord): Promise<void> {
    const data: Values = {};
    for (const [key, value] of Object.entries(wire)) if (!SERVER_KEYS.includes(key)) data[key] = value;
    const table = await w.table(entity);
    const row = table.find(wire.id);
    if (!row) {
      await table.put({
        localId: newId(),
        id: wire.id,
        version: wire.version ?? null,
        modifiedOn: wire.modified_on ?? null,
        data,
        isFromServer: true,
        isModified: false,
        isActive: true,
        baseVersion: null,
        modifiedFields: {},
        changeSeq: 0,
        stale: false,
        order: await w.order(),
      });
      return;
    }
    for (const name of Object.keys(row.modifiedFields)) if (name in row.data) data[name] = row.data[name];
    await table.put({ ...row, data, version: wire.version ?? null, modifiedOn: wire.modified_on ?? null, stale: false });
  }

  /** The server no longer has the record for this device; a record changed here stays for its push. */
  private async removeServerRecord(w: Work, entity: string, id: ServerId): Promise<void> {
    const table = await w.table(entity);
    const row = table.find(id);
    if (row && !(row.isModified && row.isActive)) await table.remove(row.localId);
  }

  private async storeConflict(w: Work, conflict: Conflict): Promise<void> {
    const key = String(conflict.conflictId);
    const old = (await w.tx.get(CONFLICTS, key)) as { order: number } | undefined;
    await w.tx.put(CONFLICTS, key, { ...conflict, order: old?.order ?? (await w.order()) });
  }

  private async childrenOf(w: Work, entity: string, localId: string): Promise<string[]> {
    const found: string[] = [];
    for (const child of this.owner.get(entity)!.entities) {
      const fks = Object.entries(child.foreignKeys).filter(([, target]) => target === entity).map(([field]) => field);
      if (!fks.length) continue;
      for (const row of (await w.table(child.name)).ordered()) {
        if (row.isActive && fks.some((field) => localRef(row.data[field]) === localId)) {
          found.push(`${child.name} ${JSON.stringify(row.localId)}`);
        }
      }
    }
    return found;
  }

  private async cleanValues(w: Work, entity: string, values: Values): Promise<Values> {
    if (values === null || typeof values !== "object" || Array.isArray(values)) {
      throw new StoreError("Values are an object of field names to JSON values.");
    }
    const owned = Object.keys(values).filter((k) => [...SERVER_KEYS, "local_id"].includes(k)).sort();
    if (owned.length) throw new StoreError(`${owned.join(", ")}: set by the server or the store, not by a local action.`);
    let clean: Values;
    try {
      clean = JSON.parse(JSON.stringify(values, (_key, value) => {
        if (typeof value === "number" && !Number.isFinite(value)) throw new TypeError(`${value} is not a JSON number`);
        if (typeof value === "bigint" || typeof value === "function" || typeof value === "symbol") {
          throw new TypeError(`a ${typeof value} is not a JSON value`);
        }
        return value;
      })) as Values;
    } catch (error) {
      throw new StoreError(`Values must be JSON values (decimals as strings): ${(error as Error).message}`);
    }
    for (const [field, target] of Object.entries(this.owner.get(entity)!.entity(entity).foreignKeys)) {
      const ref = localRef(clean[field]);
      if (ref === null) continue;
      const parent = (await w.table(target)).rows.get(ref);
      if (!parent || !parent.isActive) throw new StoreError(`${entity}.${field}: no ${target} record with local_id ${JSON.stringify(ref)}.`);
      if (parent.isFromServer) clean[field] = parent.id;
    }
    return clean;
  }

  private endpoint(name: string): Endpoint {
    const end = this.endpoints.get(name);
    if (!end) throw new StoreError(`Unknown endpoint ${JSON.stringify(name)}; this store has ${[...this.endpoints.keys()].join(", ")}.`);
    return end;
  }

  private table(entity: string): Endpoint {
    const end = this.owner.get(entity);
    if (!end) throw new StoreError(`Unknown entity ${JSON.stringify(entity)}; this store has ${[...this.owner.keys()].join(", ")}.`);
    return end;
  }

  private writableTable(entity: string): Endpoint {
    const end = this.table(entity);
    if (!end.writable) throw new StoreError(`${entity} comes from the read-only endpoint ${JSON.stringify(end.name)}.`);
    return end;
  }

  /** The entity and the parents its foreign keys name (their rows are read by a local action). */
  private entityNames(entity: string): string[] {
    const meta = this.table(entity).entity(entity);
    return [META, entity, ...Object.values(meta.foreignKeys), ...this.childNames(entity)];
  }

  private childNames(entity: string): string[] {
    return this.table(entity).entities.filter((e) => Object.values(e.foreignKeys).includes(entity)).map((e) => e.name);
  }
}

function base(row: Row): number | null {
  return row.baseVersion ?? row.version;
}

function activeRow(table: Table, entity: string, localId: string): Row {
  const row = table.rows.get(localId);
  if (!row || !row.isActive) {
    const state = row ? "is deleted (its deletion is not pushed yet)" : "does not exist";
    throw new StoreError(`The ${entity} record with local_id ${JSON.stringify(localId)} ${state}.`);
  }
  return row;
}

/** False when a foreign key of `item` names a local parent that this push does not add. */
function parentsPushed(entity: Entity, item: Values, added: Record<string, Set<string>>): boolean {
  for (const [field, target] of Object.entries(entity.foreignKeys)) {
    const ref = localRef(item[field]);
    if (ref !== null && !added[target]?.has(ref)) return false;
  }
  return true;
}

function record(entity: string, row: Row): LocalRecord {
  return {
    entity,
    localId: row.localId,
    id: row.id,
    version: row.version,
    modifiedOn: row.modifiedOn,
    data: row.data,
    isFromServer: row.isFromServer,
    isModified: row.isModified,
    isActive: row.isActive,
    baseVersion: row.baseVersion,
    modifiedFields: Object.keys(row.modifiedFields),
  };
}
