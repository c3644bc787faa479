"""Health probes against servers this test starts on 127.0.0.1."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest
from support.stacks import free_port

from wheeldock.compose import health
from wheeldock.project import Service


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/health" else 503
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_http_probe_passes_on_200(http_port: int) -> None:
    outcome = health.probe(health.Probe("http", http_port, "/health"))
    assert outcome == health.Outcome(True, "HTTP 200")


def test_http_probe_fails_on_other_statuses(http_port: int) -> None:
    outcome = health.probe(health.Probe("http", http_port, "/other"))
    assert outcome == health.Outcome(False, "HTTP 503")


def test_probes_fail_when_nothing_listens() -> None:
    port = free_port()
    assert not health.probe(health.Probe("http", port, "/health"), timeout=0.5).ok
    assert not health.probe(health.Probe("tcp", port), timeout=0.5).ok


def test_tcp_probe_passes_when_a_socket_accepts() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert health.probe(health.Probe("tcp", server.getsockname()[1])).ok


def test_wait_gives_up_after_the_timeout_on_a_fake_clock() -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    outcome, waited = health.wait(
        health.Probe("tcp", free_port()), 1.0, interval=0.25, clock=lambda: now[0], sleep=sleep
    )
    assert not outcome.ok
    assert waited >= 1.0 and len(sleeps) == 4


def test_wait_returns_as_soon_as_the_probe_passes(http_port: int) -> None:
    outcome, waited = health.wait(health.Probe("http", http_port, "/health"), 5.0)
    assert outcome.ok and waited < 1.0


@pytest.mark.parametrize(
    ("svc", "port", "expected"),
    [
        (Service("a", "a", (), ("x",), port=80, health="/healthz"), None, ("http", 80, "/healthz")),
        (
            Service("a", "a", (), ("x",), port=80, health="/healthz"),
            9000,
            ("http", 9000, "/healthz"),
        ),
        (Service("a", "a", (), ("x",), port=80, health="tcp"), None, ("tcp", 80, "/")),
        (Service("a", "a", (), ("x",), health="process"), None, ("process", None, "/")),
    ],
)
def test_probe_for_service(svc: Service, port: int | None, expected: tuple[object, ...]) -> None:
    p = health.Probe.for_service(svc, port)
    assert (p.kind, p.port, p.path) == expected
