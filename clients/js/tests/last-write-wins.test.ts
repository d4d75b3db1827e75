/** Read/write, last write wins, against the live demo: local actions, pushes, id_map, edits made mid-push. */

import { describe, expect, test } from "vitest";
import { BACKENDS, COMPANIES_LWW, Device, assertInStep, before, claimUser, serverState, unique } from "./helpers.js";

const bodies = (device: Device) => {
  device.faults.sent.length = 0;
  return () => device.faults.sent.map((body) => JSON.parse(body));
};

const serverCount = async (token: string, name: string) =>
  [...(await serverState(token, COMPANIES_LWW)).companies.values()].filter((r) => r.name === name).length;

describe.each(BACKENDS)("last write wins on %s", (backend) => {
  test("offline create, update and delete, then one push with only what changed", async () => {
    const phone = await Device.open([COMPANIES_LWW], { backend });
    expect((await phone.sync()).ok).toBe(true);
    const [existing, doomed] = await phone.store.records("companies");
    const name = unique();
    const added = await phone.store.create("companies", { name, address: "1 Dock Rd", phone: "" });
    expect((await phone.store.get("companies", added))!.isFromServer).toBe(false);
    await phone.store.update("companies", existing.localId, { phone: "555-7777" });
    await phone.store.delete("companies", doomed.localId);
    expect((await phone.rows("companies")).has(doomed.id)).toBe(false); // inactive rows are hidden...
    expect((await phone.store.get("companies", doomed.localId))!.isActive).toBe(false); // ...until pushed

    const sent = bodies(phone);
    const outcome = await phone.sync();
    expect(outcome.ok, String(outcome.error)).toBe(true);
    const [body] = sent();
    expect(body.last_sync).not.toBeNull();
    expect(body.changes.companies).toEqual({
      added: [{ local_id: added, name, address: "1 Dock Rd", phone: "" }],
      modified: [{ id: existing.id, base_version: existing.version, phone: "555-7777" }],
      deleted: [{ id: doomed.id, base_version: doomed.version }],
    });
    const created = (await phone.store.get("companies", added))!; // the same local row, with its server id
    expect([created.isFromServer, created.version, typeof created.id]).toEqual([true, 1, "number"]);
    expect(await phone.store.get("companies", doomed.localId)).toBeNull();
    await assertInStep(phone, COMPANIES_LWW);
  });

  test("an edit made while its push is in flight stays modified, on the version the push made", async () => {
    const phone = await Device.open([COMPANIES_LWW], { backend });
    const mine = await phone.store.create("companies", { name: unique(), address: "a", phone: "0" });
    expect((await phone.sync()).ok).toBe(true);
    const added = await phone.store.create("companies", { name: unique(), address: "a", phone: "1" });
    const other = (await phone.store.get("companies", mine))!;
    await phone.store.update("companies", other.localId, { phone: "first" });
    phone.faults.add(
      before(async () => {
        await phone.store.update("companies", added, { phone: "edited mid-push" });
        await phone.store.update("companies", other.localId, { address: "edited mid-push" });
      }),
      { method: "POST" },
    );
    expect((await phone.sync()).ok).toBe(true);
    const a = (await phone.store.get("companies", added))!;
    const m = (await phone.store.get("companies", other.localId))!;
    expect([a.isFromServer, a.isModified, a.modifiedFields, a.baseVersion]).toEqual([true, true, ["phone"], 1]);
    expect([m.isModified, m.modifiedFields, m.data.phone]).toEqual([true, ["address"], "first"]);
    const state = (await serverState(phone.token, COMPANIES_LWW)).companies;
    expect(state.get(a.id).phone).toBe("1");
    expect(state.get(m.id).address).not.toBe("edited mid-push");

    const sent = bodies(phone);
    expect((await phone.sync()).ok).toBe(true);
    const modified = sent()[0].changes.companies.modified;
    expect(modified).toContainEqual({ id: a.id, base_version: 1, phone: "edited mid-push" });
    expect(modified).toContainEqual({ id: m.id, base_version: m.baseVersion, address: "edited mid-push" });
    await assertInStep(phone, COMPANIES_LWW);
  });
});

test("two devices: the later write wins, field by field", async () => {
  const token = claimUser();
  const phone = await Device.open([COMPANIES_LWW], { token, name: "phone" });
  const tablet = await Device.open([COMPANIES_LWW], { token, name: "tablet", backend: "indexeddb" });
  const lid = await phone.store.create("companies", { name: unique(), address: "", phone: "1" });
  expect((await phone.sync()).ok).toBe(true);
  const id = (await phone.store.get("companies", lid))!.id!;
  expect((await tablet.sync()).ok).toBe(true);
  const onTablet = (await tablet.store.find("companies", id))!;
  await phone.store.update("companies", lid, { phone: "2", address: "phone's" });
  await tablet.store.update("companies", onTablet.localId, { phone: "3" });
  expect((await phone.sync()).ok).toBe(true);
  expect((await tablet.sync()).ok).toBe(true);
  expect((await phone.sync()).ok).toBe(true);
  for (const device of [phone, tablet]) {
    expect((await device.store.find("companies", id))!.data).toEqual({ name: onTablet.data.name, address: "phone's", phone: "3" });
    await assertInStep(device, COMPANIES_LWW);
  }
});

test("a record deleted elsewhere stays deleted when edited here (PROTOCOL 4.1)", async () => {
  const token = claimUser();
  const phone = await Device.open([COMPANIES_LWW], { token, name: "phone" });
  const tablet = await Device.open([COMPANIES_LWW], { token, name: "tablet" });
  const lid = await phone.store.create("companies", { name: unique(), address: "", phone: "" });
  expect((await phone.sync()).ok).toBe(true);
  expect((await tablet.sync()).ok).toBe(true);
  const id = (await phone.store.get("companies", lid))!.id!;
  await tablet.store.delete("companies", (await tablet.store.find("companies", id))!.localId);
  expect((await tablet.sync()).ok).toBe(true);
  await phone.store.update("companies", lid, { phone: "too late" });
  expect((await phone.sync()).ok).toBe(true);
  expect(await phone.store.get("companies", lid)).toBeNull();
  await assertInStep(phone, COMPANIES_LWW);
});

test("a new record deleted while its push is in flight is deleted on the server too", async () => {
  const phone = await Device.open([COMPANIES_LWW]);
  const name = unique();
  const lid = await phone.store.create("companies", { name, address: "", phone: "" });
  phone.faults.add(before(() => phone.store.delete("companies", lid)), { method: "POST" });
  expect((await phone.sync()).ok).toBe(true);
  const row = (await phone.store.get("companies", lid))!;
  expect([row.isFromServer, row.isActive]).toEqual([true, false]); // created there; its deletion is next
  expect(await serverCount(phone.token, name)).toBe(1);
  expect((await phone.sync()).ok).toBe(true);
  expect(await phone.store.get("companies", lid)).toBeNull();
  expect(await serverCount(phone.token, name)).toBe(0);
});

test("a large backlog goes in several pushes", async () => {
  const phone = await Device.open([COMPANIES_LWW], { maxPushRecords: 4 });
  const names = Array.from({ length: 10 }, () => unique("Backlog"));
  for (const name of names) await phone.store.create("companies", { name, address: "", phone: "" });
  const sent = bodies(phone);
  const outcome = await phone.sync();
  expect(outcome.ok).toBe(true);
  expect(sent().map((b) => b.changes.companies.added.length)).toEqual([4, 4, 2]);
  expect(outcome.endpoints[0].pushed).toBe(10);
  for (const name of names) expect(await serverCount(phone.token, name)).toBe(1);
  await assertInStep(phone, COMPANIES_LWW);
});

test("a refused push (400) is dropped, not retried, and the fixed record goes next time", async () => {
  const phone = await Device.open([COMPANIES_LWW]);
  const lid = await phone.store.create("companies", { name: "x".repeat(201), address: "", phone: "" });
  const outcome = await phone.sync();
  expect([outcome.error?.code, outcome.retryable]).toEqual(["validation_error", false]);
  expect(outcome.error?.detail).toEqual({
    changes: { companies: { added: { "0": { name: ["Ensure this field has no more than 200 characters."] } } } },
  });
  expect(phone.faults.log.filter(([method]) => method === "POST")).toHaveLength(1);
  expect(await phone.store.pendingPush("companies-lww")).toBeNull();
  await phone.store.update("companies", lid, { name: unique() });
  expect((await phone.sync()).ok).toBe(true);
  expect((await phone.store.get("companies", lid))!.isFromServer).toBe(true);
  await assertInStep(phone, COMPANIES_LWW);
});
