#!/usr/bin/env python3
"""Checks run.sh's receiver log: no errors (bad signatures, followed redirects, one event sent
by two senders at once), and every expected session's `session.created` delivered (a 2xx the
sender saw) under one webhook-id: duplicates only with the same id, every failed attempt of a
session under that id too. With --once, no event delivered twice.

Usage: check.py LOG SESSIONS_FILE [--once]   (exit 1 on a failure, 2: not everything arrived yet)
"""
import json
import sys

log, sessions_file = sys.argv[1], sys.argv[2]
once = "--once" in sys.argv[3:]
entries = [json.loads(line) for line in open(log, encoding="utf-8") if line.strip()]
errors = [e["error"] for e in entries if "error" in e]
if errors:
    sys.exit("receiver errors:\n  " + "\n  ".join(errors))
expected = [s for s in open(sessions_file, encoding="utf-8").read().split() if s]
created = [e for e in entries if e["type"] == "session.created"]
missing = []
for sid in expected:
    attempts = [e for e in created if e["data"]["session_id"] == sid]
    ids = {e["id"] for e in attempts}
    if len(ids) > 1:
        sys.exit(f"session {sid}: one event under several webhook-ids {sorted(ids)}")
    delivered = [e for e in attempts if 200 <= e["status"] < 300 and e["mode"] != "hang"]
    if not delivered:
        missing.append(sid)
    elif once and len(delivered) > 1:
        sys.exit(f"session {sid}: delivered {len(delivered)} times")
if missing:
    print(f"{len(missing)} of {len(expected)} sessions' events not delivered yet")
    sys.exit(2)
failed = sum(1 for e in created if e["status"] >= 300 or e["mode"] == "hang")
print(f"ok: {len(expected)} sessions' events delivered and verified "
      f"({len(created)} attempts, {failed} refused or unanswered first)")
