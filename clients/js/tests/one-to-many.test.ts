/** One-to-many (seed: Read/Write Data One-to-Many) against the live demo: local ids mapped, children rewritten. */

import { describe, expect, test } from "vitest";
import { BACKENDS, COMPANY_CONTACTS, CRM, Device, assertInStep, claimUser, dropResponse, serverState, unique } from "./helpers.js";

describe.each(BACKENDS)("one-to-many on %s", (backend) => {
  test("contacts created offline under a new company arrive linked to its new id", async () => {
    const phone = await Device.open([COMPANY_CONTACTS], { backend });
    expect((await phone.sync()).ok).toBe(true);
    const name = unique();
    const company = await phone.store.create("companies", { name, address: "", phone: "" });
    const ref = await phone.store.ref("companies", company);
    expect(ref).toEqual({ local_id: company });
    const ann = await phone.store.create("contacts", { name: "Ann", email: "ann@example.com", phone: "", company: ref });
    const bob = await phone.store.create("contacts", { name: "Bob", email: "", phone: "", company: ref });
    const outcome = await phone.sync();
    expect(outcome.ok, String(outcome.error)).toBe(true);
    const id = (await phone.store.get("companies", company))!.id;
    expect(typeof id).toBe("number");
    for (const lid of [ann, bob]) expect((await phone.store.get("contacts", lid))!.data.company).toBe(id);
    const state = await serverState(phone.token, COMPANY_CONTACTS);
    expect([...state.companies.values()].filter((c) => c.name === name).map((c) => c.id)).toEqual([id]);
    expect([...state.contacts.values()].map((c) => [c.name, c.company]).sort()).toEqual([
      ["Ann", id],
      ["Bob", id],
    ]);
    await assertInStep(phone, COMPANY_CONTACTS);
  });

  test("a lost answer of a one-to-many push is sent again and creates no duplicates", async () => {
    const phone = await Device.open([CRM], { backend });
    const name = unique();
    const company = await phone.store.create("companies", { name, address: "", phone: "" });
    await phone.store.create("contacts", { name: "Cy", email: "", phone: "", company: await phone.store.ref("companies", company) });
    phone.faults.add(dropResponse, { method: "POST", times: 3 }); // one sync's attempts: each applied once at most
    const lost = await phone.sync();
    expect([lost.error?.code, lost.retryable]).toEqual(["network_error", true]);
    const stored = await phone.store.pendingPush("crm");
    expect(stored).not.toBeNull();
    await phone.restart();
    const outcome = await phone.sync();
    expect(outcome.ok, String(outcome.error)).toBe(true);
    expect(phone.faults.sent).toEqual([stored!.body]); // byte for byte, the same sync_id
    const state = await serverState(phone.token, CRM);
    const made = [...state.companies.values()].filter((c) => c.name === name);
    expect(made).toHaveLength(1);
    expect([...state.contacts.values()].map((c) => c.company)).toEqual([made[0].id]);
    await assertInStep(phone, CRM);
  });
});

test("contacts stay private to their owner; companies are shared", async () => {
  const mine = await Device.open([COMPANY_CONTACTS]);
  const theirs = await Device.open([COMPANY_CONTACTS], { token: claimUser() });
  const company = await mine.store.create("companies", { name: unique(), address: "", phone: "" });
  await mine.store.create("contacts", { name: "Private", email: "", phone: "", company: { local_id: company } });
  expect((await mine.sync()).ok).toBe(true);
  expect((await theirs.sync()).ok).toBe(true);
  const id = (await mine.store.get("companies", company))!.id!;
  expect(await theirs.store.find("companies", id)).not.toBeNull();
  expect((await theirs.store.records("contacts")).filter((c) => c.data.company === id)).toEqual([]);
});

test("a child may not point at a parent that does not exist, and a new parent with children cannot be deleted alone", async () => {
  const phone = await Device.open([COMPANY_CONTACTS]);
  await expect(phone.store.create("contacts", { name: "x", company: { local_id: "nope" } })).rejects.toThrow(/no companies record/);
  const company = await phone.store.create("companies", { name: unique(), address: "", phone: "" });
  const child = await phone.store.create("contacts", { name: "x", email: "", phone: "", company: { local_id: company } });
  await expect(phone.store.delete("companies", company)).rejects.toThrow(/point at it/);
  await phone.store.delete("contacts", child);
  await phone.store.delete("companies", company);
  expect(await phone.store.hasPendingChanges("company-contacts")).toBe(false);
});
