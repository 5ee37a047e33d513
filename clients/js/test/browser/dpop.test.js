// Sessions bound to the device key (DPoP), in a real Chromium against the real server: the key
// cannot be read out, and a cookie or access token copied out of the browser is worthless
// elsewhere, while the page that holds the key goes on.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";

import { deviceKeys } from "../../lib/dpop.js";
import { systemClock } from "../../lib/expiry.js";
import { fakeIndexedDB } from "../unit/fakes.js";
import {
  ACCESS_TTL_MS,
  callRepeatedly,
  ends,
  hasToken,
  REFRESH_OK,
  REUSE,
  TEST_TIMEOUT,
  useBrowser,
  openDemo,
  PASSWORD,
  registerUser,
  signIn,
  unexpectedProblems,
  watch,
  withServer,
} from "./harness.js";

const browser = useBrowser();

/** The JSON of a JWT's (or proof's) part `index`. */
const jwtPart = (jwt, index) => JSON.parse(Buffer.from(jwt.split(".")[index], "base64url").toString("utf8"));

/** RFC 7638 thumbprint of the `jwk` in a proof's header. */
function proofKey(proof) {
  const { crv, kty, x, y } = jwtPart(proof, 0).jwk;
  return createHash("sha256").update(JSON.stringify({ crv, kty, x, y })).digest("base64url");
}

/**
 * The device key record the page's client keeps in IndexedDB, and what export attempts on its
 * private key gave; null when there is none.
 * @param {import("playwright-core").Page} page
 */
function storedKey(page) {
  return page.evaluate(async () => {
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open("tessera-dpop", 1);
      request.onupgradeneeded = () => request.result.createObjectStore("keys");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const value = await new Promise((resolve, reject) => {
      const request = db.transaction("keys").objectStore("keys").get(`tessera:${location.origin}`);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    db.close();
    if (!value) return null;
    const { privateKey } = value.keyPair;
    const attempt = (format) =>
      crypto.subtle.exportKey(format, privateKey).then(
        () => "exported",
        (error) => error.name,
      );
    return {
      jkt: value.jkt,
      extractable: privateKey.extractable,
      algorithm: privateKey.algorithm,
      usages: privateKey.usages,
      exportJwk: await attempt("jwk"),
      exportPkcs8: await attempt("pkcs8"),
    };
  });
}

/**
 * Records the `Authorization` and `DPoP` headers of the page's requests to `/auth/*`.
 * @param {import("playwright-core").Page} page
 */
function recordAuthHeaders(page) {
  const seen = [];
  page.on("request", async (request) => {
    const { pathname } = new URL(request.url());
    if (!pathname.startsWith("/auth/")) return;
    const entry = { path: pathname, start: Date.now(), end: Infinity };
    seen.push(entry);
    const headers = await request.allHeaders();
    entry.authorization = headers.authorization ?? null;
    entry.dpop = headers.dpop ?? null;
  });
  const finish = (request) => {
    const entry = seen.find((e) => e.path === new URL(request.url()).pathname && e.end === Infinity);
    if (entry) entry.end = Date.now();
  };
  page.on("requestfinished", finish);
  page.on("requestfailed", finish);
  return seen;
}

/** A proof signed in Node by a key of the attacker's own (the client's code, not the page's key). */
async function attackerProof(method, url, accessToken) {
  const keys = deviceKeys({ crypto: globalThis.crypto, indexedDB: fakeIndexedDB(), name: "attacker", clock: systemClock });
  const key = await keys.generate();
  return keys.proof(key, { method, url, accessToken });
}

/** @param {Response} res */
async function answer(res) {
  return { status: res.status, body: await res.json().catch(() => null), challenge: res.headers.get("WWW-Authenticate") };
}

describe("sessions bound to the browser's device key (DPoP)", () => {
  it("binds the login to a non-extractable P-256 key kept in IndexedDB", { timeout: TEST_TIMEOUT }, async () => {
    await withServer(browser(), async ({ server, context }) => {
      const page = await openDemo(context, server);
      const headers = recordAuthHeaders(page);
      const login = page.waitForResponse((r) => r.url().endsWith("/auth/login") && r.status() === 200);
      await signIn(page, await registerUser(server));
      const body = await (await login).json();
      assert.equal(body.token_type, "DPoP");
      assert.equal(body.refresh_token, undefined);

      const key = await storedKey(page);
      assert.ok(key, "a key is stored");
      assert.equal(key.extractable, false);
      assert.deepEqual(key.algorithm, { name: "ECDSA", namedCurve: "P-256" });
      assert.deepEqual(key.usages, ["sign"]);
      assert.equal(key.exportJwk, "InvalidAccessError", "crypto.subtle.exportKey fails");
      assert.equal(key.exportPkcs8, "InvalidAccessError");

      const thumbprint = await page.evaluate(() => window.tessera.status()?.keyThumbprint);
      assert.equal(thumbprint, key.jkt);
      assert.equal(jwtPart(body.access_token, 1).cnf?.jkt, key.jkt, "the server bound the token to the same key");
      const loginProof = headers.find((h) => h.path === "/auth/login")?.dpop;
      assert.ok(loginProof, "the login carried a proof");
      assert.equal(proofKey(loginProof), key.jkt);
      await page.waitForSelector("[data-testid=token-binding][data-bound=true]");
      assert.match((await page.textContent("[data-testid=token-binding]")) ?? "", /Bound to this device's key/);
    });
  });

  it("refuses the refresh cookie copied into another browser or into a script, while the page keeps refreshing", { timeout: TEST_TIMEOUT }, async (t) => {
    await withServer(browser(), async ({ server, context }) => {
      const page = await openDemo(context, server);
      await signIn(page, await registerUser(server));
      await watch(page);
      const cookies = await context.cookies();
      const refresh = cookies.find((c) => c.name.endsWith("tessera_refresh"));
      assert.ok(refresh);

      // Another browser profile with the copied cookie jar: the client there has no key.
      const thief = await browser().newContext();
      try {
        await thief.addCookies(cookies);
        const thiefPage = await openDemo(thief, server);
        await watch(thiefPage);
        const refused = thiefPage.waitForResponse((r) => r.url().endsWith("/auth/refresh"));
        assert.equal(await thiefPage.evaluate(() => window.tessera.restore()), false);
        const thiefAnswer = await refused;
        t.diagnostic(`copied cookie in another context: ${thiefAnswer.status()} ${await thiefAnswer.text()}`);
        assert.equal(thiefAnswer.status(), 401);
        assert.equal((await thiefAnswer.json()).error, "invalid_dpop_proof");
        assert.deepEqual((await ends(thiefPage)).map((e) => e.reason), ["dpop_key_missing"]);
      } finally {
        await thief.close();
      }

      // The same cookie from a script: without a proof, and with a proof by the script's own key.
      const url = `${server.origin}/auth/refresh`;
      const post = (extra = {}) =>
        fetch(url, { method: "POST", headers: { Cookie: `${refresh.name}=${refresh.value}`, Origin: server.origin, ...extra } });
      const bare = await answer(await post());
      assert.deepEqual([bare.status, bare.body?.error], [401, "invalid_dpop_proof"], JSON.stringify(bare));
      const other = await answer(await post({ DPoP: await attackerProof("POST", url) }));
      t.diagnostic(`copied cookie with another key's proof: ${JSON.stringify(other)}`);
      assert.deepEqual([other.status, other.body?.error, other.body?.reason], [401, "invalid_refresh_token", "dpop_mismatch"]);
      assert.equal(await server.metric("tessera_dpop_mismatch_total"), 1, "the mismatch was counted");

      // The rightful page: its token was not consumed, its session not revoked.
      const before = await server.metric(...REFRESH_OK);
      const results = await callRepeatedly(page, { everyMs: 300, forMs: 2.5 * ACCESS_TTL_MS });
      const refreshes = (await server.metric(...REFRESH_OK)) - before;
      t.diagnostic(`${results.length} calls and ${refreshes} refreshes after the attempts`);
      assert.deepEqual(results.filter((r) => r !== 200), [], "every call of the page succeeds");
      assert.ok(refreshes >= 2, `the page kept refreshing (${refreshes})`);
      assert.deepEqual(await ends(page), []);
      assert.equal(await server.metric(REUSE), 0, "no reuse detected: the copies consumed nothing");
      // The copied cookie is stale now, and still refused for its missing proof first.
      assert.equal((await post()).status, 401);
    });
  });

  it("refuses an access token copied out of the page at /auth/me without the key's proof", { timeout: TEST_TIMEOUT }, async (t) => {
    await withServer(browser(), async ({ server, context }) => {
      const page = await openDemo(context, server);
      await signIn(page, await registerUser(server));
      const sent = page.waitForRequest((r) => r.url().endsWith("/auth/me"));
      assert.equal(await page.evaluate(async () => (await window.tessera.fetch("/auth/me")).status), 200, "control: the page itself");
      const headers = await (await sent).allHeaders();
      const [scheme, token] = headers.authorization.split(" ");
      assert.equal(scheme, "DPoP");
      const pageProof = headers.dpop;
      assert.equal(jwtPart(pageProof, 1).ath, createHash("sha256").update(token).digest("base64url"));

      const url = `${server.origin}/auth/me`;
      const me = async (h) => answer(await fetch(url, { headers: h }));
      const asBearer = await me({ Authorization: `Bearer ${token}` });
      t.diagnostic(`as Bearer: ${JSON.stringify(asBearer)}`);
      assert.deepEqual([asBearer.status, asBearer.body?.error], [401, "invalid_token"]);
      assert.match(asBearer.challenge ?? "", /^DPoP /);
      const noProof = await me({ Authorization: `DPoP ${token}` });
      assert.deepEqual([noProof.status, noProof.body?.error], [401, "invalid_dpop_proof"]);
      assert.match(noProof.challenge ?? "", /^DPoP .*error="invalid_dpop_proof"/);
      const replayed = await me({ Authorization: `DPoP ${token}`, DPoP: pageProof });
      t.diagnostic(`with the page's own proof replayed: ${JSON.stringify(replayed)}`);
      assert.equal(replayed.status, 401, "a proof is good once");
      const otherKey = await me({ Authorization: `DPoP ${token}`, DPoP: await attackerProof("GET", url, token) });
      t.diagnostic(`with another key's proof: ${JSON.stringify(otherKey)}`);
      assert.equal(otherKey.status, 401);

      assert.equal((await page.evaluate(() => window.tessera.me())).session_id, await page.evaluate(() => window.tessera.status()?.sessionId));
    });
  });

  it("shares one key between two tabs, which still refresh one at a time", { timeout: TEST_TIMEOUT }, async (t) => {
    await withServer(browser(), async ({ server, context }) => {
      const tabs = [await openDemo(context, server), await openDemo(context, server)];
      const headers = tabs.map((tab) => recordAuthHeaders(tab));
      await signIn(tabs[0], await registerUser(server));
      for (const tab of tabs) await hasToken(tab);
      for (const tab of tabs) await watch(tab);
      const thumbprints = await Promise.all(tabs.map((tab) => tab.evaluate(() => window.tessera.status()?.keyThumbprint)));
      assert.equal(thumbprints[0], thumbprints[1], "the second tab uses the first one's key");
      assert.equal(thumbprints[1], (await storedKey(tabs[1])).jkt);

      const results = await Promise.all(tabs.map((tab) => callRepeatedly(tab, { everyMs: 250, forMs: 3 * ACCESS_TTL_MS })));
      for (const [i, r] of results.entries()) assert.deepEqual(r.filter((s) => s !== 200), [], `tab ${i}: every call succeeds`);

      const all = headers.flat();
      const proofs = all.filter((h) => h.dpop);
      assert.deepEqual([...new Set(proofs.map((h) => proofKey(h.dpop)))], [thumbprints[0]], "one key signed every proof");
      const jtis = proofs.map((h) => jwtPart(h.dpop, 1).jti);
      assert.equal(new Set(jtis).size, jtis.length, "no proof used twice");
      const refreshes = all.filter((h) => h.path === "/auth/refresh").sort((a, b) => a.start - b.start);
      t.diagnostic(`refreshes per tab: ${headers.map((h) => h.filter((e) => e.path === "/auth/refresh").length).join(", ")}`);
      assert.ok(refreshes.length >= 2, `${refreshes.length} refreshes`);
      for (let i = 1; i < refreshes.length; i += 1) {
        assert.ok(refreshes[i].start >= refreshes[i - 1].end, `refresh ${i} started before refresh ${i - 1} ended`);
      }
      assert.equal(await server.metric(REUSE), 0);
    });
  });

  it("keeps the session and its key across a reload", { timeout: TEST_TIMEOUT }, async () => {
    await withServer(browser(), async ({ server, context }) => {
      const page = await openDemo(context, server);
      const username = await registerUser(server);
      await signIn(page, username);
      const before = await page.evaluate(() => window.tessera.status()?.keyThumbprint);
      const headers = recordAuthHeaders(page);

      await page.reload();
      await page.waitForSelector("body[data-ready=true]");
      assert.equal(await page.evaluate(() => window.tessera.restore()), true);
      assert.equal(await page.evaluate(() => window.tessera.status()?.keyThumbprint), before);
      assert.equal((await page.evaluate(() => window.tessera.me())).username, username);
      const refresh = headers.find((h) => h.path === "/auth/refresh");
      assert.ok(refresh?.dpop, "the renewal after the reload carried a proof");
      assert.equal(proofKey(refresh.dpop), before, "signed by the key from IndexedDB");
    });
  });

  it("deletes the key when the session ends: logout, or a revocation", { timeout: TEST_TIMEOUT }, async () => {
    await withServer(browser(), async ({ server, context }) => {
      const page = await openDemo(context, server);
      const username = await registerUser(server);
      await signIn(page, username);
      assert.ok(await storedKey(page));
      await page.click("[data-testid=logout]");
      await page.waitForSelector("[data-testid=login-form]");
      await page.waitForFunction(() => window.tessera.status() === null);
      assert.equal(await storedKey(page), null, "logout deleted the key");

      await signIn(page, username);
      assert.ok(await storedKey(page), "a new login made a new key");
      await watch(page);
      await server.cli("sessions", "revoke", await page.evaluate(() => window.tessera.status()?.sessionId));
      await callRepeatedly(page, { everyMs: 300, forMs: ACCESS_TTL_MS + 500 });
      assert.deepEqual((await ends(page)).map((e) => e.reason), ["revoked"]);
      assert.equal(await storedKey(page), null, "the revoked session's key is gone");
      assert.deepEqual(unexpectedProblems(page), []);
    });
  });

  it("gives Bearer tokens and stores no key with { dpop: false }", { timeout: TEST_TIMEOUT }, async () => {
    await withServer(browser(), async ({ server, context }) => {
      const page = await openDemo(context, server);
      const username = await registerUser(server);
      const headers = recordAuthHeaders(page);
      const login = page.waitForResponse((r) => r.url().endsWith("/auth/login"));
      const status = await page.evaluate(
        async ([u, p]) => {
          const { createClient } = await import("/tessera-client.js");
          const plain = createClient({ dpop: false, channelName: "plain" });
          await plain.login(u, p);
          return (await plain.fetch("/auth/me")).status;
        },
        [username, PASSWORD],
      );
      assert.equal(status, 200);
      assert.equal((await (await login).json()).token_type, "Bearer");
      const me = headers.find((h) => h.path === "/auth/me");
      assert.match(me?.authorization ?? "", /^Bearer /);
      assert.equal(me?.dpop, null);
      assert.equal(headers.find((h) => h.path === "/auth/login")?.dpop, null);
      assert.equal(await storedKey(page), null);
    });
  });

  it("keeps no key and uses Bearer when the server has DPoP off", { timeout: TEST_TIMEOUT }, async () => {
    await withServer(
      browser(),
      async ({ server, context }) => {
        const page = await openDemo(context, server);
        const headers = recordAuthHeaders(page);
        await signIn(page, await registerUser(server));
        assert.ok(headers.find((h) => h.path === "/auth/login")?.dpop, "the client offered a proof");
        assert.equal(await page.evaluate(() => window.tessera.status()?.keyThumbprint), null);
        assert.equal(await storedKey(page), null);
        assert.equal(await page.evaluate(async () => (await window.tessera.fetch("/auth/me")).status), 200);
        assert.match(headers.findLast((h) => h.path === "/auth/me")?.authorization ?? "", /^Bearer /);
        await page.waitForSelector("[data-testid=token-binding][data-bound=false]");
      },
      { env: { TESSERA_DPOP: "off" } },
    );
  });

  it("signs in where the server requires DPoP, which refuses a client that opted out", { timeout: TEST_TIMEOUT }, async () => {
    await withServer(
      browser(),
      async ({ server, context }) => {
        const page = await openDemo(context, server);
        const username = await registerUser(server);
        const optedOut = await page.evaluate(
          async ([u, p]) => {
            const { createClient } = await import("/tessera-client.js");
            return createClient({ dpop: false, channelName: "plain" }).login(u, p).then(() => "ok", (e) => `${e.status} ${e.code}`);
          },
          [username, PASSWORD],
        );
        assert.equal(optedOut, "400 invalid_dpop_proof");
        await signIn(page, username);
        assert.ok(await page.evaluate(() => window.tessera.status()?.keyThumbprint));
      },
      { env: { TESSERA_DPOP: "required" } },
    );
  });

  it("signs in and keeps refreshing with the device's clock five minutes ahead", { timeout: TEST_TIMEOUT }, async (t) => {
    await withServer(browser(), async ({ server, context }) => {
      await context.addInitScript(() => {
        const now = Date.now.bind(Date);
        Date.now = () => now() + 5 * 60_000;
      });
      const page = await openDemo(context, server);
      const responses = await watch(page);
      await signIn(page, await registerUser(server));
      assert.ok(await page.evaluate(() => window.tessera.status()?.keyThumbprint), "the session is bound");
      const results = await callRepeatedly(page, { everyMs: 300, forMs: 2.5 * ACCESS_TTL_MS });
      const refused = responses.filter((r) => r.status === 400 || r.status === 401);
      t.diagnostic(`refused: ${refused.map((r) => `${r.path} ${r.status}`).join(", ") || "none"}`);
      assert.deepEqual(results.filter((r) => r !== 200), []);
      assert.ok(responses.some((r) => r.path === "/auth/refresh" && r.status === 200));
      assert.ok(refused.length <= 1, "one refused proof at most: later ones count on the server's time");
      assert.deepEqual(await ends(page), []);
    });
  });

  it("follows the server's nonces through login and refreshes", { timeout: TEST_TIMEOUT }, async (t) => {
    await withServer(
      browser(),
      async ({ server, context }) => {
        const page = await openDemo(context, server);
        const responses = await watch(page);
        await signIn(page, await registerUser(server));
        const results = await callRepeatedly(page, { everyMs: 300, forMs: 2.5 * ACCESS_TTL_MS });
        t.diagnostic(responses.map((r) => `${r.path} ${r.status}`).join(", "));
        const logins = responses.filter((r) => r.path === "/auth/login").map((r) => r.status);
        assert.deepEqual(logins, [400, 200], "the first proof had no nonce; the retry had the one the server sent");
        assert.deepEqual(results.filter((r) => r !== 200), []);
        assert.ok(responses.some((r) => r.path === "/auth/refresh" && r.status === 200));
        assert.deepEqual(await ends(page), []);
      },
      { env: { TESSERA_DPOP_NONCE: "true" } },
    );
  });
});
