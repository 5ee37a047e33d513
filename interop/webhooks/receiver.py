#!/usr/bin/env python3
"""A webhook receiver for run.sh: every request to /hook is verified with the official
`standardwebhooks` library (a bad signature or timestamp is recorded as an error) and recorded,
one JSON line per request, in LOG. How it answers is its mode, set by POST /mode:
ok (204), fail (500), hang (answers after 15 s, past the sender's 10 s), redirect (307 to
/elsewhere, which records an error if anyone follows it), slow (204 after 3 s). A request for an
event id already in flight is recorded as an error: two senders at once.

Usage: receiver.py PORT SECRET LOG
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

PORT, SECRET, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
VERIFIER = Webhook(SECRET)
LOCK = threading.Lock()
STATE = {"mode": "ok", "inflight": set()}
STATUS = {"ok": 204, "slow": 204, "hang": 204, "fail": 500, "redirect": 307}


def record(entry):
    with LOCK, open(LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/mode":
            STATE["mode"] = body.decode().strip()
            return self.answer(204)
        if self.path != "/hook":
            record({"error": f"a request to {self.path}: a redirect was followed"})
            return self.answer(404)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = VERIFIER.verify(body, headers)
        except Exception as e:  # the library's refusal, whatever its class
            record({"error": f"standardwebhooks refused the request: {e!r}"})
            return self.answer(400)
        msg_id, mode = headers["webhook-id"], STATE["mode"]
        with LOCK:
            twice = msg_id in STATE["inflight"]
            STATE["inflight"].add(msg_id)
        if twice:
            record({"error": f"{msg_id} was being sent by two senders at once"})
        try:
            if mode in ("hang", "slow"):
                time.sleep(15 if mode == "hang" else 3)
            status = STATUS[mode]
            record({"id": msg_id, "type": payload["type"], "data": payload["data"],
                    "status": status, "mode": mode})
            self.answer(status, "/elsewhere" if status == 307 else None)
        finally:
            with LOCK:
                STATE["inflight"].discard(msg_id)

    def answer(self, status, location=None):
        try:
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the sender gave up waiting (hang)


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
