/** `IndexedDBStorage`: the store's tables as IndexedDB object stores (through `idb`), for browsers and WebViews. */

import { openDB, type IDBPDatabase } from "idb";
import type { Mode, Storage, StorageTransaction } from "./storage.js";

/**
 * One IndexedDB database named `name`; each table is an object store with out-of-line keys.
 *
 * Opening with tables it lacks upgrades the database (a new version) to add them. `factory` is
 * the `IDBFactory` to use (default: the global `indexedDB`).
 */
export class IndexedDBStorage implements Storage {
  private db: IDBPDatabase | null = null;

  constructor(
    readonly name: string,
    private readonly factory?: IDBFactory,
  ) {}

  async open(tables: string[]): Promise<void> {
    const saved = globalThis.indexedDB;
    const use = this.factory ?? saved;
    if (!use) throw new Error("No IndexedDB here: pass an IDBFactory, or use MemoryStorage.");
    // idb opens through the global indexedDB; point it at the chosen factory while it does.
    if (this.factory) (globalThis as { indexedDB: IDBFactory }).indexedDB = this.factory;
    try {
      let db = await openDB(this.name);
      const missing = tables.filter((t) => !db.objectStoreNames.contains(t));
      if (missing.length) {
        const version = db.version + 1;
        db.close();
        db = await openDB(this.name, version, {
          upgrade(upgrading) {
            for (const table of missing) upgrading.createObjectStore(table);
          },
        });
      }
      // Another tab upgrading the database: let it, this connection reopens on its next open().
      db.addEventListener("versionchange", () => db.close());
      this.db = db;
    } finally {
      if (this.factory) (globalThis as { indexedDB: IDBFactory | undefined }).indexedDB = saved;
    }
  }

  async transaction<T>(tables: string[], mode: Mode, work: (tx: StorageTransaction) => Promise<T>): Promise<T> {
    if (!this.db) throw new Error(`IndexedDB ${this.name} is not open: call open() (LocalStore.open does).`);
    const idbTx = this.db.transaction(tables, mode);
    const tx: StorageTransaction = {
      get: (table, key) => idbTx.objectStore(table).get(key),
      getAll: (table) => idbTx.objectStore(table).getAll(),
      put: async (table, key, value) => {
        await idbTx.objectStore(table).put!(value, key);
      },
      delete: (table, key) => idbTx.objectStore(table).delete!(key),
    };
    let result: T;
    try {
      result = await work(tx);
    } catch (error) {
      try {
        idbTx.abort();
      } catch {
        // already finished (it failed on its own): nothing of it was committed
      }
      await idbTx.done.catch(() => undefined);
      throw error;
    }
    await idbTx.done;
    return result;
  }

  close(): void {
    this.db?.close();
    this.db = null;
  }
}
