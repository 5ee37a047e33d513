// @ts-check
/**
 * Expiry arithmetic on the browser's own clocks. The server's clock is never compared with the
 * browser's: a deadline is the local arrival time of a token plus its `expires_in`.
 * @module tessera-client/expiry
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
 * Both clocks read at one moment, e.g. when a response arrived.
 * @typedef {{ mono: number, wall: number }} ClockReading
 */

/** The smallest renewal margin, whatever the token's lifetime (but see `renewalMarginMs`). */
export const MIN_RENEWAL_MARGIN_MS = 5_000;

/** @type {Clock} */
export const systemClock = {
  mono: () => performance.now(),
  wall: () => Date.now(),
};

/**
 * @param {Clock} clock
 * @returns {ClockReading}
 */
export function readClock(clock) {
  return { mono: clock.mono(), wall: clock.wall() };
}

/**
 * The deadline of a token that arrived at `arrival` with `lifetimeMs` to live.
 * @param {number} lifetimeMs
 * @param {ClockReading} arrival
 * @returns {Expiry}
 */
export function expiryFrom(lifetimeMs, arrival) {
  return {
    lifetimeMs,
    monoDeadline: arrival.mono + lifetimeMs,
    wallDeadline: arrival.wall + lifetimeMs,
  };
}

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
