// The device key (DPoP) against the fake server, which checks proofs with node:crypto: proof
// shape, the key's life (made at login, kept in IndexedDB, shared by tabs, deleted at the end),
// nonces, and the Bearer fallback.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";

import { createClient } from "../../tessera-client.js";
import { ORIGIN, channelHub, decodeProof, fakeClock, fakeIndexedDB, fakeLocks, fakeServer, fakeWiring, jwkThumbprint, linkedClocks, tick } from "./fakes.js";

const STORE_KEY = `tessera:${ORIGIN}`;

/** A client with a device key: the fake server, clock and IndexedDB, real WebCrypto. */
function client(server, clock, indexedDB, extra = {}) {
  return createClient({ ...fakeWiring(server, clock), indexedDB, ...extra });
}

const sha256 = (text) => createHash("sha256").update(text).digest("base64url");
const proofsTo = (server, path) => server.calls.filter((c) => c.path === path).map((c) => c.proof);

describe("login with a device key", () => {
  it("signs the login with a new non-extractable P-256 key and keeps the key in IndexedDB", async () => {
    const server = fakeServer();
    const clock = fakeClock();
    const db = fakeIndexedDB();
    const tessera = client(server, clock, db);
    await tessera.login("ada", "correct horse");

    const [proof] = proofsTo(server, "/auth/login");
    assert.deepEqual(Object.keys(proof.header).sort(), ["alg", "jwk", "typ"]);
    assert.equal(proof.header.typ, "dpop+jwt");
    assert.equal(proof.header.alg, "ES256");
    assert.deepEqual(Object.keys(proof.header.jwk).sort(), ["crv", "kty", "x", "y"], "public members only");
    assert.deepEqual(Object.keys(proof.payload).sort(), ["htm", "htu", "iat", "jti"], "no ath on a login, no nonce unasked");
    assert.equal(proof.payload.htm, "POST");
    assert.equal(proof.payload.htu, `${ORIGIN}/auth/login`);
    assert.equal(proof.payload.iat, Math.floor(clock.wallNow / 1000));
    assert.match(proof.payload.jti, /^[A-Za-z0-9_-]{22}$/);

    const jkt = jwkThumbprint(proof.header.jwk);
    assert.equal(server.boundTo, jkt, "the server bound the session to the proof's key");
    assert.equal(tessera.status()?.keyThumbprint, jkt);

    const stored = db.peek(STORE_KEY);
    assert.equal(stored.jkt, jkt);
    assert.equal(stored.keyPair.privateKey.extractable, false);
    assert.deepEqual(stored.keyPair.privateKey.algorithm, { name: "ECDSA", namedCurve: "P-256" });
    await assert.rejects(crypto.subtle.exportKey("jwk", stored.keyPair.privateKey));
    await assert.rejects(crypto.subtle.exportKey("pkcs8", stored.keyPair.privateKey));
  });

  it("makes a new key at each login", async () => {
    const server = fakeServer();
    const db = fakeIndexedDB();
    const tessera = client(server, fakeClock(), db);
    await tessera.login("ada", "correct horse");
    const first = db.peek(STORE_KEY).jkt;
    await tessera.login("ada", "correct horse");
    assert.notEqual(db.peek(STORE_KEY).jkt, first);
    assert.equal(server.boundTo, db.peek(STORE_KEY).jkt);
  });

  it("keeps the key of the session it holds when a login fails", async () => {
    const server = fakeServer();
    const db = fakeIndexedDB();
    let wrongPassword = false;
    const realFetch = server.fetch;
    server.fetch = async (input, init) =>
      wrongPassword && String(input).endsWith("/auth/login")
        ? new Response(JSON.stringify({ error: "invalid_credentials" }), { status: 401 })
        : realFetch(input, init);
    const tessera = client(server, fakeClock(), db);
    await tessera.login("ada", "correct horse");
    const held = db.peek(STORE_KEY).jkt;
    wrongPassword = true;
    await assert.rejects(tessera.login("ada", "wrong password"), { code: "invalid_credentials" });
    assert.equal(db.peek(STORE_KEY).jkt, held);
    assert.equal((await tessera.fetch(`${ORIGIN}/auth/me`)).status, 200);
  });
});

describe("bound tokens", () => {
  it("sends each call as DPoP with its own proof covering the token", async () => {
    const server = fakeServer();
    const tessera = client(server, fakeClock(), fakeIndexedDB());
    await tessera.login("ada", "correct horse");
    await tessera.fetch(`${ORIGIN}/api/notes?page=2#top`);
    await tessera.fetch(new Request(`${ORIGIN}/api/notes`, { method: "post", body: "hello" }));
    await tessera.fetch(`${ORIGIN}/api/notes/7`, { method: "DELETE" });

    const calls = server.calls.filter((c) => c.path.startsWith("/api/"));
    assert.deepEqual(calls.map((c) => c.authorization), ["DPoP at1", "DPoP at1", "DPoP at1"]);
    assert.deepEqual(
      calls.map((c) => [c.proof.payload.htm, c.proof.payload.htu]),
      [
        ["GET", `${ORIGIN}/api/notes`],
        ["POST", `${ORIGIN}/api/notes`],
        ["DELETE", `${ORIGIN}/api/notes/7`],
      ],
      "htu without query or fragment",
    );
    for (const call of calls) assert.equal(call.proof.payload.ath, sha256("at1"));
    const jtis = server.calls.filter((c) => c.proof).map((c) => c.proof.payload.jti);
    assert.equal(new Set(jtis).size, jtis.length, "no jti twice");
  });

  it("signs every refresh with the session's key, and the lost-answer retries with new proofs", async () => {
    const server = fakeServer();
    const clock = fakeClock();
    const tessera = client(server, clock, fakeIndexedDB());
    await tessera.login("ada", "correct horse");
    let lost = 2;
    server.refreshReply = (call) => {
      if (lost-- > 0) {
        server.checkProof(call.dpop, { method: "POST", url: `${ORIGIN}/auth/refresh`, nonce: null });
        throw new TypeError("Failed to fetch");
      }
      server.refreshReply = null;
      return server.fetch(`${ORIGIN}/auth/refresh`, { method: "POST", headers: { DPoP: call.dpop } });
    };
    clock.advance(2_100); // past expiry: no usable token left, so the lost answers are retried
    const res = await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.equal(res.status, 200);
    const proofs = proofsTo(server, "/auth/refresh");
    assert.ok(proofs.length >= 3);
    const tries = proofs.slice(0, 3);
    assert.equal(new Set(tries.map((p) => p.payload.jti)).size, 3, "each try has a fresh jti");
    for (const proof of tries) {
      assert.equal(jwkThumbprint(proof.header.jwk), server.boundTo);
      assert.deepEqual([proof.payload.htm, proof.payload.htu, proof.payload.ath], ["POST", `${ORIGIN}/auth/refresh`, undefined]);
    }
    assert.equal(server.calls.at(-1).authorization, "DPoP at2");
  });

  it("renews once on invalid_token and retries as DPoP with the new token", async () => {
    const server = fakeServer();
    const tessera = client(server, fakeClock(), fakeIndexedDB());
    await tessera.login("ada", "correct horse");
    server.valid.clear();
    const res = await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.equal(res.status, 200);
    const me = server.calls.filter((c) => c.path === "/auth/me");
    assert.deepEqual(me.map((c) => c.authorization), ["DPoP at1", "DPoP at2"]);
    assert.deepEqual(me.map((c) => c.proof.payload.ath), [sha256("at1"), sha256("at2")]);
  });

  it("restores after a reload with the key from IndexedDB", async () => {
    const server = fakeServer();
    const db = fakeIndexedDB();
    await client(server, fakeClock(), db).login("ada", "correct horse");
    const reloaded = client(server, fakeClock(), db);
    assert.equal(await reloaded.restore(), true);
    assert.equal(reloaded.status()?.keyThumbprint, server.boundTo);
    assert.equal((await reloaded.fetch(`${ORIGIN}/auth/me`)).status, 200);
  });

  it("uses Bearer and keeps no key when the server ignores proofs", async () => {
    const server = fakeServer();
    const db = fakeIndexedDB();
    const tessera = client(server, fakeClock(), db);
    await tessera.login("ada", "correct horse");
    assert.ok(db.peek(STORE_KEY), "control: a bound login keeps its key");
    server.ignoresProofs = true;
    await tessera.login("ada", "correct horse");
    await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.equal(server.calls.at(-1).authorization, "Bearer at2");
    assert.equal(server.calls.at(-1).dpop, null);
    assert.equal(tessera.status()?.keyThumbprint, null);
    assert.equal(db.peek(STORE_KEY), undefined, "the earlier session's key signs nothing for this one");
  });
});

describe("server nonces", () => {
  it("retries a login once with the nonce the server asked for", async () => {
    const server = fakeServer();
    server.nonce = "n1";
    const tessera = client(server, fakeClock(), fakeIndexedDB());
    await tessera.login("ada", "correct horse");
    const proofs = proofsTo(server, "/auth/login");
    assert.deepEqual(proofs.map((p) => p.payload.nonce), [undefined, "n1"]);
    assert.notEqual(proofs[0].payload.jti, proofs[1].payload.jti);
    assert.equal(tessera.status()?.keyThumbprint, server.boundTo);
  });

  it("follows a nonce the server changed before a refresh", async () => {
    const server = fakeServer();
    server.nonce = "n1";
    const clock = fakeClock();
    const tessera = client(server, clock, fakeIndexedDB());
    await tessera.login("ada", "correct horse");
    server.nonce = "n2";
    clock.advance(1_600);
    assert.equal((await tessera.fetch(`${ORIGIN}/auth/me`)).status, 200);
    assert.deepEqual(proofsTo(server, "/auth/refresh").map((p) => p.payload.nonce), ["n1", "n2"]);
    assert.equal(server.refreshCount(), 2);
  });

  it("asks once, not in a loop, when the server keeps refusing the nonce", async () => {
    const server = fakeServer();
    let n = 0;
    const realFetch = server.fetch;
    server.fetch = async (input, init) => {
      if (!String(input).endsWith("/auth/login")) return realFetch(input, init);
      server.calls.push({ path: "/auth/login" });
      n += 1;
      return new Response(JSON.stringify({ error: "use_dpop_nonce" }), { status: 401, headers: { "DPoP-Nonce": `n${n}` } });
    };
    const tessera = client(server, fakeClock(), fakeIndexedDB());
    await assert.rejects(tessera.login("ada", "correct horse"), { code: "use_dpop_nonce" });
    assert.equal(n, 2);
  });

  it("retries a resource call with the resource server's nonce, body included", async () => {
    const server = fakeServer();
    const tessera = client(server, fakeClock(), fakeIndexedDB());
    await tessera.login("ada", "correct horse");
    server.resourceNonce = "r1";
    const res = await tessera.fetch(new Request(`${ORIGIN}/api/notes`, { method: "POST", body: "hello" }));
    assert.equal(res.status, 200);
    const calls = server.calls.filter((c) => c.path === "/api/notes");
    assert.deepEqual(calls.map((c) => c.proof.payload.nonce), [undefined, "r1"]);
    assert.equal(server.refreshCount(), 0, "a nonce is no reason to renew");
  });
});

describe("a device clock that is off", () => {
  for (const [name, offMs] of [
    ["ahead", 5 * 60_000],
    ["behind", -3 * 60_000],
  ]) {
    it(`signs on the server's time once a proof was refused for a clock ${name}`, async () => {
      const server = fakeServer();
      server.clock = fakeClock();
      const clock = fakeClock();
      clock.wallNow += offMs;
      const tessera = client(server, clock, fakeIndexedDB());
      await tessera.login("ada", "correct horse");
      const logins = proofsTo(server, "/auth/login");
      assert.equal(logins.length, 2, "one refusal, one retry");
      assert.equal(logins[0].payload.iat, Math.floor(clock.wallNow / 1000));
      assert.ok(Math.abs(logins[1].payload.iat - server.clock.wallNow / 1000) <= 1, "the retry's iat is the server's time");
      clock.advance(1_600);
      server.clock.advance(1_600);
      assert.equal((await tessera.fetch(`${ORIGIN}/auth/me`)).status, 200);
      assert.equal(server.refreshCount(), 1, "later proofs are right the first time");
    });
  }

  it("does not retry a refused proof that the clocks do not explain", async () => {
    const server = fakeServer();
    server.clock = fakeClock();
    const clock = fakeClock();
    let logins = 0;
    const realAnswer = server.answer;
    server.answer = async (input, init) => {
      if (!String(input).endsWith("/auth/login")) return realAnswer(input, init);
      logins += 1;
      return new Response(JSON.stringify({ error: "invalid_dpop_proof" }), { status: 400 });
    };
    const tessera = client(server, clock, fakeIndexedDB());
    await assert.rejects(tessera.login("ada", "correct horse"), { code: "invalid_dpop_proof" });
    assert.equal(logins, 1);
    // Control: the same refusal with the device's clock a minute off is retried, once.
    clock.wallNow += 60_000;
    await assert.rejects(tessera.login("ada", "correct horse"), { code: "invalid_dpop_proof" });
    assert.equal(logins, 3);
  });
});

describe("the key and the session end together", () => {
  it("deletes the key at logout", async () => {
    const server = fakeServer();
    const db = fakeIndexedDB();
    const tessera = client(server, fakeClock(), db);
    await tessera.login("ada", "correct horse");
    await tessera.logout();
    assert.equal(db.peek(STORE_KEY), undefined, "gone by the time logout() resolves");
  });

  it("deletes the key when the server says the session ended", async () => {
    const server = fakeServer();
    const clock = fakeClock();
    const db = fakeIndexedDB();
    const tessera = client(server, clock, db);
    await tessera.login("ada", "correct horse");
    server.refreshReply = () =>
      new Response(JSON.stringify({ error: "invalid_refresh_token", reason: "revoked" }), { status: 401 });
    clock.advance(1_600);
    await assert.rejects(tessera.fetch(`${ORIGIN}/auth/me`), { reason: "revoked" });
    assert.equal(db.peek(STORE_KEY), undefined);
  });

  it("ends with dpop_mismatch when the stored key is not the session's", async () => {
    const server = fakeServer();
    const clock = fakeClock();
    const db = fakeIndexedDB();
    const tessera = client(server, clock, db);
    const ends = [];
    tessera.onSessionEnd((reason) => ends.push(reason));
    await tessera.login("ada", "correct horse");
    server.boundTo = "another key";
    clock.advance(1_600);
    await assert.rejects(tessera.fetch(`${ORIGIN}/auth/me`), { reason: "dpop_mismatch" });
    assert.deepEqual(ends, ["dpop_mismatch"]);
    assert.equal(server.cookie, "rt", "the server did not consume the token");
  });

  it("ends with dpop_key_missing when the browser lost the key of its session", async () => {
    const server = fakeServer();
    await client(server, fakeClock(), fakeIndexedDB()).login("ada", "correct horse");
    const cleared = client(server, fakeClock(), fakeIndexedDB()); // site data cleared, cookie kept
    const ends = [];
    cleared.onSessionEnd((reason) => ends.push(reason));
    assert.equal(await cleared.restore(), false);
    assert.deepEqual(ends, ["dpop_key_missing"]);
    assert.equal(proofsTo(server, "/auth/refresh")[0], null, "no proof was made up");
  });
});

describe("tabs share the key", () => {
  it("hands a bound token over, and the other tab signs with the stored key", async () => {
    const server = fakeServer();
    const db = fakeIndexedDB();
    const locks = fakeLocks();
    const Channel = channelHub();
    const clocks = [fakeClock(), fakeClock(98_765), fakeClock(4_321)];
    const tabs = clocks.map((clock) => client(server, clock, db, { locks, BroadcastChannel: Channel, channelName: "tessera:test" }));
    await tabs[0].login("ada", "correct horse");
    await tick(1);
    assert.equal(tabs[1].status()?.keyThumbprint, server.boundTo);
    assert.equal((await tabs[1].fetch(`${ORIGIN}/auth/me`)).status, 200);

    linkedClocks(...clocks).advance(1_600);
    const results = await Promise.all(tabs.map((t) => t.fetch(`${ORIGIN}/auth/me`)));
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200]);
    assert.equal(server.refreshCount(), 1, "one refresh for the three tabs");
    const signers = new Set(server.calls.filter((c) => c.proof).map((c) => jwkThumbprint(c.proof.header.jwk)));
    assert.deepEqual([...signers], [server.boundTo], "one key for every tab");

    await tabs[2].logout();
    await tick(5);
    for (const t of tabs) assert.equal(t.status(), null);
    assert.equal(db.peek("tessera:test"), undefined);
    for (const t of tabs) t.close();
  });
});

describe("without a device key", () => {
  it("uses Bearer tokens with dpop: false, and stores nothing", async () => {
    const server = fakeServer();
    const db = fakeIndexedDB();
    const tessera = client(server, fakeClock(), db, { dpop: false });
    await tessera.login("ada", "correct horse");
    await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.deepEqual(server.calls.map((c) => c.dpop), [null, null]);
    assert.equal(server.calls.at(-1).authorization, "Bearer at1");
    assert.equal(db.databases.size, 0);
  });

  it("falls back to Bearer without IndexedDB and says so once", async (t) => {
    // A fresh copy of the module: the warning is once per page, and this is a new page.
    const { createClient: fresh } = await import(`../../tessera-client.js?page=${Math.random()}`);
    const warn = t.mock.method(console, "warn", () => {});
    const server = fakeServer();
    const make = () => fresh({ ...fakeWiring(server, fakeClock()), indexedDB: null });
    const tessera = make();
    make();
    await tessera.login("ada", "correct horse");
    await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.equal(warn.mock.callCount(), 1);
    assert.match(String(warn.mock.calls[0].arguments[0]), /not bound to a device key/);
    assert.equal(server.calls.at(-1).authorization, "Bearer at1");
  });

  it("falls back to Bearer when IndexedDB cannot be opened", async (t) => {
    const { createClient: fresh } = await import(`../../tessera-client.js?page=${Math.random()}`);
    const warn = t.mock.method(console, "warn", () => {});
    const server = fakeServer();
    const tessera = fresh({ ...fakeWiring(server, fakeClock()), indexedDB: fakeIndexedDB({ refuseOpen: true }) });
    await tessera.login("ada", "correct horse");
    await tessera.fetch(`${ORIGIN}/auth/me`);
    assert.equal(server.calls[0].dpop, null);
    assert.equal(server.calls.at(-1).authorization, "Bearer at1");
    assert.equal(warn.mock.callCount(), 1);
  });
});

// decodeProof is the fake server's; a sanity check that a tampered proof is refused keeps it honest.
describe("the fake server's proof check", () => {
  it("refuses a proof whose signature does not match", async () => {
    const server = fakeServer();
    const tessera = client(server, fakeClock(), fakeIndexedDB());
    await tessera.login("ada", "correct horse");
    const proof = server.calls[0].dpop;
    const claims = decodeProof(proof).payload;
    const forged = [proof.split(".")[0], Buffer.from(JSON.stringify({ ...claims, jti: "other" })).toString("base64url"), proof.split(".")[2]].join(".");
    const checked = server.checkProof(forged, { method: "POST", url: `${ORIGIN}/auth/login`, nonce: null });
    assert.ok(checked.error, "a forged proof is refused");
  });
});
