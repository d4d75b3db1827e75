/**
 * The demo's offline web app: companies and their contacts, kept in IndexedDB and synced with
 * `/api/sync/crm/` (one-to-many, conflict detection) by the TypeScript client.
 *
 * Every edit is a local action on the store and is shown at once; the sync manager pushes it when
 * it can: after each edit, when the browser comes back online, when the page becomes visible again,
 * and on a timer after a failure. Conflicts (someone changed the record meanwhile) are listed
 * with both versions, to keep one.
 */

import {
  CONFLICT_DETECTION,
  Connection,
  Endpoint,
  Entity,
  IndexedDBStorage,
  LocalStore,
  SyncClient,
  SyncManager,
  browserNetwork,
  connectBrowserEvents,
  type Conflict,
  type LocalRecord,
  type SyncOutcome,
} from "../../src/index.js";

const CRM = new Endpoint("crm", "/api/sync/crm/", CONFLICT_DETECTION, [
  "companies",
  new Entity("contacts", { foreignKeys: { company: "companies" } }),
]);
const ACCOUNT_KEY = "offline-crm-account";
const COMPANY_FIELDS = ["name", "address", "phone"] as const;
const CONTACT_FIELDS = ["name", "email", "phone"] as const;

interface Account {
  username: string;
  token: string;
  deviceId: string;
}

interface Session {
  account: Account;
  store: LocalStore;
  client: SyncClient;
  manager: SyncManager;
  disconnect: () => void;
}

const main = document.getElementById("app")!;
const statusLine = document.getElementById("status")!;
let session: Session | null = null;
let editing: string | null = null; // the local id of the company whose form is open
let lastSync: { at: Date | null; failure: string | null; syncing: boolean } = { at: null, failure: null, syncing: false };

// -- small DOM helpers (text only: nothing the server or the user typed becomes markup) ---------------

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string | null)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) if (child !== null) node.append(child);
  return node;
}

function button(label: string, onClick: () => void, attrs: Record<string, string> = {}): HTMLButtonElement {
  const node = el("button", { type: "button", ...attrs }, label);
  node.addEventListener("click", onClick);
  return node;
}

function form(
  fields: readonly string[],
  values: Record<string, unknown>,
  submitLabel: string,
  onSubmit: (values: Record<string, string>) => Promise<void>,
  attrs: Record<string, string> = {},
): HTMLFormElement {
  const node = el("form", { class: "inline", ...attrs });
  for (const field of fields) {
    node.append(el("input", { name: field, placeholder: field, "aria-label": field, value: String(values[field] ?? "") }));
  }
  node.append(el("button", { type: "submit" }, submitLabel));
  node.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = Object.fromEntries(fields.map((f) => [f, (node.elements.namedItem(f) as HTMLInputElement).value]));
    onSubmit(data).catch((error) => showError(error));
  });
  return node;
}

function showError(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  document.getElementById("app-error")?.remove();
  main.prepend(el("p", { class: "error", id: "app-error", role: "alert" }, message));
}

// -- status -----------------------------------------------------------------------------------------

async function renderStatus(): Promise<void> {
  if (!session) return;
  const conflicts = await session.store.conflicts();
  let state: string;
  let text: string;
  if (lastSync.syncing) [state, text] = ["syncing", "Syncing…"];
  else if (!navigator.onLine) [state, text] = ["offline", "You're offline"];
  else if (conflicts.length) [state, text] = ["conflicts", `${conflicts.length} conflict${conflicts.length > 1 ? "s" : ""} to resolve`];
  else if (lastSync.failure) [state, text] = ["failed", `Sync failed: ${lastSync.failure}`];
  else if (lastSync.at) [state, text] = ["synced", `Synced at ${lastSync.at.toLocaleTimeString()}`];
  else [state, text] = ["starting", "Not synced yet"];
  if (state === "offline" || state === "failed" || state === "conflicts") {
    if (await session.store.hasPendingChanges("crm")) text += " · changes saved on this device";
  }
  statusLine.dataset.state = state;
  statusLine.textContent = text;
}

function onOutcome(outcome: SyncOutcome): void {
  lastSync.syncing = false;
  if (outcome.ok) {
    lastSync = { at: new Date(), failure: null, syncing: false };
  } else {
    const error = outcome.error!;
    // Conflicts and being offline have states of their own; the manager syncs again when the network is back.
    const shown = error.code === "unresolved_conflicts" || (error.code === "network_error" && !navigator.onLine);
    lastSync.failure = shown ? null : `${error.code}${outcome.retryable ? " (will retry)" : ""}`;
  }
  void render();
}

// -- the page ---------------------------------------------------------------------------------------

async function render(): Promise<void> {
  await renderStatus();
  if (!session) return;
  const { store } = session;
  const companies = (await store.records("companies")).sort((a, b) => String(a.data.name).localeCompare(String(b.data.name)));
  const contacts = await store.records("contacts");
  const conflicts = await store.conflicts();

  const focused = document.activeElement instanceof HTMLInputElement ? document.activeElement : null;
  const kept = focused ? { form: focused.form?.dataset.form, name: focused.name, value: focused.value } : null;

  const list = el("section", { id: "companies" }, el("h2", {}, `Companies (${companies.length})`));
  list.append(
    form(COMPANY_FIELDS, {}, "Add company", async (values) => {
      if (!values.name.trim()) throw new Error("A company needs a name.");
      await store.create("companies", values);
      afterEdit();
    }, { "data-form": "new-company", "aria-label": "New company" }),
  );
  for (const company of companies) list.append(companyCard(company, contacts));

  const pending = el("section", { id: "conflicts" });
  if (conflicts.length) {
    pending.append(el("h2", {}, "Conflicts"));
    for (const conflict of conflicts) pending.append(conflictCard(conflict, companies, contacts));
  }
  main.replaceChildren(...[document.getElementById("app-error"), pending, list].filter((n): n is HTMLElement => n !== null));

  if (kept?.form) {
    const input = main.querySelector<HTMLInputElement>(`form[data-form="${CSS.escape(kept.form)}"] input[name="${kept.name}"]`);
    if (input) {
      input.value = kept.value;
      input.focus();
    }
  }
}

function companyCard(company: LocalRecord, contacts: LocalRecord[]): HTMLElement {
  const { store } = session!;
  const name = String(company.data.name);
  const card = el("article", { class: "company", "data-company": name, "data-local-id": company.localId });
  const unsynced = !company.isFromServer ? "not synced yet" : company.isModified ? "changed here" : null;
  card.append(el("h3", {}, name, unsynced ? el("span", { class: "pending" }, unsynced) : null));
  if (editing === company.localId) {
    card.append(
      form(COMPANY_FIELDS, company.data, "Save", async (values) => {
        const changed = Object.fromEntries(Object.entries(values).filter(([k, v]) => company.data[k] !== v));
        editing = null;
        if (Object.keys(changed).length) await store.update("companies", company.localId, changed);
        afterEdit();
        void render();
      }, { "data-form": `edit-${company.localId}`, "aria-label": `Edit ${name}` }),
    );
  } else {
    card.append(
      el("p", {}, [company.data.address, company.data.phone].filter(Boolean).join(" · ") || "—"),
      button("Edit", () => {
        editing = company.localId;
        void render();
      }, { "aria-label": `Edit ${name}` }),
      button("Delete", () => void store.delete("companies", company.localId).then(afterEdit, showError), { "aria-label": `Delete ${name}` }),
    );
  }
  const mine = contacts.filter((c) => {
    const ref = c.data.company;
    return ref === company.id && company.id !== null || (typeof ref === "object" && ref !== null && (ref as { local_id?: string }).local_id === company.localId);
  });
  const items = el("ul", { class: "contacts" });
  for (const contact of mine) {
    const label = [contact.data.name, contact.data.email, contact.data.phone].filter(Boolean).join(" · ");
    items.append(
      el("li", { "data-contact": String(contact.data.name) }, label, contact.isFromServer ? "" : " ", contact.isFromServer ? null : el("span", { class: "pending" }, "not synced yet")),
    );
  }
  card.append(
    items,
    form(CONTACT_FIELDS, {}, "Add contact", async (values) => {
      if (!values.name.trim()) throw new Error("A contact needs a name.");
      await store.create("contacts", { ...values, company: await store.ref("companies", company.localId) });
      afterEdit();
    }, { "data-form": `contact-${company.localId}`, "aria-label": `New contact of ${name}` }),
  );
  return card;
}

function conflictCard(conflict: Conflict, companies: LocalRecord[], contacts: LocalRecord[]): HTMLElement {
  const { client } = session!;
  const records = conflict.entity === "companies" ? companies : contacts;
  const local = records.find((r) => r.id === conflict.id);
  const name = String(conflict.server?.name ?? local?.data.name ?? conflict.id);
  const card = el("article", { class: "conflict", "data-conflict": name });
  const fields = Object.keys(conflict.client).filter((k) => k !== "id" && k !== "base_version");
  const table = el("table", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "yours"), el("th", {}, "server's")));
  for (const field of fields) {
    table.append(el("tr", { "data-field": field }, el("td", {}, field), el("td", {}, String(conflict.client[field] ?? "")), el("td", {}, conflict.server ? String(conflict.server[field] ?? "") : "(deleted)")));
  }
  const what = conflict.kind === "deleted" ? "You deleted" : "You changed";
  const resolve = (resolution: "client" | "server") => async () => {
    try {
      await client.resolveConflict(conflict.conflictId, resolution);
      session!.manager.triggerSync();
    } catch (error) {
      showError(new Error(`Could not resolve the conflict now (${(error as Error).message}); try again when online.`));
    }
  };
  card.append(
    el("p", {}, `${what} ${conflict.entity === "companies" ? "company" : "contact"} “${name}”, and someone else changed it meanwhile.`),
    table,
    button("Keep mine", resolve("client")),
    button("Keep server's", resolve("server")),
  );
  return card;
}

/** An edit was stored locally: show it, and sync if the network allows (the manager queues it). */
function afterEdit(): void {
  void render();
  if (navigator.onLine) session?.manager.triggerSync();
}

// -- logging in, starting a session ------------------------------------------------------------------

function loginForm(): void {
  statusLine.dataset.state = "starting";
  statusLine.textContent = "Log in to start";
  const node = el(
    "form",
    { id: "login" },
    el("h2", {}, "Log in"),
    el("label", {}, "Username ", el("input", { id: "username", name: "username", autocomplete: "username" })),
    " ",
    el("label", {}, "Password ", el("input", { id: "password", name: "password", type: "password", autocomplete: "current-password" })),
    " ",
    el("button", { type: "submit" }, "Log in"),
  );
  node.addEventListener("submit", (event) => {
    event.preventDefault();
    const username = (document.getElementById("username") as HTMLInputElement).value;
    const password = (document.getElementById("password") as HTMLInputElement).value;
    const connection = new Connection("");
    connection
      .login(username, password)
      .then(async (token) => {
        const account: Account = { username, token, deviceId: `web-${crypto.randomUUID().slice(0, 8)}` };
        localStorage.setItem(ACCOUNT_KEY, JSON.stringify(account));
        await start(account, true);
      })
      .catch(showError);
  });
  main.replaceChildren(node);
}

async function start(account: Account, loggedIn: boolean): Promise<void> {
  const store = await LocalStore.open(new IndexedDBStorage(`offline-crm-${account.username}`), [CRM]);
  const connection = new Connection("", { token: account.token, maxAttempts: 2, backoffMs: 300 });
  const client = new SyncClient(store, connection, { deviceId: account.deviceId });
  const manager = new SyncManager(client, {
    syncOnLogin: true,
    syncOnOnline: true,
    syncOnResume: true,
    retryOnError: true,
    retryIntervalMs: 10_000,
    network: browserNetwork(),
  });
  manager.on("syncStarted", () => {
    lastSync.syncing = true;
    void renderStatus();
  });
  manager.on("syncCompleted", (event) => onOutcome(event.outcome!));
  manager.on("syncFailed", (event) => onOutcome(event.outcome!));
  manager.on("conflictsFound", () => void render());
  const disconnect = connectBrowserEvents(manager);
  session = { account, store, client, manager, disconnect };
  store.subscribe(() => void render());
  document.getElementById("who")!.textContent = account.username;
  document.getElementById("account")!.hidden = false;
  await render();
  if (loggedIn) manager.notifyLogin();
  else manager.triggerSync(); // the app (re)opened: catch up
}

window.addEventListener("offline", () => void renderStatus());
window.addEventListener("online", () => void renderStatus());
document.getElementById("sync-now")!.addEventListener("click", () => session?.manager.triggerSync());
document.getElementById("logout")!.addEventListener("click", () => {
  localStorage.removeItem(ACCOUNT_KEY);
  session?.disconnect();
  void session?.manager.close();
  session?.store.close();
  session = null;
  document.getElementById("account")!.hidden = true;
  loginForm();
});

// The service worker keeps a copy of this page and its assets, so the app opens offline too.
if ("serviceWorker" in navigator) {
  const assets = [...document.querySelectorAll<HTMLScriptElement>("script[src]")].map((s) => s.src);
  assets.push(...[...document.querySelectorAll<HTMLLinkElement>("link[rel=stylesheet]")].map((l) => l.href));
  const query = new URLSearchParams(assets.map((asset) => ["asset", asset]));
  navigator.serviceWorker.register(`${location.pathname.replace(/[^/]*$/, "")}sw.js?${query}`).catch((error) => {
    console.warn("offline CRM: no service worker, the page will not open offline", error);
  });
}

const saved = localStorage.getItem(ACCOUNT_KEY);
if (saved) void start(JSON.parse(saved) as Account, false).catch(showError);
else loginForm();
