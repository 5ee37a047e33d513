// @ts-check
/**
 * The client's drop-in `fetch`: attaches the access token to requests for the token origins only
 * (so it can be used for third-party URLs without leaking the token), renewing it first when
 * needed, and on `401 invalid_token` renews once and retries once. A token bound to the device
 * key goes as `Authorization: DPoP` with a proof for that one request; a Bearer token as `Bearer`.
 * @module tessera-client/bearer-fetch
 */

import { isSessionEnded } from "./errors.js";
import { isRecord, readJson } from "./json.js";

/** @typedef {import("./token-state.js").TokenState} TokenState */
/** @typedef {import("./token-state.js").Credential} Credential */
/** @typedef {import("./renewal.js").Renewal} Renewal */
/** @typedef {import("./dpop.js").DeviceKeys} DeviceKeys */

/**
 * Sends a request with a given token, without renewing it.
 * @typedef {(input: RequestInfo | URL, init: RequestInit | undefined, token: Credential) => Promise<Response>} TokenSender
 */

/**
 * @param {Object} options
 * @param {typeof globalThis.fetch} options.fetch
 * @param {DeviceKeys | null} options.keys signs the proofs of bound tokens
 * @param {string | undefined} options.base what relative URLs resolve against
 * @returns {TokenSender}
 */
export function tokenSender({ fetch, keys, base }) {
  return async (input, init, token) => {
    const key = token.jkt !== null && keys ? await keys.keyFor(token.jkt) : null;
    if (token.jkt === null || key === null || !keys) {
      // Without its key a bound token is sent without a proof: the server refuses it, which is
      // what the caller should see (the key was deleted: the session ended in another tab).
      const scheme = token.jkt === null ? "Bearer" : "DPoP";
      return fetch(...withAuthorization(input, init, `${scheme} ${token.accessToken}`, null));
    }
    const isRequest = typeof Request !== "undefined" && input instanceof Request;
    const pristine = isRequest ? input.clone() : input; // a retry with the server's nonce needs the body again
    const method = (init?.method ?? (isRequest ? input.method : "GET")).toUpperCase();
    const target = { method, url: new URL(hrefOf(input), base).href, accessToken: token.accessToken };
    let first = true;
    return keys.send(key, target, (proof) => {
      const attempt = first ? input : pristine;
      first = false;
      return fetch(...withAuthorization(attempt, init, `DPoP ${token.accessToken}`, proof));
    });
  };
}

/**
 * @param {Object} options
 * @param {typeof globalThis.fetch} options.fetch
 * @param {TokenSender} options.send
 * @param {Set<string>} options.tokenOrigins
 * @param {string | undefined} options.base what relative URLs resolve against
 * @param {TokenState} options.tokens
 * @param {Renewal} options.renewal
 * @returns {(input: RequestInfo | URL, init?: RequestInit) => Promise<Response>}
 */
export function bearerFetch({ fetch, send, tokenOrigins, base, tokens, renewal }) {
  /** @param {RequestInfo | URL} input */
  function attachesTo(input) {
    let target;
    try {
      target = new URL(hrefOf(input), base);
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
    const response = await send(input, init, sent);
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
    return send(spare, init, tokens.requireToken());
  };
}

/** @param {RequestInfo | URL} input */
function hrefOf(input) {
  return typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
}

/**
 * @param {RequestInfo | URL} input
 * @param {RequestInit | undefined} init
 * @param {string} authorization
 * @param {string | null} proof
 * @returns {[RequestInfo | URL, RequestInit]}
 */
function withAuthorization(input, init, authorization, proof) {
  const isRequest = typeof Request !== "undefined" && input instanceof Request;
  const headers = new Headers(init?.headers ?? (isRequest ? input.headers : undefined));
  headers.set("Authorization", authorization);
  if (proof !== null) headers.set("DPoP", proof);
  return [input, { ...init, headers }];
}

/** @param {Response} response */
async function isInvalidToken(response) {
  if (response.status !== 401) return false;
  if ((response.headers.get("WWW-Authenticate") ?? "").includes("invalid_token")) return true;
  const body = await readJson(response.clone());
  return isRecord(body) && body.error === "invalid_token";
}
