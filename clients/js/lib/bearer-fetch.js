// @ts-check
/**
 * The client's drop-in `fetch`: attaches the access token to requests for the token origins only
 * (so it can be used for third-party URLs without leaking the token), renewing it first when
 * needed, and on `401 invalid_token` renews once and retries once.
 * @module tessera-client/bearer-fetch
 */

import { isSessionEnded } from "./errors.js";
import { isRecord, readJson } from "./json.js";

/** @typedef {import("./token-state.js").TokenState} TokenState */
/** @typedef {import("./renewal.js").Renewal} Renewal */

/**
 * @param {Object} options
 * @param {typeof globalThis.fetch} options.fetch
 * @param {Set<string>} options.tokenOrigins
 * @param {string | undefined} options.base what relative URLs resolve against
 * @param {TokenState} options.tokens
 * @param {Renewal} options.renewal
 * @returns {(input: RequestInfo | URL, init?: RequestInit) => Promise<Response>}
 */
export function bearerFetch({ fetch, tokenOrigins, base, tokens, renewal }) {
  /** @param {RequestInfo | URL} input */
  function attachesTo(input) {
    const href = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    let target;
    try {
      target = new URL(href, base);
    } catch {
      return true; // a relative URL with no base to resolve it against: same origin
    }
    return tokenOrigins.has(target.origin);
  }

  return async (input, init) => {
    if (!attachesTo(input)) return fetch(input, init);
    const isRequest = typeof Request !== "undefined" && input instanceof Request;
    const spare = isRequest ? input.clone() : input; // a Request's body can be read only once
    const sent = await renewal.ensureToken();
    const sentVersion = tokens.tokenVersion;
    const response = await fetch(...withBearer(input, init, sent));
    if (!(await isInvalidToken(response))) return response;
    // Renew once, unless a renewal already replaced the token meanwhile, and retry once.
    if (tokens.tokenVersion === sentVersion) {
      try {
        await renewal.renew(sentVersion);
      } catch (error) {
        if (isSessionEnded(error)) throw error;
        return response;
      }
    }
    return fetch(...withBearer(spare, init, tokens.requireToken()));
  };
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
