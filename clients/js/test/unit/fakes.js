// Test doubles for the browser APIs the client takes as options: a clock, a Tessera server behind
// `fetch` (with one shared cookie jar, like tabs of one browser), Web Locks, BroadcastChannel and
// IndexedDB. The server checks DPoP proofs with node:crypto, not with the WebCrypto the client
// signs with, so a proof only passes when it is a real ES256 JWS.

import { createHash, createPublicKey, verify } from "node:crypto";

export const ORIGIN = "http://tessera.test";

/**
 * Options that wire a client to the fakes: the fake server and clock, and no real timers,
 * channels, locks or page events unless the test adds them.
 */
export function fakeWiring(server, clock) {
  return {
    baseUrl: ORIGIN,
    fetch: server.fetch,
    clock,
    locks: null,
    BroadcastChannel: null,
    window: null,
    document: null,
    retryDelaysMs: [1, 1],
    lockTimeoutMs: 50,
  };
}

/** A clock that moves only when told. `monoOffset` gives each tab its own time origin. */
export function fakeClock(monoOffset = 0) {
  const clock = {
    monoNow: 1_000 + monoOffset,
    wallNow: 1_700_000_000_000,
    mono: () => clock.monoNow,
    wall: () => clock.wallNow,
    /** Both clocks move: the page is awake. */
    advance(ms) {
      clock.monoNow += ms;
      clock.wallNow += ms;
    },
    /** Only the wall clock moves: the machine slept and performance.now() stood still. */
    sleep(ms) {
      clock.wallNow += ms;
    },
  };
  return clock;
}

/** Several clocks that advance together (tabs of one browser, each with its own time origin). */
export function linkedClocks(...clocks) {
  return {
    advance(ms) {
      for (const clock of clocks) clock.advance(ms);
    },
  };
}

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });

/**
 * A fake Tessera server. Access tokens are "at1", "at2", …; each is accepted by /auth/me while it
 * is in `server.valid`. `server.refreshReply` may be set to a function returning a Response (or
 * throwing, for a lost answer) to script the next refreshes.
 *
 * DPoP as the real one does it: a login with a valid proof binds the session to the proof's key
 * (`server.boundTo`); its refreshes need a proof by that key and its tokens go as `DPoP` with a
 * proof covering them (`ath`). `server.nonce` (login and refresh) and `server.resourceNonce`
 * (resource calls), when set, must be in the proofs. Each call records its decoded `proof`.
 * With `server.clock` set (the server's own), answers carry `Date` and a proof's `iat` must be
 * within a minute in the past and 5 s in the future of it, as the real server's leeway allows.
 */
export function fakeServer({ expiresIn = 2 } = {}) {
  const server = {
    cookie: null,
    issued: 0,
    valid: new Set(),
    sessionId: "s1",
    calls: [],
    /** @type {null | ((call: object) => Response | Promise<Response>)} */
    refreshReply: null,
    /** Resolves pending gated refreshes (see `gateRefreshes`). */
    gate: null,
    /** The JWK thumbprint the session is bound to, or null. */
    boundTo: null,
    /** access token -> thumbprint of its key, for bound tokens */
    tokenKeys: new Map(),
    seenJti: new Set(),
    nonce: null,
    resourceNonce: null,
    /** A server with DPoP off: proofs are ignored and tokens are Bearer. */
    ignoresProofs: false,
    /** The server's clock (`fakeClock()`), or null: no `Date`, no `iat` check. */
    clock: null,
    refreshCount() {
      return server.calls.filter((c) => c.path === "/auth/refresh").length;
    },
    issue() {
      server.issued += 1;
      const token = `at${server.issued}`;
      server.valid.add(token);
      if (server.boundTo) server.tokenKeys.set(token, server.boundTo);
      return json(200, {
        access_token: token,
        token_type: server.boundTo ? "DPoP" : "Bearer",
        expires_in: expiresIn,
        session_id: server.sessionId,
      });
    },
    async fetch(input, init) {
      const response = await server.answer(input, init);
      if (server.clock && response.type !== "error") {
        response.headers.set("Date", new Date(Math.floor(server.clock.wall() / 1000) * 1000).toUTCString());
      }
      return response;
    },
    async answer(input, init = {}) {
      const href = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      const url = new URL(href);
      const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
      const call = {
        origin: url.origin,
        path: url.pathname,
        method: init.method ?? (input instanceof Request ? input.method : "GET"),
        credentials: init.credentials,
        body: init.body,
        authorization: headers.get("Authorization"),
        contentType: headers.get("Content-Type"),
        dpop: headers.get("DPoP"),
        proof: decodeProof(headers.get("DPoP")),
      };
      server.calls.push(call);
      if (url.origin !== ORIGIN) return json(200, { elsewhere: true });
      const target = { method: call.method, url: `${url.origin}${url.pathname}` };
      switch (url.pathname) {
        case "/auth/login": {
          let jkt = null;
          if (call.dpop !== null && !server.ignoresProofs) {
            const checked = server.checkProof(call.dpop, { ...target, nonce: server.nonce });
            if (checked.error) return checked.error;
            jkt = checked.jkt;
          }
          server.cookie = "rt";
          server.boundTo = jkt;
          return server.issue();
        }
        case "/auth/register": {
          const { username } = JSON.parse(init.body);
          return json(201, { user_id: "u1", username });
        }
        case "/auth/refresh": {
          if (server.gate) await server.gate;
          if (server.refreshReply) return server.refreshReply(call);
          if (!server.cookie) return json(401, { error: "invalid_refresh_token", reason: "missing" });
          if (server.boundTo) {
            if (call.dpop === null) return json(401, { error: "invalid_dpop_proof", error_description: "no proof" });
            const checked = server.checkProof(call.dpop, { ...target, nonce: server.nonce });
            if (checked.error) return checked.error;
            if (checked.jkt !== server.boundTo) return json(401, { error: "invalid_refresh_token", reason: "dpop_mismatch" });
          }
          return server.issue();
        }
        case "/auth/logout":
          server.cookie = null;
          server.valid.clear();
          return new Response(null, { status: 204 });
        case "/auth/logout-all":
          server.valid.clear();
          return new Response(null, { status: 204 });
        default: {
          const [scheme, token] = (call.authorization ?? "").split(" ");
          const key = server.tokenKeys.get(token);
          if (!token || !server.valid.has(token) || scheme !== (key ? "DPoP" : "Bearer")) {
            return json(401, { error: "invalid_token" }, { "WWW-Authenticate": `${key ? "DPoP" : "Bearer"} error="invalid_token"` });
          }
          if (key) {
            const checked = call.dpop
              ? server.checkProof(call.dpop, { ...target, accessToken: token, nonce: server.resourceNonce, resource: true })
              : { error: challenge("invalid_dpop_proof") };
            if (checked.error) return checked.error;
            if (checked.jkt !== key) return challenge("invalid_dpop_proof");
          }
          if (url.pathname === "/auth/me") return json(200, { user_id: "u1", username: "ada", session_id: server.sessionId });
          if (url.pathname === "/auth/sessions") return json(200, { sessions: [{ id: server.sessionId, current: true }] });
          if (url.pathname.startsWith("/auth/sessions/")) return new Response(null, { status: 204 });
          return json(200, { ok: true, token });
        }
      }
    },
    /**
     * The proof's key thumbprint, or the error answer for a proof the real server would refuse.
     * @returns {{ jkt: string, error?: undefined } | { error: Response }}
     */
    checkProof(proof, { method, url, accessToken, nonce, resource = false }) {
      const refuse = (error) => ({ error: resource ? challenge(error, server.resourceNonce) : authError(error, server.nonce) });
      const decoded = decodeProof(proof);
      if (!decoded) return refuse("invalid_dpop_proof");
      const { header, payload, input, signature } = decoded;
      const { jwk } = header;
      if (header.typ !== "dpop+jwt" || header.alg !== "ES256" || jwk?.kty !== "EC" || jwk.crv !== "P-256" || "d" in jwk) {
        return refuse("invalid_dpop_proof");
      }
      const key = createPublicKey({ key: jwk, format: "jwk" });
      if (!verify("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" }, signature)) return refuse("invalid_dpop_proof");
      if (payload.htm !== method || payload.htu !== url || typeof payload.iat !== "number") return refuse("invalid_dpop_proof");
      if (server.clock) {
        const age = server.clock.wall() / 1000 - payload.iat;
        if (age > 65 || age < -5) return refuse("invalid_dpop_proof");
      }
      if (typeof payload.jti !== "string" || server.seenJti.has(payload.jti)) return refuse("invalid_dpop_proof");
      const ath = accessToken === undefined ? undefined : createHash("sha256").update(accessToken).digest("base64url");
      if (payload.ath !== ath) return refuse("invalid_dpop_proof");
      if (nonce !== null && payload.nonce !== nonce) return refuse("use_dpop_nonce");
      server.seenJti.add(payload.jti);
      return { jkt: jwkThumbprint(jwk) };
    },
    /** Holds every refresh until the returned function is called. */
    gateRefreshes() {
      let open;
      server.gate = new Promise((resolve) => {
        open = resolve;
      });
      return () => {
        server.gate = null;
        open();
      };
    },
  };
  server.fetch = server.fetch.bind(server);
  server.answer = server.answer.bind(server);
  return server;
}

/** The answer of a login or refresh to a refused proof. */
function authError(error, nonce) {
  return json(401, { error, error_description: error }, nonce ? { "DPoP-Nonce": nonce } : {});
}

/** The answer of a resource call to a refused proof (RFC 9449 §7.1). */
function challenge(error, nonce = null) {
  const headers = { "WWW-Authenticate": `DPoP error="${error}", algs="ES256 EdDSA"` };
  if (nonce) headers["DPoP-Nonce"] = nonce;
  return json(401, { error }, headers);
}

/** A proof's parts, or null when it is not a compact JWS with JSON header and claims. */
export function decodeProof(proof) {
  if (typeof proof !== "string") return null;
  const parts = proof.split(".");
  if (parts.length !== 3) return null;
  try {
    const header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"));
    const payload = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
    return { header, payload, input: `${parts[0]}.${parts[1]}`, signature: Buffer.from(parts[2], "base64url") };
  } catch {
    return null;
  }
}

/** RFC 7638 thumbprint of an EC public key. */
export function jwkThumbprint({ crv, kty, x, y }) {
  return createHash("sha256").update(JSON.stringify({ crv, kty, x, y })).digest("base64url");
}

/**
 * An IndexedDB with just what the client uses (open with an upgrade, one object store, get, put
 * and delete in transactions that complete once their requests are done), asynchronous like the
 * real one. Values are stored as structured clones, as the real one stores them: a CryptoKey
 * comes back a CryptoKey, still non-extractable. `refuseOpen` stands for a browser where
 * IndexedDB exists but cannot be used.
 */
export function fakeIndexedDB({ refuseOpen = false } = {}) {
  const databases = new Map(); // name -> Map(store -> Map(key -> value))
  const later = (fn) => setTimeout(fn, 0);
  return {
    databases,
    /** The stored value of `key` in the client's store, if any (a clone, as a read gives). */
    peek(key) {
      const value = databases.get("tessera-dpop")?.get("keys")?.get(key);
      return value === undefined ? undefined : structuredClone(value);
    },
    open(name, version) {
      const request = { result: null, error: null, onsuccess: null, onerror: null, onupgradeneeded: null, onblocked: null };
      later(() => {
        if (refuseOpen || version !== 1) {
          request.error = new DOMException("The operation failed", "UnknownError");
          request.onerror?.();
          return;
        }
        const fresh = !databases.has(name);
        if (fresh) databases.set(name, new Map());
        const stores = databases.get(name);
        request.result = {
          onversionchange: null,
          close() {},
          createObjectStore(store) {
            stores.set(store, new Map());
          },
          transaction(store, mode) {
            return transaction(stores.get(store), mode);
          },
        };
        if (fresh) request.onupgradeneeded?.();
        request.onsuccess?.();
      });
      return request;
    },
  };

  function transaction(data, mode) {
    let pending = 0;
    const tx = { oncomplete: null, onerror: null, onabort: null, error: null };
    const settle = () =>
      later(() => {
        if (pending === 0) tx.oncomplete?.();
      });
    const run = (work) => {
      const request = { result: undefined, onsuccess: null, onerror: null };
      pending += 1;
      later(() => {
        request.result = work();
        request.onsuccess?.();
        pending -= 1;
        if (pending === 0) settle();
      });
      return request;
    };
    const writable = () => {
      if (mode !== "readwrite") throw new DOMException("read-only transaction", "ReadOnlyError");
    };
    tx.objectStore = () => ({
      get: (key) => run(() => (data.has(key) ? structuredClone(data.get(key)) : undefined)),
      put(value, key) {
        writable();
        const copy = structuredClone(value);
        return run(() => data.set(key, copy) && key);
      },
      delete(key) {
        writable();
        return run(() => void data.delete(key));
      },
    });
    settle();
    return tx;
  }
}

/** An in-process Web Locks: exclusive, FIFO, and a waiter gives up when its signal aborts. */
export function fakeLocks() {
  const queues = new Map();
  const locks = {
    held: 0,
    request(name, options, callback) {
      const queue = queues.get(name) ?? [];
      queues.set(name, queue);
      return new Promise((resolve, reject) => {
        const waiter = { granted: false };
        const run = async () => {
          waiter.granted = true;
          locks.held += 1;
          try {
            resolve(await callback());
          } catch (error) {
            reject(error);
          } finally {
            locks.held -= 1;
            queue.shift();
            if (queue.length > 0) queue[0].run();
          }
        };
        waiter.run = run;
        options.signal?.addEventListener("abort", () => {
          if (waiter.granted) return;
          queue.splice(queue.indexOf(waiter), 1);
          reject(options.signal.reason);
        });
        queue.push(waiter);
        if (queue.length === 1) run();
      });
    },
    /** Takes the lock and keeps it until the returned function is called (a frozen tab). */
    hold(name) {
      let release;
      locks.request(name, {}, () => new Promise((resolve) => (release = resolve)));
      return () => release();
    },
  };
  return locks;
}

/** BroadcastChannel instances that deliver to the others of the same name, asynchronously. */
export function channelHub() {
  const members = new Set();
  return class FakeChannel {
    constructor(name) {
      this.name = name;
      this.onmessage = null;
      members.add(this);
    }
    postMessage(message) {
      const data = structuredClone(message);
      for (const member of members) {
        if (member !== this && member.name === this.name) {
          setTimeout(() => member.onmessage?.({ data }), 0);
        }
      }
    }
    close() {
      members.delete(this);
    }
  };
}

/** An EventTarget standing in for `document`, with a settable visibilityState. */
export function fakeDocument() {
  const doc = new EventTarget();
  doc.visibilityState = "visible";
  return doc;
}

export const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));
