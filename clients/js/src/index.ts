/**
 * Device-side client of the offline_sync protocol (PROTOCOL.md): a local store, sync per pattern,
 * a sync framework. The same names as the Python client (`offline_sync_client`), in camelCase.
 */

export { Connection, retryAfterMs, type ConnectionOptions, type Fetch } from "./connection.js";
export { CONFLICT_DETECTION, Endpoint, Entity, LAST_WRITE_WINS, READ_ONLY, type Pattern } from "./endpoints.js";
export * as errors from "./errors.js";
export { RETRYABLE, StoreError, SyncError } from "./errors.js";
export { IndexedDBStorage } from "./indexeddb.js";
export {
  CONFLICTS_FOUND,
  SYNC_COMPLETED,
  SYNC_FAILED,
  SYNC_STARTED,
  SyncEvent,
  SyncManager,
  browserNetwork,
  connectBrowserEvents,
  type NetworkStatus,
  type SyncConfiguration,
  type SyncEventHandler,
  type SyncEventName,
} from "./manager.js";
export { MemoryStorage, type Storage, type StorageTransaction } from "./storage.js";
export {
  LocalStore,
  localRef,
  type Conflict,
  type EndpointState,
  type LocalRecord,
  type PendingPush,
  type ServerId,
  type Values,
  type WireRecord,
} from "./store.js";
export { EndpointOutcome, SyncClient, SyncOutcome, type ConflictResolution, type Resolution, type SyncClientOptions } from "./sync.js";

export const VERSION = "0.1.0";
