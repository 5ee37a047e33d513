// @ts-check
/**
 * A time limit for requests and lock waits.
 * @module tessera-client/timeout-signal
 */

/**
 * An AbortSignal that aborts after `ms`, built from a timer where the browser has no
 * `AbortSignal.timeout` (older Safari).
 * @param {number} ms
 * @returns {AbortSignal}
 */
export function timeoutSignal(ms) {
  if (typeof AbortSignal.timeout === "function") return AbortSignal.timeout(ms);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new DOMException("timed out", "TimeoutError")), ms);
  return controller.signal;
}
