/** Read-only (seed: Read-Only Data, and its delta variant): full pull, paging, deltas, filters, an expired cursor. */

import { describe, expect, test } from "vitest";
import { Endpoint, READ_ONLY, StoreError } from "../src/index.js";
import { AGE_AND_PURGE_TOMBSTONES, BACKENDS, Device, PRODUCTS, assertInStep, shell } from "./helpers.js";

const ADMIN = (code: string) => `
from demo_project.catalog.models import Product
${code}
`;

describe.each(BACKENDS)("read-only on %s", (backend) => {
  test("a first sync pulls the whole catalog in pages, then deltas bring changes and deletions", async () => {
    const device = await Device.open([PRODUCTS], { backend, pageSize: 7 });
    const first = await device.sync();
    expect(first.ok, String(first.error)).toBe(true);
    const [result] = first.endpoints;
    expect(result.fullPull).toBe(true);
    expect(result.pages).toBeGreaterThan(1);
    await assertInStep(device, PRODUCTS);

    const [kept, gone] = (await device.store.records("products")).slice(0, 2);
    shell(ADMIN(`p = Product.objects.get(pk=${kept.id}); p.price = "99.50"; p.save(); Product.objects.filter(pk=${gone.id}).delete()`));
    const delta = await device.sync();
    expect(delta.ok).toBe(true);
    expect(delta.endpoints[0].fullPull).toBe(false);
    expect((await device.store.find("products", kept.id!))!.data.price).toBe("99.50");
    expect(await device.store.find("products", gone.id!)).toBeNull();
    await assertInStep(device, PRODUCTS);
  });

  test("filters choose the subset; changing them makes the next pull a full one that drops the rest", async () => {
    const drinks = new Endpoint("products", "/api/sync/products/", READ_ONLY, ["products"], { params: { category: "Drinks" } });
    const device = await Device.open([drinks], { backend });
    expect((await device.sync()).ok).toBe(true);
    const local = await device.store.records("products");
    expect(local.length).toBeGreaterThan(0);
    expect(new Set(local.map((r) => r.data.category))).toEqual(new Set(["Drinks"]));
    await assertInStep(device, drinks);
    await expect(device.store.create("products", { name: "x" })).rejects.toThrow(StoreError);

    await device.restart([PRODUCTS]); // the app now keeps the whole catalog
    expect((await device.store.state("products")).cursor).toBeNull();
    const widened = await device.sync();
    expect(widened.endpoints[0].fullPull).toBe(true);
    expect(new Set((await device.store.records("products")).map((r) => r.data.category)).size).toBeGreaterThan(1);
    await assertInStep(device, PRODUCTS);

    await device.restart([drinks]); // and back: what is not a drink goes
    expect((await device.sync()).endpoints[0].fullPull).toBe(true);
    expect(new Set((await device.store.records("products")).map((r) => r.data.category))).toEqual(new Set(["Drinks"]));
    await assertInStep(device, drinks);
  });
});

test("an expired cursor (410) makes the pull start again in full", async () => {
  const device = await Device.open([PRODUCTS]);
  expect((await device.sync()).ok).toBe(true);
  const victim = (await device.store.records("products"))[0];
  shell(ADMIN(`Product.objects.filter(pk=${victim.id}).delete()`));
  shell(AGE_AND_PURGE_TOMBSTONES); // the cursor is now older than the oldest tombstone
  const outcome = await device.sync();
  expect(outcome.ok, String(outcome.error)).toBe(true);
  expect(device.faults.log.filter(([, , status]) => status === 410)).toHaveLength(1);
  expect(outcome.endpoints[0].fullPull).toBe(true);
  expect(await device.store.find("products", victim.id!)).toBeNull();
  await assertInStep(device, PRODUCTS);
});
