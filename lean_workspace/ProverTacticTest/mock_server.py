#!/usr/bin/env python3
"""A stand-in for `POST /v1/complete`, for ProverTacticTest/Service.lean.

It answers by what the declaration is called, and appends every request it receives (its
JSON body, and whether the `Authorization` header carried the expected key) to a JSON-lines
file, so a test can compare what the Lean tactic sent with the shared fixture
ProverTacticTest/fixtures/complete_request.json:

- `fixture_goal`: 200, candidates `simp` (checked by the service) and `exact bogus`;
- `refused_goal`: 401 `{"error": {"code": "unauthorized", ...}}`;
- `slow_goal`: answers after SLOW_S seconds (longer than the tactic waits);
- anything else: 200 with one candidate, `trivial`.

    python3 ProverTacticTest/mock_server.py --record /tmp/requests.jsonl [--port 0]
        [--api-key KEY]

prints `PORT <n>` once it listens, and serves until killed. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SLOW_S = 8.0


def answer(candidates: list[dict[str, object]]) -> dict[str, object]:
    return {"candidates": candidates, "samples": 4, "time_s": 0.01, "timed_out": False,
            "notes": [], "job_id": "mock", "server": {"lean_version": "4.9.0-rc1",
                                                       "mathlib_version": None}}


def make_handler(record: Path, api_key: str | None) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw)
            auth = self.headers.get("Authorization")
            with lock, record.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"path": self.path, "body": body,
                                    "auth_ok": api_key is None or auth == f"Bearer {api_key}",
                                    "content_type": self.headers.get("Content-Type")},
                                   ensure_ascii=False) + "\n")
            declaration = body.get("declaration", "")
            if "fixture_goal" in declaration:
                self._send(200, answer([
                    {"text": "simp", "verified": True, "verdict": "proved", "samples": 3},
                    {"text": "exact bogus", "verified": False, "verdict": "failed",
                     "samples": 1}]))
            elif "refused_goal" in declaration:
                self._send(401, {"error": {"code": "unauthorized",
                                           "message": "missing or wrong API key"}})
            elif "slow_goal" in declaration:
                time.sleep(SLOW_S)
                self._send(200, answer([{"text": "trivial", "verified": True}]))
            else:
                self._send(200, answer([{"text": "trivial", "verified": True}]))

    return Handler


def serve(record: Path, port: int = 0, api_key: str | None = None) -> ThreadingHTTPServer:
    """A started server (in a daemon thread); `server.server_address[1]` is its port."""
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(record, api_key))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--record", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key")
    args = parser.parse_args()
    server = serve(args.record, args.port, args.api_key)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
        sys.exit(0)


if __name__ == "__main__":
    main()
