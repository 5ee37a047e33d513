// Shared set-up for the browser tests: the real `tessera` binary on a free loopback port with its
// own SQLite database, and a headless Chromium driven by playwright-core.

import { spawn, execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { after, before } from "node:test";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const clientDir = resolve(here, "../..");
export const repoRoot = resolve(clientDir, "../..");

/** The server binary: `TESSERA_BIN`, or the debug build at the repo root. */
export const tesseraBin = process.env.TESSERA_BIN
  ? resolve(clientDir, process.env.TESSERA_BIN)
  : resolve(clientDir, "../../target/debug/tessera");

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// No network but loopback here: keep Chromium from calling home.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

// The server's default `Secure` cookie (`__Secure-tessera_refresh`) is kept: Chromium treats
// http://127.0.0.1 as a secure context and stores it, so the tests run the production cookie.

/** Two-second access tokens: a test sees several lifetimes in a few seconds. */
export const ACCESS_TTL_MS = 2_000;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Servers still running when this process exits (a crash, an uncaught error) are killed with it.
const running = new Map(); // child process -> its temporary directory
process.on("exit", () => {
  for (const [child, dir] of running) {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `tessera serve` on a free port with a fresh database and waits for /healthz.
 * @param {Record<string, string>} [extraEnv]
 */
export async function startServer(extraEnv = {}) {
  const dir = await mkdtemp(join(tmpdir(), "tessera-browser-"));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    TESSERA_BIND: `127.0.0.1:${port}`,
    TESSERA_DATABASE_URL: `sqlite://${join(dir, "t.db")}`,
    TESSERA_ACCESS_TTL: `${ACCESS_TTL_MS / 1000}s`,
    TESSERA_ISSUER: origin,
    RUST_LOG: process.env.RUST_LOG ?? "warn",
    ...extraEnv,
  };
  const child = spawn(tesseraBin, ["serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
  running.set(child, dir);
  child.on("exit", () => running.delete(child));
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  child.on("error", (error) => (output += `\nspawn failed: ${error.message}`));

  const deadline = Date.now() + 30_000;
  for (;;) {
    const early = await Promise.race([exited, sleep(100).then(() => null)]);
    if (early) throw new Error(`tessera exited before it was healthy (${JSON.stringify(early)}):\n${output}`);
    try {
      const res = await fetch(`${origin}/healthz`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`tessera did not answer /healthz within 30 s:\n${output}`);
    }
  }

  return {
    origin,
    env,
    dir,
    output: () => output,
    /** Runs the CLI against the same database. */
    async cli(...args) {
      const { stdout } = await promisify(execFile)(tesseraBin, args, { env, timeout: 30_000 });
      return stdout;
    },
    /** The Prometheus samples whose name (and labels, when given) match, summed; 0 when absent. */
    async metric(name, labels = "") {
      const text = await (await fetch(`${origin}/metrics`)).text();
      let sum = 0;
      for (const line of text.split("\n")) {
        if (line.startsWith("#")) continue;
        const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
        if (!match || match[1] !== name) continue;
        if (labels && !(match[2] ?? "").includes(labels)) continue;
        sum += Number(match[3]);
      }
      return sum;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** Each test's time limit: a few servers, browser contexts and token lifetimes. */
export const TEST_TIMEOUT = 90_000;
export const REFRESH_OK = ["tessera_refreshes_total", 'outcome="ok"'];
export const REUSE = "tessera_refresh_reuse_detected_total";

/**
 * One Chromium for the calling test file, launched before its tests and closed after them.
 * @returns {() => import("playwright-core").Browser}
 */
export function useBrowser() {
  /** @type {import("playwright-core").Browser | undefined} */
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });
  return () => {
    if (!browser) throw new Error("the browser is launched before the tests run");
    return browser;
  };
}

let counter = 0;
/** A username no other test of this run uses. */
export function uniqueUser() {
  counter += 1;
  return `user${process.pid}_${counter}_${Math.random().toString(36).slice(2, 7)}`;
}

export const PASSWORD = "correct horse battery staple";

/**
 * Registers a user through the API (no browser) and returns the name.
 * @param {{ origin: string }} server
 */
export async function registerUser(server, username = uniqueUser()) {
  const res = await fetch(`${server.origin}/auth/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Origin: server.origin },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  if (res.status !== 201) throw new Error(`register ${username}: ${res.status} ${await res.text()}`);
  return username;
}

/**
 * Opens the demo page (periodic calls off) and waits until it has settled.
 * @param {import("playwright-core").BrowserContext} context
 * @param {{ origin: string }} server
 */
export async function openDemo(context, server) {
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.problems = problems;
  await page.goto(`${server.origin}/?autocall=0`);
  await page.waitForSelector("body[data-ready=true]");
  return page;
}

/**
 * Signs in through the client in the page.
 * @param {import("playwright-core").Page} page
 * @param {string} username
 */
export async function signIn(page, username) {
  await page.evaluate(([u, p]) => window.tessera.login(u, p), [username, PASSWORD]);
  await page.waitForSelector("[data-testid=signed-in]:not([hidden])");
  // The demo then loads who-am-I and the session list; wait until both are on screen, so a test
  // that starts watching the network next does not count the page's own sign-in calls.
  await page.waitForSelector("[data-testid=current-session]");
  await page.waitForFunction(() => document.querySelector("[data-testid=me-username]")?.textContent !== "—");
}

/**
 * Records, in the page, every session end and every response of a /auth/ call.
 * @param {import("playwright-core").Page} page
 */
export async function watch(page) {
  await page.evaluate(() => {
    window.__ends = [];
    window.tessera.onSessionEnd((reason) => window.__ends.push({ reason, at: Date.now() }));
  });
  const responses = [];
  page.on("response", (response) => {
    const url = new URL(response.url());
    responses.push({ path: url.pathname, status: response.status(), method: response.request().method(), at: Date.now() });
  });
  return responses;
}

/**
 * In the page: calls `path` through `tessera.fetch` every `everyMs` for `forMs`, and returns the
 * statuses (or error codes) of the calls.
 * @param {import("playwright-core").Page} page
 */
export function callRepeatedly(page, { path = "/auth/me", everyMs = 300, forMs }) {
  return page.evaluate(
    async ({ path, everyMs, forMs }) => {
      const results = [];
      const start = performance.now();
      while (performance.now() - start < forMs) {
        const began = performance.now();
        try {
          const res = await window.tessera.fetch(path);
          results.push(res.status);
        } catch (error) {
          results.push(`${error.name}:${error.code ?? error.message}`);
        }
        const left = everyMs - (performance.now() - began);
        if (left > 0) await new Promise((r) => setTimeout(r, left));
      }
      return results;
    },
    { path, everyMs, forMs },
  );
}

/**
 * Runs `body` with a fresh server and browser context, and tears both down; a failure carries
 * the end of the server's output.
 * @param {import("playwright-core").Browser} browser
 * @param {(env: { server: Awaited<ReturnType<typeof startServer>>, context: import("playwright-core").BrowserContext }) => Promise<void>} body
 * @param {{ viewport?: { width: number, height: number }, env?: Record<string, string> }} [options]
 */
export async function withServer(browser, body, { viewport = { width: 1280, height: 900 }, env = {} } = {}) {
  const server = await startServer(env);
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
export async function hasToken(page) {
  await page.waitForFunction(() => window.tessera.status() !== null, null, { timeout: 5_000 });
}

/** Page errors other than the failed requests Chromium logs for expected 401s. */
export function unexpectedProblems(page) {
  return page.problems.filter((p) => !p.includes("Failed to load resource"));
}

/** The session ends `watch` recorded in the page. */
export const ends = (page) => page.evaluate(() => window.__ends);

/** Where the screenshot of the demo page goes (git-ignored). */
export async function artifactsDir() {
  const dir = join(repoRoot, "artifacts");
  await mkdir(dir, { recursive: true });
  return dir;
}
