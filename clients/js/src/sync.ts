/** A sync run (the seeds' `OfflineDataSync`): per endpoint, push what changed here, take what the server sends. */

import { Connection } from "./connection.js";
import { CONFLICT_DETECTION, type Endpoint } from "./endpoints.js";
import {
  ALREADY_RESOLVED,
  BAD_RESPONSE,
  CURSOR_EXPIRED,
  NOT_FOUND,
  PAYLOAD_TOO_LARGE,
  StoreError,
  SyncError,
  UNRESOLVED_CONFLICTS,
  VALIDATION_ERROR,
} from "./errors.js";
import type { Conflict, LocalStore, ServerId, SyncAnswer, Values, WireRecord } from "./store.js";

/**
 * Answers to a push that prove it was not applied and never will be with this body: the stored
 * push is dropped and the next sync gathers the (possibly corrected) local changes afresh. Any
 * other failure keeps it, to be sent again with the same sync_id: the server may have applied it
 * (a lost answer; a 403 or 401 on a retry of an applied push), and only the same sync_id can tell.
 */
const NOT_APPLIED: ReadonlySet<string> = new Set([
  VALIDATION_ERROR,
  NOT_FOUND,
  PAYLOAD_TOO_LARGE,
  UNRESOLVED_CONFLICTS,
  CURSOR_EXPIRED,
  "method_not_allowed",
  "unsupported_media_type",
]);

export const MAX_PUSHES_PER_RUN = 100;

/** What one endpoint's part of a sync did. */
export class EndpointOutcome {
  pushed = 0; // records sent (added, modified, deleted), over every push
  pulled = 0; // records and deleted ids received, over every page
  pages = 0;
  fullPull = false;
  conflicts: Conflict[] = []; // new conflicts
  error: SyncError | null = null;

  constructor(readonly endpoint: string) {}
}

/** What `sync()` returns: `ok`, or the first `error` (with `retryable` and `retryAfterMs`). */
export class SyncOutcome {
  readonly endpoints: EndpointOutcome[] = [];

  constructor(readonly unit: string | null) {}

  get error(): SyncError | null {
    return this.endpoints.find((e) => e.error !== null)?.error ?? null;
  }

  get ok(): boolean {
    return this.error === null;
  }

  get retryable(): boolean {
    return this.error?.retryable ?? false;
  }

  get retryAfterMs(): number | null {
    return this.error?.retryAfterMs ?? null;
  }

  get conflicts(): Conflict[] {
    return this.endpoints.flatMap((e) => e.conflicts);
  }
}

/**
 * How a conflict ended: `resolution` ("client", "server" or "merge") and the server's `record`
 * (null when deleted). `alreadyResolved`: someone (staff, another device) resolved it first;
 * `resolution` and `record` are then theirs.
 */
export interface ConflictResolution {
  conflictId: ServerId;
  resolution: string;
  record: WireRecord | null;
  alreadyResolved: boolean;
}

export type Resolution = "client" | "server" | "merge";

export interface SyncClientOptions {
  /** `{unit: [endpoint names]}`: what `sync(unit)` covers; every endpoint is also a unit of its own name. */
  units?: Record<string, string[]>;
  /** Sent with pushes; staff see it with conflicts. */
  deviceId?: string | null;
  /** The `limit` of pulls (default: the server's). */
  pageSize?: number | null;
  /** Records in one push; a larger backlog goes in several (default 1000). */
  maxPushRecords?: number;
  /** The conflicts API (PROTOCOL.md section 5). */
  conflictsPath?: string;
}

/** Syncs a `LocalStore` with a server. One sync (or resolution) runs at a time; another caller waits for it. */
export class SyncClient {
  readonly connection: Connection;
  readonly units: Record<string, string[]>;
  deviceId: string | null;
  pageSize: number | null;
  maxPushRecords: number;
  conflictsPath: string;
  private lock: Promise<unknown> = Promise.resolve();

  constructor(
    readonly store: LocalStore,
    connection: Connection | string,
    options: SyncClientOptions = {},
  ) {
    this.connection = typeof connection === "string" ? new Connection(connection) : connection;
    this.deviceId = options.deviceId ?? null;
    this.pageSize = options.pageSize ?? null;
    this.maxPushRecords = options.maxPushRecords ?? 1000;
    this.conflictsPath = options.conflictsPath ?? "/api/sync/conflicts/";
    this.units = Object.fromEntries([...store.endpoints.keys()].map((name) => [name, [name]]));
    for (const [unit, names] of Object.entries(options.units ?? {})) {
      const unknown = names.filter((n) => !store.endpoints.has(n));
      if (unknown.length) throw new Error(`Sync unit ${JSON.stringify(unit)} names unknown endpoints: ${unknown.join(", ")}.`);
      this.units[unit] = [...names];
    }
  }

  login(username: string, password: string): Promise<string> {
    return this.connection.login(username, password);
  }

  endpointsOf(unit: string | null = null): string[] {
    if (unit === null) return [...this.store.endpoints.keys()];
    const names = this.units[unit];
    if (!names) throw new Error(`Unknown sync unit ${JSON.stringify(unit)}; known: ${Object.keys(this.units).join(", ")}.`);
    return names;
  }

  /**
   * Sync the endpoints of `unit` (all when null), in order; resolves to a `SyncOutcome`, never
   * rejects for a sync failure. After a failure a retry may mend (network, 5xx, 429) the remaining
   * endpoints are left for the next sync; after any other, the next endpoint still syncs.
   */
  sync(unit: string | null = null): Promise<SyncOutcome> {
    const names = this.endpointsOf(unit);
    return this.exclusive(async () => {
      const outcome = new SyncOutcome(unit);
      for (const name of names) {
        const result = new EndpointOutcome(name);
        outcome.endpoints.push(result);
        try {
          await this.syncEndpoint(this.store.endpoints.get(name)!, result);
        } catch (error) {
          if (!(error instanceof SyncError)) throw error;
          result.error = error;
          if (error.retryable) break;
        }
      }
      return outcome;
    });
  }

  /** Make the local conflicts of `endpoint` those the server still has pending (resolved elsewhere go). */
  async refreshConflicts(endpoint: string): Promise<Conflict[]> {
    const answer = await this.connection.request("GET", this.conflictsPath);
    if (!Array.isArray(answer.conflicts)) throw new SyncError(BAD_RESPONSE, `${this.conflictsPath} answered without a conflicts list.`);
    return this.store.replaceConflicts(endpoint, answer.conflicts);
  }

  /**
   * Resolve a local conflict: "client" keeps the local change, "server" the server's record,
   * "merge" applies `record` (field values). Tells the server, then takes its resulting record here.
   */
  resolveConflict(conflictId: ServerId, resolution: Resolution, record?: Values): Promise<ConflictResolution> {
    return this.exclusive(async () => {
      const conflict = await this.store.conflict(conflictId);
      if (!conflict) throw new StoreError(`No local conflict ${JSON.stringify(conflictId)}.`);
      const body: Values = { resolution };
      if (resolution === "merge") body.record = record;
      const path = `${this.conflictsPath.replace(/\/+$/, "")}/${encodeURIComponent(String(conflictId))}/resolve/`;
      let answer: Record<string, unknown>;
      try {
        answer = await this.connection.request("POST", path, { body: JSON.stringify(body) });
      } catch (error) {
        const detail = error instanceof SyncError ? error.detail : null;
        if (!(error instanceof SyncError) || error.code !== ALREADY_RESOLVED || !detail || typeof detail !== "object") throw error;
        const done = detail as { resolution?: string; record?: WireRecord | null };
        await this.store.applyResolution(conflict, done.record ?? null);
        return { conflictId, resolution: done.resolution ?? "", record: done.record ?? null, alreadyResolved: true };
      }
      const result = (answer.record ?? null) as WireRecord | null;
      await this.store.applyResolution(conflict, result);
      return { conflictId, resolution: String(answer.resolution), record: result, alreadyResolved: false };
    });
  }

  // -- one endpoint ------------------------------------------------------------------------------

  private async syncEndpoint(endpoint: Endpoint, result: EndpointOutcome): Promise<void> {
    if (!endpoint.writable) {
      await this.pull(endpoint, result);
      return;
    }
    const store = this.store;
    // Seed step 1: no push while conflicts wait; those resolved meanwhile (by staff, say) are dropped first.
    // A stored push goes first all the same: the retry of the push that made the conflicts is not refused.
    if (
      endpoint.pattern === CONFLICT_DETECTION &&
      (await store.conflicts(endpoint.name)).length &&
      (await store.pendingPush(endpoint.name)) === null &&
      (await this.refreshConflicts(endpoint.name)).length
    ) {
      const waiting = await store.conflicts(endpoint.name);
      throw new SyncError(UNRESOLVED_CONFLICTS, `${endpoint.name}: ${waiting.length} conflict(s) to resolve before the next sync.`, {
        conflicts: waiting,
      });
    }
    let pushes = 0;
    let expired = false;
    while (pushes < MAX_PUSHES_PER_RUN) {
      let prepared = await store.pendingPush(endpoint.name);
      const resent = prepared !== null;
      prepared ??= await store.preparePush(endpoint.name, { deviceId: this.deviceId, maxRecords: this.maxPushRecords });
      if (prepared === null) break;
      const count = countRecords(prepared.body);
      let answer: Record<string, unknown>;
      try {
        answer = await this.connection.request("POST", endpoint.path, { params: this.params(endpoint), body: prepared.body });
      } catch (error) {
        if (!(error instanceof SyncError)) throw error;
        if (NOT_APPLIED.has(error.code)) await store.discardPendingPush(endpoint.name);
        if (error.code === UNRESOLVED_CONFLICTS) {
          // pending from another device, say: now here too
          error.conflicts = await store.replaceConflicts(endpoint.name, error.conflicts);
          result.conflicts.push(...(error.conflicts as Conflict[]));
        }
        if (error.code !== CURSOR_EXPIRED || expired) throw error;
        // Nothing was applied: pull in full, then push what is still pending, with base_versions.
        expired = true;
        await store.resetCursor(endpoint.name);
        await this.pull(endpoint, result);
        continue;
      }
      pushes += 1;
      result.pushed += count;
      const page = checkPage(answer, endpoint.path, true);
      result.conflicts.push(...(await store.applyAnswer(endpoint.name, page, { pushed: true })));
      countPage(page, result);
      if (page.has_more) await this.pull(endpoint, result);
      if (result.conflicts.length || !(resent || count >= this.maxPushRecords)) break; // else a backlog goes on
    }
    if (pushes === 0 && result.pages === 0) await this.pull(endpoint, result);
  }

  /** Pull pages until `has_more` is false, each applied with its cursor; a `410` restarts in full. */
  private async pull(endpoint: Endpoint, result: EndpointOutcome): Promise<void> {
    let expired = false;
    for (;;) {
      const params = this.params(endpoint);
      const since = (await this.store.state(endpoint.name)).cursor;
      if (since !== null) params.since = since;
      let answer: Record<string, unknown>;
      try {
        answer = await this.connection.request("GET", endpoint.path, { params });
      } catch (error) {
        if (!(error instanceof SyncError) || error.code !== CURSOR_EXPIRED || expired) throw error;
        expired = true;
        await this.store.resetCursor(endpoint.name);
        continue;
      }
      const page = checkPage(answer, endpoint.path, false);
      await this.store.applyAnswer(endpoint.name, page);
      countPage(page, result);
      if (!page.has_more) return;
    }
  }

  private params(endpoint: Endpoint): Record<string, string> {
    const params: Record<string, string> = { ...endpoint.params };
    if (this.pageSize !== null) params.limit = String(this.pageSize);
    return params;
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.lock.then(work);
    this.lock = run.catch(() => undefined);
    return run;
  }
}

function countPage(page: SyncAnswer, result: EndpointOutcome): void {
  result.pages += 1;
  result.fullPull ||= Boolean(page.full);
  for (const change of Object.values(page.changes)) result.pulled += (change.records?.length ?? 0) + (change.deleted?.length ?? 0);
}

function countRecords(body: string): number {
  const changes = (JSON.parse(body) as { changes: Record<string, Record<string, unknown[]>> }).changes;
  return Object.values(changes).reduce((sum, lists) => sum + Object.values(lists).reduce((n, items) => n + items.length, 0), 0);
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/** The answer has the protocol's shape (sections 3 and 4), or nothing of it is applied. */
function checkPage(page: Record<string, unknown>, path: string, push: boolean): SyncAnswer {
  let ok =
    typeof page.cursor === "string" &&
    typeof page.has_more === "boolean" &&
    isObject(page.changes) &&
    Object.values(page.changes).every(
      (c) =>
        isObject(c) &&
        (c.records === undefined || (Array.isArray(c.records) && c.records.every((r) => isObject(r) && "id" in r))) &&
        (c.deleted === undefined || (Array.isArray(c.deleted) && c.deleted.every((i) => typeof i === "number" || typeof i === "string"))),
    );
  if (ok && push) {
    ok =
      isObject(page.id_map) &&
      Object.values(page.id_map).every(isObject) &&
      Array.isArray(page.conflicts) &&
      page.conflicts.every((c) => isObject(c) && ["conflict_id", "entity", "id", "kind"].every((k) => k in c));
  }
  if (!ok) throw new SyncError(BAD_RESPONSE, `${path} answered 200 without the protocol's page.`);
  return page as unknown as SyncAnswer;
}
