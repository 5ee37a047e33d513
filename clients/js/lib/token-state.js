// @ts-check
/**
 * The page's one copy of the access token and what is known about it: its expiry, its session,
 * how it arrived, and whether the session has ended. Every change goes through `accept` or `end`,
 * which tell the other tabs and the page's listeners.
 * @module tessera-client/token-state
 */

import { TesseraError, sessionEnded } from "./errors.js";
import { isRecord } from "./json.js";
import { expiryAfter, expiryFrom, needsRenewal, remainingMs, renewalMarginMs } from "./expiry.js";

/** @typedef {import("./expiry.js").Clock} Clock */
/** @typedef {import("./expiry.js").ClockReading} ClockReading */
/** @typedef {import("./expiry.js").Expiry} Expiry */
/** @typedef {import("./errors.js").SessionEndReason} SessionEndReason */
/** @typedef {import("./tab-channel.js").TabChannel} TabChannel */
/** @typedef {import("./tab-channel.js").Handover} Handover */

/**
 * What `onRefresh` listeners and `status()` report. Never contains the token itself.
 * @typedef {Object} TokenInfo
 * @property {"login" | "refresh" | "tab"} source How the current token arrived: a login, a refresh
 *   over the network by this tab, or handed over by another tab.
 * @property {string | null} sessionId
 * @property {number} lifetimeMs The token's whole lifetime (`expires_in`).
 * @property {number} expiresInMs Time left before it expires, by the local clocks.
 * @property {number} renewInMs Time left before the client renews it (0: at the next call).
 * @property {string | null} keyThumbprint The RFC 7638 thumbprint of the device key the token is
 *   bound to (DPoP), or null for a Bearer token.
 */

/**
 * The token to send, and the device key it is bound to, if any.
 * @typedef {Object} Credential
 * @property {string} accessToken
 * @property {string | null} jkt the key's thumbprint when the token is DPoP-bound; null for Bearer
 */

/**
 * Callbacks of the page, each called on its own so that one that throws cannot stop the others
 * or the client (the error is rethrown in a microtask, where it reaches the console).
 * @template T
 */
class Listeners {
  /** @type {Set<(value: T) => void>} */
  #callbacks = new Set();

  /**
   * @param {(value: T) => void} callback
   * @returns {() => void} unsubscribes
   */
  add(callback) {
    this.#callbacks.add(callback);
    return () => this.#callbacks.delete(callback);
  }

  /** @param {T} value */
  emit(value) {
    for (const callback of [...this.#callbacks]) {
      try {
        callback(value);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/**
 * True for a token response whose token is bound to the proof's key (`token_type: DPoP`); a
 * server that ignores proofs (DPoP off) answers "Bearer", and the key is then not needed.
 * @param {unknown} body
 */
export function isBoundTokenResponse(body) {
  return isRecord(body) && typeof body.token_type === "string" && body.token_type.toLowerCase() === "dpop";
}

export class TokenState {
  /** @type {Clock} */
  #clock;
  /** @type {TabChannel | null} */
  #tabs;
  /** @type {Credential | null} */
  #token = null;
  /** @type {Expiry | null} */
  #expiry = null;
  /** @type {"login" | "refresh" | "tab"} */
  #source = "refresh";
  /** @type {string | null} */
  #sessionId = null;
  /**
   * This page's count of token changes (new token or session end), to tell whether the token a
   * caller saw is still the current one. Local to the page: not the server's token generation.
   */
  #tokenVersion = 0;
  /** Bumped by login and logout: a refresh that started before is stale and its result dropped. */
  #epoch = 0;
  /** @type {"unknown" | "active" | "ended"} "unknown" until the first login or renewal answers. */
  #phase = "unknown";
  /** @type {SessionEndReason | null} */
  #endReason = null;
  /** @type {Listeners<SessionEndReason>} */
  #endListeners = new Listeners();
  /** @type {Listeners<TokenInfo>} */
  #refreshListeners = new Listeners();
  /** @type {(jkt: string) => void} */
  #keyReleased;

  /**
   * @param {Clock} clock
   * @param {TabChannel | null} tabs where new tokens and session ends are announced
   * @param {(jkt: string) => void} keyReleased called when a session bound to that key ends here
   */
  constructor(clock, tabs, keyReleased = () => {}) {
    this.#clock = clock;
    this.#tabs = tabs;
    this.#keyReleased = keyReleased;
  }

  get sessionId() {
    return this.#sessionId;
  }

  get lifetimeMs() {
    return this.#expiry?.lifetimeMs ?? null;
  }

  get tokenVersion() {
    return this.#tokenVersion;
  }

  get epoch() {
    return this.#epoch;
  }

  get phase() {
    return this.#phase;
  }

  /**
   * The token, if it is not yet within its renewal margin.
   * @returns {Credential | null}
   */
  usableToken() {
    return this.#token !== null && this.#expiry !== null && !needsRenewal(this.#expiry, this.#clock)
      ? this.#token
      : null;
  }

  /**
   * The token, if it has not expired, even when it is due for renewal.
   * @returns {Credential | null}
   */
  unexpiredToken() {
    return this.#token !== null && this.#expiry !== null && remainingMs(this.#expiry, this.#clock) > 0
      ? this.#token
      : null;
  }

  /**
   * The token, or the session_ended error when the session ended without a successor.
   * @returns {Credential}
   */
  requireToken() {
    if (this.#token === null) throw sessionEnded(this.#endReason ?? "unknown");
    return this.#token;
  }

  /** True for a live session whose token is within its renewal margin or past it. */
  isStale() {
    return this.#phase === "active" && this.#expiry !== null && needsRenewal(this.#expiry, this.#clock);
  }

  /** @returns {TokenInfo | null} */
  status() {
    if (this.#token === null || this.#expiry === null) return null;
    const left = remainingMs(this.#expiry, this.#clock);
    return {
      source: this.#source,
      sessionId: this.#sessionId,
      lifetimeMs: this.#expiry.lifetimeMs,
      expiresInMs: Math.max(0, left),
      renewInMs: Math.max(0, left - renewalMarginMs(this.#expiry.lifetimeMs)),
      keyThumbprint: this.#token.jkt,
    };
  }

  /** @param {(reason: SessionEndReason) => void} callback */
  onSessionEnd(callback) {
    return this.#endListeners.add(callback);
  }

  /** @param {(info: TokenInfo) => void} callback */
  onRefresh(callback) {
    return this.#refreshListeners.add(callback);
  }

  /** A login is starting a new session: a refresh still in flight carries the previous one's answer. */
  newEpoch() {
    this.#epoch += 1;
  }

  /**
   * @param {Credential} token
   * @param {Expiry} expiry
   * @param {string | null} sessionId
   * @param {"login" | "refresh" | "tab"} source
   */
  accept(token, expiry, sessionId, source) {
    this.#token = token;
    this.#expiry = expiry;
    this.#source = source;
    this.#sessionId = sessionId ?? this.#sessionId;
    this.#tokenVersion += 1;
    this.#phase = "active";
    this.#endReason = null;
    if (source !== "tab") this.#tabs?.postToken(token, this.#sessionId, expiry);
    const info = this.status();
    if (info) this.#refreshListeners.emit(info);
  }

  /**
   * Accepts a token response that arrived at `arrival`, to a request whose proof was signed by
   * the key `jkt` (null: no proof was sent).
   * @param {unknown} body
   * @param {ClockReading} arrival
   * @param {"login" | "refresh"} source
   * @param {string | null} jkt
   */
  acceptResponse(body, arrival, source, jkt) {
    if (!isRecord(body) || typeof body.access_token !== "string" || typeof body.expires_in !== "number") {
      throw new TesseraError("invalid_response", "The server's token response is malformed.");
    }
    const sessionId = typeof body.session_id === "string" ? body.session_id : null;
    const token = { accessToken: body.access_token, jkt: isBoundTokenResponse(body) ? jkt : null };
    this.accept(token, expiryFrom(body.expires_in * 1000, arrival), sessionId, source);
  }

  /**
   * A token another tab handed over.
   * @param {Handover} handover
   */
  adopt(handover) {
    // Keep ours if it lives longer (messages from a slow tab may arrive late).
    if (this.#token !== null && this.#expiry !== null && remainingMs(this.#expiry, this.#clock) >= handover.remainingMs) {
      return;
    }
    const expiry = expiryAfter(handover.lifetimeMs, handover.remainingMs, this.#clock);
    this.accept({ accessToken: handover.accessToken, jkt: handover.jkt }, expiry, handover.sessionId, "tab");
  }

  /**
   * @param {SessionEndReason} reason
   * @param {{ broadcast: boolean, notify?: boolean }} how
   */
  end(reason, how) {
    const wasEnded = this.#phase === "ended";
    const endedSession = this.#sessionId;
    const endedKey = this.#token?.jkt ?? null;
    this.#token = null;
    this.#expiry = null;
    this.#sessionId = null;
    this.#tokenVersion += 1;
    this.#epoch += 1;
    this.#phase = "ended";
    this.#endReason = reason;
    if (how.broadcast) this.#tabs?.postEnd(reason, endedSession);
    if (endedKey !== null) this.#keyReleased(endedKey);
    if (!wasEnded && how.notify !== false) this.#endListeners.emit(reason);
  }

  /**
   * Another tab's session ended.
   * @param {SessionEndReason} reason
   * @param {unknown} sessionId the session that ended, as the other tab posted it
   */
  endedInAnotherTab(reason, sessionId) {
    // A logout clears the shared cookie, so it ends every tab's session; any other end only
    // concerns the tabs that hold that same session.
    if (reason === "logout" || (this.#sessionId !== null && sessionId === this.#sessionId)) {
      this.end(reason, { broadcast: false });
    }
  }
}
