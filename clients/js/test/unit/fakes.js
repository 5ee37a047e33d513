// Test doubles for the browser APIs the client takes as options: a clock, a Tessera server behind
// `fetch` (with one shared cookie jar, like tabs of one browser), Web Locks and BroadcastChannel.

export const ORIGIN = "http://tessera.test";

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
    refreshCount() {
      return server.calls.filter((c) => c.path === "/auth/refresh").length;
    },
    issue() {
      server.issued += 1;
      const token = `at${server.issued}`;
      server.valid.add(token);
      return json(200, {
        access_token: token,
        token_type: "Bearer",
        expires_in: expiresIn,
        session_id: server.sessionId,
      });
    },
    async fetch(input, init = {}) {
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
      };
      server.calls.push(call);
      if (url.origin !== ORIGIN) return json(200, { elsewhere: true });
      switch (url.pathname) {
        case "/auth/login": {
          server.cookie = "rt";
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
          const token = call.authorization?.replace(/^Bearer /, "");
          if (!token || !server.valid.has(token)) {
            return json(401, { error: "invalid_token" }, { "WWW-Authenticate": 'Bearer error="invalid_token"' });
          }
          if (url.pathname === "/auth/me") return json(200, { user_id: "u1", username: "ada", session_id: server.sessionId });
          if (url.pathname === "/auth/sessions") return json(200, { sessions: [{ id: server.sessionId, current: true }] });
          if (url.pathname.startsWith("/auth/sessions/")) return new Response(null, { status: 204 });
          return json(200, { ok: true, token });
        }
      }
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
  return server;
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
