// @ts-check
/**
 * The requests that speak for the refresh cookie rather than the access token: refresh, logout,
 * and the credential posts that set the cookie. The refresh token stays in its HttpOnly cookie,
 * so refresh and logout send no body; a login and a refresh given a device key carry a proof
 * signed by it. What the answers mean is decided by the callers.
 * @module tessera-client/requests
 */

import { TesseraError, errorFrom } from "./errors.js";
import { readClock } from "./expiry.js";
import { readJson } from "./json.js";
import { timeoutSignal } from "./timeout-signal.js";

/** @typedef {import("./expiry.js").Clock} Clock */
/** @typedef {import("./expiry.js").ClockReading} ClockReading */
/** @typedef {import("./dpop.js").DeviceKey} DeviceKey */
/** @typedef {import("./dpop.js").DeviceKeys} DeviceKeys */

/**
 * @typedef {Object} CookieRequests
 * @property {(key: DeviceKey | null) => Promise<{ response: Response, body: unknown, arrival: ClockReading }>} refresh
 *   Throws TesseraError "network_error" when no answer came; any answer is returned as it is.
 * @property {(path: string, username: string, password: string, key?: DeviceKey | null) => Promise<{ body: unknown, arrival: ClockReading }>} postCredentials
 *   Throws the server's error for a refusal.
 * @property {(path: string, body: Record<string, unknown>) => Promise<unknown>} postJson
 *   A JSON post that needs no token (password reset); throws the server's error for a refusal.
 * @property {() => Promise<void>} logout Tells the server to end the cookie's session and clear
 *   the cookie (idempotent); throws when it could not be told.
 */

/**
 * @param {Object} options
 * @param {typeof globalThis.fetch} options.fetch
 * @param {(path: string) => string} options.url the URL of a Tessera path, as `fetch` takes it
 * @param {(href: string) => string} options.absolute the absolute form of such a URL, for `htu`
 * @param {DeviceKeys | null} options.keys signs the proofs of the calls given a key
 * @param {Clock} options.clock
 * @param {number} options.timeoutMs
 * @returns {CookieRequests}
 */
export function cookieRequests({ fetch, url, absolute, keys, clock, timeoutMs }) {
  /**
   * A POST to `path`, with a proof when there is a key (a retry with the server's nonce gets a
   * new proof, and so a new `jti`).
   * @param {string} path
   * @param {RequestInit} init
   * @param {DeviceKey | null | undefined} key
   */
  function post(path, init, key) {
    const href = url(path);
    const request = { ...init, method: "POST", cache: /** @type {const} */ ("no-store") };
    if (!key || !keys) return fetch(href, request);
    return keys.send(key, { method: "POST", url: absolute(href) }, (proof) => {
      const headers = new Headers(init.headers);
      headers.set("DPoP", proof);
      return fetch(href, { ...request, headers });
    });
  }

  return {
    async refresh(key) {
      /** @type {Response} */
      let response;
      try {
        response = await post("/auth/refresh", { credentials: "include", signal: timeoutSignal(timeoutMs) }, key);
      } catch (error) {
        throw new TesseraError("network_error", "The refresh request got no answer.", { cause: error });
      }
      // Before the body is read: expiry counts from when the answer arrived.
      const arrival = readClock(clock);
      return { response, body: await readJson(response), arrival };
    },

    async postCredentials(path, username, password, key) {
      const init = {
        credentials: /** @type {const} */ ("include"),
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username, password }),
      };
      const response = await post(path, init, key);
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
