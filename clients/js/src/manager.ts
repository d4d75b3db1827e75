/**
 * The sync framework of the seeds: a background trigger, events, automatic syncs.
 *
 * - `triggerSync()` (`TriggerOfflineDataSync`) queues a sync unit and returns at once; one
 *   worker runs the queue, one sync at a time.
 * - `SyncConfiguration` (`OfflineDataSyncConfiguration`) says which app events start a sync
 *   (`notifyLogin()`, `notifyOnline()`, `notifyResume()`; `connectBrowserEvents()` reports the
 *   browser's `online` and `visibilitychange` for you) and whether a failed sync is retried.
 * - Events: `syncStarted`, `syncCompleted`, `syncFailed` (its outcome says whether a retry makes
 *   sense), `conflictsFound`. Handlers are called synchronously; a trigger from inside one, for a
 *   unit that already ran in this burst of syncs, is coalesced (dropped), so a handler that
 *   triggers a sync cannot start an endless loop.
 */

import { NETWORK_ERROR, SyncError } from "./errors.js";
import type { Conflict } from "./store.js";
import { EndpointOutcome, SyncOutcome, type SyncClient } from "./sync.js";

export const SYNC_STARTED = "syncStarted";
export const SYNC_COMPLETED = "syncCompleted";
export const SYNC_FAILED = "syncFailed";
export const CONFLICTS_FOUND = "conflictsFound";
export const EVENTS = [SYNC_STARTED, SYNC_COMPLETED, SYNC_FAILED, CONFLICTS_FOUND] as const;
export type SyncEventName = (typeof EVENTS)[number];

/** Whether the device has a network (the browser's `navigator.onLine`). */
export interface NetworkStatus {
  readonly online: boolean;
}

/** When syncs start by themselves (all off by default, as in the seeds' template). */
export interface SyncConfiguration {
  syncOnLogin?: boolean;
  syncOnOnline?: boolean;
  syncOnResume?: boolean;
  retryOnError?: boolean;
  /** Milliseconds before a retry; a longer `Retry-After` from the server wins (default 30 000). */
  retryIntervalMs?: number;
  /** What automatic syncs cover (null: every endpoint). */
  unit?: string | null;
  /**
   * Offline, a sync fails at once (`network_error`, retryable) without a request, and no retry is
   * scheduled: `notifyOnline()` (the browser's `online` event) starts the next one.
   */
  network?: NetworkStatus | null;
}

/** What a handler receives: the event's `name`, the `unit`, and (after a run) its `outcome`. */
export class SyncEvent {
  constructor(
    readonly name: SyncEventName,
    readonly unit: string | null,
    readonly outcome: SyncOutcome | null = null,
  ) {}

  get conflicts(): Conflict[] {
    return this.outcome?.conflicts ?? [];
  }
}

export type SyncEventHandler = (event: SyncEvent) => void;

type Client = Pick<SyncClient, "sync" | "endpointsOf">;

/** Runs a `SyncClient`'s syncs in the background, one at a time, and reports them. */
export class SyncManager {
  readonly configuration: Required<Omit<SyncConfiguration, "network">> & { network: NetworkStatus | null };
  private readonly handlers = new Map<SyncEventName, SyncEventHandler[]>(EVENTS.map((name) => [name, []]));
  private readonly queue: (string | null)[] = [];
  private worker: Promise<void> | null = null;
  private readonly ran = new Set<string | null>(); // units run in the current burst (until the queue empties)
  private readonly timers = new Map<string | null, ReturnType<typeof setTimeout>>();
  private closed = false;
  private inHandler = false;
  private idle: (() => void)[] = [];

  constructor(
    readonly client: Client,
    configuration: SyncConfiguration = {},
  ) {
    this.configuration = {
      syncOnLogin: false,
      syncOnOnline: false,
      syncOnResume: false,
      retryOnError: false,
      retryIntervalMs: 30_000,
      unit: null,
      ...configuration,
      network: configuration.network ?? null,
    };
  }

  // -- events ------------------------------------------------------------------------------------

  /** Call `handler(event)` on `event`; returns a function that removes it. */
  on(event: SyncEventName, handler: SyncEventHandler): () => void {
    const list = this.handlers.get(event);
    if (!list) throw new Error(`Unknown event ${JSON.stringify(event)}; events: ${EVENTS.join(", ")}.`);
    list.push(handler);
    return () => this.off(event, handler);
  }

  off(event: SyncEventName, handler: SyncEventHandler): void {
    const list = this.handlers.get(event) ?? [];
    const at = list.indexOf(handler);
    if (at >= 0) list.splice(at, 1);
  }

  private emit(name: SyncEventName, unit: string | null, outcome: SyncOutcome | null = null): void {
    const event = new SyncEvent(name, unit, outcome);
    this.inHandler = true;
    try {
      for (const handler of [...this.handlers.get(name)!]) {
        try {
          handler(event);
        } catch (error) {
          console.error(`offline-sync-client: a ${name} handler failed`, error);
        }
      }
    } finally {
      this.inHandler = false;
    }
  }

  // -- triggering --------------------------------------------------------------------------------

  /**
   * Queue a sync of `unit` (null: everything) and return at once.
   *
   * `discardPending` first drops the units still queued (the seeds' `DiscardPendingSyncUnits`).
   * Returns false when the request joins one already queued, or is coalesced because it comes
   * from an event handler after that unit already ran in this burst.
   */
  triggerSync(unit: string | null = null, options: { discardPending?: boolean } = {}): boolean {
    this.client.endpointsOf(unit); // an unknown unit fails here, in the caller
    if (this.closed) return false;
    if (options.discardPending) this.queue.length = 0;
    if (this.inHandler && (this.ran.has(unit) || this.ran.has(null))) return false;
    if (this.queue.includes(unit) || this.queue.includes(null)) return false;
    this.queue.push(unit);
    this.worker ??= this.work();
    return true;
  }

  /** The user logged in (after `client.login()`). */
  notifyLogin(): void {
    if (this.configuration.syncOnLogin) this.triggerSync(this.configuration.unit);
  }

  /** The device is back online. */
  notifyOnline(): void {
    if (this.configuration.syncOnOnline) this.triggerSync(this.configuration.unit);
  }

  /** The app came back to the foreground. */
  notifyResume(): void {
    if (this.configuration.syncOnResume) this.triggerSync(this.configuration.unit);
  }

  get isSyncing(): boolean {
    return this.worker !== null;
  }

  /** Resolves when nothing runs or is queued; to false if `timeoutMs` passed first. */
  waitIdle(timeoutMs?: number): Promise<boolean> {
    if (this.worker === null) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? null : setTimeout(() => resolve(false), timeoutMs);
      this.idle.push(() => {
        if (timer !== null) clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Stop: cancel retries, drop the queue, let the running sync finish. */
  close(timeoutMs?: number): Promise<boolean> {
    this.closed = true;
    this.queue.length = 0;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    return this.waitIdle(timeoutMs);
  }

  /** Whether a retry is scheduled for `unit`. */
  hasRetryScheduled(unit: string | null = null): boolean {
    return this.timers.has(unit);
  }

  // -- the worker --------------------------------------------------------------------------------

  private async work(): Promise<void> {
    await Promise.resolve(); // return from triggerSync first
    while (this.queue.length) {
      const unit = this.queue.shift()!;
      const timer = this.timers.get(unit);
      if (timer !== undefined) {
        clearTimeout(timer); // this run is the retry
        this.timers.delete(unit);
      }
      this.emit(SYNC_STARTED, unit);
      let outcome: SyncOutcome | null;
      const network = this.configuration.network;
      let offline = network !== null && !network.online;
      try {
        outcome = await this.runSync(unit, offline);
        // The network went away during the sync (or its status said so late): as offline.
        offline ||= network !== null && !network.online && outcome.error?.code === NETWORK_ERROR;
      } catch (error) {
        // a bug, not a sync failure (sync() reports those): keep the worker alive
        console.error(`offline-sync-client: the sync of ${unit} threw`, error);
        outcome = null;
      }
      this.ran.add(unit);
      if (outcome === null) continue;
      if (outcome.conflicts.length) this.emit(CONFLICTS_FOUND, unit, outcome);
      if (outcome.ok) {
        this.emit(SYNC_COMPLETED, unit, outcome);
      } else {
        this.emit(SYNC_FAILED, unit, outcome);
        // Offline, no timer: the network's return (notifyOnline) starts the next sync.
        if (outcome.retryable && this.configuration.retryOnError && !offline) {
          this.scheduleRetry(unit, Math.max(this.configuration.retryIntervalMs, outcome.retryAfterMs ?? 0));
        }
      }
    }
    this.worker = null;
    this.ran.clear();
    for (const resolve of this.idle.splice(0)) resolve();
  }

  private async runSync(unit: string | null, offline: boolean): Promise<SyncOutcome> {
    if (offline) {
      const outcome = new SyncOutcome(unit);
      const result = new EndpointOutcome(this.client.endpointsOf(unit)[0] ?? "");
      result.error = new SyncError(NETWORK_ERROR, "The device is offline.");
      outcome.endpoints.push(result);
      return outcome;
    }
    return this.client.sync(unit);
  }

  private scheduleRetry(unit: string | null, delayMs: number): void {
    if (this.closed) return;
    const old = this.timers.get(unit);
    if (old !== undefined) clearTimeout(old);
    this.timers.set(
      unit,
      setTimeout(() => {
        this.timers.delete(unit);
        this.triggerSync(unit);
      }, delayMs),
    );
  }
}

/** The browser's network status: `navigator.onLine`. */
export function browserNetwork(nav: { onLine: boolean } = globalThis.navigator): NetworkStatus {
  return {
    get online() {
      return nav.onLine;
    },
  };
}

/**
 * Report the browser's events to `manager`: `online` (`notifyOnline`) and `visibilitychange` to
 * visible (`notifyResume`). Returns a function that stops listening.
 */
export function connectBrowserEvents(
  manager: SyncManager,
  target: Pick<Window, "addEventListener" | "removeEventListener"> = globalThis.window,
  doc: Pick<Document, "addEventListener" | "removeEventListener" | "visibilityState"> = globalThis.document,
): () => void {
  const online = () => manager.notifyOnline();
  const visible = () => {
    if (doc.visibilityState === "visible") manager.notifyResume();
  };
  target.addEventListener("online", online);
  doc.addEventListener("visibilitychange", visible);
  return () => {
    target.removeEventListener("online", online);
    doc.removeEventListener("visibilitychange", visible);
  };
}
