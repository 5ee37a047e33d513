// @ts-check
/**
 * What can go wrong, as one error type, and which failures end a session or may go away.
 * @module tessera-client/errors
 */

import { isRecord } from "./json.js";

/**
 * Why a session ended. The server's `reason` for a refused refresh ("revoked", "expired", "reused",
 * "unknown", "missing", "dpop_mismatch"), "logout" when this or another tab logged out,
 * "password_changed" when this page reset the user's password (which ends every session, this
 * browser's included), or "dpop_key_missing" when the session is bound to a device key this
 * browser does not hold (its site data was cleared, or the page was created with `dpop: false`).
 *
 * A session that another device's password change or reset ended is reported as the server
 * reports it, "revoked": the refresh answer says that the session was revoked, not why, and the
 * client does not guess.
 * @typedef {"logout" | "revoked" | "expired" | "reused" | "unknown" | "missing" | "password_changed" | "dpop_mismatch" | "dpop_key_missing" | (string & {})} SessionEndReason
 */

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

/**
 * The error for a refused answer: the server's `error` code and description when it sent them.
 * @param {Response} response
 * @param {unknown} body the parsed JSON body, if any
 */
export function errorFrom(response, body) {
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
export function sessionEnded(reason) {
  return new TesseraError("session_ended", `The session has ended (${reason}).`, { reason });
}

/** @param {unknown} error */
export function isSessionEnded(error) {
  return error instanceof TesseraError && error.code === "session_ended";
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
