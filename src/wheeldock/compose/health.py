"""Health probes from the host: an HTTP GET that must answer 200, or a TCP connect.

Probes go to the address the port is published on (127.0.0.1 unless told), straight to the
socket (never through an HTTP proxy from the environment). The other kinds have nothing to probe
from outside, and :func:`probe` reports them as passed: the caller judges by the container
(see :mod:`wheeldock.compose.up`): ``process``, a worker that keeps running; ``job``, a
one-shot job that exits 0; ``docker``, a port the host cannot reach, judged by Docker's health.
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
    kind: str  # "http" | "tcp" | "process" | "job" | "docker"
    port: int | None = None
    path: str = "/"
    host: str = HOST
    why: str = ""  # for "docker": why the host cannot reach the port

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
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.kind == "http":
            return f"GET http://{host}:{self.port}{self.path}"
        if self.kind == "tcp":
            return f"TCP {host}:{self.port}"
        if self.kind == "job":
            return "exits 0 (a one-shot job)"
        if self.kind == "docker":
            return f"Docker health ({self.why})"
        return "keeps running (a worker)"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str


def probe(p: Probe, timeout: float = 1.0) -> Outcome:
    """Run ``p`` once. HTTP passes on status 200 only; TCP on an accepted connection."""
    if p.kind in ("process", "job", "docker"):
        return Outcome(True, "nothing to probe from the host: the container is the check")
    assert p.port is not None
    if p.kind == "tcp":
        try:
            with socket.create_connection((p.host, p.port), timeout=timeout):
                return Outcome(True, "connected")
        except OSError as exc:
            return Outcome(False, f"connect failed: {exc.strerror or exc}")
    conn = http.client.HTTPConnection(p.host, p.port, timeout=timeout)
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
