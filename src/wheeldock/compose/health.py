"""Health probes from the host: an HTTP GET that must answer 200, or a TCP connect.

Probes go to 127.0.0.1 only, straight to the socket (never through an HTTP proxy from the
environment). A ``process`` check has nothing to probe from outside: :func:`probe` reports it
as passed and the caller relies on the container being up (see :mod:`wheeldock.compose.up`).
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from wheeldock.project import Service

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Probe:
    kind: str  # "http" | "tcp" | "process"
    port: int | None = None
    path: str = "/"

    @classmethod
    def for_service(cls, service: Service, port: int | None = None) -> Probe:
        """The probe for ``service``; ``port`` overrides the one in its settings."""
        port = port if port is not None else service.port
        if port is None or service.health == "process":
            return cls("process")
        if service.health == "tcp":
            return cls("tcp", port)
        return cls("http", port, service.health if service.health.startswith("/") else "/")

    def describe(self) -> str:
        if self.kind == "http":
            return f"GET http://{HOST}:{self.port}{self.path}"
        if self.kind == "tcp":
            return f"TCP {HOST}:{self.port}"
        return "process alive"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str


def probe(p: Probe, timeout: float = 1.0) -> Outcome:
    """Run ``p`` once. HTTP passes on status 200 only; TCP on an accepted connection."""
    if p.kind == "process":
        return Outcome(True, "no port: the container being up is the check")
    assert p.port is not None
    if p.kind == "tcp":
        try:
            with socket.create_connection((HOST, p.port), timeout=timeout):
                return Outcome(True, "connected")
        except OSError as exc:
            return Outcome(False, f"connect failed: {exc.strerror or exc}")
    conn = http.client.HTTPConnection(HOST, p.port, timeout=timeout)
    try:
        conn.request("GET", p.path, headers={"User-Agent": "wheeldock-health"})
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            return Outcome(True, "HTTP 200")
        return Outcome(False, f"HTTP {response.status}")
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(False, f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def wait(
    p: Probe,
    timeout: float,
    *,
    interval: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Outcome, float]:
    """Probe until it passes or ``timeout`` seconds pass; returns the last outcome and the
    seconds waited."""
    start = clock()
    while True:
        outcome = probe(p, timeout=min(1.0, max(timeout, 0.1)))
        elapsed = clock() - start
        if outcome.ok or elapsed >= timeout:
            return outcome, elapsed
        sleep(interval)
