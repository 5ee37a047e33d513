// @ts-check
// The Tessera demo page: sign up, sign in, watch the access token count down and renew itself,
// manage sessions. Served by the `tessera` binary at /demo.js; no inline script (strict CSP).
//
// Test hooks: `data-testid` attributes in index.html, `window.tessera` (the client) and
// `window.tesseraDemo` (counters and the list of session ends). `?autocall=0` starts with the
// periodic /auth/me call off, so tests control every request.

// @ts-ignore -- the binary serves the client at this absolute path; types come from the line below.
import { createClient as createClientUntyped } from "/tessera-client.js";

/** @type {typeof import("../tessera-client.js").createClient} */
const createClient = createClientUntyped;

/** @typedef {import("../tessera-client.js").SessionEndReason} SessionEndReason */
/** @typedef {import("../tessera-client.js").SessionInfo} SessionInfo */
/** @typedef {import("../tessera-client.js").TokenInfo} TokenInfo */

const AUTOCALL_EVERY_MS = 2_000;
const LOG_LIMIT = 50;

/** @type {Record<string, string>} */
const END_MESSAGES = {
  logout: "You signed out, in this tab or another one.",
  revoked: "This session was revoked, from another device or by an administrator. Please sign in again.",
  expired: "Your session expired. Please sign in again.",
  reused:
    "A refresh token was used twice, which can mean it was copied, so the session was ended to protect you. Please sign in again.",
  unknown: "The server did not recognise this session. Please sign in again.",
  missing: "This browser no longer holds a session cookie. Please sign in again.",
  password_changed: "The password was reset, which signs out every device. Please sign in with the new password.",
  dpop_mismatch: "This session belongs to another device's key, so it cannot be renewed here. Please sign in again.",
  dpop_key_missing:
    "This session is bound to a device key this browser no longer holds (its site data was cleared). Please sign in again.",
};

/** @type {Record<string, string>} */
const ERROR_MESSAGES = {
  invalid_credentials: "Wrong username or password.",
  username_taken: "That username is taken.",
  registration_closed: "Registration is closed on this server.",
  csrf_rejected: "The server refused this page's origin (check TESSERA_ALLOWED_ORIGINS).",
  network_error: "The server could not be reached.",
  invalid_reset_token: "That reset token is used, expired, replaced by a newer one, or unknown.",
  invalid_dpop_proof:
    "The server wants a proof of this device's key and refused this one (this browser may lack WebCrypto or IndexedDB).",
};

const tessera = createClient({ baseUrl: "" });
const demo = {
  /** @type {{ reason: SessionEndReason, at: number }[]} */
  ends: [],
  /** @type {{ source: string, at: number }[]} */
  refreshes: [],
  callsOk: 0,
  callsFailed: 0,
};
Object.assign(window, { tessera, tesseraDemo: demo });

// ---- elements -------------------------------------------------------------------------------

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`#${id} is missing from index.html`);
  return element;
}

const el = {
  status: byId("status", HTMLElement),
  notice: byId("notice", HTMLElement),
  signedOut: byId("signed-out", HTMLElement),
  signedIn: byId("signed-in", HTMLElement),
  loginForm: byId("login-form", HTMLFormElement),
  registerForm: byId("register-form", HTMLFormElement),
  passwordForm: byId("password-form", HTMLFormElement),
  resetForm: byId("reset-form", HTMLFormElement),
  meUsername: byId("me-username", HTMLElement),
  meUserId: byId("me-user-id", HTMLElement),
  meSessionId: byId("me-session-id", HTMLElement),
  meButton: byId("me-button", HTMLButtonElement),
  countdown: byId("countdown", HTMLElement),
  progress: byId("token-progress", HTMLProgressElement),
  tokenDetail: byId("token-detail", HTMLElement),
  tokenBinding: byId("token-binding", HTMLElement),
  autocall: byId("autocall", HTMLInputElement),
  callsOk: byId("calls-ok", HTMLElement),
  callsFailed: byId("calls-failed", HTMLElement),
  refreshLog: byId("refresh-log", HTMLOListElement),
  refreshEmpty: byId("refresh-empty", HTMLElement),
  sessionsBody: byId("sessions-body", HTMLTableSectionElement),
  sessionsReload: byId("sessions-reload", HTMLButtonElement),
  logout: byId("logout", HTMLButtonElement),
  logoutAll: byId("logout-all", HTMLButtonElement),
};

/**
 * @param {string} tag
 * @param {{ className?: string, text?: string, attrs?: Record<string, string> }} [props]
 * @param {(Node | string)[]} [children]
 */
function h(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.text !== undefined) node.textContent = props.text;
  for (const [name, value] of Object.entries(props.attrs ?? {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

// ---- view state -----------------------------------------------------------------------------

let signedIn = false;

/**
 * @param {string} text
 * @param {"info" | "warn" | "danger"} tone
 * @param {string} [reason]
 */
function showNotice(text, tone, reason) {
  el.notice.textContent = text;
  el.notice.className = `notice${tone === "warn" ? "" : ` notice-${tone}`}`;
  if (reason) el.notice.dataset.reason = reason;
  else delete el.notice.dataset.reason;
  el.notice.hidden = false;
}

function hideNotice() {
  el.notice.hidden = true;
  delete el.notice.dataset.reason;
}

function showSignedIn() {
  if (signedIn) return;
  signedIn = true;
  el.signedOut.hidden = true;
  el.signedIn.hidden = false;
  el.status.className = "pill pill-ok";
  el.status.textContent = "Signed in";
  void loadMe();
  void loadSessions();
  scheduleAutocall();
}

/** @param {SessionEndReason | null} reason why the session ended, null if there was none */
function showSignedOut(reason) {
  signedIn = false;
  el.signedIn.hidden = true;
  el.signedOut.hidden = false;
  el.status.className = "pill pill-muted";
  el.status.textContent = "Signed out";
  if (reason) {
    const tone = reason === "logout" ? "info" : reason === "reused" ? "danger" : "warn";
    showNotice(`Session ended (${reason}). ${END_MESSAGES[reason] ?? "Please sign in again."}`, tone, reason);
  }
  scheduleAutocall();
}

/** @param {unknown} error */
function describe(error) {
  if (error && typeof error === "object" && "code" in error && typeof error.code === "string") {
    if (error.code === "csrf_rejected" && error instanceof Error) {
      const allowed = /allowed origins: (.+)$/.exec(error.message)?.[1];
      if (allowed) {
        return (
          `This page's origin (${location.origin}) is not an allowed origin; the server allows ${allowed}. ` +
          `Open the page there, or add ${location.origin} to TESSERA_ALLOWED_ORIGINS.`
        );
      }
    }
    const known = ERROR_MESSAGES[error.code];
    if (error.code === "rate_limited" && "retryAfter" in error && typeof error.retryAfter === "number") {
      return `Too many attempts. Try again in ${error.retryAfter} s.`;
    }
    if (known) return known;
  }
  if (error instanceof TypeError) return ERROR_MESSAGES.network_error;
  return error instanceof Error ? error.message : String(error);
}

/** @param {unknown} error */
function isSessionEnded(error) {
  return !!error && typeof error === "object" && "code" in error && error.code === "session_ended";
}

// ---- who am I, sessions ---------------------------------------------------------------------

async function loadMe() {
  try {
    const me = await tessera.me();
    if (signedIn) el.status.textContent = `Signed in as ${me.username}`;
    el.meUsername.textContent = me.username;
    el.meUserId.textContent = me.user_id;
    el.meUserId.title = me.user_id;
    el.meSessionId.textContent = me.session_id;
    el.meSessionId.title = me.session_id;
    countCall(true);
  } catch (error) {
    if (!isSessionEnded(error)) countCall(false);
  }
}

/** @param {boolean} ok */
function countCall(ok) {
  if (ok) demo.callsOk += 1;
  else demo.callsFailed += 1;
  el.callsOk.textContent = String(demo.callsOk);
  el.callsFailed.textContent = String(demo.callsFailed);
}

/** @param {string | null} ua */
function deviceName(ua) {
  if (!ua) return "Unknown device";
  const browser =
    /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : /curl\//.test(ua) ? "curl" : null;
  const system =
    /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows" : /Mac OS X/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : null;
  if (browser && system) return `${browser} on ${system}`;
  return browser ?? system ?? ua.slice(0, 40);
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** @param {string} iso */
function when(iso) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return iso;
  const seconds = Math.round((then - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return "just now";
  if (abs < 2_700) return relative.format(Math.round(seconds / 60), "minute");
  if (abs < 64_800) return relative.format(Math.round(seconds / 3_600), "hour");
  return relative.format(Math.round(seconds / 86_400), "day");
}

/** @param {string} iso */
function timeCell(iso) {
  return h("td", { text: when(iso), attrs: { title: new Date(iso).toLocaleString() } });
}

const SESSION_COLUMNS = ["Device", "IP", "Signed in", "Last used", "Expires", ""];

async function loadSessions() {
  /** @type {SessionInfo[]} */
  let sessions;
  try {
    sessions = await tessera.sessions();
  } catch (error) {
    if (!isSessionEnded(error)) countCall(false);
    return;
  }
  sessions.sort((a, b) => Number(b.current) - Number(a.current) || b.last_used_at.localeCompare(a.last_used_at));
  const rows = sessions.map((session) => {
    const revoke = h("button", {
      className: session.current ? "danger small" : "secondary small",
      text: session.current ? "Sign out here" : "Revoke",
      attrs: { type: "button", "data-testid": "revoke-session", "data-session-id": session.id },
    });
    revoke.addEventListener("click", () => void revokeSession(session.id, /** @type {HTMLButtonElement} */ (revoke)));
    const device = h("td", {}, [
      h("span", { className: "device", text: deviceName(session.user_agent) }),
      ...(session.current ? [h("span", { className: "tag tag-current", text: "This device", attrs: { "data-testid": "current-session" } })] : []),
      h("span", { className: "device-id", text: session.id }),
    ]);
    const cells = [device, h("td", { className: "mono", text: session.ip ?? "—" }), timeCell(session.created_at), timeCell(session.last_used_at), timeCell(session.expires_at), h("td", {}, [revoke])];
    // On a narrow screen each row is a card and each cell names its column (demo.css).
    cells.forEach((cell, i) => (cell.dataset.label = SESSION_COLUMNS[i]));
    return h("tr", { className: session.current ? "current" : "", attrs: { "data-testid": "session-row", "data-session-id": session.id } }, cells);
  });
  el.sessionsBody.replaceChildren(...rows);
}

/**
 * @param {string} id
 * @param {HTMLButtonElement} button
 */
async function revokeSession(id, button) {
  button.disabled = true;
  try {
    await tessera.revokeSession(id);
    if (signedIn) await loadSessions();
  } catch (error) {
    if (!isSessionEnded(error)) showNotice(`Could not revoke the session: ${describe(error)}`, "danger");
    button.disabled = false;
  }
}

// ---- token countdown and refresh log --------------------------------------------------------

function renderCountdown() {
  const info = tessera.status();
  if (!info) {
    el.countdown.textContent = "—";
    el.progress.value = 0;
    el.tokenDetail.textContent = "No access token in memory.";
    el.tokenBinding.textContent = "";
    delete el.tokenBinding.dataset.bound;
    return;
  }
  el.countdown.textContent = (info.expiresInMs / 1000).toFixed(1);
  el.progress.value = Math.round((info.expiresInMs / info.lifetimeMs) * 1000);
  el.progress.classList.toggle("low", info.renewInMs === 0);
  const renew = info.renewInMs === 0 ? "renews at the next call" : `renews in ${(info.renewInMs / 1000).toFixed(1)} s`;
  el.tokenDetail.textContent = `Lifetime ${Math.round(info.lifetimeMs / 1000)} s · ${renew}`;
  renderBinding(info.keyThumbprint);
}

/** @param {string | null} thumbprint */
function renderBinding(thumbprint) {
  const bound = thumbprint !== null;
  if (el.tokenBinding.dataset.bound === String(bound) && el.tokenBinding.title === (thumbprint ?? "")) return;
  el.tokenBinding.dataset.bound = String(bound);
  el.tokenBinding.title = thumbprint ?? "";
  el.tokenBinding.textContent = bound
    ? `Bound to this device's key (DPoP, key ${thumbprint.slice(0, 8)}…): a copied cookie or token is useless elsewhere.`
    : "Bearer token: not bound to a device key.";
}

/** @param {TokenInfo} info */
function logRefresh(info) {
  demo.refreshes.push({ source: info.source, at: Date.now() });
  const label = { login: "signed in", refresh: "renewed", tab: "from another tab" }[info.source];
  const text =
    info.source === "tab"
      ? `Another tab renewed; token handed over (${(info.expiresInMs / 1000).toFixed(1)} s left)`
      : info.source === "login"
        ? `New session, token valid ${Math.round(info.lifetimeMs / 1000)} s`
        : `Silent refresh from the cookie, token valid ${Math.round(info.lifetimeMs / 1000)} s`;
  const time = new Date().toLocaleTimeString(undefined, { hour12: false });
  el.refreshLog.prepend(
    h("li", { attrs: { "data-testid": "refresh-entry", "data-source": info.source } }, [
      h("time", { text: time }),
      h("span", { className: `tag tag-${info.source}`, text: label }),
      h("span", { text }),
    ]),
  );
  while (el.refreshLog.children.length > LOG_LIMIT) el.refreshLog.lastElementChild?.remove();
  el.refreshEmpty.hidden = true;
}

// ---- periodic call --------------------------------------------------------------------------

/** @type {ReturnType<typeof setInterval> | null} */
let autocallTimer = null;

function scheduleAutocall() {
  const wanted = signedIn && el.autocall.checked;
  if (wanted && autocallTimer === null) {
    autocallTimer = setInterval(() => void autocall(), AUTOCALL_EVERY_MS);
  } else if (!wanted && autocallTimer !== null) {
    clearInterval(autocallTimer);
    autocallTimer = null;
  }
}

async function autocall() {
  try {
    const response = await tessera.fetch("/auth/me");
    countCall(response.ok);
  } catch (error) {
    if (!isSessionEnded(error)) countCall(false);
  }
}

// ---- forms and buttons ----------------------------------------------------------------------

/**
 * @param {HTMLFormElement} form
 * @param {(first: string, second: string) => Promise<void>} action called with the two fields
 * @param {[string, string]} [fields] the two fields' names
 */
function handleForm(form, action, [first, second] = ["username", "password"]) {
  const error = /** @type {HTMLElement} */ (form.querySelector(".form-error"));
  const submit = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    error.hidden = true;
    submit.disabled = true;
    try {
      await action(String(data.get(first) ?? ""), String(data.get(second) ?? ""));
      form.reset();
    } catch (caught) {
      error.textContent = describe(caught);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
}

// A successful login shows up through onRefresh below, like a sign-in in another tab.
handleForm(el.loginForm, async (username, password) => {
  await tessera.login(username, password);
});

handleForm(el.registerForm, async (username, password) => {
  await tessera.register(username, password);
  await tessera.login(username, password);
});

handleForm(el.passwordForm, async (current, next) => {
  const result = /** @type {HTMLElement} */ (el.passwordForm.querySelector("[data-testid=password-result]"));
  result.hidden = true;
  const { revoked_sessions: n } = await tessera.changePassword(current, next);
  result.textContent = `Password changed. ${n} other ${n === 1 ? "device was" : "devices were"} signed out.`;
  result.hidden = false;
  void loadSessions();
}, ["current_password", "new_password"]);

handleForm(el.resetForm, async (token, next) => {
  const result = /** @type {HTMLElement} */ (el.resetForm.querySelector("[data-testid=reset-result]"));
  result.hidden = true;
  await tessera.resetPassword(token.trim(), next);
  result.textContent = "Password set. Every device was signed out; sign in with the new password.";
  result.hidden = false;
}, ["token", "new_password"]);

el.meButton.addEventListener("click", () => void loadMe());
el.sessionsReload.addEventListener("click", () => void loadSessions());
el.autocall.addEventListener("change", scheduleAutocall);

/**
 * @param {HTMLButtonElement} button
 * @param {() => Promise<void>} action
 */
function onClick(button, action) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      showNotice(`That did not work: ${describe(error)}`, "danger");
    } finally {
      button.disabled = false;
    }
  });
}

onClick(el.logout, () => tessera.logout());
onClick(el.logoutAll, () => tessera.logoutAll());

// ---- client events --------------------------------------------------------------------------

// Whether this browser may hold a session cookie: set once a token arrives, cleared when the
// session ends. A first visit then skips restore(), whose expected 401 Chromium would log as a
// console error ("Failed to load resource") for a visitor who never signed in.
const MAYBE_SIGNED_IN = "tessera-demo:maybe-signed-in";

/** @param {boolean} value */
function rememberSession(value) {
  try {
    if (value) localStorage.setItem(MAYBE_SIGNED_IN, "1");
    else localStorage.removeItem(MAYBE_SIGNED_IN);
  } catch {
    // Storage disabled: restore() is then always tried.
  }
}

function maybeSignedIn() {
  try {
    return localStorage.getItem(MAYBE_SIGNED_IN) !== null;
  } catch {
    return true;
  }
}

/**
 * Whether the server lets this page's origin use the refresh cookie, asked without a 4xx: the
 * server answers any OPTIONS request as a CORS preflight, naming the origin only if it is allowed.
 */
async function originAllowed() {
  try {
    const response = await fetch("/auth/refresh", { method: "OPTIONS" });
    return response.headers.get("access-control-allow-origin") === location.origin;
  } catch {
    return true; // unreachable: restore() is skipped and the first call says so
  }
}

tessera.onSessionEnd((reason) => {
  rememberSession(false);
  demo.ends.push({ reason, at: Date.now() });
  showSignedOut(reason);
  renderCountdown();
});

tessera.onRefresh((info) => {
  rememberSession(true);
  logRefresh(info);
  // Signed in here, restored from the cookie, or signed in by another tab.
  if (!signedIn) {
    hideNotice();
    showSignedIn();
  }
});

// ---- start ----------------------------------------------------------------------------------

el.autocall.checked = new URLSearchParams(location.search).get("autocall") !== "0";
setInterval(renderCountdown, 100);
renderCountdown();

try {
  // A visitor this browser never signed in is signed out without a refresh (and its 401),
  // unless the server refuses this page's origin: restore() then fails with the reason to show.
  if ((maybeSignedIn() || !(await originAllowed())) && (await tessera.restore())) showSignedIn();
  else if (!signedIn) showSignedOut(null);
} catch (error) {
  showSignedOut(null);
  const code = error && typeof error === "object" && "code" in error ? error.code : undefined;
  if (code === "csrf_rejected") showNotice(describe(error), "danger", "origin");
  else showNotice(`Could not reach the server to restore the session: ${describe(error)}`, "danger");
}
document.body.dataset.ready = "true";
