/**
 * Faults at every step of a sync, against the live demo; after each, the device ends in step with the server.
 *
 * A push is stored (sync_id and body) before it is sent; the answer is applied in one
 * transaction with its cursor. So a lost answer leaves the stored push, sent again byte for byte
 * and answered from the server's stored outcome, and a failure inside the apply rolls it back.
 */

import { describe, expect, test } from "vitest";
import { Connection, SyncError, type Storage, type StorageTransaction } from "../src/index.js";
import {
  BACKENDS,
  COMPANIES_LWW,
  Device,
  assertInStep,
  claimUser,
  dropResponse,
  refuseConnection,
  respond,
  server,
  serverState,
  unique,
} from "./helpers.js";

async function offlineEdits(device: Device) {
  const name = unique();
  const added = await device.store.create("companies", { name, address: "", phone: "" });
  const mine = await device.store.create("companies", { name: unique(), address: "", phone: "0" });
  return { name, added, mine };
}

async function appliedOnce(device: Device, name: string) {
  const state = await serverState(device.token, COMPANIES_LWW);
  expect([...state.companies.values()].filter((c) => c.name === name)).toHaveLength(1);
  await assertInStep(device, COMPANIES_LWW);
}

describe.each(BACKENDS)("faults on %s", (backend) => {
  test("the server applied the push and the answer was lost: the retry has the same sync_id, nothing twice", async () => {
    const phone = await Device.open([COMPANIES_LWW], { backend });
    expect((await phone.sync()).ok).toBe(true);
    const { name } = await offlineEdits(phone);
    phone.faults.add(dropResponse, { method: "POST" });
    const outcome = await phone.sync(); // the connection's second try gets the stored outcome
    expect(outcome.ok, String(outcome.error)).toBe(true);
    const posts = phone.faults.sent;
    expect(posts).toHaveLength(2);
    expect(posts[1]).toBe(posts[0]);
    await appliedOnce(phone, name);
  });

  test("a failure while the answer is applied rolls it all back; the next sync applies it once", async () => {
    const phone = await Device.open([COMPANIES_LWW], { backend });
    expect((await phone.sync()).ok).toBe(true);
    const cursor = (await phone.store.state("companies-lww")).cursor;
    const { name, added } = await offlineEdits(phone);
    const stored = phone.store.storage;
    let puts = 0;
    // The app dies after a few writes of the apply: the storage's transaction throws.
    const crashing: Storage = {
      open: (tables) => stored.open(tables),
      close: () => stored.close(),
      transaction: (tables, mode, work) =>
        stored.transaction(tables, mode, (tx) =>
          work({
            ...tx,
            get: tx.get,
            getAll: tx.getAll,
            delete: tx.delete,
            put: async (table, key, value) => {
              if (tables.includes("sync_endpoints") && tables.includes("sync_conflicts") && ++puts === 3) throw new Error("crash");
              return tx.put(table, key, value);
            },
          } satisfies StorageTransaction),
        ),
    };
    Object.defineProperty(phone.store, "storage", { value: crashing });
    await expect(phone.sync()).rejects.toThrow("crash");
    Object.defineProperty(phone.store, "storage", { value: stored });
    expect((await phone.store.state("companies-lww")).cursor).toBe(cursor); // as before the answer
    const row = (await phone.store.get("companies", added))!;
    expect([row.isFromServer, row.id]).toEqual([false, null]);
    const pending = await phone.store.pendingPush("companies-lww");
    expect(pending).not.toBeNull();
    await phone.restart();
    expect((await phone.sync()).ok).toBe(true);
    expect(phone.faults.sent).toEqual([pending!.body]);
    await appliedOnce(phone, name);
  });
});

test("a 5xx is retried; a server that keeps failing leaves the push for the next sync, retryable", async () => {
  const phone = await Device.open([COMPANIES_LWW]);
  expect((await phone.sync()).ok).toBe(true);
  const { name } = await offlineEdits(phone);
  phone.faults.add(respond(503, { error: "server_error" }), { method: "POST" });
  expect((await phone.sync()).ok).toBe(true);
  await appliedOnce(phone, name);

  const second = await offlineEdits(phone);
  phone.faults.add(respond(500), { method: "POST", times: 3 });
  const outcome = await phone.sync();
  expect([outcome.error?.code, outcome.error?.status, outcome.retryable]).toEqual(["server_error", 500, true]);
  const stored = await phone.store.pendingPush("companies-lww");
  phone.faults.sent.length = 0;
  expect((await phone.sync()).ok).toBe(true);
  expect(phone.faults.sent).toEqual([stored!.body]);
  await appliedOnce(phone, second.name);
});

test("429: a short Retry-After is waited for, a long one is reported for later", async () => {
  const phone = await Device.open([COMPANIES_LWW]);
  phone.faults.add(respond(429, { error: "throttled" }, { "Retry-After": "120" }), { method: "GET" });
  const outcome = await phone.sync();
  expect([outcome.error?.code, outcome.retryable, outcome.retryAfterMs]).toEqual(["throttled", true, 120_000]);
  phone.faults.add(respond(429, { error: "throttled" }, { "Retry-After": "0" }), { method: "GET" });
  expect((await phone.sync()).ok).toBe(true);
  expect(phone.faults.log.map(([, , what]) => what)).toEqual(["respond429", "respond429", 200]);
});

test("refused connections fail retryable after the connection's attempts", async () => {
  const phone = await Device.open([COMPANIES_LWW]);
  await phone.store.create("companies", { name: unique(), address: "", phone: "" });
  phone.faults.add(refuseConnection, { times: 3 });
  const outcome = await phone.sync();
  expect([outcome.error?.code, outcome.retryable]).toEqual(["network_error", true]);
  expect(phone.faults.log).toHaveLength(3);
  expect(await phone.store.pendingPush("companies-lww")).not.toBeNull();
  expect((await phone.sync()).ok).toBe(true);
});

test("bad credentials fail without a retry and keep the push (a 401 cannot tell whether it was applied)", async () => {
  const phone = await Device.open([COMPANIES_LWW], { token: "not-a-token" });
  await phone.store.create("companies", { name: unique(), address: "", phone: "" });
  const outcome = await phone.sync();
  expect([outcome.error?.code, outcome.error?.status, outcome.retryable]).toEqual(["not_authenticated", 401, false]);
  expect(phone.faults.log.filter(([m]) => m === "POST")).toHaveLength(1);
  expect(await phone.store.pendingPush("companies-lww")).not.toBeNull();
});

test("an answer that is not the protocol applies nothing and is not retried", async () => {
  const phone = await Device.open([COMPANIES_LWW]);
  expect((await phone.sync()).ok).toBe(true);
  const cursor = (await phone.store.state("companies-lww")).cursor;
  phone.faults.add(respond(200, { changes: "nope" }), { method: "GET" });
  const outcome = await phone.sync();
  expect([outcome.error?.code, outcome.retryable]).toEqual(["bad_response", false]);
  expect((await phone.store.state("companies-lww")).cursor).toBe(cursor);
});

test("a request with no answer in time is a network error, retried", async () => {
  let calls = 0;
  const hang = (input: string, init: RequestInit) =>
    ++calls === 1
      ? new Promise<Response>((_, fail) => init.signal!.addEventListener("abort", () => fail(new DOMException("aborted", "AbortError"))))
      : fetch(input, init);
  const connection = new Connection(server.baseUrl, { token: claimUser(), fetch: hang, timeoutMs: 1500, backoffMs: 0 });
  const answer = await connection.request("GET", "/api/sync/products/", { params: { limit: "1" } });
  expect(answer.has_more).toBe(true);
  expect(calls).toBe(2);
});

test("login gets a token; wrong credentials are refused, not retried", async () => {
  const connection = new Connection(server.baseUrl);
  const refused = await connection.login("mobile", "wrong").catch((error: SyncError) => error);
  expect([(refused as SyncError).code, (refused as SyncError).retryable]).toEqual(["not_authenticated", false]);
  const token = await connection.login("mobile", "mobile");
  expect(connection.token).toBe(token);
  expect((await connection.request("GET", "/api/sync/products/")).full).toBe(true);
});
