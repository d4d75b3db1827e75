/** The sync framework: the trigger and its queue, events, automatic syncs, retries, the network status. */

import { expect, test } from "vitest";
import {
  CONFLICTS_FOUND,
  EndpointOutcome,
  SYNC_COMPLETED,
  SYNC_FAILED,
  SYNC_STARTED,
  SyncError,
  SyncManager,
  SyncOutcome,
  connectBrowserEvents,
  type SyncEventName,
} from "../src/index.js";
import { COMPANIES, COMPANIES_LWW, Device, PRODUCTS, claimUser, refuseConnection, unique } from "./helpers.js";

/** Stands for a SyncClient: each sync waits until the test releases it; records what ran. */
class FakeClient {
  ran: (string | null)[] = [];
  running = 0;
  mostAtOnce = 0;
  private releases: (() => void)[] = [];
  private released = 0;

  constructor(private failWith: SyncError[] = []) {}

  endpointsOf(unit: string | null = null): string[] {
    if (![null, "catalog", "crm"].includes(unit)) throw new Error(`no such unit ${unit}`);
    return ["fake"];
  }

  release(times = 1): void {
    this.released += times;
    for (const resolve of this.releases.splice(0, this.released)) {
      this.released -= 1;
      resolve();
    }
  }

  async sync(unit: string | null = null): Promise<SyncOutcome> {
    this.running += 1;
    this.mostAtOnce = Math.max(this.mostAtOnce, this.running);
    if (this.released > 0) this.released -= 1;
    else await new Promise<void>((resolve) => this.releases.push(resolve));
    this.running -= 1;
    this.ran.push(unit);
    const outcome = new SyncOutcome(unit);
    const result = new EndpointOutcome("fake");
    result.error = this.failWith.shift() ?? null;
    outcome.endpoints.push(result);
    return outcome;
  }
}

function eventsOf(manager: SyncManager) {
  const seen: [SyncEventName, string | null][] = [];
  for (const name of [SYNC_STARTED, SYNC_COMPLETED, SYNC_FAILED, CONFLICTS_FOUND] as const) {
    manager.on(name, (event) => seen.push([event.name, event.unit]));
  }
  return seen;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

test("a trigger returns at once; one sync at a time, in order; a queued unit is joined", async () => {
  const client = new FakeClient();
  const manager = new SyncManager(client);
  const seen = eventsOf(manager);
  expect(manager.triggerSync("catalog")).toBe(true);
  expect(manager.isSyncing).toBe(true);
  expect(manager.triggerSync("crm")).toBe(true);
  expect(manager.triggerSync("crm")).toBe(false); // already queued
  client.release(2);
  expect(await manager.waitIdle(5000)).toBe(true);
  expect(client.ran).toEqual(["catalog", "crm"]);
  expect(client.mostAtOnce).toBe(1);
  expect(seen).toEqual([
    [SYNC_STARTED, "catalog"],
    [SYNC_COMPLETED, "catalog"],
    [SYNC_STARTED, "crm"],
    [SYNC_COMPLETED, "crm"],
  ]);
  expect(() => manager.triggerSync("no such unit")).toThrow(/no such unit/);
});

test("discardPending drops the queued units; the running one finishes", async () => {
  const client = new FakeClient();
  const manager = new SyncManager(client);
  manager.triggerSync("catalog");
  await tick();
  expect(client.running).toBe(1);
  manager.triggerSync("crm");
  manager.triggerSync(null, { discardPending: true });
  client.release(2);
  await manager.waitIdle(5000);
  expect(client.ran).toEqual(["catalog", null]);
});

test("a trigger from a completion handler is coalesced, not looped", async () => {
  const client = new FakeClient();
  const manager = new SyncManager(client);
  const answers: boolean[] = [];
  manager.on(SYNC_COMPLETED, (event) => answers.push(manager.triggerSync(event.unit)));
  manager.on(SYNC_COMPLETED, (event) => {
    if (event.unit === "catalog") answers.push(manager.triggerSync("crm"));
  });
  client.release(5);
  manager.triggerSync("catalog");
  await manager.waitIdle(5000);
  // catalog ran, its handler's own re-trigger was dropped, the chained "crm" ran once, and that was all.
  expect(client.ran).toEqual(["catalog", "crm"]);
  expect(answers).toEqual([false, true, false]);
  manager.triggerSync("catalog"); // a new burst from the app runs again
  await manager.waitIdle(5000);
  expect(client.ran).toEqual(["catalog", "crm", "catalog", "crm"]);
});

test("a failing handler does not stop the worker", async () => {
  const client = new FakeClient();
  const manager = new SyncManager(client);
  manager.on(SYNC_STARTED, () => {
    throw new Error("handler bug");
  });
  const errors = console.error;
  console.error = () => undefined;
  try {
    client.release();
    manager.triggerSync();
    await manager.waitIdle(5000);
  } finally {
    console.error = errors;
  }
  expect(client.ran).toEqual([null]);
});

test("retry on error: after the interval, or the server's longer Retry-After; never for what a retry cannot mend", async () => {
  const client = new FakeClient([
    new SyncError("network_error", "down"),
    new SyncError("throttled", "slow down", { retryAfterMs: 150 }),
    new SyncError("not_authenticated", "bad token", { status: 401 }),
  ]);
  const manager = new SyncManager(client, { retryOnError: true, retryIntervalMs: 20 });
  const failed: [string | undefined, boolean][] = [];
  manager.on(SYNC_FAILED, (event) => failed.push([event.outcome?.error?.code, event.outcome!.retryable]));
  client.release(5);
  const started = Date.now();
  manager.triggerSync("crm");
  while (failed.length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
  await manager.waitIdle(5000);
  expect(Date.now() - started).toBeGreaterThanOrEqual(170); // 20 ms, then the server's 150 ms
  expect(failed).toEqual([
    ["network_error", true],
    ["throttled", true],
    ["not_authenticated", false],
  ]);
  expect(manager.hasRetryScheduled("crm")).toBe(false);
  expect(client.ran).toEqual(["crm", "crm", "crm"]);
});

test("the app's events start syncs as configured; close cancels retries and refuses triggers", async () => {
  const client = new FakeClient([new SyncError("server_error", "500")]);
  const manager = new SyncManager(client, { syncOnOnline: true, syncOnResume: false, retryOnError: true, retryIntervalMs: 60_000, unit: "crm" });
  manager.notifyResume();
  manager.notifyLogin();
  expect(manager.isSyncing).toBe(false);
  client.release();
  manager.notifyOnline();
  await manager.waitIdle(5000);
  expect(client.ran).toEqual(["crm"]);
  expect(manager.hasRetryScheduled("crm")).toBe(true);
  await manager.close(5000);
  expect(manager.hasRetryScheduled("crm")).toBe(false);
  expect(manager.triggerSync()).toBe(false);
});

test("connectBrowserEvents: online and visibilitychange to visible start syncs; offline, no request is made", async () => {
  const client = new FakeClient();
  const network = { online: false };
  const manager = new SyncManager(client, { syncOnOnline: true, syncOnResume: true, retryOnError: true, retryIntervalMs: 1, network });
  const win = new EventTarget();
  const doc = Object.assign(new EventTarget(), { visibilityState: "hidden" as DocumentVisibilityState });
  const disconnect = connectBrowserEvents(manager, win, doc);
  const failed: string[] = [];
  manager.on(SYNC_FAILED, (event) => failed.push(`${event.outcome!.error!.code} ${event.outcome!.retryable}`));
  manager.triggerSync();
  await manager.waitIdle(5000);
  expect(failed).toEqual(["network_error true"]);
  expect(client.ran).toEqual([]); // offline: the client was not asked
  expect(manager.hasRetryScheduled()).toBe(false); // the online event starts the next sync, not a timer
  network.online = true;
  client.release(2);
  win.dispatchEvent(new Event("online"));
  await manager.waitIdle(5000);
  doc.dispatchEvent(new Event("visibilitychange")); // still hidden: nothing
  expect(manager.isSyncing).toBe(false);
  doc.visibilityState = "visible";
  doc.dispatchEvent(new Event("visibilitychange"));
  await manager.waitIdle(5000);
  expect(client.ran).toEqual([null, null]);
  disconnect();
  win.dispatchEvent(new Event("online"));
  expect(manager.isSyncing).toBe(false);
});

// -- with the real client ------------------------------------------------------------------------------

test("the manager drives the real client with units, on login", async () => {
  const phone = await Device.open([PRODUCTS, COMPANIES_LWW], { units: { catalog: ["products"] } });
  const manager = new SyncManager(phone.client, { syncOnLogin: true, unit: "catalog" });
  const done: string[][] = [];
  manager.on(SYNC_COMPLETED, (event) => done.push(event.outcome!.endpoints.map((e) => e.endpoint)));
  manager.notifyLogin();
  await manager.waitIdle(20_000);
  manager.triggerSync();
  await manager.waitIdle(20_000);
  expect(done).toEqual([["products"], ["products", "companies-lww"]]);
});

test("offline, then back: the failed sync is retried and completes", async () => {
  const phone = await Device.open([COMPANIES_LWW]);
  const lid = await phone.store.create("companies", { name: unique("Made offline"), address: "", phone: "" });
  phone.faults.add(refuseConnection, { times: 3 }); // one sync's worth of attempts
  const manager = new SyncManager(phone.client, { retryOnError: true, retryIntervalMs: 50 });
  const results: string[] = [];
  const completed = new Promise<void>((resolve) =>
    manager.on(SYNC_COMPLETED, () => {
      results.push("completed");
      resolve();
    }),
  );
  manager.on(SYNC_FAILED, (event) => results.push(`failed ${event.outcome!.retryable}`));
  manager.triggerSync();
  await completed;
  expect(results).toEqual(["failed true", "completed"]);
  expect((await phone.store.get("companies", lid))!.isFromServer).toBe(true);
  await manager.close(5000);
});

test("conflictsFound is reported with the conflicts", async () => {
  const token = claimUser();
  const phone = await Device.open([COMPANIES], { token, name: "phone" });
  const tablet = await Device.open([COMPANIES], { token, name: "tablet" });
  const lid = await phone.store.create("companies", { name: unique(), address: "", phone: "" });
  expect((await phone.sync()).ok).toBe(true);
  expect((await tablet.sync()).ok).toBe(true);
  const id = (await phone.store.get("companies", lid))!.id!;
  await phone.store.update("companies", lid, { phone: "phone's" });
  await tablet.store.update("companies", (await tablet.store.find("companies", id))!.localId, { phone: "tablet's" });
  expect((await phone.sync()).ok).toBe(true);
  const manager = new SyncManager(tablet.client);
  const found: [unknown, string][] = [];
  manager.on(CONFLICTS_FOUND, (event) => found.push(...event.conflicts.map((c): [unknown, string] => [c.id, c.kind])));
  manager.triggerSync();
  await manager.waitIdle(20_000);
  expect(found).toEqual([[id, "modified"]]);
});
