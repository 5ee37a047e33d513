import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  TesseraError,
  createClient,
  expiryAfter,
  isTransient,
  needsRenewal,
  remainingMs,
  renewalMarginMs,
  sessionEndReason,
} from "../../tessera-client.js";
import { ORIGIN, channelHub, fakeClock, fakeDocument, fakeLocks, fakeServer, fakeWiring, linkedClocks, tick } from "./fakes.js";

/** A client wired to fakes, with Bearer tokens (dpop.test.js has the device key). */
function client(server, clock, extra = {}) {
  return createClient({ ...fakeWiring(server, clock), dpop: false, ...extra });
}

const refused = (reason) =>
  new Response(JSON.stringify({ error: "invalid_refresh_token", error_description: "no", reason }), {
    status: 401,
    headers: { "Content-Type": "application/json" },
  });

describe("expiry arithmetic", () => {
  it("counts down from the local arrival time, on both clocks", () => {
    const clock = fakeClock();
    const expiry = expiryAfter(2_000, 2_000, clock);
    assert.equal(remainingMs(expiry, clock), 2_000);
    clock.advance(1_200);
    assert.equal(remainingMs(expiry, clock), 800);
  });

  it("takes the wall clock when the monotonic one stood still through a sleep", () => {
    const clock = fakeClock();
    const expiry = expiryAfter(900_000, 900_000, clock);
    clock.sleep(3_600_000);
    assert.equal(remainingMs(expiry, clock), -2_700_000);
    assert.equal(needsRenewal(expiry, clock), true);
  });

  it("takes the monotonic clock when the wall clock is set back", () => {
    const clock = fakeClock();
    const expiry = expiryAfter(2_000, 2_000, clock);
    clock.wallNow -= 60_000;
    clock.monoNow += 1_900;
    assert.equal(remainingMs(expiry, clock), 100);
  });

  it("renews 10 % early, at least 5 s, at most a quarter of the lifetime", () => {
    assert.equal(renewalMarginMs(900_000), 90_000);
    assert.equal(renewalMarginMs(30_000), 5_000);
    assert.equal(renewalMarginMs(2_000), 500);
    const clock = fakeClock();
    const expiry = expiryAfter(2_000, 2_000, clock);
    clock.advance(1_499);
    assert.equal(needsRenewal(expiry, clock), false);
    clock.advance(1);
    assert.equal(needsRenewal(expiry, clock), true);
  });
});

describe("reason mapping", () => {
  it("reads the reason of a refused refresh", () => {
    for (const reason of ["revoked", "expired", "reused", "unknown", "missing"]) {
      assert.equal(sessionEndReason(401, { error: "invalid_refresh_token", reason }), reason);
    }
  });

  it("reads a refusal without a reason as unknown", () => {
    assert.equal(sessionEndReason(401, { error: "invalid_refresh_token" }), "unknown");
    assert.equal(sessionEndReason(401, { error: "invalid_refresh_token", reason: 7 }), "unknown");
  });

  it("does not end the session on anything but 401 invalid_refresh_token", () => {
    assert.equal(sessionEndReason(401, { error: "invalid_token" }), null);
    assert.equal(sessionEndReason(403, { error: "csrf_rejected" }), null);
    assert.equal(sessionEndReason(500, { error: "invalid_refresh_token", reason: "revoked" }), null);
    assert.equal(sessionEndReason(401, null), null);
    assert.equal(sessionEndReason(401, "invalid_refresh_token"), null);
  });

  it("counts network errors, 5xx and 429 as transient", () => {
    assert.equal(isTransient(new TypeError("Failed to fetch")), true);
    assert.equal(isTransient(new TesseraError("network_error", "x")), true);
    assert.equal(isTransient(new TesseraError("unavailable", "x", { status: 503 })), true);
    assert.equal(isTransient(new TesseraError("rate_limited", "x", { status: 429 })), true);
    assert.equal(isTransient(new TesseraError("csrf_rejected", "x", { status: 403 })), false);
    assert.equal(isTransient(new TesseraError("session_ended", "x", { reason: "revoked" })), false);
  });
});

describe("fetch", () => {
  it("renews from the cookie on the first call after a reload and attaches the token", async () => {
    const server = fakeServer();
    server.cookie = "rt";
    const tessera = client(server, fakeClock());
    const res = await tessera.fetch(`${ORIGIN}/api/notes`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true, token: "at1" });
    assert.equal(server.refreshCount(), 1);
  });

  it("sends refreshes as a bodyless POST with credentials", async () => {
    const server = fakeServer();
    server.cookie = "rt";
    await client(server, fakeClock()).restore();
    const [call] = server.calls;
    assert.deepEqual([call.path, call.method, call.credentials, call.body], ["/auth/refresh", "POST", "include", undefined]);
  });

  it("makes one refresh for many concurrent calls", async () => {
    const server = fakeServer();
    server.cookie = "rt";
    const tessera = client(server, fakeClock());
    const open = server.gateRefreshes();
    const calls = Array.from({ length: 10 }, () => tessera.fetch(`${ORIGIN}/auth/me`));
    await tick(5);
    open();
    const results = await Promise.all(calls);
    assert.deepEqual(results.map((r) => r.status), Array(10).fill(200));
    assert.equal(server.refreshCount(), 1);
  });

  it("uses the token until its renewal margin, then renews before the call", async () => {
    const server = fakeServer();
    const clock = fakeClock();
    const tessera = client(server, clock);
    await tessera.login("ada", "correct horse");
    clock.advance(1_400);
    await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.equal(server.refreshCount(), 0);
    clock.advance(200);
    await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.equal(server.refreshCount(), 1);
    assert.equal(server.calls.at(-1).authorization, "Bearer at2");
  });

  it("renews once and retries once on 401 invalid_token", async () => {
    const server = fakeServer();
    const tessera = client(server, fakeClock());
    await tessera.login("ada", "correct horse");
    server.valid.clear(); // e.g. the signing key was dropped
    const res = await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.equal(res.status, 200);
    assert.equal(server.refreshCount(), 1);
    assert.deepEqual(
      server.calls.filter((c) => c.path === "/auth/me").map((c) => c.authorization),
      ["Bearer at1", "Bearer at2"],
    );
  });

  it("returns the second 401 as it is instead of looping", async () => {
    const server = fakeServer();
    const tessera = client(server, fakeClock());
    await tessera.login("ada", "correct horse");
    server.refreshReply = () => {
      server.issued += 1;
      return new Response(JSON.stringify({ access_token: "never-valid", expires_in: 2, session_id: "s1" }), { status: 200 });
    };
    server.valid.clear();
    const res = await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.equal(res.status, 401);
    assert.equal(server.refreshCount(), 1);
    assert.equal(server.calls.filter((c) => c.path === "/auth/me").length, 2);
  });

  it("keeps the body of a Request for the retry", async () => {
    const server = fakeServer();
    const tessera = client(server, fakeClock());
    await tessera.login("ada", "correct horse");
    server.valid.clear();
    const res = await tessera.fetch(new Request(`${ORIGIN}/api/notes`, { method: "POST", body: "hello" }));
    assert.equal(res.status, 200);
  });

  it("does not send the token to another origin", async () => {
    const server = fakeServer();
    const tessera = client(server, fakeClock());
    await tessera.login("ada", "correct horse");
    await tessera.fetch("https://elsewhere.example/api");
    assert.equal(server.calls.at(-1).authorization, null);
  });

  it("rejects with session_ended when there is no session", async () => {
    const tessera = client(fakeServer(), fakeClock());
    await assert.rejects(tessera.fetch(`${ORIGIN}/auth/me`), { code: "session_ended", reason: "missing" });
  });
});

describe("session end", () => {
  it("reports the server's reason once when a renewal is refused", async () => {
    const server = fakeServer();
    const clock = fakeClock();
    const tessera = client(server, clock);
    const ends = [];
    tessera.onSessionEnd((reason) => ends.push(reason));
    await tessera.login("ada", "correct horse");
    server.refreshReply = () => refused("revoked");
    clock.advance(1_600);
    await assert.rejects(tessera.fetch(`${ORIGIN}/auth/me`), { code: "session_ended", reason: "revoked" });
    await assert.rejects(tessera.fetch(`${ORIGIN}/auth/me`), { code: "session_ended" });
    assert.deepEqual(ends, ["revoked"]);
    assert.equal(tessera.status(), null);
  });

  it("keeps the session through network errors and uses the token while it lasts", async () => {
    const server = fakeServer();
    const clock = fakeClock();
    const tessera = client(server, clock);
    const ends = [];
    tessera.onSessionEnd((reason) => ends.push(reason));
    await tessera.login("ada", "correct horse");
    server.refreshReply = () => {
      throw new TypeError("Failed to fetch");
    };
    clock.advance(1_600);
    const res = await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.equal(res.status, 200);
    assert.equal(server.calls.at(-1).authorization, "Bearer at1");
    server.refreshReply = null;
    clock.advance(100);
    await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.equal(server.calls.at(-1).authorization, "Bearer at2");
    assert.deepEqual(ends, []);
  });

  it("retries a lost refresh shortly when no usable token is left", async () => {
    const server = fakeServer();
    server.cookie = "rt";
    const tessera = client(server, fakeClock());
    let lost = 2;
    server.refreshReply = () => {
      if (lost-- > 0) throw new TypeError("Failed to fetch");
      return server.issue();
    };
    const res = await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.equal(res.status, 200);
    assert.equal(server.refreshCount(), 3);
  });

  it("treats 5xx as transient", async () => {
    const server = fakeServer();
    server.cookie = "rt";
    const tessera = client(server, fakeClock(), { retryDelaysMs: [] });
    const ends = [];
    tessera.onSessionEnd((reason) => ends.push(reason));
    server.refreshReply = () => new Response(JSON.stringify({ error: "unavailable" }), { status: 503 });
    await assert.rejects(tessera.fetch(`${ORIGIN}/auth/me`), { code: "unavailable", status: 503 });
    assert.deepEqual(ends, []);
  });

  it("drops a refresh answer that arrives after a logout", async () => {
    const server = fakeServer();
    const clock = fakeClock();
    const tessera = client(server, clock);
    await tessera.login("ada", "correct horse");
    clock.advance(1_600);
    const open = server.gateRefreshes();
    const pending = tessera.fetch(`${ORIGIN}/auth/me`).catch((e) => e);
    await tick(1);
    const loggingOut = tessera.logout();
    open();
    await loggingOut;
    await pending;
    assert.equal(tessera.status(), null);
  });
});

describe("restore", () => {
  it("is true when the cookie holds a session", async () => {
    const server = fakeServer();
    server.cookie = "rt";
    const tessera = client(server, fakeClock());
    assert.equal(await tessera.restore(), true);
    assert.equal(tessera.status()?.sessionId, "s1");
  });

  it("is false without a cookie, and that is no session end", async () => {
    const tessera = client(fakeServer(), fakeClock());
    const ends = [];
    tessera.onSessionEnd((reason) => ends.push(reason));
    assert.equal(await tessera.restore(), false);
    assert.deepEqual(ends, []);
  });

  it("is false for an expired session, which is reported", async () => {
    const server = fakeServer();
    server.refreshReply = () => refused("expired");
    const tessera = client(server, fakeClock());
    const ends = [];
    tessera.onSessionEnd((reason) => ends.push(reason));
    assert.equal(await tessera.restore(), false);
    assert.deepEqual(ends, ["expired"]);
  });
});

describe("login, register, account calls", () => {
  it("posts credentials as JSON and keeps the token in memory", async () => {
    const server = fakeServer();
    const tessera = client(server, fakeClock());
    assert.deepEqual(await tessera.register("ada", "correct horse"), { user_id: "u1", username: "ada" });
    assert.deepEqual(await tessera.login("ada", "correct horse"), { session_id: "s1", expires_in: 2 });
    const login = server.calls.find((c) => c.path === "/auth/login");
    assert.equal(login.contentType, "application/json");
    assert.equal(login.credentials, "include");
    assert.deepEqual(JSON.parse(login.body), { username: "ada", password: "correct horse" });
    assert.deepEqual(await tessera.me(), { user_id: "u1", username: "ada", session_id: "s1" });
    assert.deepEqual(await tessera.sessions(), [{ id: "s1", current: true }]);
  });

  it("throws the server's error code", async () => {
    const server = fakeServer();
    server.fetch = async () =>
      new Response(JSON.stringify({ error: "rate_limited", error_description: "slow down" }), {
        status: 429,
        headers: { "Retry-After": "30" },
      });
    const tessera = client(server, fakeClock());
    await assert.rejects(tessera.login("ada", "nope nope"), { code: "rate_limited", retryAfter: 30, message: "slow down" });
  });

  it("ends this session when it revokes itself", async () => {
    const server = fakeServer();
    const tessera = client(server, fakeClock());
    const ends = [];
    tessera.onSessionEnd((reason) => ends.push(reason));
    await tessera.login("ada", "correct horse");
    await tessera.revokeSession("s1");
    assert.deepEqual(ends, ["revoked"]);
    assert.equal(server.cookie, null);
  });

  it("logs out everywhere and clears the cookie", async () => {
    const server = fakeServer();
    const tessera = client(server, fakeClock());
    const ends = [];
    tessera.onSessionEnd((reason) => ends.push(reason));
    await tessera.login("ada", "correct horse");
    await tessera.logoutAll();
    assert.deepEqual(server.calls.slice(-2).map((c) => c.path), ["/auth/logout-all", "/auth/logout"]);
    assert.deepEqual(ends, ["logout"]);
  });

  it("stays signed in when the logout request fails", async () => {
    const server = fakeServer();
    const realFetch = server.fetch;
    server.fetch = async (input, init) => {
      if (String(input).endsWith("/auth/logout")) throw new TypeError("Failed to fetch");
      return realFetch(input, init);
    };
    const flaky = client(server, fakeClock());
    await flaky.login("ada", "correct horse");
    await assert.rejects(flaky.logout(), TypeError);
    assert.notEqual(flaky.status(), null);
  });
});

describe("tabs", () => {
  function tabs(server, n, extra = {}) {
    const locks = fakeLocks();
    const Channel = channelHub();
    const clocks = Array.from({ length: n }, (_, i) => fakeClock(i * 123_456));
    const clients = clocks.map((clock) =>
      client(server, clock, { locks, BroadcastChannel: Channel, channelName: "tessera:test", ...extra }),
    );
    return { locks, clients, clocks, time: linkedClocks(...clocks) };
  }

  it("hands a login to the other tabs with its remaining lifetime", async () => {
    const server = fakeServer();
    const { clients, time } = tabs(server, 2);
    await clients[0].login("ada", "correct horse");
    await tick(1);
    time.advance(300);
    const info = clients[1].status();
    assert.equal(info?.source, "tab");
    assert.equal(info?.expiresInMs, 1_700);
    for (const c of clients) c.close();
  });

  it("refreshes once for all tabs that need it at the same moment", async () => {
    const server = fakeServer();
    const { clients, time } = tabs(server, 4);
    await clients[0].login("ada", "correct horse");
    await tick(1);
    time.advance(1_600);
    const results = await Promise.all(clients.map((c) => c.fetch(`${ORIGIN}/auth/me`)));
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200]);
    assert.equal(server.refreshCount(), 1);
    assert.deepEqual(new Set(server.calls.slice(-4).map((c) => c.authorization)), new Set(["Bearer at2"]));
    for (const c of clients) c.close();
  });

  it("ends the session in every tab when one logs out", async () => {
    const server = fakeServer();
    const { clients } = tabs(server, 3);
    const ends = [[], [], []];
    clients.forEach((c, i) => c.onSessionEnd((reason) => ends[i].push(reason)));
    await clients[0].login("ada", "correct horse");
    await tick(1);
    await clients[1].logout();
    await tick(1);
    assert.deepEqual(ends, [["logout"], ["logout"], ["logout"]]);
    for (const c of clients) c.close();
  });

  it("passes a refused refresh on to the tabs of that session only", async () => {
    const server = fakeServer();
    const { clients, time } = tabs(server, 2);
    const ends = [[], []];
    clients.forEach((c, i) => c.onSessionEnd((reason) => ends[i].push(reason)));
    await clients[0].login("ada", "correct horse");
    await tick(1);
    server.refreshReply = () => refused("reused");
    time.advance(1_600);
    await assert.rejects(clients[0].fetch(`${ORIGIN}/auth/me`), { reason: "reused" });
    await tick(1);
    assert.deepEqual(ends, [["reused"], ["reused"]]);
    for (const c of clients) c.close();
  });

  it("refreshes anyway when a frozen tab keeps the lock", async () => {
    const server = fakeServer();
    server.cookie = "rt";
    const { clients, locks } = tabs(server, 1, { lockTimeoutMs: 20 });
    const release = locks.hold("tessera:test");
    const keepAlive = setTimeout(() => {}, 1_000); // Node does not wait for AbortSignal.timeout alone
    const res = await clients[0].fetch(`${ORIGIN}/auth/me`);
    clearTimeout(keepAlive);
    assert.equal(res.status, 200);
    assert.equal(server.refreshCount(), 1);
    release();
    clients[0].close();
  });
});

describe("without a working lock manager", () => {
  it("refreshes when the lock manager refuses", async () => {
    const server = fakeServer();
    server.cookie = "rt";
    const locks = { request: async () => Promise.reject(new DOMException("denied", "SecurityError")) };
    const res = await client(server, fakeClock(), { locks }).fetch(`${ORIGIN}/auth/me`);
    assert.equal(res.status, 200);
  });

  it("does not refresh twice when the task itself fails under the lock", async () => {
    const server = fakeServer();
    server.cookie = "rt";
    server.refreshReply = () => new Response(JSON.stringify({ error: "csrf_rejected" }), { status: 403 });
    const tessera = client(server, fakeClock(), { locks: fakeLocks() });
    await assert.rejects(tessera.fetch(`${ORIGIN}/auth/me`), { code: "csrf_rejected" });
    assert.equal(server.refreshCount(), 1);
  });
});

describe("waking up", () => {
  it("renews when the page becomes visible with a stale token", async () => {
    const server = fakeServer();
    const clock = fakeClock();
    const document = fakeDocument();
    const tessera = client(server, clock, { document });
    await tessera.login("ada", "correct horse");
    document.dispatchEvent(new Event("visibilitychange"));
    await tick(1);
    assert.equal(server.refreshCount(), 0, "a fresh token is not renewed");
    clock.sleep(60_000);
    document.dispatchEvent(new Event("visibilitychange"));
    await tick(1);
    assert.equal(server.refreshCount(), 1);
    const before = server.calls.length;
    await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.deepEqual(server.calls.slice(before).map((c) => [c.path, c.authorization]), [["/auth/me", "Bearer at2"]]);
    tessera.close();
  });

  it("renews when the network comes back", async () => {
    const server = fakeServer();
    const clock = fakeClock();
    const window = new EventTarget();
    const tessera = client(server, clock, { window });
    await tessera.login("ada", "correct horse");
    clock.advance(5_000);
    window.dispatchEvent(new Event("online"));
    await tick(1);
    assert.equal(server.refreshCount(), 1);
    tessera.close();
  });
});
