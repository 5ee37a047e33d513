// @ts-check
/**
 * Reading the server's JSON answers, which may be absent or malformed: callers decide what a
 * missing field means, so nothing here throws.
 * @module tessera-client/json
 */

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
export function isRecord(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The parsed body, or null when there is none or it is not JSON.
 * @param {Response} response
 * @returns {Promise<unknown>}
 */
export async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}
