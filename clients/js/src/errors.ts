/** The client's errors: one class for every failure of a sync, told apart by `code`. */

// Codes the server sends (PROTOCOL.md section 7) plus the client's own.
export const NETWORK_ERROR = "network_error"; // no answer: refused, dropped, timed out, offline
export const SERVER_ERROR = "server_error"; // 5xx
export const THROTTLED = "throttled"; // 429
export const NOT_AUTHENTICATED = "not_authenticated"; // 401 (and a refused login)
export const PERMISSION_DENIED = "permission_denied"; // 403
export const VALIDATION_ERROR = "validation_error"; // 400
export const NOT_FOUND = "not_found"; // 404
export const UNRESOLVED_CONFLICTS = "unresolved_conflicts"; // 409, or conflicts pending in the local store
export const SYNC_ID_REUSED = "sync_id_reused"; // 409
export const ALREADY_RESOLVED = "already_resolved"; // 409 on a resolve
export const CURSOR_EXPIRED = "cursor_expired"; // 410
export const PAYLOAD_TOO_LARGE = "payload_too_large"; // 413
export const BAD_RESPONSE = "bad_response"; // an answer that is not the protocol's JSON

/** Worth trying again later, unchanged: the failure is the network's or the server's, not the request's. */
export const RETRYABLE: ReadonlySet<string> = new Set([NETWORK_ERROR, SERVER_ERROR, THROTTLED]);

export interface SyncErrorOptions {
  status?: number | null;
  detail?: unknown;
  retryAfterMs?: number | null;
  conflicts?: unknown[];
}

/**
 * A sync step failed. `code` says why; `retryable` whether trying again later can help.
 *
 * `status` is the HTTP status (null without an answer), `detail` the server's `detail`,
 * `retryAfterMs` the wait the server asked for (429, 503), `conflicts` those of an
 * `unresolved_conflicts`.
 */
export class SyncError extends Error {
  readonly code: string;
  readonly status: number | null;
  readonly detail: unknown;
  retryAfterMs: number | null;
  conflicts: unknown[];

  constructor(code: string, message: string, options: SyncErrorOptions = {}) {
    super(message);
    this.name = "SyncError";
    this.code = code;
    this.status = options.status ?? null;
    this.detail = options.detail ?? null;
    this.retryAfterMs = options.retryAfterMs ?? null;
    this.conflicts = [...(options.conflicts ?? [])];
  }

  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }
}

/** A local action the store refuses (unknown record, a read-only entity, a server-owned field). */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreError";
  }
}
