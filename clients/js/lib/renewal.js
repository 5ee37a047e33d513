// @ts-check
/**
 * When and how the page renews its token: lazily, before a call that finds it near expiry or
 * missing; at once when the page wakes with a stale one; one refresh at a time per page, and per
 * origin through the tab lock. Only `401 invalid_refresh_token` ends a session; network errors,
 * 5xx and 429 are retried later.
 * @module tessera-client/renewal
 */

import { errorFrom, isSessionEnded, isTransient, sessionEndReason, sessionEnded } from "./errors.js";
import { isRecord } from "./json.js";

/** @typedef {import("./token-state.js").TokenState} TokenState */
/** @typedef {import("./requests.js").CookieRequests} CookieRequests */
/** @typedef {import("./tab-lock.js").WithLock} WithLock */
/** @typedef {import("./dpop.js").DeviceKeys} DeviceKeys */
/** @typedef {import("./errors.js").SessionEndReason} SessionEndReason */
/** @typedef {import("./token-state.js").Credential} Credential */

/**
 * @typedef {Object} Renewal
 * @property {() => Promise<Credential>} ensureToken A token to send now, renewing first when it is
 *   near expiry or missing. Rejects with session_ended, or with the last transient error when
 *   no token is left after the retries.
 * @property {(seen: number) => Promise<void>} renew Renews unless the token changed from version
 *   `seen` meanwhile; concurrent calls share one refresh.
 * @property {() => void} renewIfStale For a page that wakes up: renews now, in the background,
 *   if the token is near or past expiry, so the next call goes out with a fresh one.
 * @property {() => Promise<boolean>} restore Renews from the cookie; false when no session is left.
 */

/**
 * @param {Object} options
 * @param {TokenState} options.tokens
 * @param {CookieRequests} options.requests
 * @param {WithLock} options.withLock
 * @param {DeviceKeys | null} options.keys where the device key is, when sessions are bound to one
 * @param {boolean} options.tabsHandOver true when other tabs both take turns (Web Locks) and hand
 *   their tokens over (BroadcastChannel)
 * @param {number[]} options.retryDelaysMs
 * @returns {Renewal}
 */
export function renewal({ tokens, requests, withLock, keys, tabsHandOver, retryDelaysMs }) {
  /** The page's single flight. */
  /** @type {Promise<void> | null} */
  let inflight = null;
  /** restore() calls in progress: a missing cookie then means "not signed in", not an ended session. */
  let quietMissing = 0;

  /** One refresh over the network. Throws TesseraError on failure. */
  async function refreshOverNetwork() {
    const startedEpoch = tokens.epoch;
    // Read afresh under the lock: a login in another tab may have replaced the key with its own.
    const key = keys ? await keys.stored() : null;
    const { response, body, arrival } = await requests.refresh(key);
    if (response.ok) {
      // A login or logout happened meanwhile: this answer belongs to the past.
      if (tokens.epoch === startedEpoch) tokens.acceptResponse(body, arrival, "refresh", key?.jkt ?? null);
      return;
    }
    const reason = sessionEndReason(response.status, body) ?? keyMissing(response.status, body, key !== null);
    if (reason !== null) {
      if (key !== null) await keys?.forget(key.jkt);
      if (tokens.epoch === startedEpoch) {
        // restore() reports a missing cookie by its result: a session this page never had did not end.
        const quiet = reason === "missing" && quietMissing > 0 && tokens.phase === "unknown";
        tokens.end(reason, { broadcast: !quiet && tokens.phase === "active", notify: !quiet });
      }
      throw sessionEnded(reason);
    }
    throw errorFrom(response, body);
  }

  /**
   * Once the lock is ours, a version other than `seen` with a usable token means another tab (or
   * a refresh we waited behind) already renewed, and the network is skipped.
   * @param {number} seen
   */
  function renew(seen) {
    if (!inflight) {
      inflight = withLock(async () => {
        if (tokens.tokenVersion !== seen && tokens.usableToken() !== null) return;
        if (tabsHandOver) {
          // The tab that held the lock posted its token before releasing it; let that message land.
          await sleep(0);
          if (tokens.tokenVersion !== seen && tokens.usableToken() !== null) return;
        }
        await refreshOverNetwork();
      }).finally(() => {
        inflight = null;
      });
    }
    return inflight;
  }

  async function ensureToken() {
    const usable = tokens.usableToken();
    if (usable !== null) return usable;
    /** @type {unknown} */
    let lastError = null;
    for (let attempt = 0; attempt <= retryDelaysMs.length; attempt += 1) {
      if (attempt > 0) await sleep(retryDelaysMs[attempt - 1]);
      const current = tokens.usableToken();
      if (current !== null) return current;
      try {
        await renew(tokens.tokenVersion);
        return tokens.requireToken();
      } catch (error) {
        if (!isTransient(error)) throw error;
        lastError = error;
        // Keep using the current token while it has not expired: the next call will renew.
        const unexpired = tokens.unexpiredToken();
        if (unexpired !== null) return unexpired;
      }
    }
    throw lastError;
  }

  return {
    ensureToken,
    renew,

    renewIfStale() {
      if (!tokens.isStale()) return;
      renew(tokens.tokenVersion).catch(() => {
        // Transient failures are retried by the next call; session ends are reported by renew().
      });
    },

    async restore() {
      if (tokens.usableToken() !== null) return true;
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
  };
}

/**
 * A session bound to a device key that this browser does not have (its storage was cleared, or
 * the page opted out of DPoP) can never be renewed here: that ends it, as far as this page goes.
 * A refused proof that was sent is another matter (a clock far off, say) and ends nothing.
 * @param {number} status
 * @param {unknown} body
 * @param {boolean} sentProof
 * @returns {SessionEndReason | null}
 */
function keyMissing(status, body, sentProof) {
  return !sentProof && status === 401 && isRecord(body) && body.error === "invalid_dpop_proof" ? "dpop_key_missing" : null;
}

/** @param {number} ms */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
