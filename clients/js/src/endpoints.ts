/** What a device syncs: endpoints (one sync URL each, with its pattern) and their entities. */

export const READ_ONLY = "read_only";
export const LAST_WRITE_WINS = "last_write_wins";
export const CONFLICT_DETECTION = "conflict_detection";
export type Pattern = typeof READ_ONLY | typeof LAST_WRITE_WINS | typeof CONFLICT_DETECTION;
const PATTERNS: readonly string[] = [READ_ONLY, LAST_WRITE_WINS, CONFLICT_DETECTION];

/** Keys of a wire record that the server owns; everything else is the record's data. */
export const SERVER_KEYS: readonly string[] = ["id", "version", "modified_on"];

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

export interface EntityOptions {
  /** `{field: entity}`: a child of a record not yet on the server holds `{"local_id": ...}` there. */
  foreignKeys?: Record<string, string>;
}

/** One entity of an endpoint (`companies`): a local table of that name. */
export class Entity {
  readonly name: string;
  readonly foreignKeys: Readonly<Record<string, string>>;

  constructor(name: string, options: EntityOptions = {}) {
    if (!NAME.test(name) || name.startsWith("sync_")) {
      throw new Error(
        `Entity name ${JSON.stringify(name)}: use letters, digits, _ and - (at most 63), not starting with 'sync_'.`,
      );
    }
    this.name = name;
    this.foreignKeys = Object.freeze({ ...(options.foreignKeys ?? {}) });
  }
}

export interface EndpointOptions {
  /** The endpoint's filters (`{category: "Drinks"}`): the subset this device keeps. */
  params?: Record<string, string | number>;
}

/**
 * A sync URL: `name` (how the store and sync units refer to it), `path`, `pattern`, its entities.
 *
 * Entities are listed parents first: pushes and apply go in that order. Changing `params`
 * makes the next sync a full pull.
 */
export class Endpoint {
  readonly name: string;
  readonly path: string;
  readonly pattern: Pattern;
  readonly entities: readonly Entity[];
  readonly params: Readonly<Record<string, string>>;

  constructor(name: string, path: string, pattern: Pattern, entities: (Entity | string)[], options: EndpointOptions = {}) {
    if (!PATTERNS.includes(pattern)) {
      throw new Error(`Endpoint ${JSON.stringify(name)}: pattern must be one of ${PATTERNS.join(", ")}.`);
    }
    if (!path.startsWith("/")) {
      throw new Error(`Endpoint ${JSON.stringify(name)}: path must start with '/' (it is joined to the base URL).`);
    }
    const list = entities.map((e) => (typeof e === "string" ? new Entity(e) : e));
    if (list.length === 0) throw new Error(`Endpoint ${JSON.stringify(name)} needs at least one entity.`);
    const names = list.map((e) => e.name);
    if (new Set(names).size !== names.length) throw new Error(`Endpoint ${JSON.stringify(name)} lists an entity twice.`);
    for (const entity of list) {
      for (const [fk, target] of Object.entries(entity.foreignKeys)) {
        if (!names.includes(target)) {
          throw new Error(`${entity.name}.${fk} points at ${JSON.stringify(target)}, which endpoint ${JSON.stringify(name)} does not carry.`);
        }
      }
    }
    this.name = name;
    this.path = path;
    this.pattern = pattern;
    this.entities = Object.freeze(list);
    this.params = Object.freeze(
      Object.fromEntries(Object.entries(options.params ?? {}).map(([k, v]) => [k, String(v)])),
    );
  }

  get writable(): boolean {
    return this.pattern !== READ_ONLY;
  }

  entity(name: string): Entity {
    const found = this.entities.find((e) => e.name === name);
    if (!found) throw new Error(`Endpoint ${this.name} has no entity ${name}.`);
    return found;
  }
}
