/** HTTP to the server (`fetch`): token authentication, timeouts, and retries of what the network or the server failed. */

import { BAD_RESPONSE, NETWORK_ERROR, NOT_AUTHENTICATED, SERVER_ERROR, SyncError, THROTTLED } from "./errors.js";

export type Fetch = (input: string, init: RequestInit) => Promise<Response>;

export interface ConnectionOptions {
  token?: string | null;
  /** Milliseconds for one request, answer included (default 10 000). */
  timeoutMs?: number;
  /** Tries of one request when the network fails or the server answers 5xx or 429 (default 4). */
  maxAttempts?: number;
  /** Wait before the second try, doubled each time; the server's `Retry-After` wins (default 500). */
  backoffMs?: number;
  /** A longer wait is not waited for: the request fails with `retryAfterMs` set, for a later sync (default 30 000). */
  maxRetryWaitMs?: number;
  /** The `fetch` to use (default: the global one); tests wrap it to inject faults. */
  fetch?: Fetch;
  authPath?: string;
  /** More headers on every request (another authentication scheme, say). */
  headers?: Record<string, string>;
}

export type Params = Record<string, string>;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * One server: `baseUrl` (`https://api.example.com`, or `""` for the page's own origin), its token,
 * and how hard to try. Every request the client makes is safe to repeat (a push carries its
 * `sync_id`, a resolution is answered the same when repeated), so each is retried the same way.
 */
export class Connection {
  token: string | null;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly backoffMs: number;
  readonly maxRetryWaitMs: number;
  readonly authPath: string;
  private readonly fetchImpl: Fetch;
  private readonly headers: Record<string, string>;

  constructor(
    readonly baseUrl: string,
    options: ConnectionOptions = {},
  ) {
    this.token = options.token ?? null;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxAttempts = options.maxAttempts ?? 4;
    this.backoffMs = options.backoffMs ?? 500;
    this.maxRetryWaitMs = options.maxRetryWaitMs ?? 30_000;
    this.authPath = options.authPath ?? "/api/auth/token/";
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.headers = { Accept: "application/json", ...(options.headers ?? {}) };
  }

  /** Get a token for `username` (the demo's `POST /api/auth/token/`) and use it from now on. */
  async login(username: string, password: string): Promise<string> {
    let answer: Record<string, unknown>;
    try {
      answer = await this.request("POST", this.authPath, { body: JSON.stringify({ username, password }), authenticate: false });
    } catch (error) {
      if (error instanceof SyncError && error.status === 400) {
        // DRF's answer to wrong credentials
        throw new SyncError(NOT_AUTHENTICATED, `Login refused for ${JSON.stringify(username)}.`, { status: 400, detail: error.detail });
      }
      throw error;
    }
    if (typeof answer.token !== "string") throw new SyncError(BAD_RESPONSE, `${this.authPath} answered without a token.`);
    this.token = answer.token;
    return this.token;
  }

  /**
   * Send one request (`body`: JSON text, sent as is); return the decoded JSON object.
   * Throws `SyncError`: the server's code for an error answer, `network_error` when none came.
   */
  async request(
    method: string,
    path: string,
    options: { params?: Params; body?: string; authenticate?: boolean } = {},
  ): Promise<Record<string, unknown>> {
    const url = new URL(path, this.baseUrl || globalThis.location?.href);
    for (const [key, value] of Object.entries(options.params ?? {})) url.searchParams.set(key, value);
    const headers: Record<string, string> = { ...this.headers };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (this.token && options.authenticate !== false) headers.Authorization = `Token ${this.token}`;
    for (let attempt = 1; ; attempt++) {
      let error: SyncError;
      try {
        const response = await this.send(url.toString(), { method, headers, body: options.body });
        if (response.status < 400) return await decode(response, method, url);
        error = await errorOf(response, method, url);
      } catch (thrown) {
        if (thrown instanceof SyncError) throw thrown; // a 200 that is not the protocol: not retried
        error = new SyncError(NETWORK_ERROR, `${method} ${url.pathname}: ${(thrown as Error).message ?? thrown}`);
      }
      if (!error.retryable || attempt >= this.maxAttempts) throw error;
      const wait = error.retryAfterMs ?? this.backoffMs * 2 ** (attempt - 1);
      if (wait > this.maxRetryWaitMs) {
        error.retryAfterMs ??= wait;
        throw error;
      }
      await sleep(wait);
    }
  }

  /** One fetch with the timeout; the body is read here, so a connection dropped mid-answer is a network error. */
  private async send(url: string, init: RequestInit): Promise<Response> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      const response = await this.fetchImpl(url, { ...init, signal: controller.signal });
      const text = await response.text();
      return new Response(response.status === 204 ? null : text, { status: response.status, headers: response.headers });
    } catch (error) {
      if (controller.signal.aborted) throw new Error(`no answer within ${this.timeoutMs} ms`);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}

async function decode(response: Response, method: string, url: URL): Promise<Record<string, unknown>> {
  let answer: unknown;
  try {
    answer = await response.json();
  } catch {
    throw new SyncError(BAD_RESPONSE, `${method} ${url.pathname} answered ${response.status} with no JSON.`);
  }
  if (answer === null || typeof answer !== "object" || Array.isArray(answer)) {
    throw new SyncError(BAD_RESPONSE, `${method} ${url.pathname} answered JSON that is not an object.`);
  }
  return answer as Record<string, unknown>;
}

/** The `SyncError` of an error answer (PROTOCOL.md section 7), whatever its body. */
async function errorOf(response: Response, method: string, url: URL): Promise<SyncError> {
  const status = response.status;
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = await response.json();
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    // not JSON (a proxy's error page): the status says enough
  }
  let code: string;
  if (status >= 500) code = SERVER_ERROR; // whatever the body says: a proxy's 502 page is a server failure too
  else if (status === 429) code = THROTTLED;
  else code = typeof body.error === "string" ? body.error : `http_${status}`;
  const detail = body.detail ?? (Object.keys(body).length ? body : null);
  let message = `${method} ${url.pathname}: ${status} ${code}`;
  if (body.detail !== undefined) message += `: ${JSON.stringify(body.detail)}`;
  return new SyncError(code, message, {
    status,
    detail,
    retryAfterMs: retryAfterMs(response.headers.get("Retry-After")),
    conflicts: Array.isArray(body.conflicts) ? body.conflicts : [],
  });
}

/** Milliseconds from a `Retry-After` header (seconds or an HTTP date), or null. */
export function retryAfterMs(value: string | null): number | null {
  if (!value) return null;
  const seconds = Number(value);
  if (value.trim() !== "" && Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, when - Date.now());
}
