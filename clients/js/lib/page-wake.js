// @ts-check
/**
 * The page events after which a token may have gone stale unseen: the tab was hidden or frozen,
 * the machine slept, or the network was away.
 * @module tessera-client/page-wake
 */

/**
 * Calls `onWake` when the page becomes visible, comes back online, or is restored from the
 * back/forward cache.
 * @param {EventTarget | null} win where `online` and `pageshow` fire
 * @param {(EventTarget & { visibilityState?: string }) | null} doc where `visibilitychange` fires
 * @param {() => void} onWake
 * @returns {() => void} stops listening
 */
export function onPageWake(win, doc, onWake) {
  const onVisibility = () => {
    if (!doc || doc.visibilityState === undefined || doc.visibilityState === "visible") onWake();
  };
  doc?.addEventListener("visibilitychange", onVisibility);
  win?.addEventListener("online", onWake);
  win?.addEventListener("pageshow", onWake);
  return () => {
    doc?.removeEventListener("visibilitychange", onVisibility);
    win?.removeEventListener("online", onWake);
    win?.removeEventListener("pageshow", onWake);
  };
}
