// @ts-check
/**
 * The Web Lock through which the tabs of one origin take turns to refresh or log out, so that
 * they do not race one another for the same refresh cookie.
 * @module tessera-client/tab-lock
 */

import { timeoutSignal } from "./timeout-signal.js";

/**
 * The subset of the Web Locks API the client uses (`navigator.locks`).
 * @typedef {{ request: (name: string, options: { signal?: AbortSignal }, callback: () => Promise<any>) => Promise<any> }} LockManagerLike
 */

/**
 * Runs a task holding the origin-wide lock.
 * @typedef {<T>(task: () => Promise<T>) => Promise<T>} WithLock
 */

/**
 * Runs each task holding the lock `name`, or without it when there are no Web Locks, the lock
 * could not be had within `timeoutMs` (a frozen tab must not block the others; the server's grace
 * window absorbs the rare race that follows), or the lock manager refused (e.g. a SecurityError in
 * a sandboxed frame).
 * @param {LockManagerLike | null} locks
 * @param {string} name
 * @param {number} timeoutMs
 * @returns {WithLock}
 */
export function tabLock(locks, name, timeoutMs) {
  return async (task) => {
    if (!locks) return task();
    let acquired = false;
    try {
      return await locks.request(name, { signal: timeoutSignal(timeoutMs) }, () => {
        acquired = true;
        return task();
      });
    } catch (error) {
      if (!acquired) return task();
      throw error;
    }
  };
}
