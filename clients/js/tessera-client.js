// @ts-check
/**
 * Tessera browser client: keeps a short-lived access token in memory and renews it silently from
 * the HttpOnly refresh cookie, coordinating with the other tabs of the same origin.
 *
 * Plain ES modules with no dependencies and no build step. Start with {@link createClient}, which
 * wires together the modules of `lib/`, one job each (the code map is in README.md). The pure
 * helpers are re-exported here for tests.
 *
 * Invariants:
 * - the access token lives only in memory (`TokenState`): never in storage, never in the DOM;
 * - the refresh token is never seen by JavaScript (HttpOnly cookie); refresh and logout send no body;
 * - by default the session is bound (DPoP) to a non-extractable device key kept in IndexedDB: a
 *   copied cookie or token is worthless without it, and no script can read the key out;
 * - expiry is reckoned from `expires_in` and the local time the response arrived, never by comparing
 *   the server's clock with the browser's;
 * - at most one refresh is in flight per page, and tabs take turns through a Web Lock;
 * - only a `401 invalid_refresh_token` ends a session; network errors and 5xx are retried later.
 *
 * @module tessera-client
 */

import { bearerFetch, tokenSender } from "./lib/bearer-fetch.js";
import { deviceKeys } from "./lib/dpop.js";
import { TesseraError, errorFrom } from "./lib/errors.js";
import { systemClock } from "./lib/expiry.js";
import { isRecord, readJson } from "./lib/json.js";
import { onPageWake } from "./lib/page-wake.js";
import { renewal } from "./lib/renewal.js";
import { cookieRequests } from "./lib/requests.js";
import { openTabChannel } from "./lib/tab-channel.js";
import { tabLock } from "./lib/tab-lock.js";
import { TokenState, isBoundTokenResponse } from "./lib/token-state.js";

export { TesseraError, isTransient, sessionEndReason } from "./lib/errors.js";
export {
  MIN_RENEWAL_MARGIN_MS,
  expiryAfter,
  needsRenewal,
  remainingMs,
  renewalMarginMs,
  systemClock,
} from "./lib/expiry.js";

/** @typedef {import("./lib/errors.js").SessionEndReason} SessionEndReason */
/** @typedef {import("./lib/expiry.js").Clock} Clock */
/** @typedef {import("./lib/expiry.js").Expiry} Expiry */
/** @typedef {import("./lib/tab-lock.js").LockManagerLike} LockManagerLike */
/** @typedef {import("./lib/tab-channel.js").ChannelLike} ChannelLike */
/** @typedef {import("./lib/token-state.js").TokenInfo} TokenInfo */

/**
 * @typedef {Object} ClientOptions
 * @property {string} [baseUrl] Origin (and optional path prefix) of the Tessera server, without a
 *   trailing slash. Defaults to `""`: the page's own origin.
 * @property {string[]} [tokenOrigins] Origins to which `fetch` attaches the access token. Requests to
 *   any other origin are passed through untouched, so the token never leaks to a third party.
 *   Defaults to the origin of `baseUrl`.
 * @property {boolean} [dpop] Bind the session to a device key (DPoP, RFC 9449): a non-extractable
 *   P-256 key made at login and kept in IndexedDB, which signs a proof for the login, every refresh
 *   and every `fetch` of the bound token. Defaults to true; without WebCrypto or IndexedDB the
 *   client says so once in the console and uses Bearer tokens. `false` opts out.
 * @property {Crypto} [crypto] Defaults to the global `crypto`.
 * @property {IDBFactory | null} [indexedDB] Defaults to the global `indexedDB`; `null` as if there were none.
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
 * @property {(currentPassword: string, newPassword: string) => Promise<{ revoked_sessions: number }>} changePassword
 *   Sets a new password, proving the current one; every other session of the user ends (they
 *   see `onSessionEnd("revoked")` at their next refresh), this one goes on. A wrong current
 *   password rejects with TesseraError "invalid_credentials" (and counts as a failed login).
 * @property {(username: string) => Promise<void>} requestPasswordReset Asks the server to make a
 *   reset token for the application to deliver; resolves whether or not the user exists.
 * @property {(token: string, newPassword: string) => Promise<void>} resetPassword Sets a new
 *   password with a reset token. Every session of the user ends; if this page held one of them,
 *   it ends here with reason "password_changed". Rejects with TesseraError "invalid_reset_token" for a
 *   used, expired or unknown token.
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
  const pageBase = globalThis.location?.href;
  const apiOrigin = originOf(baseUrl || pageBase || "", pageBase);
  const name = options.channelName ?? `tessera:${apiOrigin}`;
  const win = options.window !== undefined ? options.window : typeof globalThis.addEventListener === "function" ? globalThis : null;
  const doc = options.document !== undefined ? options.document : (globalThis.document ?? null);

  /** @param {string} path */
  const url = (path) => `${baseUrl}${path}`;
  /** @param {string} href */
  const absolute = (href) => new URL(href, pageBase).href;

  const keys =
    options.dpop === false
      ? null
      : deviceKeys({
          crypto: options.crypto ?? globalThis.crypto,
          indexedDB: (options.indexedDB !== undefined ? options.indexedDB : globalThis.indexedDB) ?? undefined,
          name,
          clock,
        });
  if (options.dpop !== false && keys === null) warnUnbound("this browser has no WebCrypto or no IndexedDB");

  // Messages arrive asynchronously, after `tokens` exists.
  const tabs = openTabChannel(Channel, name, clock, {
    token: (handover) => tokens.adopt(handover),
    end: (reason, sessionId) => tokens.endedInAnotherTab(reason, sessionId),
  });
  // Whichever way a session ends here (logout, revocation, another tab), its key goes with it.
  const tokens = new TokenState(clock, tabs, (jkt) => void keys?.forget(jkt));
  const withLock = tabLock(locks, name, options.lockTimeoutMs ?? 15_000);
  const requests = cookieRequests({
    fetch: fetchImpl,
    url,
    absolute,
    keys,
    clock,
    timeoutMs: options.requestTimeoutMs ?? 10_000,
  });
  const renewer = renewal({
    tokens,
    requests,
    withLock,
    keys,
    tabsHandOver: tabs !== null && locks !== null,
    retryDelaysMs: options.retryDelaysMs ?? [250, 1000],
  });
  const base = pageBase ?? (baseUrl || undefined);
  const send = tokenSender({ fetch: fetchImpl, keys, base });
  const authFetch = bearerFetch({
    fetch: fetchImpl,
    send,
    tokenOrigins: new Set(options.tokenOrigins ?? (apiOrigin ? [apiOrigin] : [])),
    base,
    tokens,
    renewal: renewer,
  });
  const stopWaking = onPageWake(win, doc, renewer.renewIfStale);

  /**
   * Ends the session in every tab, and resolves once its key is deleted.
   * @param {import("./lib/errors.js").SessionEndReason} reason
   */
  async function endHere(reason) {
    const jkt = tokens.status()?.keyThumbprint ?? null;
    tokens.end(reason, { broadcast: true });
    if (jkt !== null) await keys?.forget(jkt);
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

  return {
    restore: renewer.restore,

    async register(username, password) {
      const { body } = await requests.postCredentials("/auth/register", username, password);
      if (!isRecord(body) || typeof body.user_id !== "string" || typeof body.username !== "string") {
        throw new TesseraError("invalid_response", "The server's register response is malformed.");
      }
      return { user_id: body.user_id, username: body.username };
    },

    async login(username, password) {
      // Under the lock: no tab refreshes with the old key while the cookie turns into the new
      // session's, and the key is stored only once the login succeeded (a failed one keeps the
      // session this browser may already hold).
      return withLock(async () => {
        const key = keys ? await keys.generate() : null;
        if (keys && key === null) warnUnbound("IndexedDB cannot be opened here");
        const { body, arrival } = await requests.postCredentials("/auth/login", username, password, key);
        // A server with DPoP off ignores the proof: an unbound session keeps no key (and no
        // earlier session's key may sign its refreshes).
        const bound = key !== null && isBoundTokenResponse(body);
        if (bound) {
          await keys?.keep(key).catch((error) => {
            // The session works in this page; other tabs and a reload will not find its key.
            console.warn("tessera-client: the device key could not be stored", error);
          });
        } else {
          await keys?.clear();
        }
        tokens.newEpoch();
        tokens.acceptResponse(body, arrival, "login", bound ? key.jkt : null);
        return { session_id: tokens.sessionId ?? "", expires_in: (tokens.lifetimeMs ?? 0) / 1000 };
      });
    },

    fetch: authFetch,

    onSessionEnd: (callback) => tokens.onSessionEnd(callback),

    onRefresh: (callback) => tokens.onRefresh(callback),

    status: () => tokens.status(),

    async me() {
      return /** @type {any} */ (await authJson("/auth/me"));
    },

    async sessions() {
      const body = await authJson("/auth/sessions");
      return isRecord(body) && Array.isArray(body.sessions) ? body.sessions : [];
    },

    async revokeSession(id) {
      await authJson(`/auth/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
      if (id === tokens.sessionId) {
        // This device's own session: the cookie is dead now, so clear it too.
        await withLock(requests.logout).catch(() => {});
        await endHere("revoked");
      }
    },

    async logout() {
      // Only a confirmed logout ends the session here: if the server was not told, the cookie
      // still works, and saying "signed out" would be a lie on a shared computer.
      await withLock(requests.logout);
      await endHere("logout");
    },

    async logoutAll() {
      await authJson("/auth/logout-all", { method: "POST" });
      await withLock(requests.logout).catch(() => {}); // the session is revoked already; this clears the cookie
      await endHere("logout");
    },

    async changePassword(currentPassword, newPassword) {
      const body = await authJson("/auth/password", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ current_password: currentPassword, new_password: newPassword }),
      });
      const revoked = isRecord(body) && typeof body.revoked_sessions === "number" ? body.revoked_sessions : 0;
      return { revoked_sessions: revoked };
    },

    async requestPasswordReset(username) {
      await requests.postJson("/auth/password-reset/request", { username });
    },

    async resetPassword(token, newPassword) {
      await requests.postJson("/auth/password-reset", { token, new_password: newPassword });
      const held = tokens.unexpiredToken();
      if (held === null) return;
      // The reset revoked every session of the token's user. Whether this page's session was one
      // of them (it may belong to another user) is the server's to say: ask, without renewing.
      const check = await send(url("/auth/me"), { cache: "no-store" }, held).catch(() => null);
      if (check?.status === 401) {
        await withLock(requests.logout).catch(() => {}); // the session is revoked; clear the cookie
        await endHere("password_changed");
      }
    },

    close() {
      tabs?.close();
      stopWaking();
    },
  };
}

let warnedUnbound = false;

/**
 * Says once per page that sessions are not bound to a device key, and why.
 * @param {string} why
 */
function warnUnbound(why) {
  if (warnedUnbound) return;
  warnedUnbound = true;
  console.warn(`tessera-client: ${why}, so sessions are not bound to a device key (DPoP): Bearer tokens are used.`);
}

/**
 * @param {string} href
 * @param {string | undefined} base
 */
function originOf(href, base) {
  try {
    return new URL(href, base).origin;
  } catch {
    return "";
  }
}
