// @ts-check
/**
 * Tessera browser client: keeps a short-lived access token in memory and renews it silently from
 * the HttpOnly refresh cookie, coordinating with the other tabs of the same origin.
 *
 * A plain ES module with no dependencies and no build step. Start with {@link createClient};
 * the small pure helpers below it (expiry arithmetic, reason mapping) are exported for tests.
 *
 * Invariants:
 * - the access token lives only in this module's closure: never in storage, never in the DOM;
 * - the refresh token is never seen by JavaScript (HttpOnly cookie); refresh and logout send no body;
 * - expiry is reckoned from `expires_in` and the local time the response arrived, never by comparing
 *   the server's clock with the browser's;
 * - at most one refresh is in flight per page, and tabs take turns through a Web Lock;
 * - only a `401 invalid_refresh_token` ends a session; network errors and 5xx are retried later.
 *
 * @module tessera-client
 */

/**
 * Why a session ended. The server's `reason` for a refused refresh ("revoked", "expired", "reused",
 * "unknown", "missing"), or "logout" when this or another tab logged out.
 * @typedef {"logout" | "revoked" | "expired" | "reused" | "unknown" | "missing" | (string & {})} SessionEndReason
 */

/**
 * Two local clocks, both in milliseconds. `mono` (performance.now) does not jump when the user
 * changes the system time but, on some systems, stands still while the machine sleeps; `wall`
 * (Date.now) keeps counting through sleep but may jump. A deadline is tracked on both and the
 * earlier one wins, so a laptop that wakes up after an hour knows its token is stale.
 * @typedef {{ mono: () => number, wall: () => number }} Clock
 */

/**
 * When the current access token stops being usable, on both local clocks.
 * @typedef {{ lifetimeMs: number, monoDeadline: number, wallDeadline: number }} Expiry
 */

/**
 * The subset of the Web Locks API the client uses (`navigator.locks`).
 * @typedef {{ request: (name: string, options: { signal?: AbortSignal }, callback: () => Promise<any>) => Promise<any> }} LockManagerLike
 */

/**
 * The subset of a BroadcastChannel the client uses.
 * @typedef {{ postMessage: (message: any) => void, close: () => void, onmessage: ((event: MessageEvent) => any) | null }} ChannelLike
 */

/**
 * @typedef {Object} ClientOptions
 * @property {string} [baseUrl] Origin (and optional path prefix) of the Tessera server, without a
 *   trailing slash. Defaults to `""`: the page's own origin.
 * @property {string[]} [tokenOrigins] Origins to which `fetch` attaches the access token. Requests to
 *   any other origin are passed through untouched, so the token never leaks to a third party.
 *   Defaults to the origin of `baseUrl`.
 * @property {typeof globalThis.fetch} [fetch] Defaults to the global `fetch`.
 * @property {Clock} [clock] Defaults to `performance.now` and `Date.now`.
 * @property {LockManagerLike | null} [locks] Defaults to `navigator.locks` where available; `null`
 *   disables cross-tab locking (single flight within the page still holds).
 * @property {(new (name: string) => ChannelLike) | null} [BroadcastChannel] Defaults to the global
 *   `BroadcastChannel`; `null` disables cross-tab hand-over.
 * @property {string} [channelName] Name of the Web Lock and of the BroadcastChannel. Defaults to
 *   `"tessera:" + origin of baseUrl`.
 * @property {number} [lockTimeoutMs] How long to wait for another tab's refresh before refreshing
 *   anyway (a frozen tab must not block everyone). Defaults to 15 000.
 * @property {number} [requestTimeoutMs] Time limit of a refresh or logout request. Defaults to 10 000.
 * @property {number[]} [retryDelaysMs] Pauses between retries of a refresh that failed for a
 *   transient reason (network, 5xx, 429) when no usable token is left. Defaults to `[250, 1000]`.
 * @property {EventTarget | null} [window] Where `online` and `pageshow` are listened for. Defaults to
 *   the global object in a browser.
 * @property {(EventTarget & { visibilityState?: string }) | null} [document] Where
 *   `visibilitychange` is listened for. Defaults to `document` in a browser.
 */

/**
 * What `onRefresh` listeners and `status()` report. Never contains the token itself.
 * @typedef {Object} TokenInfo
 * @property {"login" | "refresh" | "tab"} source How the current token arrived: a login, a refresh
 *   over the network by this tab, or handed over by another tab.
 * @property {string | null} sessionId
 * @property {number} lifetimeMs The token's whole lifetime (`expires_in`).
 * @property {number} expiresInMs Time left before it expires, by the local clocks.
 * @property {number} renewInMs Time left before the client renews it (0: at the next call).
 */

/**
 * @typedef {Object} TesseraClient
 * @property {() => Promise<boolean>} restore Renews from the refresh cookie; true if it still holds
 *   a session (after a reload). A missing cookie gives false without calling `onSessionEnd`.
 * @property {(username: string, password: string) => Promise<{ user_id: string, username: string }>} register
 * @property {(username: string, password: string) => Promise<{ session_id: string, expires_in: number }>} login
 * @property {(input: RequestInfo | URL, init?: RequestInit) => Promise<Response>} fetch Drop-in fetch
 *   that attaches the access token (renewing it first when needed) and, on `401 invalid_token`,
 *   renews once and retries once. Rejects with `TesseraError` code "session_ended" when no session is left.
 * @property {(callback: (reason: SessionEndReason) => void) => () => void} onSessionEnd Returns an unsubscribe function.
 * @property {(callback: (info: TokenInfo) => void) => () => void} onRefresh Called whenever a new
 *   access token is in place (login, refresh, or hand-over from another tab). Returns an unsubscribe function.
 * @property {() => TokenInfo | null} status The current token's timing, or null when signed out.
 * @property {() => Promise<{ user_id: string, username: string, session_id: string }>} me
 * @property {() => Promise<Array<SessionInfo>>} sessions
 * @property {(id: string) => Promise<void>} revokeSession
 * @property {() => Promise<void>} logout Ends this session on the server and in every tab.
 * @property {() => Promise<void>} logoutAll Ends every session of the user.
 * @property {() => void} close Stops listening to other tabs and to page events.
 */

/**
 * @typedef {Object} SessionInfo
 * @property {string} id
 * @property {string} created_at
 * @property {string} last_used_at
 * @property {string} expires_at
 * @property {string | null} user_agent
 * @property {string | null} ip
 * @property {boolean} current
 */

/** The smallest renewal margin, whatever the token's lifetime (but see `renewalMarginMs`). */
export const MIN_RENEWAL_MARGIN_MS = 5_000;

/** Error raised by the client; `code` is the server's `error` code or one of the client's own. */
export class TesseraError extends Error {
  /**
   * @param {string} code e.g. "invalid_credentials", "session_ended", "network_error".
   * @param {string} message
   * @param {{ status?: number, reason?: SessionEndReason, retryAfter?: number, cause?: unknown }} [details]
   */
  constructor(code, message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "TesseraError";
    /** @type {string} */
    this.code = code;
    /** @type {number | undefined} HTTP status, when the server answered. */
    this.status = details.status;
    /** @type {SessionEndReason | undefined} Set when `code` is "session_ended". */
    this.reason = details.reason;
    /** @type {number | undefined} Seconds, from `Retry-After` on a 429. */
    this.retryAfter = details.retryAfter;
  }
}

/** @type {Clock} */
export const systemClock = {
  mono: () => performance.now(),
  wall: () => Date.now(),
};

/**
 * The deadline of a token that, at the clock's current reading, has `remainingMs` left.
 * @param {number} lifetimeMs
 * @param {number} remainingMs
 * @param {Clock} clock
 * @returns {Expiry}
 */
export function expiryAfter(lifetimeMs, remainingMs, clock) {
  return {
    lifetimeMs,
    monoDeadline: clock.mono() + remainingMs,
    wallDeadline: clock.wall() + remainingMs,
  };
}

/**
 * Time left before the deadline; the smaller of the two clocks' answers.
 * @param {Expiry} expiry
 * @param {Clock} clock
 */
export function remainingMs(expiry, clock) {
  return Math.min(expiry.monoDeadline - clock.mono(), expiry.wallDeadline - clock.wall());
}

/**
 * How long before expiry the client renews: 10 % of the lifetime, at least 5 s, but never more than
 * a quarter of the lifetime (so very short tokens, as in tests, are still used for three quarters
 * of their life). A 15-minute token is renewed 90 s early, a 30-second one 5 s early, a 2-second
 * one 0.5 s early.
 * @param {number} lifetimeMs
 */
export function renewalMarginMs(lifetimeMs) {
  return Math.min(Math.max(MIN_RENEWAL_MARGIN_MS, lifetimeMs * 0.1), lifetimeMs * 0.25);
}

/**
 * True when the token is within its renewal margin of expiry, or past it.
 * @param {Expiry} expiry
 * @param {Clock} clock
 */
export function needsRenewal(expiry, clock) {
  return remainingMs(expiry, clock) <= renewalMarginMs(expiry.lifetimeMs);
}

/**
 * The session-end reason carried by a refresh answer, or null when the answer does not end the
 * session. Only `401 invalid_refresh_token` does; a missing or non-string `reason` reads "unknown".
 * @param {number} status
 * @param {unknown} body the parsed JSON body, if any
 * @returns {SessionEndReason | null}
 */
export function sessionEndReason(status, body) {
  if (status !== 401 || !isRecord(body) || body.error !== "invalid_refresh_token") return null;
  return typeof body.reason === "string" && body.reason !== "" ? body.reason : "unknown";
}

/**
 * True for refresh failures that may go away by themselves: no answer, 5xx, 429, 408.
 * @param {unknown} error
 */
export function isTransient(error) {
  if (!(error instanceof TesseraError)) return true;
  if (error.code === "network_error") return true;
  const status = error.status ?? 0;
  return status >= 500 || status === 429 || status === 408;
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isRecord(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** @param {number} ms */
function timeoutSignal(ms) {
  if (typeof AbortSignal.timeout === "function") return AbortSignal.timeout(ms);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new DOMException("timed out", "TimeoutError")), ms);
  return controller.signal;
}

/** @param {number} ms */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * @param {Response} response
 * @returns {Promise<unknown>}
 */
async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/**
 * @param {Response} response
 * @param {unknown} body
 */
function errorFrom(response, body) {
  const code = isRecord(body) && typeof body.error === "string" ? body.error : `http_${response.status}`;
  const message =
    isRecord(body) && typeof body.error_description === "string"
      ? body.error_description
      : `${response.status} ${response.statusText}`.trim();
  const retryAfterHeader = response.headers.get("Retry-After");
  const retryAfter = retryAfterHeader !== null && /^\d+$/.test(retryAfterHeader) ? Number(retryAfterHeader) : undefined;
  return new TesseraError(code, message, { status: response.status, retryAfter });
}

/** @param {SessionEndReason} reason */
function sessionEnded(reason) {
  return new TesseraError("session_ended", `The session has ended (${reason}).`, { reason });
}

/** @param {unknown} error */
function isSessionEnded(error) {
  return error instanceof TesseraError && error.code === "session_ended";
}

/**
 * Creates a client. One per page is the intended use.
 * @param {ClientOptions} [options]
 * @returns {TesseraClient}
 */
export function createClient(options = {}) {
  const baseUrl = (options.baseUrl ?? "").replace(/\/+$/, "");
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const clock = options.clock ?? systemClock;
  const locks = options.locks !== undefined ? options.locks : (globalThis.navigator?.locks ?? null);
  const Channel =
    options.BroadcastChannel !== undefined ? options.BroadcastChannel : (globalThis.BroadcastChannel ?? null);
  const lockTimeoutMs = options.lockTimeoutMs ?? 15_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const retryDelaysMs = options.retryDelaysMs ?? [250, 1000];
  const pageBase = globalThis.location?.href;
  const apiOrigin = originOf(baseUrl || pageBase || "");
  const tokenOrigins = new Set(options.tokenOrigins ?? (apiOrigin ? [apiOrigin] : []));
  const name = options.channelName ?? `tessera:${apiOrigin}`;

  /** @type {string | null} */
  let token = null;
  /** @type {Expiry | null} */
  let expiry = null;
  /** @type {"login" | "refresh" | "tab"} */
  let tokenSource = "refresh";
  /** @type {string | null} */
  let sessionId = null;
  /**
   * This page's count of token changes (new token or session end), to tell whether the token a
   * caller saw is still the current one. Local to the page: not the server's token generation.
   */
  let tokenVersion = 0;
  /** Bumped by login and logout: a refresh that started before is stale and its result dropped. */
  let epoch = 0;
  /** @type {"unknown" | "active" | "ended"} "unknown" until the first login or renewal answers. */
  let state = "unknown";
  /** @type {SessionEndReason | null} */
  let endReason = null;
  /** restore() calls in progress: a missing cookie then means "not signed in", not an ended session. */
  let quietMissing = 0;
  /** @type {Set<(reason: SessionEndReason) => void>} */
  const endListeners = new Set();
  /** @type {Set<(info: TokenInfo) => void>} */
  const refreshListeners = new Set();

  /** @param {string} path */
  const url = (path) => `${baseUrl}${path}`;

  /** @type {ChannelLike | null} */
  const channel = Channel ? new Channel(name) : null;
  if (channel) channel.onmessage = (event) => onChannelMessage(event.data);

  // ---- token state -------------------------------------------------------------------------

  function usable() {
    return token !== null && expiry !== null && !needsRenewal(expiry, clock);
  }

  /** @returns {TokenInfo | null} */
  function status() {
    if (token === null || expiry === null) return null;
    const left = remainingMs(expiry, clock);
    return {
      source: tokenSource,
      sessionId,
      lifetimeMs: expiry.lifetimeMs,
      expiresInMs: Math.max(0, left),
      renewInMs: Math.max(0, left - renewalMarginMs(expiry.lifetimeMs)),
    };
  }

  /**
   * @param {string} accessToken
   * @param {Expiry} newExpiry
   * @param {string | null} newSessionId
   * @param {"login" | "refresh" | "tab"} source
   */
  function accept(accessToken, newExpiry, newSessionId, source) {
    token = accessToken;
    expiry = newExpiry;
    tokenSource = source;
    sessionId = newSessionId ?? sessionId;
    tokenVersion += 1;
    state = "active";
    endReason = null;
    if (source !== "tab" && channel) {
      // Hand the token to the other tabs with its remaining lifetime: their clocks have other origins.
      channel.postMessage({
        type: "token",
        access_token: accessToken,
        session_id: sessionId,
        lifetime_ms: newExpiry.lifetimeMs,
        remaining_ms: remainingMs(newExpiry, clock),
      });
    }
    const info = status();
    if (info) for (const listener of [...refreshListeners]) safeCall(() => listener(info));
  }

  /**
   * Accepts a token response that arrived at `arrival`.
   * @param {unknown} body
   * @param {{ mono: number, wall: number }} arrival
   * @param {"login" | "refresh"} source
   */
  function acceptResponse(body, arrival, source) {
    if (!isRecord(body) || typeof body.access_token !== "string" || typeof body.expires_in !== "number") {
      throw new TesseraError("invalid_response", "The server's token response is malformed.");
    }
    const lifetimeMs = body.expires_in * 1000;
    const newExpiry = {
      lifetimeMs,
      monoDeadline: arrival.mono + lifetimeMs,
      wallDeadline: arrival.wall + lifetimeMs,
    };
    const sid = typeof body.session_id === "string" ? body.session_id : null;
    accept(body.access_token, newExpiry, sid, source);
  }

  /**
   * @param {SessionEndReason} reason
   * @param {{ broadcast: boolean, notify?: boolean }} how
   */
  function end(reason, how) {
    const wasEnded = state === "ended";
    const endedSession = sessionId;
    token = null;
    expiry = null;
    sessionId = null;
    tokenVersion += 1;
    epoch += 1;
    state = "ended";
    endReason = reason;
    if (how.broadcast && channel) channel.postMessage({ type: "end", reason, session_id: endedSession });
    if (!wasEnded && how.notify !== false) {
      for (const listener of [...endListeners]) safeCall(() => listener(reason));
    }
  }

  /** @param {unknown} message */
  function onChannelMessage(message) {
    if (!isRecord(message)) return;
    if (message.type === "token") {
      const { access_token: accessToken, lifetime_ms: lifetimeMs, remaining_ms: left } = message;
      if (typeof accessToken !== "string" || typeof lifetimeMs !== "number" || typeof left !== "number") return;
      // Keep ours if it lives longer (messages from a slow tab may arrive late).
      if (token !== null && expiry !== null && remainingMs(expiry, clock) >= left) return;
      const sid = typeof message.session_id === "string" ? message.session_id : null;
      accept(accessToken, expiryAfter(lifetimeMs, left, clock), sid, "tab");
    } else if (message.type === "end" && typeof message.reason === "string") {
      // A logout clears the shared cookie, so it ends every tab's session; any other end only
      // concerns the tabs that hold that same session.
      if (message.reason === "logout" || (sessionId !== null && message.session_id === sessionId)) {
        end(message.reason, { broadcast: false });
      }
    }
  }

  /** @param {() => void} fn */
  function safeCall(fn) {
    try {
      fn();
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  // ---- refresh -----------------------------------------------------------------------------

  /**
   * Runs `task` holding the origin-wide lock, or without it when there are no Web Locks, the
   * lock could not be had within `lockTimeoutMs` (a frozen tab must not block the others; the
   * server's grace window absorbs the rare race that follows), or the lock manager refused
   * (e.g. a SecurityError in a sandboxed frame).
   * @template T
   * @param {() => Promise<T>} task
   * @returns {Promise<T>}
   */
  async function withLock(task) {
    if (!locks) return task();
    let acquired = false;
    try {
      return await locks.request(name, { signal: timeoutSignal(lockTimeoutMs) }, () => {
        acquired = true;
        return task();
      });
    } catch (error) {
      if (!acquired) return task();
      throw error;
    }
  }

  /** One refresh over the network. Throws TesseraError on failure. */
  async function refreshOverNetwork() {
    const startedEpoch = epoch;
    /** @type {Response} */
    let response;
    try {
      response = await fetchImpl(url("/auth/refresh"), {
        method: "POST",
        credentials: "include",
        cache: "no-store",
        signal: timeoutSignal(requestTimeoutMs),
      });
    } catch (error) {
      throw new TesseraError("network_error", "The refresh request got no answer.", { cause: error });
    }
    const arrival = { mono: clock.mono(), wall: clock.wall() };
    const body = await readJson(response);
    if (response.ok) {
      // A login or logout happened meanwhile: this answer belongs to the past.
      if (epoch === startedEpoch) acceptResponse(body, arrival, "refresh");
      return;
    }
    const reason = sessionEndReason(response.status, body);
    if (reason !== null) {
      if (epoch === startedEpoch) {
        // restore() reports a missing cookie by its result: a session this page never had did not end.
        const quiet = reason === "missing" && quietMissing > 0 && state === "unknown";
        end(reason, { broadcast: !quiet && state === "active", notify: !quiet });
      }
      throw sessionEnded(reason);
    }
    throw errorFrom(response, body);
  }

  /**
   * The page's single flight. `seen` is the token version the caller found wanting: once the
   * lock is ours, a different version with a usable token means another tab (or a refresh we
   * waited behind) already renewed, and the network is skipped.
   */
  /** @type {Promise<void> | null} */
  let inflight = null;

  /** @param {number} seen */
  function renew(seen) {
    if (!inflight) {
      inflight = withLock(async () => {
        if (tokenVersion !== seen && usable()) return;
        if (channel && locks) {
          // The tab that held the lock posted its token before releasing it; let that message land.
          await sleep(0);
          if (tokenVersion !== seen && usable()) return;
        }
        await refreshOverNetwork();
      }).finally(() => {
        inflight = null;
      });
    }
    return inflight;
  }

  /** A token to send now, renewing first when it is near expiry or missing. */
  async function ensureToken() {
    if (usable() && token !== null) return token;
    /** @type {unknown} */
    let lastError = null;
    for (let attempt = 0; attempt <= retryDelaysMs.length; attempt += 1) {
      if (attempt > 0) await sleep(retryDelaysMs[attempt - 1]);
      if (usable() && token !== null) return token;
      try {
        await renew(tokenVersion);
        if (token !== null) return token;
        throw sessionEnded(endReason ?? "unknown");
      } catch (error) {
        if (!isTransient(error)) throw error;
        lastError = error;
        // Keep using the current token while it has not expired: the next call will renew.
        if (token !== null && expiry !== null && remainingMs(expiry, clock) > 0) return token;
      }
    }
    throw lastError;
  }

  // ---- page events -------------------------------------------------------------------------

  function onWake() {
    if (state !== "active" || expiry === null || !needsRenewal(expiry, clock)) return;
    renew(tokenVersion).catch(() => {
      // Transient failures are retried by the next call; session ends are reported by renew().
    });
  }
  const win = options.window !== undefined ? options.window : typeof globalThis.addEventListener === "function" ? globalThis : null;
  const doc = options.document !== undefined ? options.document : (globalThis.document ?? null);
  const onVisibility = () => {
    if (!doc || doc.visibilityState === undefined || doc.visibilityState === "visible") onWake();
  };
  doc?.addEventListener("visibilitychange", onVisibility);
  win?.addEventListener("online", onWake);
  win?.addEventListener("pageshow", onWake);

  // ---- requests ----------------------------------------------------------------------------

  /** @param {string} href */
  function originOf(href) {
    try {
      return new URL(href, pageBase).origin;
    } catch {
      return "";
    }
  }

  /** @param {RequestInfo | URL} input */
  function attachesTo(input) {
    const href = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    let target;
    try {
      target = new URL(href, pageBase ?? (baseUrl || undefined));
    } catch {
      return true; // a relative URL with no base to resolve it against: same origin
    }
    return tokenOrigins.has(target.origin);
  }

  /**
   * @param {RequestInfo | URL} input
   * @param {RequestInit | undefined} init
   * @param {string} accessToken
   * @returns {[RequestInfo | URL, RequestInit]}
   */
  function withBearer(input, init, accessToken) {
    const isRequest = typeof Request !== "undefined" && input instanceof Request;
    const headers = new Headers(init?.headers ?? (isRequest ? input.headers : undefined));
    headers.set("Authorization", `Bearer ${accessToken}`);
    return [input, { ...init, headers }];
  }

  /** @param {Response} response */
  async function isInvalidToken(response) {
    if (response.status !== 401) return false;
    if ((response.headers.get("WWW-Authenticate") ?? "").includes("invalid_token")) return true;
    const body = await readJson(response.clone());
    return isRecord(body) && body.error === "invalid_token";
  }

  /**
   * @param {RequestInfo | URL} input
   * @param {RequestInit} [init]
   * @returns {Promise<Response>}
   */
  async function authFetch(input, init) {
    if (!attachesTo(input)) return fetchImpl(input, init);
    const isRequest = typeof Request !== "undefined" && input instanceof Request;
    const spare = isRequest ? input.clone() : input; // a Request's body can be read only once
    const sent = await ensureToken();
    const sentVersion = tokenVersion;
    const response = await fetchImpl(...withBearer(input, init, sent));
    if (!(await isInvalidToken(response))) return response;
    // Renew once, unless a renewal already replaced the token meanwhile, and retry once.
    if (tokenVersion === sentVersion) {
      try {
        await renew(sentVersion);
      } catch (error) {
        if (isSessionEnded(error)) throw error;
        return response;
      }
    }
    if (token === null) throw sessionEnded(endReason ?? "unknown");
    return fetchImpl(...withBearer(spare, init, token));
  }

  /**
   * @param {string} path
   * @param {RequestInit} [init]
   */
  async function authJson(path, init) {
    const response = await authFetch(url(path), init);
    const body = await readJson(response);
    if (!response.ok) throw errorFrom(response, body);
    return body;
  }

  /**
   * @param {string} path
   * @param {string} username
   * @param {string} password
   */
  async function postCredentials(path, username, password) {
    const response = await fetchImpl(url(path), {
      method: "POST",
      credentials: "include",
      cache: "no-store",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    const arrival = { mono: clock.mono(), wall: clock.wall() };
    const body = await readJson(response);
    if (!response.ok) throw errorFrom(response, body);
    return { body, arrival };
  }

  /** Tells the server to end the cookie's session and clear the cookie (idempotent). */
  async function postLogout() {
    const response = await fetchImpl(url("/auth/logout"), {
      method: "POST",
      credentials: "include",
      cache: "no-store",
      signal: timeoutSignal(requestTimeoutMs),
    });
    if (!response.ok) throw errorFrom(response, await readJson(response));
  }

  // ---- the client --------------------------------------------------------------------------

  return {
    async restore() {
      if (usable()) return true;
      quietMissing += 1;
      try {
        await ensureToken();
        return true;
      } catch (error) {
        if (isSessionEnded(error)) return false;
        throw error;
      } finally {
        quietMissing -= 1;
      }
    },

    async register(username, password) {
      const { body } = await postCredentials("/auth/register", username, password);
      if (!isRecord(body) || typeof body.user_id !== "string" || typeof body.username !== "string") {
        throw new TesseraError("invalid_response", "The server's register response is malformed.");
      }
      return { user_id: body.user_id, username: body.username };
    },

    async login(username, password) {
      const { body, arrival } = await postCredentials("/auth/login", username, password);
      epoch += 1; // a refresh still in flight carries the previous session's answer
      acceptResponse(body, arrival, "login");
      return { session_id: sessionId ?? "", expires_in: expiry ? expiry.lifetimeMs / 1000 : 0 };
    },

    fetch: authFetch,

    onSessionEnd(callback) {
      endListeners.add(callback);
      return () => endListeners.delete(callback);
    },

    onRefresh(callback) {
      refreshListeners.add(callback);
      return () => refreshListeners.delete(callback);
    },

    status,

    async me() {
      return /** @type {any} */ (await authJson("/auth/me"));
    },

    async sessions() {
      const body = await authJson("/auth/sessions");
      return isRecord(body) && Array.isArray(body.sessions) ? body.sessions : [];
    },

    async revokeSession(id) {
      await authJson(`/auth/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
      if (id === sessionId) {
        // This device's own session: the cookie is dead now, so clear it too.
        await withLock(postLogout).catch(() => {});
        end("revoked", { broadcast: true });
      }
    },

    async logout() {
      // Only a confirmed logout ends the session here: if the server was not told, the cookie
      // still works, and saying "signed out" would be a lie on a shared computer.
      await withLock(postLogout);
      end("logout", { broadcast: true });
    },

    async logoutAll() {
      await authJson("/auth/logout-all", { method: "POST" });
      await withLock(postLogout).catch(() => {}); // the session is revoked already; this clears the cookie
      end("logout", { broadcast: true });
    },

    close() {
      if (channel) {
        channel.onmessage = null;
        channel.close();
      }
      doc?.removeEventListener("visibilitychange", onVisibility);
      win?.removeEventListener("online", onWake);
      win?.removeEventListener("pageshow", onWake);
    },
  };
}
