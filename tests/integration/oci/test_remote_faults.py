"""Pushes through a fault-injecting proxy on 127.0.0.1 in front of the real registry: one
request in ten is answered 500 (the registry never sees it) or cut mid-response (the registry
did the work, the answer is lost). The push must still complete with the right digests."""

from __future__ import annotations

import http.client
import json
import random
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support.oci import tool
from support.registry import Registry

from wheeldock.oci import remote
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.image import Image
from wheeldock.oci.remote import RetryPolicy

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cache_in_tmp")]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclass
class Faults:
    """Which requests fail: one in ``every``, drawn from a seeded generator."""

    seed: int
    every: int = 10
    rng: random.Random = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self, method: str, path: str) -> str:
        """``"ok"``, ``"500"`` or ``"cut"`` for the next request."""
        with self.lock:
            roll = self.rng.randrange(2 * self.every)
            fate = "500" if roll == 0 else "cut" if roll == 1 else "ok"
            self.seen.append((method, path, fate))
            return fate


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

        def _forward(self) -> None:
            body = self._body()
            fate = faults.draw(self.command, self.path)
            if fate == "500":
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            conn = http.client.HTTPConnection(upstream, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            self.send_response(resp.status)
            for key, value in resp.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            if fate == "cut":
                # promise a body (or headers, for an empty one) and stop half-way
                self.send_header("Content-Length", str(len(data) + 64))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

    return Proxy


@pytest.fixture
def faulty(registry: Registry) -> Iterator[tuple[Registry, Faults]]:
    """The session registry behind a proxy that fails one request in ten (seed 25: a 500 on
    the 2nd request, cuts on the 6th and 8th, whatever order threads take)."""
    faults = Faults(seed=25)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry.host, faults))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        yield Registry(host, registry.root, registry.log_path), faults
    finally:
        server.shutdown()
        server.server_close()


def skopeo_digests(reg: Registry, ref: str) -> tuple[str, list[str]]:
    argv = [tool("skopeo"), "inspect", *reg.skopeo_args(), ref]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    return info["Digest"], info["Layers"]


FAST = RetryPolicy(first_delay=0.02, max_delay=0.2, seconds=30, attempts=8)


@pytest.mark.parametrize("chunk_size", [None, 64 * 1024], ids=["monolithic", "chunked"])
def test_push_through_a_failing_proxy_completes_with_the_right_digests(
    faulty: tuple[Registry, Faults],
    registry: Registry,
    runnable_image: Image,
    chunk_size: int | None,
) -> None:
    proxy, faults = faulty
    tag = "chunked" if chunk_size else "monolithic"
    ref = proxy.ref(f"wheeldock-test/faults-{tag}", "v1")
    result = remote.push(
        runnable_image, ref, upload=remote.Upload(chunk_size=chunk_size, retry=FAST)
    )
    assert result.digest == runnable_image.digest
    assert {"500", "cut"} <= {fate for _, _, fate in faults.seen}
    assert result.blobs_written + result.blobs_skipped == 3

    # the registry itself (not the proxy) has the manifest and every blob
    direct = registry.ref(f"wheeldock-test/faults-{tag}", "v1")
    digest, layers = skopeo_digests(registry, direct)
    assert digest == str(runnable_image.digest)
    assert layers == [str(lay.digest) for lay in runnable_image.layers]
    # and reading back through the failing proxy gets the same bytes
    pulled = remote.read(ref, BlobStore(registry.root.parent / f"pulled-{tag}"), retry=FAST)
    assert isinstance(pulled, Image) and pulled.digest == runnable_image.digest
    for got, want in zip(pulled.layers, runnable_image.layers, strict=True):
        assert got.compressed().read() == want.compressed().read()
