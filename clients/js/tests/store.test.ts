/** The local store alone (no server), on both storages: flags, pushes as the seeds gather them, apply, restarts. */

import "fake-indexeddb/auto";
import { describe, expect, test } from "vitest";
import { Endpoint, Entity, IndexedDBStorage, LAST_WRITE_WINS, LocalStore, MemoryStorage, StoreError, type Storage } from "../src/index.js";

const CRM = new Endpoint("crm", "/api/sync/crm/", LAST_WRITE_WINS, [
  "companies",
  new Entity("contacts", { foreignKeys: { company: "companies" } }),
]);

let databases = 0;
const storages: [string, () => Storage][] = [
  ["memory", () => new MemoryStorage()],
  ["indexeddb", () => new IndexedDBStorage(`store-test-${++databases}`)],
];

const page = (changes: object, cursor = "c1", more: object = {}) => ({
  full: false,
  changes: { companies: { records: [], deleted: [] }, contacts: { records: [], deleted: [] }, ...changes },
  cursor,
  has_more: false,
  ...more,
});

const acme = { id: 1, version: 3, modified_on: "2026-01-01T00:00:00.000000Z", name: "Acme", address: "", phone: "1" };

describe.each(storages)("LocalStore on %s", (_name, makeStorage) => {
  test("local actions set the seeds' flags", async () => {
    const store = await LocalStore.open(makeStorage(), [CRM]);
    await store.applyAnswer("crm", page({ companies: { records: [acme] } }));
    const server = (await store.find("companies", 1))!;
    expect([server.isFromServer, server.isModified, server.isActive, server.baseVersion]).toEqual([true, false, true, null]);
    await store.update("companies", server.localId, { phone: "2" });
    const edited = (await store.get("companies", server.localId))!;
    expect([edited.isModified, edited.baseVersion, edited.modifiedFields, edited.data.phone]).toEqual([true, 3, ["phone"], "2"]);
    const lid = await store.create("companies", { name: "New", address: "", phone: "" });
    expect((await store.get("companies", lid))!.isFromServer).toBe(false);
    await store.delete("companies", server.localId);
    expect((await store.get("companies", server.localId))!.isActive).toBe(false);
    expect((await store.records("companies")).map((r) => r.localId)).toEqual([lid]);
    expect((await store.records("companies", { includeDeleted: true })).map((r) => r.localId)).toEqual([server.localId, lid]);
    await expect(store.update("companies", server.localId, { phone: "3" })).rejects.toThrow(/is deleted/);
    await expect(store.create("companies", { id: 5, name: "x" })).rejects.toThrow(StoreError);
    await expect(store.create("nope", {})).rejects.toThrow(/Unknown entity/);
    await expect(store.create("companies", { price: Number.NaN })).rejects.toThrow(/JSON values/);
  });

  test("the push carries added, modified (changed fields only) and deleted, parents first, and children get the new id", async () => {
    const store = await LocalStore.open(makeStorage(), [CRM]);
    await store.applyAnswer("crm", page({ companies: { records: [acme, { ...acme, id: 2, name: "Globex" }] } }));
    const [a, g] = await store.records("companies");
    await store.update("companies", a.localId, { phone: "9" });
    await store.delete("companies", g.localId);
    const child = await store.create("contacts", { name: "Ann", company: { local_id: "new-co" } }).catch((e) => e);
    expect(child).toBeInstanceOf(StoreError);
    const co = await store.create("companies", { name: "New" }, { localId: "new-co" });
    const ann = await store.create("contacts", { name: "Ann", company: await store.ref("companies", co) });
    const onAcme = await store.create("contacts", { name: "Al", company: { local_id: a.localId } });
    expect((await store.get("contacts", onAcme))!.data.company).toBe(1); // a synced parent: its server id
    const push = (await store.preparePush("crm", { deviceId: "d" }))!;
    const body = JSON.parse(push.body);
    expect(body).toEqual({
      sync_id: push.syncId,
      last_sync: "c1",
      device_id: "d",
      changes: {
        companies: {
          added: [{ local_id: "new-co", name: "New" }],
          modified: [{ id: 1, base_version: 3, phone: "9" }],
          deleted: [{ id: 2, base_version: 3 }],
        },
        contacts: { added: [{ local_id: ann, name: "Ann", company: { local_id: "new-co" } }, { local_id: onAcme, name: "Al", company: 1 }] },
      },
    });
    expect(await store.pendingPush("crm")).toEqual(push);
    await expect(store.preparePush("crm")).rejects.toThrow(/waiting for its answer/);
    await store.applyAnswer(
      "crm",
      {
        ...page({ companies: { records: [{ ...acme, version: 4, phone: "9" }], deleted: [2] } }, "c2"),
        id_map: { companies: { "new-co": 7 }, contacts: { [ann]: 70, [onAcme]: 71 } },
        conflicts: [],
      },
      { pushed: true },
    );
    expect((await store.get("contacts", ann))!.data.company).toBe(7);
    expect((await store.get("companies", co))!.id).toBe(7);
    expect(await store.get("companies", g.localId)).toBeNull();
    expect(await store.pendingPush("crm")).toBeNull();
    expect(await store.hasPendingChanges("crm")).toBe(false);
    expect((await store.state("crm")).cursor).toBe("c2");
  });

  test("a capped push leaves children whose new parent did not fit for the next one", async () => {
    const store = await LocalStore.open(makeStorage(), [CRM]);
    const first = await store.create("companies", { name: "A" });
    const second = await store.create("companies", { name: "B" });
    await store.create("contacts", { name: "of B", company: { local_id: second } });
    const body = JSON.parse((await store.preparePush("crm", { maxRecords: 1 }))!.body);
    expect(body.changes).toEqual({ companies: { added: [{ local_id: first, name: "A" }] } });
  });

  test("a paged full pull replaces only on its last page and keeps local changes", async () => {
    const store = await LocalStore.open(makeStorage(), [CRM]);
    await store.applyAnswer("crm", page({ companies: { records: [acme, { ...acme, id: 2 }, { ...acme, id: 3 }] } }));
    await store.update("companies", (await store.find("companies", 3))!.localId, { phone: "mine" });
    await store.applyAnswer("crm", { ...page({}, "p1", { full: true, has_more: true }) });
    expect((await store.records("companies")).length).toBe(3); // nothing dropped before the last page
    await store.applyAnswer("crm", page({ companies: { records: [{ ...acme, version: 5 }] } }, "p2"));
    const left = await store.records("companies");
    expect(left.map((r) => [r.id, r.version, r.data.phone])).toEqual([
      [1, 5, "1"],
      [3, 3, "mine"],
    ]);
    expect((await store.state("crm")).fullPullPending).toBe(false);
  });

  test("an answer applies whole or not at all: an id_map missing an added record is refused", async () => {
    const store = await LocalStore.open(makeStorage(), [CRM]);
    const lid = await store.create("companies", { name: "New" });
    await store.preparePush("crm");
    const answer = { ...page({ companies: { records: [acme] } }, "c9"), id_map: {}, conflicts: [] };
    await expect(store.applyAnswer("crm", answer, { pushed: true })).rejects.toThrow(/no id_map entry/);
    expect(await store.find("companies", 1)).toBeNull();
    expect((await store.state("crm")).cursor).toBeNull();
    expect((await store.get("companies", lid))!.isFromServer).toBe(false);
    expect(await store.pendingPush("crm")).not.toBeNull();
  });

  test("a conflict keeps both versions; the row shows the server's until resolved", async () => {
    const store = await LocalStore.open(makeStorage(), [CRM]);
    await store.applyAnswer("crm", page({ companies: { records: [acme] } }));
    const row = (await store.find("companies", 1))!;
    await store.update("companies", row.localId, { phone: "mine" });
    await store.preparePush("crm");
    const server = { ...acme, version: 4, phone: "theirs" };
    const wire = { conflict_id: 12, entity: "companies", id: 1, kind: "modified", client: { id: 1, base_version: 3, phone: "mine" }, server };
    const [conflict] = await store.applyAnswer("crm", { ...page({}, "c2"), id_map: {}, conflicts: [wire] }, { pushed: true });
    expect(conflict).toMatchObject({ conflictId: 12, endpoint: "crm", entity: "companies", id: 1, client: { phone: "mine" } });
    expect(await store.conflicts()).toEqual([conflict]);
    const shown = (await store.get("companies", row.localId))!;
    expect([shown.data.phone, shown.version, shown.isModified]).toEqual(["theirs", 4, false]);
    await store.applyResolution(conflict, { ...server, version: 5, phone: "mine" });
    expect(await store.conflicts()).toEqual([]);
    expect((await store.get("companies", row.localId))!.data.phone).toBe("mine");
  });

  test("everything survives a restart; other filters mean a full pull", async () => {
    const storage = makeStorage();
    let store = await LocalStore.open(storage, [CRM]);
    await store.applyAnswer("crm", page({ companies: { records: [acme] } }, "kept"));
    const lid = await store.create("companies", { name: "Offline" });
    await store.preparePush("crm");
    store.close();
    const reopened = storage instanceof IndexedDBStorage ? new IndexedDBStorage(storage.name) : storage;
    store = await LocalStore.open(reopened, [CRM]);
    expect((await store.state("crm")).cursor).toBe("kept");
    expect((await store.get("companies", lid))!.data.name).toBe("Offline");
    expect(await store.pendingPush("crm")).not.toBeNull();
    const filtered = new Endpoint("crm", CRM.path, LAST_WRITE_WINS, [...CRM.entities], { params: { name: "Acme" } });
    store.close();
    store = await LocalStore.open(reopened, [filtered]);
    expect((await store.state("crm")).cursor).toBeNull();
  });
});

test("an entity syncs through one endpoint only; entity names are checked", async () => {
  const other = new Endpoint("other", "/x/", LAST_WRITE_WINS, ["companies"]);
  await expect(LocalStore.open(new MemoryStorage(), [CRM, other])).rejects.toThrow(/one endpoint/);
  expect(() => new Entity("sync_x")).toThrow(/not starting with 'sync_'/);
  expect(() => new Endpoint("e", "no-slash", LAST_WRITE_WINS, ["a"])).toThrow(/start with/);
});
