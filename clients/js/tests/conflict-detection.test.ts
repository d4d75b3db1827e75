/** Read/write with conflict detection against the live demo: conflicts kept, syncs refused, resolutions. */

import { expect, test } from "vitest";
import { AGE_AND_PURGE_TOMBSTONES, COMPANIES, Device, api, assertInStep, claimUser, serverState, shell, unique } from "./helpers.js";

/** Two devices of one user holding the same company; the phone's edit reaches the server first. */
async function rivals(tabletChange: "update" | "delete" = "update") {
  const token = claimUser();
  const phone = await Device.open([COMPANIES], { token, name: "phone" });
  const tablet = await Device.open([COMPANIES], { token, name: "tablet", backend: "indexeddb" });
  const lid = await phone.store.create("companies", { name: unique("Conflicted"), address: "", phone: "0" });
  expect((await phone.sync()).ok).toBe(true);
  expect((await tablet.sync()).ok).toBe(true);
  const id = (await phone.store.get("companies", lid))!.id!;
  const onTablet = (await tablet.store.find("companies", id))!;
  await phone.store.update("companies", lid, { phone: "phone's" });
  expect((await phone.sync()).ok).toBe(true);
  if (tabletChange === "delete") await tablet.store.delete("companies", onTablet.localId);
  else await tablet.store.update("companies", onTablet.localId, { phone: "tablet's" });
  return { phone, tablet, id, lid };
}

test("a stale edit becomes a local conflict, and the next sync is refused until it is resolved", async () => {
  const { tablet, id } = await rivals();
  const other = (await tablet.store.records("companies")).find((r) => r.id !== id)!;
  const outcome = await tablet.sync();
  expect(outcome.ok, String(outcome.error)).toBe(true);
  const [conflict] = outcome.conflicts;
  expect([conflict.entity, conflict.id, conflict.kind, conflict.deviceId]).toEqual(["companies", id, "modified", "tablet"]);
  expect(conflict.client.phone).toBe("tablet's");
  expect([conflict.server!.phone, conflict.server!.version]).toEqual(["phone's", 2]);
  expect(await tablet.store.conflicts("companies")).toEqual([conflict]);
  const row = (await tablet.store.find("companies", id))!;
  expect([row.data.phone, row.version, row.isModified]).toEqual(["phone's", 2, false]); // the server's, until resolved

  // Seed step 1: while it waits, the sync stops before pushing; local edits stay pending.
  await tablet.store.update("companies", other.localId, { address: "waits" });
  const refused = await tablet.sync();
  expect([refused.error?.code, refused.retryable]).toEqual(["unresolved_conflicts", false]);
  expect(tablet.faults.log.at(-1)!.slice(0, 2)).toEqual(["GET", "/api/sync/conflicts/"]);
  expect((await tablet.store.get("companies", other.localId))!.isModified).toBe(true);
});

test("keep local: the local change reaches the server and the other device", async () => {
  const { phone, tablet, id } = await rivals();
  const [conflict] = (await tablet.sync()).conflicts;
  const resolution = await tablet.client.resolveConflict(conflict.conflictId, "client");
  expect([resolution.resolution, resolution.alreadyResolved, resolution.record!.phone, resolution.record!.version]).toEqual([
    "client",
    false,
    "tablet's",
    3,
  ]);
  expect(await tablet.store.conflicts()).toEqual([]);
  expect((await tablet.store.find("companies", id))!.data.phone).toBe("tablet's");
  expect((await tablet.sync()).ok).toBe(true);
  expect((await phone.sync()).ok).toBe(true);
  expect((await phone.store.find("companies", id))!.data.phone).toBe("tablet's");
  await assertInStep(phone, COMPANIES);
  await assertInStep(tablet, COMPANIES);
});

test("keep server, or merge", async () => {
  const first = await rivals();
  const [kept] = (await first.tablet.sync()).conflicts;
  await first.tablet.client.resolveConflict(kept.conflictId, "server");
  expect((await first.tablet.store.find("companies", first.id))!.data.phone).toBe("phone's");
  expect((await serverState(first.tablet.token, COMPANIES)).companies.get(first.id).version).toBe(2);
  await assertInStep(first.tablet, COMPANIES);

  const second = await rivals();
  const [merged] = (await second.tablet.sync()).conflicts;
  const result = await second.tablet.client.resolveConflict(merged.conflictId, "merge", { phone: "both", address: "merged" });
  expect([result.record!.phone, result.record!.address]).toEqual(["both", "merged"]);
  expect((await second.tablet.sync()).ok).toBe(true);
  await assertInStep(second.tablet, COMPANIES);
});

test("resolved elsewhere first: the sync drops the local conflict, and a late resolution takes the first one", async () => {
  const { tablet, id } = await rivals();
  const [conflict] = (await tablet.sync()).conflicts;
  const [status] = await api(tablet.token, "POST", `/api/sync/conflicts/${conflict.conflictId}/resolve/`, { resolution: "server" });
  expect(status).toBe(200);
  const late = await tablet.client.resolveConflict(conflict.conflictId, "client");
  expect([late.alreadyResolved, late.resolution, late.record!.phone]).toEqual([true, "server", "phone's"]);
  expect(await tablet.store.conflicts()).toEqual([]);

  const again = await rivals();
  const [pending] = (await again.tablet.sync()).conflicts;
  await api(again.tablet.token, "POST", `/api/sync/conflicts/${pending.conflictId}/resolve/`, { resolution: "client" });
  const next = await again.tablet.sync(); // asks the server, finds it resolved, syncs
  expect(next.ok, String(next.error)).toBe(true);
  expect(await again.tablet.store.conflicts()).toEqual([]);
  expect((await again.tablet.store.find("companies", again.id))!.data.phone).toBe("tablet's");
  expect(id).not.toBe(again.id);
});

test("another device of the user is refused (409) and learns the conflict", async () => {
  const { phone, tablet } = await rivals();
  const [conflict] = (await tablet.sync()).conflicts;
  await phone.store.update("companies", (await phone.store.records("companies"))[0].localId, { address: "blocked" });
  const outcome = await phone.sync();
  expect([outcome.error?.code, outcome.error?.status, outcome.retryable]).toEqual(["unresolved_conflicts", 409, false]);
  expect((await phone.store.conflicts()).map((c) => c.conflictId)).toEqual([conflict.conflictId]);
  expect(await phone.store.pendingPush("companies")).toBeNull(); // not applied: gathered afresh next time
  expect(await phone.store.hasPendingChanges("companies")).toBe(true);
});

test("a stale deletion conflicts and the record stays until resolved", async () => {
  const { tablet, id } = await rivals("delete");
  const [conflict] = (await tablet.sync()).conflicts;
  expect(conflict.kind).toBe("deleted");
  const row = (await tablet.store.find("companies", id))!;
  expect([row.isActive, row.data.phone]).toEqual([true, "phone's"]);
  await tablet.client.resolveConflict(conflict.conflictId, "client");
  expect(await tablet.store.find("companies", id)).toBeNull();
  expect((await serverState(tablet.token, COMPANIES)).companies.has(id)).toBe(false);
});

test("after an expired cursor (410 on the push) the stale edit still conflicts", async () => {
  const { tablet, id } = await rivals();
  shell(AGE_AND_PURGE_TOMBSTONES);
  const doomed = await tablet.store.create("companies", { name: unique("Doomed"), address: "", phone: "" });
  expect(doomed).toBeTruthy();
  // A deletion by someone else makes a tombstone; purging it puts the tablet's cursor behind the horizon.
  const other = await Device.open([COMPANIES]);
  const lid = await other.store.create("companies", { name: unique("Gone"), address: "", phone: "" });
  expect((await other.sync()).ok).toBe(true);
  await other.store.delete("companies", lid);
  expect((await other.sync()).ok).toBe(true);
  shell(AGE_AND_PURGE_TOMBSTONES);
  const outcome = await tablet.sync();
  expect(outcome.ok, String(outcome.error)).toBe(true);
  expect(tablet.faults.log.some(([method, , status]) => method === "POST" && status === 410)).toBe(true);
  expect(outcome.endpoints[0].fullPull).toBe(true);
  expect(outcome.conflicts.map((c) => c.id)).toEqual([id]);
  expect((await tablet.store.get("companies", doomed))!.isFromServer).toBe(true);
});
