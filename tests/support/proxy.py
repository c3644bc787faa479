"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a test registry.

It forwards every request to the registry, except what its policy's ``fate`` for the request
says: ``"500"`` (answered at once, the registry never sees it), ``"404"`` (a GET or HEAD
answered as if the thing did not exist), ``"cut"`` (forwarded, then the answer promises more
bytes than it sends and the connection closes: the registry did the work, the answer is lost)
or ``"flip"`` (a 200 GET answered with its first byte changed, same length). Two policies:
:class:`Faults`, the faults a test names (blobs corrupt or lost, manifests dropped or
garbled), and :class:`RandomFaults`, one request in ``every`` failed, from a seeded generator.
Both record every request in ``seen``, so tests can assert what was, or was not, asked.
"""

from __future__ import annotations

import http.client
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

import pytest

from support.registry import Registry

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class Policy(Protocol):
    def fate(self, method: str, path: str) -> str:
        """``"ok"``, ``"500"``, ``"404"``, ``"cut"`` or ``"flip"`` for this request."""
        ...


@dataclass
class Faults:
    """The faults a test names."""

    corrupt: set[str] = field(default_factory=set)  # blob digests ("sha256:…"): flipped
    lose: set[str] = field(default_factory=set)  # blob digests: 404
    drop: set[str] = field(default_factory=set)  # manifest tags: 404, as if never pushed
    garble: set[str] = field(default_factory=set)  # manifest tags: no longer JSON
    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fate(self, method: str, path: str) -> str:
        with self.lock:
            self.seen.append((method, path))
        last = path.rsplit("/", 1)[1]
        manifest, blob = "/manifests/" in path, "/blobs/sha256:" in path
        if method in ("GET", "HEAD") and (
            (manifest and last in self.drop) or (blob and last in self.lose)
        ):
            return "404"
        if (manifest and last in self.garble) or (blob and last in self.corrupt):
            return "flip"
        return "ok"


@dataclass
class RandomFaults:
    """One request in ``every`` answered 500 or cut, drawn from a generator seeded ``seed``."""

    seed: int
    every: int = 10
    rng: random.Random = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, fate)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def fate(self, method: str, path: str) -> str:
        with self.lock:
            roll = self.rng.randrange(2 * self.every)
            fate = "500" if roll == 0 else "cut" if roll == 1 else "ok"
            self.seen.append((method, path, fate))
            return fate


class _Proxy(BaseHTTPRequestHandler):
    """The handler; :func:`_handler` makes one bound to an upstream and a policy."""

    upstream: str
    policy: Policy
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

    def _cut(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        """Promise a body (or headers, for an empty one) and stop half-way."""
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data) + 64))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True

    def _forward(self) -> None:
        body = self._body()
        fate = self.policy.fate(self.command, self.path)
        if fate == "500":
            self._answer(500, [], b"")
            return
        if fate == "404":
            self._answer(404, [("Content-Type", "application/json")], b'{"errors":[]}')
            return
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if fate == "cut":
            self._cut(resp.status, resp.getheaders(), data)
            return
        if fate == "flip" and self.command == "GET" and resp.status == 200:
            data = bytes([data[0] ^ 0xFF]) + data[1:]  # a manifest's "{" is JSON no more
        self._answer(resp.status, resp.getheaders(), data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward


def _handler(upstream: str, policy: Policy) -> type[BaseHTTPRequestHandler]:
    return type("Proxy", (_Proxy,), {"upstream": upstream, "policy": policy})


@dataclass(frozen=True)
class Proxied:
    registry: Registry  # the proxy's address; the registry's storage and log
    faults: Faults


def serve(registry: Registry, policy: Policy) -> Iterator[Registry]:
    """The proxy in front of ``registry``, failing what ``policy`` says, as a registry."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry.host, policy))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        yield Registry(host, registry.root, registry.log_path)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def faulty_registry(registry: Registry) -> Iterator[Proxied]:
    """The session registry behind a proxy that injects the faults a test sets."""
    faults = Faults()
    for proxy in serve(registry, faults):
        yield Proxied(proxy, faults)
