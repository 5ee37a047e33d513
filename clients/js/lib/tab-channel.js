// @ts-check
/**
 * The BroadcastChannel between the tabs of one origin: a tab that got a token hands it to the
 * others so they need not refresh, and a tab whose session ended tells them. This module knows
 * the messages; what a tab does with them is the token state's business.
 * @module tessera-client/tab-channel
 */

import { isRecord } from "./json.js";
import { remainingMs } from "./expiry.js";

/** @typedef {import("./expiry.js").Clock} Clock */
/** @typedef {import("./expiry.js").Expiry} Expiry */
/** @typedef {import("./errors.js").SessionEndReason} SessionEndReason */
/** @typedef {import("./token-state.js").Credential} Credential */

/**
 * The subset of a BroadcastChannel the client uses.
 * @typedef {{ postMessage: (message: any) => void, close: () => void, onmessage: ((event: MessageEvent) => any) | null }} ChannelLike
 */

/**
 * A token from another tab, with the time it had left when it was posted and the thumbprint of
 * the device key it is bound to (the key itself is in IndexedDB, where every tab finds it).
 * @typedef {{ accessToken: string, jkt: string | null, sessionId: string | null, lifetimeMs: number, remainingMs: number }} Handover
 */

/**
 * What another tab said.
 * @typedef {Object} TabListener
 * @property {(handover: Handover) => void} token
 * @property {(reason: SessionEndReason, sessionId: unknown) => void} end
 */

/**
 * @typedef {Object} TabChannel
 * @property {(token: Credential, sessionId: string | null, expiry: Expiry) => void} postToken
 * @property {(reason: SessionEndReason, sessionId: string | null) => void} postEnd
 * @property {() => void} close
 */

/**
 * Opens the channel `name`, or returns null when there is no BroadcastChannel (the tabs then
 * each refresh for themselves).
 * @param {(new (name: string) => ChannelLike) | null} Channel
 * @param {string} name
 * @param {Clock} clock
 * @param {TabListener} listener
 * @returns {TabChannel | null}
 */
export function openTabChannel(Channel, name, clock, listener) {
  if (!Channel) return null;
  const channel = new Channel(name);
  channel.onmessage = (event) => receive(event.data, listener);
  return {
    postToken(token, sessionId, expiry) {
      // The remaining lifetime, not the deadline: each tab's performance.now() has its own origin.
      channel.postMessage({
        type: "token",
        access_token: token.accessToken,
        jkt: token.jkt,
        session_id: sessionId,
        lifetime_ms: expiry.lifetimeMs,
        remaining_ms: remainingMs(expiry, clock),
      });
    },
    postEnd(reason, sessionId) {
      channel.postMessage({ type: "end", reason, session_id: sessionId });
    },
    close() {
      channel.onmessage = null;
      channel.close();
    },
  };
}

/**
 * Passes a well-formed message on to the listener; anything else another script posted on the
 * channel is ignored.
 * @param {unknown} message
 * @param {TabListener} listener
 */
function receive(message, listener) {
  if (!isRecord(message)) return;
  if (message.type === "token") {
    const { access_token: accessToken, lifetime_ms: lifetimeMs, remaining_ms: left } = message;
    if (typeof accessToken !== "string" || typeof lifetimeMs !== "number" || typeof left !== "number") return;
    const sessionId = typeof message.session_id === "string" ? message.session_id : null;
    const jkt = typeof message.jkt === "string" ? message.jkt : null;
    listener.token({ accessToken, jkt, sessionId, lifetimeMs, remainingMs: left });
  } else if (message.type === "end" && typeof message.reason === "string") {
    listener.end(message.reason, message.session_id);
  }
}
