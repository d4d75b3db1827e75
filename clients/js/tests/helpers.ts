/** What the live tests share: endpoints of the demo, devices with a fault-injecting fetch, a look at the server. */

import "fake-indexeddb/auto";
import { mkdirSync } from "node:fs";
import { expect, inject } from "vitest";
import {
  CONFLICT_DETECTION,
  Connection,
  Endpoint,
  Entity,
  IndexedDBStorage,
  LAST_WRITE_WINS,
  LocalStore,
  MemoryStorage,
  READ_ONLY,
  SyncClient,
  type Fetch,
  type Storage,
  type SyncClientOptions,
} from "../src/index.js";
import { manage } from "./server.js";

export const server = inject("server");

export const PRODUCTS = new Endpoint("products", "/api/sync/products/", READ_ONLY, ["products"]);
export const COMPANIES_LWW = new Endpoint("companies-lww", "/api/sync/companies-lww/", LAST_WRITE_WINS, ["companies"]);
export const COMPANIES = new Endpoint("companies", "/api/sync/companies/", CONFLICT_DETECTION, ["companies"]);
const contacts = () => new Entity("contacts", { foreignKeys: { company: "companies" } });
export const COMPANY_CONTACTS = new Endpoint("company-contacts", "/api/sync/company-contacts/", LAST_WRITE_WINS, [
  "companies",
  contacts(),
]);
export const CRM = new Endpoint("crm", "/api/sync/crm/", CONFLICT_DETECTION, ["companies", contacts()]);

export type Backend = "memory" | "indexeddb";
export const BACKENDS: Backend[] = ["memory", "indexeddb"];

let counter = 0;
export function unique(prefix = "Co"): string {
  counter += 1;
  return `${prefix} ${process.pid}-${Date.now()}-${counter}`;
}

/** A user of its own for one test: its token (claimed across the test processes by an atomic mkdir). */
export function claimUser(): string {
  mkdirSync(server.claims, { recursive: true });
  for (let i = 0; i < server.tokens.length; i++) {
    try {
      mkdirSync(`${server.claims}/${i}`);
      return server.tokens[i];
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  throw new Error("more tests asked for a fresh user than tests/server.ts makes: raise POOL there");
}

export function shell(code: string): string {
  return manage(server, "shell", "--no-imports", "-c", code);
}

export const AGE_AND_PURGE_TOMBSTONES = `
from datetime import timedelta
from django.utils import timezone
from offline_sync import tombstones
from offline_sync.models import Tombstone
Tombstone.objects.update(deleted_on=timezone.now() - timedelta(days=365))
print(tombstones.purge())
`;

export async function api(
  token: string,
  method: string,
  path: string,
  body?: unknown,
  params: Record<string, string> = {},
): Promise<[number, any]> {
  const url = new URL(path, server.baseUrl);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const response = await fetch(url, {
    method,
    headers: { Authorization: `Token ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return [response.status, await response.json()];
}

/** The server's records of `endpoint` for this user, by a full pull: `{entity: Map<id, record>}`. */
export async function serverState(token: string, endpoint: Endpoint): Promise<Record<string, Map<unknown, any>>> {
  const state: Record<string, Map<unknown, any>> = Object.fromEntries(endpoint.entities.map((e) => [e.name, new Map()]));
  let [status, page] = await api(token, "GET", endpoint.path, undefined, { ...endpoint.params });
  for (;;) {
    expect(status, JSON.stringify(page)).toBe(200);
    for (const [name, change] of Object.entries<any>(page.changes)) {
      for (const record of change.records) state[name].set(record.id, record);
      for (const gone of change.deleted) state[name].delete(gone);
    }
    if (!page.has_more) return state;
    [status, page] = await api(token, "GET", endpoint.path, undefined, { ...endpoint.params, since: page.cursor });
  }
}

/** A push from another device (raw), asserted to succeed; returns the answer. */
export async function push(token: string, endpoint: Endpoint, changes: unknown, lastSync: string | null = null): Promise<any> {
  const [status, answer] = await api(token, "POST", endpoint.path, { sync_id: crypto.randomUUID(), last_sync: lastSync, changes });
  expect(status, JSON.stringify(answer)).toBe(200);
  return answer;
}

type Action = (input: string, init: RequestInit, real: Fetch) => Promise<Response>;

/** A fetch that forwards to the real one, except for the faults planned with `add()`. */
export class FaultFetch {
  readonly log: [string, string, string | number][] = [];
  readonly sent: string[] = []; // the bodies of the POSTs that went out
  private rules: { action: Action; method?: string; path?: string; left: number }[] = [];

  add(action: Action, options: { method?: string; path?: string; times?: number } = {}): void {
    this.rules.push({ action, method: options.method, path: options.path, left: options.times ?? 1 });
  }

  readonly fetch: Fetch = async (input, init) => {
    const method = init.method ?? "GET";
    const path = new URL(input).pathname;
    if (method === "POST") this.sent.push(String(init.body));
    for (const rule of this.rules) {
      if (rule.left && (rule.method ?? method) === method && (rule.path ?? path) === path) {
        rule.left -= 1;
        this.log.push([method, path, rule.action.name]);
        return rule.action(input, init, globalThis.fetch);
      }
    }
    const response = await globalThis.fetch(input, init);
    this.log.push([method, path, response.status]);
    return response;
  };
}

/** The server gets the request and answers; the answer is lost on the way back. */
export async function dropResponse(input: string, init: RequestInit, real: Fetch): Promise<Response> {
  await (await real(input, init)).text();
  throw new TypeError("fetch failed: connection reset after the server answered");
}

export async function refuseConnection(): Promise<Response> {
  throw new TypeError("fetch failed: connection refused");
}

export function respond(status: number, body: unknown = { error: "server_error" }, headers: Record<string, string> = {}): Action {
  const action = async () => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
  Object.defineProperty(action, "name", { value: `respond${status}` });
  return action;
}

/** Run `hook()` (an edit made while the request is in flight, say), then forward. */
export function before(hook: () => Promise<void> | void): Action {
  return async function before(input, init, real) {
    await hook();
    return real(input, init);
  };
}

let databases = 0;

/** A device: its own storage (memory or IndexedDB), a client with a fault fetch, the user's token. */
export class Device {
  store!: LocalStore;
  client!: SyncClient;
  faults = new FaultFetch();
  private storage: Storage;
  private readonly dbName = `device-${process.pid}-${++databases}`;

  constructor(
    public endpoints: Endpoint[],
    readonly token: string,
    readonly backend: Backend = "memory",
    readonly name = "device",
    readonly options: SyncClientOptions = {},
  ) {
    this.storage = this.newStorage();
  }

  static async open(
    endpoints: Endpoint[],
    options: { token?: string; backend?: Backend; name?: string } & SyncClientOptions = {},
  ): Promise<Device> {
    const { token, backend, name, ...clientOptions } = options;
    const device = new Device(endpoints, token ?? claimUser(), backend ?? "memory", name ?? "device", clientOptions);
    await device.open();
    return device;
  }

  private newStorage(): Storage {
    return this.backend === "memory" ? (this.storage ?? new MemoryStorage()) : new IndexedDBStorage(this.dbName);
  }

  async open(): Promise<void> {
    this.store = await LocalStore.open(this.storage, this.endpoints);
    const connection = new Connection(server.baseUrl, { token: this.token, fetch: this.faults.fetch, backoffMs: 0, maxAttempts: 3 });
    this.client = new SyncClient(this.store, connection, { deviceId: this.name, ...this.options });
  }

  /** The app restarts: the store is reopened from its storage, everything in memory is new. */
  async restart(endpoints: Endpoint[] = this.endpoints): Promise<void> {
    this.endpoints = endpoints;
    this.store.close();
    this.storage = this.newStorage();
    this.faults = new FaultFetch();
    await this.open();
  }

  sync(unit: string | null = null) {
    return this.client.sync(unit);
  }

  async rows(entity: string, includeDeleted = false) {
    return new Map((await this.store.records(entity, { includeDeleted })).map((r) => [r.id, r]));
  }
}

const strip = (record: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(record).filter(([k]) => !["id", "version", "modified_on"].includes(k)));

/** The device holds exactly the server's subset, at the server's versions, with nothing left to push. */
export async function assertInStep(device: Device, endpoint: Endpoint): Promise<void> {
  const state = await serverState(device.token, endpoint);
  for (const entity of endpoint.entities) {
    const local = await device.store.records(entity.name, { includeDeleted: true });
    for (const r of local) expect([r.isFromServer, r.isModified, r.isActive], JSON.stringify(r)).toEqual([true, false, true]);
    const mine = Object.fromEntries(local.map((r) => [String(r.id), [r.version, r.data]]));
    const theirs = Object.fromEntries([...state[entity.name]].map(([id, rec]) => [String(id), [rec.version, strip(rec)]]));
    expect(mine).toEqual(theirs);
  }
  expect(await device.store.pendingPush(endpoint.name)).toBeNull();
}
