/**
 * Where a `LocalStore` keeps its tables: a small key-value interface with atomic transactions.
 *
 * Two implementations ship: `MemoryStorage` (tests, or a session that need not survive a reload)
 * and `IndexedDBStorage` (browsers and WebViews). Another platform's (SQLite on React Native, say)
 * needs only these few methods: all of a transaction's writes commit together or none do.
 */

export type Mode = "readonly" | "readwrite";

/** The operations of one transaction; values are plain JSON-like objects (structured-clonable). */
export interface StorageTransaction {
  get(table: string, key: string): Promise<unknown>;
  getAll(table: string): Promise<unknown[]>;
  put(table: string, key: string, value: unknown): Promise<void>;
  delete(table: string, key: string): Promise<void>;
}

export interface Storage {
  /** Make sure these tables exist (called once by `LocalStore.open`). */
  open(tables: string[]): Promise<void>;
  /**
   * Run `work` in one transaction over `tables`. If it throws (or rejects), nothing it wrote is kept.
   * `work` must await only the transaction's own operations (IndexedDB commits a transaction
   * that waits on anything else).
   */
  transaction<T>(tables: string[], mode: Mode, work: (tx: StorageTransaction) => Promise<T>): Promise<T>;
  close(): void;
}

/** Tables in memory; a transaction's writes are staged and applied only when it succeeds. */
export class MemoryStorage implements Storage {
  private tables = new Map<string, Map<string, unknown>>();
  private queue: Promise<unknown> = Promise.resolve();

  async open(tables: string[]): Promise<void> {
    for (const name of tables) if (!this.tables.has(name)) this.tables.set(name, new Map());
  }

  transaction<T>(tables: string[], _mode: Mode, work: (tx: StorageTransaction) => Promise<T>): Promise<T> {
    // One transaction at a time, as IndexedDB runs overlapping read-write transactions.
    const run = this.queue.then(() => this.run(tables, work));
    this.queue = run.catch(() => undefined);
    return run;
  }

  close(): void {}

  private async run<T>(tables: string[], work: (tx: StorageTransaction) => Promise<T>): Promise<T> {
    const staged = new Map<string, Map<string, unknown>>(); // table -> key -> value (undefined: deleted)
    const table = (name: string) => {
      if (!tables.includes(name) || !this.tables.has(name)) {
        throw new Error(`Table ${name} is not part of this transaction.`);
      }
      return this.tables.get(name)!;
    };
    const changes = (name: string) => {
      let map = staged.get(name);
      if (!map) staged.set(name, (map = new Map()));
      return map;
    };
    const tx: StorageTransaction = {
      async get(name, key) {
        const map = staged.get(name);
        const value = map && map.has(key) ? map.get(key) : table(name).get(key);
        return value === undefined ? undefined : structuredClone(value);
      },
      async getAll(name) {
        const merged = new Map(table(name));
        for (const [key, value] of staged.get(name) ?? []) {
          if (value === undefined) merged.delete(key);
          else merged.set(key, value);
        }
        return [...merged.keys()].sort().map((key) => structuredClone(merged.get(key)));
      },
      async put(name, key, value) {
        table(name);
        changes(name).set(key, structuredClone(value));
      },
      async delete(name, key) {
        table(name);
        changes(name).set(key, undefined);
      },
    };
    const result = await work(tx);
    for (const [name, map] of staged) {
      const target = this.tables.get(name)!;
      for (const [key, value] of map) {
        if (value === undefined) target.delete(key);
        else target.set(key, value);
      }
    }
    return result;
  }
}
