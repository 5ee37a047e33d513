// @ts-check
/**
 * The requests that speak for the refresh cookie rather than the access token: refresh, logout,
 * and the credential posts that set the cookie. The refresh token stays in its HttpOnly cookie,
 * so refresh and logout send no body; what the answers mean is decided by the callers.
 * @module tessera-client/requests
 */

import { TesseraError, errorFrom } from "./errors.js";
import { readClock } from "./expiry.js";
import { readJson } from "./json.js";
import { timeoutSignal } from "./timeout-signal.js";

/** @typedef {import("./expiry.js").Clock} Clock */
/** @typedef {import("./expiry.js").ClockReading} ClockReading */

/**
 * @typedef {Object} CookieRequests
 * @property {() => Promise<{ response: Response, body: unknown, arrival: ClockReading }>} refresh
 *   Throws TesseraError "network_error" when no answer came; any answer is returned as it is.
 * @property {(path: string, username: string, password: string) => Promise<{ body: unknown, arrival: ClockReading }>} postCredentials
 *   Throws the server's error for a refusal.
 * @property {(path: string, body: Record<string, unknown>) => Promise<unknown>} postJson
 *   A JSON post that needs no token (password reset); throws the server's error for a refusal.
 * @property {() => Promise<void>} logout Tells the server to end the cookie's session and clear
 *   the cookie (idempotent); throws when it could not be told.
 */

/**
 * @param {{ fetch: typeof globalThis.fetch, url: (path: string) => string, clock: Clock, timeoutMs: number }} options
 * @returns {CookieRequests}
 */
export function cookieRequests({ fetch, url, clock, timeoutMs }) {
  return {
    async refresh() {
      /** @type {Response} */
      let response;
      try {
        response = await fetch(url("/auth/refresh"), {
          method: "POST",
          credentials: "include",
          cache: "no-store",
          signal: timeoutSignal(timeoutMs),
        });
      } catch (error) {
        throw new TesseraError("network_error", "The refresh request got no answer.", { cause: error });
      }
      // Before the body is read: expiry counts from when the answer arrived.
      const arrival = readClock(clock);
      return { response, body: await readJson(response), arrival };
    },

    async postCredentials(path, username, password) {
      const response = await fetch(url(path), {
        method: "POST",
        credentials: "include",
        cache: "no-store",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username, password }),
      });
      const arrival = readClock(clock);
      const body = await readJson(response);
      if (!response.ok) throw errorFrom(response, body);
      return { body, arrival };
    },

    async postJson(path, payload) {
      const response = await fetch(url(path), {
        method: "POST",
        cache: "no-store",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(payload),
      });
      const body = await readJson(response);
      if (!response.ok) throw errorFrom(response, body);
      return body;
    },

    async logout() {
      const response = await fetch(url("/auth/logout"), {
        method: "POST",
        credentials: "include",
        cache: "no-store",
        signal: timeoutSignal(timeoutMs),
      });
      if (!response.ok) throw errorFrom(response, await readJson(response));
    },
  };
}
