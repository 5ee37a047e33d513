// The browser client against the real `tessera` binary, in a real headless Chromium.
// Each test starts its own server (fresh database, 2-second access tokens) and browser context.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import {
  ACCESS_TTL_MS,
  artifactsDir,
  callRepeatedly,
  launchBrowser,
  openDemo,
  PASSWORD,
  registerUser,
  signIn,
  sleep,
  startServer,
  uniqueUser,
  watch,
} from "./harness.js";

const TEST_TIMEOUT = 90_000;
const REFRESH_OK = ['tessera_refreshes_total', 'outcome="ok"'];
const REUSE = "tessera_refresh_reuse_detected_total";

/** @type {import("playwright-core").Browser} */
let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/**
 * Runs `body` with a fresh server and browser context, and tears both down.
 * @param {(env: { server: Awaited<ReturnType<typeof startServer>>, context: import("playwright-core").BrowserContext }) => Promise<void>} body
 * @param {{ width: number, height: number }} [viewport]
 */
async function withServer(body, viewport = { width: 1280, height: 900 }) {
  const server = await startServer();
  const context = await browser.newContext({ viewport });
  try {
    await body({ server, context });
  } catch (error) {
    error.message += `\n--- server output ---\n${server.output().slice(-4000)}`;
    throw error;
  } finally {
    await context.close();
    await server.stop();
  }
}

/** Waits in `page` until the client holds a token. */
async function hasToken(page) {
  await page.waitForFunction(() => window.tessera.status() !== null, null, { timeout: 5_000 });
}

/** Page errors other than the failed requests Chromium logs for expected 401s. */
function unexpectedProblems(page) {
  return page.problems.filter((p) => !p.includes("Failed to load resource"));
}

const ends = (page) => page.evaluate(() => window.__ends);

describe("browser client against the tessera server", () => {
  it("keeps a page that calls every 300 ms for three lifetimes signed in without a failure", { timeout: TEST_TIMEOUT }, async (t) => {
    await withServer(async ({ server, context }) => {
      const page = await openDemo(context, server);
      await signIn(page, await registerUser(server));
      const responses = await watch(page);
      const before = await server.metric(...REFRESH_OK);

      const results = await callRepeatedly(page, { everyMs: 300, forMs: 3.5 * ACCESS_TTL_MS });

      const refreshes = (await server.metric(...REFRESH_OK)) - before;
      t.diagnostic(`${results.length} calls, ${refreshes} refreshes over ${3.5 * ACCESS_TTL_MS} ms`);
      assert.ok(results.length >= 20, `only ${results.length} calls`);
      assert.deepEqual(results.filter((r) => r !== 200), [], "every call succeeds");
      assert.deepEqual(responses.filter((r) => r.status === 401), [], "no 401 at all");
      assert.ok(refreshes >= 3, `the token was renewed (${refreshes} refreshes)`);
      assert.deepEqual(await ends(page), [], "the session never ended");
      assert.equal(await page.isHidden("[data-testid=signed-out]"), true, "no login prompt");
      assert.deepEqual(unexpectedProblems(page), []);
    });
  });

  it("lets four tabs share one refresh per lifetime with no 401 and no reuse", { timeout: TEST_TIMEOUT }, async (t) => {
    await withServer(async ({ server, context }) => {
      const tabs = [];
      for (let i = 0; i < 4; i += 1) tabs.push(await openDemo(context, server));
      await signIn(tabs[0], await registerUser(server));
      for (const tab of tabs) await hasToken(tab); // the login was handed over to the other tabs
      const watched = await Promise.all(tabs.map((tab) => watch(tab)));
      const before = await server.metric(...REFRESH_OK);
      const started = Date.now();

      const results = await Promise.all(tabs.map((tab) => callRepeatedly(tab, { everyMs: 300, forMs: 3.5 * ACCESS_TTL_MS })));

      const elapsed = Date.now() - started;
      const refreshes = (await server.metric(...REFRESH_OK)) - before;
      const lifetimes = elapsed / ACCESS_TTL_MS;
      const perTab = watched.map((responses) => responses.filter((r) => r.path === "/auth/refresh").length);
      t.diagnostic(
        `${results.flat().length} calls in ${elapsed} ms (${lifetimes.toFixed(1)} lifetimes); ` +
          `${refreshes} refreshes in all; refreshes sent per tab: ${perTab.join(", ")}`,
      );
      for (const [i, tabResults] of results.entries()) {
        assert.deepEqual(tabResults.filter((r) => r !== 200), [], `tab ${i}: every call succeeds`);
        assert.deepEqual(watched[i].filter((r) => r.status === 401), [], `tab ${i}: no 401`);
      }
      assert.equal(await server.metric(REUSE), 0, "no refresh token reuse detected");
      assert.ok(refreshes >= 1, "the tabs renewed the token");
      assert.ok(refreshes <= 2 * lifetimes + 2, `${refreshes} refreshes for ${lifetimes.toFixed(1)} lifetimes`);
      for (const tab of tabs) assert.deepEqual(await ends(tab), []);
    });
  });

  it("ends the session in every other tab within 2 s of a logout in one", { timeout: TEST_TIMEOUT }, async (t) => {
    await withServer(async ({ server, context }) => {
      const tabs = [];
      for (let i = 0; i < 4; i += 1) tabs.push(await openDemo(context, server));
      await signIn(tabs[0], await registerUser(server));
      for (const tab of tabs) await hasToken(tab);
      for (const tab of tabs) await watch(tab);

      // Time from the click event in the page: Playwright's click on a background tab first
      // waits for animation frames, which headless Chromium throttles there.
      await tabs[1].bringToFront();
      await tabs[1].evaluate(() => {
        const button = document.querySelector("[data-testid=logout]");
        button?.addEventListener("click", () => (window.__clickedAt = Date.now()), { capture: true });
      });
      await tabs[1].click("[data-testid=logout]");
      for (const tab of tabs) {
        await tab.waitForFunction(() => window.__ends.length > 0, null, { timeout: 2_000 });
      }

      const clicked = await tabs[1].evaluate(() => window.__clickedAt);
      const delays = [];
      for (const tab of tabs) {
        const [end] = await ends(tab);
        assert.equal(end.reason, "logout");
        delays.push(end.at - clicked);
        assert.equal(await tab.getAttribute("[data-testid=notice]", "data-reason"), "logout");
        assert.equal(await tab.isVisible("[data-testid=login-form]"), true);
        assert.equal(await tab.evaluate(() => window.tessera.status()), null);
      }
      t.diagnostic(`session ended in the tabs ${delays.join(", ")} ms after the click`);
      assert.ok(Math.max(...delays) <= 2_000);
      // The cookie is gone too: a new tab is signed out.
      const fresh = await openDemo(context, server);
      assert.equal(await fresh.evaluate(() => window.tessera.restore()), false);
    });
  });

  it("reports 'revoked' when the session is revoked from the CLI", { timeout: TEST_TIMEOUT }, async (t) => {
    await withServer(async ({ server, context }) => {
      const page = await openDemo(context, server);
      await signIn(page, await registerUser(server));
      await watch(page);
      const sessionId = await page.evaluate(() => window.tessera.status()?.sessionId);
      assert.ok(sessionId);

      const out = await server.cli("sessions", "revoke", sessionId);
      t.diagnostic(`tessera sessions revoke: ${out.trim()}`);

      const results = await callRepeatedly(page, { everyMs: 300, forMs: ACCESS_TTL_MS + 500 });
      assert.deepEqual((await ends(page)).map((e) => e.reason), ["revoked"]);
      assert.ok(results.some((r) => String(r).includes("session_ended")), `calls: ${results.join(" ")}`);
      assert.equal(await page.getAttribute("[data-testid=notice]", "data-reason"), "revoked");
      assert.match(await page.textContent("[data-testid=notice]"), /revoked/);
      assert.equal(await page.isVisible("[data-testid=login-form]"), true);
    });
  });

  it("signs the other device out at its next refresh when the password is changed in one", { timeout: TEST_TIMEOUT }, async (t) => {
    await withServer(async ({ server, context }) => {
      // Two devices: two browser contexts, so two cookie jars and no tab hand-over between them.
      const otherContext = await browser.newContext();
      try {
        const username = await registerUser(server);
        const phone = await openDemo(otherContext, server);
        await signIn(phone, username);
        await watch(phone);
        const laptop = await openDemo(context, server);
        await signIn(laptop, username);
        await watch(laptop);

        await laptop.fill("[data-testid=password-current]", PASSWORD);
        await laptop.fill("[data-testid=password-new]", "a brand new passphrase");
        await laptop.click("[data-testid=password-submit]");
        await laptop.waitForSelector("[data-testid=password-result]:not([hidden])");
        const result = await laptop.textContent("[data-testid=password-result]");
        t.diagnostic(result ?? "");
        assert.match(result ?? "", /1 other device was signed out/);

        // The phone learns at its next refresh, within a token lifetime.
        const results = await callRepeatedly(phone, { everyMs: 300, forMs: ACCESS_TTL_MS + 1_000 });
        assert.deepEqual((await ends(phone)).map((e) => e.reason), ["revoked"]);
        assert.ok(results.some((r) => String(r).includes("session_ended")), `calls: ${results.join(" ")}`);
        assert.equal(await phone.isVisible("[data-testid=login-form]"), true);
        // The laptop goes on, past its own refreshes.
        const laptopResults = await callRepeatedly(laptop, { everyMs: 300, forMs: ACCESS_TTL_MS + 1_000 });
        assert.deepEqual(laptopResults.filter((r) => r !== 200), []);
        assert.deepEqual(await ends(laptop), []);
        // The old password no longer logs in; the new one does.
        const old = await phone.evaluate(([u, p]) => window.tessera.login(u, p).then(() => "ok", (e) => e.code), [username, PASSWORD]);
        assert.equal(old, "invalid_credentials");
        assert.equal(
          await phone.evaluate(([u]) => window.tessera.login(u, "a brand new passphrase").then(() => "ok"), [username]),
          "ok",
        );
        assert.deepEqual(unexpectedProblems(laptop), []);
      } finally {
        await otherContext.close();
      }
    });
  });

  it("resets a forgotten password with a token from the CLI, signing every device out", { timeout: TEST_TIMEOUT }, async () => {
    await withServer(async ({ server, context }) => {
      const username = await registerUser(server);
      const signedIn = await openDemo(context, server);
      await signIn(signedIn, username);
      const token = (await server.cli("user", "reset-link", username)).trim();
      assert.equal(token.length, 43);

      const otherContext = await browser.newContext();
      try {
        const page = await openDemo(otherContext, server);
        await page.fill("[data-testid=reset-token]", token);
        await page.fill("[data-testid=reset-password]", "a brand new passphrase");
        await page.click("[data-testid=reset-submit]");
        await page.waitForSelector("[data-testid=reset-result]:not([hidden])");
        // The same token again: single use.
        await page.fill("[data-testid=reset-token]", token);
        await page.fill("[data-testid=reset-password]", "yet another passphrase");
        await page.click("[data-testid=reset-submit]");
        await page.waitForSelector("[data-testid=reset-error]:not([hidden])");
        assert.match(await page.textContent("[data-testid=reset-error]") ?? "", /reset token/);
      } finally {
        await otherContext.close();
      }
      // The signed-in device is signed out at its next refresh.
      await watch(signedIn);
      await callRepeatedly(signedIn, { everyMs: 300, forMs: ACCESS_TTL_MS + 1_000 });
      assert.deepEqual((await ends(signedIn)).map((e) => e.reason), ["revoked"]);
    });
  });

  it("keeps the refresh token from JavaScript and stays signed in across a reload", { timeout: TEST_TIMEOUT }, async () => {
    await withServer(async ({ server, context }) => {
      const page = await openDemo(context, server);
      const username = await registerUser(server);
      await signIn(page, username);

      const cookies = await context.cookies();
      const cookie = cookies.find((c) => /tessera_refresh$/.test(c.name));
      assert.ok(cookie, "the refresh cookie");
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, "Strict");
      assert.equal(cookie.path, "/auth");
      // The device cookie (spares this browser the username's login throttle) is as private.
      const device = cookies.find((c) => /tessera_device$/.test(c.name));
      assert.ok(device, "the device cookie");
      assert.equal(device.httpOnly, true);
      assert.equal(device.sameSite, "Strict");
      assert.equal(device.path, "/auth");
      const visible = await page.evaluate(() => ({
        cookie: document.cookie,
        local: JSON.stringify({ ...localStorage }),
        session: JSON.stringify({ ...sessionStorage }),
      }));
      assert.equal(visible.cookie.includes("tessera_refresh"), false, "document.cookie shows no refresh cookie");
      assert.equal(visible.cookie.includes(cookie.value), false);
      assert.equal(visible.cookie.includes(device.value), false, "document.cookie shows no device cookie");
      // Only the demo page's hint that this browser may hold a session (so that a first visit
      // skips the refresh and its 401): no token.
      assert.equal(visible.local, '{"tessera-demo:maybe-signed-in":"1"}', "no token in localStorage");
      assert.equal(visible.session, "{}", "nothing in sessionStorage");

      await page.reload();
      await page.waitForSelector("body[data-ready=true]");
      assert.equal(await page.evaluate(() => window.tessera.restore()), true);
      assert.equal(await page.isVisible("[data-testid=signed-in]"), true);
      assert.equal((await page.evaluate(() => window.tessera.me())).username, username);
      assert.equal(await page.evaluate(() => document.cookie.includes("tessera_refresh")), false);
    });
  });

  it("survives a refresh whose answer is lost, through the grace window", { timeout: TEST_TIMEOUT }, async (t) => {
    await withServer(async ({ server, context }) => {
      const page = await openDemo(context, server);
      await signIn(page, await registerUser(server));

      // The next refresh reaches the server, which rotates the token, but its answer never
      // reaches the page: the browser keeps the old cookie.
      let lost = null;
      await page.route("**/auth/refresh", async (route) => {
        if (lost) return route.continue();
        const cookiesBefore = await context.cookies();
        const response = await route.fetch();
        lost = { status: response.status(), setCookie: response.headers()["set-cookie"] ?? "" };
        await context.clearCookies();
        await context.addCookies(cookiesBefore);
        await route.abort("connectionreset");
      });

      // After a reload the page has no token: its restore() meets the lost answer and retries.
      await page.reload();
      await page.waitForSelector("body[data-ready=true]");
      assert.equal(lost?.status, 200, "the lost refresh did rotate on the server");
      assert.equal(await page.isVisible("[data-testid=signed-in]"), true, "the retry restored the session");
      const successor = /tessera_refresh=([^;]+)/.exec(lost.setCookie)?.[1];
      const cookie = (await context.cookies()).find((c) => /tessera_refresh$/.test(c.name));
      assert.equal(cookie.value, successor, "the retry got the same successor the lost answer carried");

      await watch(page);
      const results = await callRepeatedly(page, { everyMs: 300, forMs: 2 * ACCESS_TTL_MS });
      t.diagnostic(`${results.length} calls after the lost answer`);
      assert.deepEqual(results.filter((r) => r !== 200), []);
      assert.deepEqual(await ends(page), []);
      assert.equal(await server.metric(REUSE), 0);
    });
  });

  it("renews a token that expired while the tab slept before its first call", { timeout: TEST_TIMEOUT }, async (t) => {
    await withServer(async ({ server, context }) => {
      const page = await openDemo(context, server);
      await signIn(page, await registerUser(server));
      const responses = await watch(page);

      await page.evaluate(() => {
        Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
        document.dispatchEvent(new Event("visibilitychange"));
      });
      // Past the token's lifetime and the server's 5 s clock-skew leeway: the old token is dead.
      await sleep(ACCESS_TTL_MS + 5_500);
      assert.deepEqual(responses, [], "the sleeping tab made no request");

      const renewed = page.waitForResponse((r) => r.url().endsWith("/auth/refresh"));
      await page.evaluate(() => {
        Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "visible" });
        document.dispatchEvent(new Event("visibilitychange"));
      });
      assert.equal((await renewed).status(), 200, "the wake-up renewed the token by itself");
      const first = await page.evaluate(async () => (await window.tessera.fetch("/auth/me")).status);

      t.diagnostic(`after waking: ${responses.map((r) => `${r.method} ${r.path} ${r.status}`).join(", ")}`);
      assert.equal(first, 200);
      assert.deepEqual(
        responses.map((r) => `${r.path} ${r.status}`),
        ["/auth/refresh 200", "/auth/me 200"],
        "one renewal, then the call, and no 401",
      );
    });
  });

  it("shows the user, the token countdown, refreshes and sessions on the demo page", { timeout: TEST_TIMEOUT }, async (t) => {
    await withServer(async ({ server, context }) => {
      const page = await context.newPage();
      page.problems = [];
      page.on("pageerror", (e) => page.problems.push(`pageerror: ${e.message}`));
      page.on("console", (m) => m.type() === "error" && page.problems.push(`console: ${m.text()}`));
      await page.goto(server.origin);
      await page.waitForSelector("body[data-ready=true]");
      assert.equal(await page.isVisible("[data-testid=login-form]"), true);

      // A second device, signed in elsewhere.
      const username = uniqueUser();
      const other = await browser.newContext();
      const otherPage = await other.newPage();
      await otherPage.goto(server.origin);

      await page.fill("[data-testid=register-username]", username);
      await page.fill("[data-testid=register-password]", PASSWORD);
      await page.click("[data-testid=register-submit]");
      await page.waitForSelector("[data-testid=signed-in]:not([hidden])");
      await otherPage.fill("[data-testid=login-username]", username);
      await otherPage.fill("[data-testid=login-password]", PASSWORD);
      await otherPage.click("[data-testid=login-submit]");
      await otherPage.waitForSelector("[data-testid=signed-in]:not([hidden])");

      assert.equal(await page.isChecked("[data-testid=autocall]"), true, "the page calls /auth/me by itself");
      // Let it renew a few times.
      await page.waitForFunction(
        () => document.querySelectorAll("[data-testid=refresh-entry][data-source=refresh]").length >= 2,
        null,
        { timeout: 5 * ACCESS_TTL_MS },
      );
      await page.click("[data-testid=sessions-reload]");
      await page.waitForFunction(() => document.querySelectorAll("[data-testid=session-row]").length === 2);

      assert.equal(await page.textContent("[data-testid=me-username]"), username);
      assert.equal(await page.locator("[data-testid=current-session]").count(), 1, "this device is marked");
      const refreshEntries = await page.locator("[data-testid=refresh-entry][data-source=refresh]").count();
      t.diagnostic(`${refreshEntries} silent refreshes logged`);
      assert.ok(refreshEntries >= 2);
      assert.equal(await page.textContent("[data-testid=calls-failed]"), "0");
      assert.match(await page.textContent("[data-testid=countdown]"), /^\d+\.\d$/);

      const path = join(await artifactsDir(), "demo.png");
      await page.screenshot({ path, fullPage: true });
      t.diagnostic(`screenshot: ${path}`);

      // Revoke the other device from this one; that device learns it at its next renewal.
      await otherPage.evaluate(() => {
        window.__ends = [];
        window.tessera.onSessionEnd((reason) => window.__ends.push(reason));
      });
      await page.click("[data-testid=session-row]:not(:has([data-testid=current-session])) [data-testid=revoke-session]");
      await page.waitForFunction(() => document.querySelectorAll("[data-testid=session-row]").length === 1);
      await otherPage.waitForFunction(() => window.__ends.length > 0, null, { timeout: 3 * ACCESS_TTL_MS });
      assert.deepEqual(await otherPage.evaluate(() => window.__ends), ["revoked"]);
      await other.close();

      await page.click("[data-testid=logout-all]");
      await page.waitForSelector("[data-testid=login-form]");
      assert.equal(await page.getAttribute("[data-testid=notice]", "data-reason"), "logout");
      assert.deepEqual(unexpectedProblems(page), [], "no script or CSP errors");
    });
  });

  it("logs no console error on a fresh visitor's first load", { timeout: TEST_TIMEOUT }, async () => {
    await withServer(async ({ server, context }) => {
      const page = await openDemo(context, server);
      assert.equal(await page.isVisible("[data-testid=login-form]"), true);
      assert.equal(await page.isHidden("#notice"), true, "no notice");
      // Every problem, the "Failed to load resource" of a 401 included.
      assert.deepEqual(page.problems, []);
      // Control: a signed-in visitor's reload still restores the session.
      await signIn(page, await registerUser(server));
      await page.reload();
      await page.waitForSelector("[data-testid=signed-in]:not([hidden])");
    });
  });

  it("says which origin is allowed when the page's origin is not", { timeout: TEST_TIMEOUT }, async () => {
    await withServer(async ({ server, context }) => {
      const page = await context.newPage();
      const elsewhere = server.origin.replace("127.0.0.1", "localhost");
      await page.goto(`${elsewhere}/?autocall=0`);
      await page.waitForSelector("body[data-ready=true]");
      const notice = await page.textContent("#notice");
      assert.match(notice ?? "", new RegExp(`origin \\(${elsewhere}\\) is not an allowed origin`));
      assert.ok(notice?.includes(`the server allows ${server.origin}`), notice ?? "");
      assert.ok(notice?.includes("TESSERA_ALLOWED_ORIGINS"), notice ?? "");
      assert.ok(!notice?.includes("Could not reach"), notice ?? "");
    });
  });

  it("keeps the sessions table and its Revoke button on a 390 px screen", { timeout: TEST_TIMEOUT }, async () => {
    await withServer(
      async ({ server, context }) => {
        const username = await registerUser(server);
        // A second session, so the list has a Revoke button besides "Sign out here".
        const other = await fetch(`${server.origin}/auth/login`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Origin: server.origin },
          body: JSON.stringify({ username, password: PASSWORD }),
        });
        assert.equal(other.status, 200);
        const page = await openDemo(context, server);
        await signIn(page, username);
        await page.waitForFunction(() => document.querySelectorAll("[data-testid=session-row]").length === 2);
        const revoke = page.locator("[data-testid=revoke-session]", { hasText: "Revoke" });
        await revoke.scrollIntoViewIfNeeded();
        const box = await revoke.boundingBox();
        assert.ok(box, "the Revoke button is laid out");
        assert.ok(box.x >= 0 && box.x + box.width <= 390, `Revoke at x ${box.x}..${box.x + box.width}`);
        const table = await page.locator("[data-testid=sessions]").boundingBox();
        assert.ok(table && table.x >= 0 && table.x + table.width <= 390, `table at ${JSON.stringify(table)}`);
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(width <= 390, `the page scrolls sideways: ${width} px`);
        await revoke.click();
        await page.waitForFunction(() => document.querySelectorAll("[data-testid=session-row]").length === 1);
      },
      { width: 390, height: 844 },
    );
  });
});
