// @ts-check
/**
 * The device key that binds a session (DPoP, RFC 9449): a non-extractable ECDSA P-256 key pair
 * made at login and kept in IndexedDB, where every tab of the origin finds it and a reload keeps
 * it, and the proofs it signs. IndexedDB stores the CryptoKey itself (a structured clone), so the
 * private key never exists as bytes that script could read or send away.
 *
 * This module knows the key, its storage, proofs and server nonces; which request carries a proof
 * is decided by the callers.
 * @module tessera-client/dpop
 */

/** @typedef {import("./expiry.js").Clock} Clock */

/**
 * A key pair and what is public about it.
 * @typedef {Object} DeviceKey
 * @property {CryptoKeyPair} keyPair the private half is non-extractable
 * @property {{ kty: "EC", crv: "P-256", x: string, y: string }} jwk the public key, as proofs carry it
 * @property {string} jkt its RFC 7638 SHA-256 thumbprint, the session's binding
 */

/**
 * @typedef {Object} ProofTarget
 * @property {string} method the request's method
 * @property {string} url the request's absolute URL (query and fragment are dropped)
 * @property {string} [accessToken] for a resource request: the token the proof's `ath` covers
 */

/**
 * @typedef {Object} DeviceKeys
 * @property {() => Promise<DeviceKey | null>} generate A new key pair, in memory only; null when
 *   this browser cannot keep one (IndexedDB refused to open: the session would not outlive the page).
 * @property {(key: DeviceKey) => Promise<void>} keep Stores `key` as the origin's key, replacing
 *   any other (a login's session is the one the cookie now holds).
 * @property {() => Promise<DeviceKey | null>} stored The origin's stored key, read afresh (another
 *   tab may have replaced it).
 * @property {(jkt: string) => Promise<DeviceKey | null>} keyFor The key with this thumbprint, from
 *   memory or storage, or null when it is gone.
 * @property {(jkt: string) => Promise<void>} forget Deletes the stored key if it is this one (a
 *   newer login's key in another tab is left alone). Never throws.
 * @property {() => Promise<void>} clear Deletes the stored key, whichever it is. Never throws.
 * @property {(key: DeviceKey, target: ProofTarget) => Promise<string>} proof A fresh proof (new
 *   `jti`, current `iat`, the latest nonce of the target's origin).
 * @property {(key: DeviceKey, target: ProofTarget, send: (proof: string) => Promise<Response>) => Promise<Response>} send
 *   Sends a request with a fresh proof in its `DPoP` header and remembers the nonce the answer
 *   carries. When the answer asks for a nonce, or refuses the proof while its `Date` shows this
 *   device's clock far enough off to explain it, sends it once more with a new proof that holds
 *   the nonce and counts `iat` on the server's clock.
 */

const DB_NAME = "tessera-dpop";
const STORE = "keys";
const ES256 = /** @type {const} */ ({ name: "ECDSA", namedCurve: "P-256" });

/**
 * The device keys of the Tessera server `name` stands for, or null when this browser lacks
 * WebCrypto or IndexedDB (the client then uses Bearer tokens).
 * @param {Object} options
 * @param {Crypto | undefined} options.crypto
 * @param {IDBFactory | undefined} options.indexedDB
 * @param {string} options.name the record's key: one key per Tessera server, per origin
 * @param {Clock} options.clock `iat` is the wall clock, as the server reads it
 * @returns {DeviceKeys | null}
 */
export function deviceKeys({ crypto, indexedDB, name, clock }) {
  const subtle = crypto?.subtle;
  if (!crypto || !subtle || !indexedDB) return null;
  const database = storage(indexedDB);
  /** The key this page last used: a resource request need not read IndexedDB. */
  /** @type {DeviceKey | null} */
  let cached = null;
  /** The latest `DPoP-Nonce` per origin (RFC 9449 §8: the server may change it on any answer). */
  /** @type {Map<string, string>} */
  const nonces = new Map();
  /**
   * Seconds the server's clock is ahead of this device's, per origin: learned only from an answer
   * that refused a proof, and used only for `iat` (the server checks it against its own clock; a
   * device clock a minute off would otherwise make every proof fail).
   * @type {Map<string, number>}
   */
  const offsets = new Map();

  const stored = async () => {
    const key = asDeviceKey(await database.get(name).catch(() => null));
    if (key !== null) cached = key;
    return key;
  };

  /**
   * @param {DeviceKey} key
   * @param {ProofTarget} target
   */
  const proof = async (key, { method, url, accessToken }) => {
    const target = new URL(url);
    const htu = `${target.origin}${target.pathname}`;
    const nonce = nonces.get(target.origin);
    const header = { typ: "dpop+jwt", alg: "ES256", jwk: key.jwk };
    const claims = {
      jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
      htm: method.toUpperCase(),
      htu,
      iat: Math.floor(clock.wall() / 1000) + (offsets.get(target.origin) ?? 0),
      ...(accessToken === undefined ? {} : { ath: await sha256(subtle, accessToken) }),
      ...(nonce === undefined ? {} : { nonce }),
    };
    const input = `${base64urlJson(header)}.${base64urlJson(claims)}`;
    // WebCrypto's ECDSA signature is already r || s, the JWS form: no DER to undo.
    const signature = await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.keyPair.privateKey, utf8(input));
    return `${input}.${base64url(new Uint8Array(signature))}`;
  };

  return {
    stored,
    proof,

    async generate() {
      try {
        await database.open();
      } catch {
        return null;
      }
      const keyPair = await subtle.generateKey(ES256, false, ["sign"]);
      // A public key is always extractable, whatever the flag says; only the private one is kept in.
      const { x, y } = await subtle.exportKey("jwk", keyPair.publicKey);
      if (typeof x !== "string" || typeof y !== "string") throw new Error("P-256 public key without x, y");
      const jwk = /** @type {const} */ ({ kty: "EC", crv: "P-256", x, y });
      return { keyPair, jwk, jkt: await thumbprint(subtle, jwk) };
    },

    async keep(key) {
      cached = key; // this page can use it even if storing fails
      await database.put(name, key);
    },

    async keyFor(jkt) {
      if (cached?.jkt === jkt) return cached;
      const key = await stored();
      return key?.jkt === jkt ? key : null;
    },

    async forget(jkt) {
      if (cached?.jkt === jkt) cached = null;
      await database.deleteIf(name, (value) => asDeviceKey(value)?.jkt === jkt).catch(() => {});
    },

    async clear() {
      cached = null;
      await database.deleteIf(name, () => true).catch(() => {});
    },

    async send(key, target, send) {
      const origin = new URL(target.url).origin;
      const usedNonce = nonces.get(origin);
      const usedOffset = offsets.get(origin) ?? 0;
      const first = await send(await proof(key, target));
      const nonce = first.headers.get("DPoP-Nonce");
      if (nonce !== null && nonce !== "") nonces.set(origin, nonce);
      const error = await proofError(first);
      // One retry per request, and only with something the refused proof lacked: never a loop.
      let retry = error === "use_dpop_nonce" && nonce !== null && nonce !== "" && nonce !== usedNonce;
      if (error === "invalid_dpop_proof") {
        const offset = serverClockOffset(first, clock);
        if (offset !== null && Math.abs(offset - usedOffset) >= SKEW_WORTH_FIXING_S) {
          offsets.set(origin, offset);
          retry = true;
        }
      }
      return retry ? send(await proof(key, target)) : first;
    },
  };
}

/**
 * Smaller differences between the clocks do not explain a refused proof: the server allows a few
 * seconds of leeway into the future and a minute into the past.
 */
const SKEW_WORTH_FIXING_S = 5;

/**
 * The answer's complaint about the proof, from the `WWW-Authenticate` challenge of a resource
 * server (RFC 9449 §7.1) or the JSON `error` of Tessera's own endpoints, or null.
 * @param {Response} response
 * @returns {Promise<"use_dpop_nonce" | "invalid_dpop_proof" | null>}
 */
async function proofError(response) {
  if (response.status !== 400 && response.status !== 401) return null;
  const challenge = response.headers.get("WWW-Authenticate") ?? "";
  /** @type {unknown} */
  let error = /error="(use_dpop_nonce|invalid_dpop_proof)"/.exec(challenge)?.[1];
  if (error === undefined) {
    try {
      error = (await response.clone().json())?.error;
    } catch {
      return null;
    }
  }
  return error === "use_dpop_nonce" || error === "invalid_dpop_proof" ? error : null;
}

/**
 * Whole seconds from this device's clock to the server's, by the answer's `Date` (readable on the
 * same origin, or when the server exposes it), or null without one.
 * @param {Response} response
 * @param {Clock} clock
 */
function serverClockOffset(response, clock) {
  const date = Date.parse(response.headers.get("Date") ?? "");
  return Number.isNaN(date) ? null : Math.round((date - clock.wall()) / 1000);
}

/**
 * RFC 7638: SHA-256 of the required members, in lexicographic order, without white space.
 * @param {SubtleCrypto} subtle
 * @param {{ crv: string, kty: string, x: string, y: string }} jwk
 */
async function thumbprint(subtle, jwk) {
  return sha256(subtle, JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }));
}

/**
 * A stored record, if it has the shape `keep` wrote.
 * @param {unknown} value
 * @returns {DeviceKey | null}
 */
function asDeviceKey(value) {
  if (typeof value !== "object" || value === null) return null;
  const { keyPair, jwk, jkt } = /** @type {Record<string, any>} */ (value);
  if (typeof jkt !== "string" || typeof jwk?.x !== "string" || !keyPair?.privateKey) return null;
  return /** @type {DeviceKey} */ (value);
}

/**
 * @param {SubtleCrypto} subtle
 * @param {string} text
 */
async function sha256(subtle, text) {
  return base64url(new Uint8Array(await subtle.digest("SHA-256", utf8(text))));
}

/** @param {string} text */
function utf8(text) {
  return new TextEncoder().encode(text);
}

/** @param {unknown} value */
function base64urlJson(value) {
  return base64url(utf8(JSON.stringify(value)));
}

/** @param {Uint8Array} bytes */
function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * One object store, opened on first use and then kept open.
 * @param {IDBFactory} indexedDB
 */
function storage(indexedDB) {
  /** @type {Promise<IDBDatabase> | null} */
  let opening = null;

  function open() {
    if (opening) return opening;
    opening = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE);
      request.onsuccess = () => {
        const db = request.result;
        // Another page upgrading the database: step aside, and open again at the next use.
        db.onversionchange = () => {
          db.close();
          opening = null;
        };
        resolve(db);
      };
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error("IndexedDB open blocked"));
    });
    // A failed open is tried again at the next use.
    opening.catch(() => {
      opening = null;
    });
    return opening;
  }

  /**
   * Runs `work` in one transaction and resolves with its result once the transaction committed.
   * @template T
   * @param {IDBTransactionMode} mode
   * @param {(store: IDBObjectStore, done: (value: T) => void) => void} work
   * @returns {Promise<T>}
   */
  async function transact(mode, work) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      /** @type {T} */
      let result;
      work(tx.objectStore(STORE), (value) => {
        result = value;
      });
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
    });
  }

  return {
    open,
    /** @param {string} key */
    get(key) {
      return transact("readonly", (store, done) => {
        const request = store.get(key);
        request.onsuccess = () => done(request.result);
      });
    },
    /**
     * @param {string} key
     * @param {unknown} value
     */
    put(key, value) {
      return transact("readwrite", (store) => {
        store.put(value, key);
      });
    },
    /**
     * Deletes the record when `matches` says so, in the transaction that read it.
     * @param {string} key
     * @param {(value: unknown) => boolean} matches
     */
    deleteIf(key, matches) {
      return transact("readwrite", (store) => {
        const request = store.get(key);
        request.onsuccess = () => {
          if (matches(request.result)) store.delete(key);
        };
      });
    },
  };
}
