"""A stand-in for the gas utility's customer-account API, for demos and tests (stdlib only).

``GET /v1/accounts/{id}`` answers deterministically from the account number, except for these
demo accounts:

=========  ===========================================================
404404     404 not found
400400     400 bad request
401401     401 unauthorized
429429     429 too many requests (Retry-After: 2)
500500     500, always
503503     503 for the first two requests, then a normal answer
777777     a normal answer after ``slow_seconds`` (default 3)
888888     200 with a body that is not JSON
=========  ===========================================================

Run: ``python3 fake_upstream.py [--host 127.0.0.1] [--port 9000] [--slow 3]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOLDERS = (
    "María Quispe Huamán",
    "José Mamani Flores",
    "Rosa Chávez Rojas",
    "Luis Torres Vargas",
    "Ana Ramírez Castillo",
)
FLAKY_FAILURES = 2
_ACCOUNT_PATH = re.compile(r"^/v1/accounts/([0-9]{1,20})$")


def account_answer(account_id: str) -> dict[str, str]:
    """The normal answer for an account: the same for the same number, on every run."""
    seed = int.from_bytes(hashlib.sha256(account_id.encode()).digest()[:8], "big")
    cents = seed % 50_000
    return {
        "account_id": account_id,
        "holder": HOLDERS[seed % len(HOLDERS)],
        "balance": f"{cents // 100}.{cents % 100:02d}",
        "currency": "PEN",
        "due_date": f"2026-12-{1 + seed % 28:02d}",
    }


class FakeUpstream(ThreadingHTTPServer):
    """The server; ``hits`` counts requests per path so tests can see what reached it."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], slow_seconds: float = 3.0, quiet: bool = False
    ) -> None:
        super().__init__(address, _Handler)
        self.slow_seconds = slow_seconds
        self.quiet = quiet
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def count(self, path: str) -> int:
        """Record one request to ``path``; returns how many there have been, this one included."""
        with self._lock:
            self.hits[path] += 1
            return self.hits[path]

    def reset(self) -> None:
        with self._lock:
            self.hits.clear()


class _Handler(BaseHTTPRequestHandler):
    server: FakeUpstream
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        seen = self.server.count(self.path)
        if self.path == "/health":
            self._send(200, {"status": "ok"})
            return
        match = _ACCOUNT_PATH.match(self.path)
        if match is None:
            self._send(404, {"error": "no such endpoint"})
            return
        account_id = match.group(1)
        if account_id == "404404":
            self._send(404, {"error": "account not found"})
        elif account_id == "400400":
            self._send(400, {"error": "malformed account"})
        elif account_id == "401401":
            self._send(401, {"error": "missing credentials"})
        elif account_id == "429429":
            self._send(429, {"error": "slow down"}, extra={"Retry-After": "2"})
        elif account_id == "500500":
            self._send(500, {"error": "internal error"})
        elif account_id == "503503" and seen <= FLAKY_FAILURES:
            self._send(503, {"error": "temporarily unavailable"})
        elif account_id == "888888":
            self._send_raw(200, b"<html>maintenance</html>", "text/html")
        else:
            if account_id == "777777":
                time.sleep(self.server.slow_seconds)
            self._send(200, account_answer(account_id))

    def _send(self, status: int, body: object, extra: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(body).encode(), "application/json", extra)

    def _send_raw(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its read timeout); nothing left to tell it.
            pass

    def log_message(self, format: str, *args: object) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--slow", type=float, default=3.0, help="seconds account 777777 takes")
    args = parser.parse_args(argv)
    server = FakeUpstream((args.host, args.port), slow_seconds=args.slow)
    print(f"fake upstream on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
