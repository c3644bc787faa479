"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a test registry.

It forwards every request to the registry, except what its :class:`Faults` say: a blob whose
digest is in ``corrupt`` is answered with one byte changed (same length), one in ``lose`` is
answered 404 (deleted behind its manifests' back); a manifest whose tag is in ``drop`` is
answered 404 (as if it were never pushed), one in ``garble`` with bytes that are not JSON. ``seen`` lists every request
(method, path), so tests can assert what was, or was not, asked.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support.registry import Registry

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclass
class Faults:
    corrupt: set[str] = field(default_factory=set)  # blob digests ("sha256:…")
    lose: set[str] = field(default_factory=set)  # blob digests
    drop: set[str] = field(default_factory=set)  # manifest tags
    garble: set[str] = field(default_factory=set)  # manifest tags
    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, method: str, path: str) -> None:
        with self.lock:
            self.seen.append((method, path))

    def missing(self, path: str) -> bool:
        """Whether the proxy answers 404 for ``path``."""
        last = path.rsplit("/", 1)[1]
        if "/manifests/" in path:
            return last in self.drop
        return "/blobs/sha256:" in path and last in self.lose

    def corrupted(self, path: str) -> bool:
        last = path.rsplit("/", 1)[1]
        if "/manifests/" in path:
            return last in self.garble
        return "/blobs/sha256:" in path and last in self.corrupt


def _handler(upstream: str, faults: Faults) -> type[BaseHTTPRequestHandler]:
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                data = b""
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    data += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return data
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def _answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            self.send_response(status)
            length = str(len(data))
            for key, value in headers:
                if key.lower() == "content-length" and self.command == "HEAD":
                    length = value  # a HEAD answer tells the size of what a GET would get
                elif key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", length)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _forward(self) -> None:
            body = self._body()
            faults.note(self.command, self.path)
            if self.command in ("GET", "HEAD") and faults.missing(self.path):
                self._answer(404, [("Content-Type", "application/json")], b'{"errors":[]}')
                return
            conn = http.client.HTTPConnection(upstream, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            if self.command == "GET" and resp.status == 200 and faults.corrupted(self.path):
                data = bytes([data[0] ^ 0xFF]) + data[1:]  # a manifest's "{" is JSON no more
            self._answer(resp.status, resp.getheaders(), data)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

    return Proxy


@dataclass(frozen=True)
class Proxied:
    registry: Registry  # the proxy's address; the registry's storage and log
    faults: Faults


def start(registry: Registry) -> Iterator[Proxied]:
    faults = Faults()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry.host, faults))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        yield Proxied(Registry(host, registry.root, registry.log_path), faults)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def faulty_registry(registry: Registry) -> Iterator[Proxied]:
    """The session registry behind a proxy that injects the faults a test sets."""
    yield from start(registry)
