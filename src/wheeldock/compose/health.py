"""Health probes from the host (an HTTP GET that must answer 200, or a TCP connect), and the
one health waiter ``up`` and ``bench`` both use (:func:`wait_healthy`).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from wheeldock.errors import WheeldockError
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


# --------------------------------------------------------------------------- waiting


@dataclass(frozen=True)
class ContainerState:
    """What the engine says of a service's container."""

    status: str  # running, restarting, exited, dead, created, …; "" when there is none
    health: str | None = None  # Docker's: starting, healthy, unhealthy; None without HEALTHCHECK
    exit_code: int | None = None


@dataclass(frozen=True)
class Readiness:
    """Seconds from the start of the wait's clock (``since``) to each service answering and to
    it being healthy, and Docker's last health word for each (``none``: no HEALTHCHECK)."""

    answered: dict[str, float] = field(default_factory=dict)
    healthy: dict[str, float] = field(default_factory=dict)
    docker_health: dict[str, str] = field(default_factory=dict)


class HealthFailed(WheeldockError):
    """A service will not be healthy: ``reason`` is ``stopped`` (its container exited or
    restarts before it ever answered), ``unhealthy`` (Docker says its HEALTHCHECK fails) or
    ``timeout`` (``pending`` lists the services still waited for, in order)."""

    def __init__(
        self, reason: str, service: str, what: str, readiness: Readiness, pending: Sequence[str]
    ) -> None:
        self.reason = reason
        self.service = service
        self.readiness = readiness
        self.pending = tuple(pending)
        super().__init__(what)


@dataclass(frozen=True)
class Pace:
    """How :func:`wait_healthy` polls: probes every ``probe_every`` seconds (each given
    ``probe_timeout``), container states every ``states_every``, on ``clock``."""

    probe_every: float = 0.1
    states_every: float = 0.1
    probe_timeout: float = 0.5
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


_DEFAULT_PACE = Pace()


def wait_healthy(
    probes: Mapping[str, Probe],
    states: Callable[[Sequence[str]], Mapping[str, ContainerState]],
    since: float,
    timeout: float,
    *,
    docker_health: bool = True,
    pace: Pace = _DEFAULT_PACE,
) -> Readiness:
    """Wait until every service of ``probes`` answers and (with ``docker_health``) is healthy.

    The one meaning of healthy that ``up`` and ``bench`` share. Where the two used to differ,
    the stricter one is kept: a service without an HTTP health path answers only once Docker
    reports it healthy (bench's), a TCP one only once its port also accepts, a container
    without a HEALTHCHECK is healthy only once it answers, and a stopped or unhealthy container
    fails at once (up's).

    - A service *answers* when its HTTP health path gives 200. One without (``tcp``,
      ``process``) answers when its container runs, Docker reports it healthy (or it has no
      HEALTHCHECK) and, for ``tcp``, its port accepts a connection.
    - It is *healthy* when Docker reports it ``healthy``; a container without a HEALTHCHECK is
      healthy once it answers.
    - A service with no port (a worker, ``process``) or with a port the host cannot reach
      (``docker``) answers when Docker reports it healthy or, without a HEALTHCHECK, once its
      container has run for :data:`WORKER_SETTLE` seconds; a one-shot ``job`` answers (and is
      healthy) when it exits 0, as does a worker whose command simply ends with 0.
    - A container that exits (or restarts before it ever answered), or that Docker reports
      ``unhealthy``, fails the wait at once with :class:`HealthFailed` (a job or worker that
      exits non-zero: reason ``failed``), as does reaching ``timeout`` seconds after ``since``.

    Times are ``clock() - since``. Probes run every ``probe_every`` seconds (each given
    ``probe_timeout``); ``states`` (service names -> their containers' state) is asked every
    ``states_every`` seconds, and at once when every service answers.
    """
    readiness = Readiness()
    answered, healthy, docker = readiness.answered, readiness.healthy, readiness.docker_health
    current: Mapping[str, ContainerState] = {}
    last_states: float | None = None
    seen = since  # when ``current`` was read
    while True:
        pending = [n for n in probes if n not in answered or (docker_health and n not in healthy)]
        if not pending:
            return readiness
        now = pace.clock()
        if (
            last_states is None
            or now - last_states >= pace.states_every
            or len(answered) == len(probes)
        ):
            last_states = now
            current = states(pending)
            seen = pace.clock()
            _check_states(pending, current, readiness, probes, seen - since)
        for name in pending:
            state = current.get(name, ContainerState(""))
            elapsed = pace.clock() - since
            if name not in answered and _answers(probes[name], state, pace.probe_timeout, elapsed):
                answered[name] = elapsed
            if name not in healthy and state.status == "running":
                if state.health == "healthy":
                    healthy[name] = seen - since
                elif state.health is None and name in answered:
                    healthy[name] = answered[name]
        if pace.clock() > since + timeout:
            late = [n for n in probes if n not in answered or (docker_health and n not in healthy)]
            if late:
                name = late[0]
                what = (
                    f"{probes[name].describe()} did not pass"
                    if name not in answered
                    else f"Docker did not report it healthy (health: {docker.get(name)})"
                )
                raise HealthFailed(
                    "timeout", name, f"{what} within {timeout:.0f} s", readiness, late
                )
        pace.sleep(pace.probe_every)


#: Seconds a worker (no port) must keep running to count as up.
WORKER_SETTLE = 3.0


def _answers(p: Probe, state: ContainerState, timeout: float, elapsed: float) -> bool:
    """Whether the service answers now. An HTTP port is probed whatever the last state read
    says (a published port answers only while its container runs, and the states are read less
    often than the port); any other service first needs its container healthy by the state.
    A one-shot job answers only by exiting 0 (:func:`_check_states`)."""
    if p.kind == "job":
        return False
    if p.kind != "http" and (state.status != "running" or state.health not in (None, "healthy")):
        return False
    if p.kind in ("process", "docker"):
        # Docker's word when the image has a HEALTHCHECK, else having kept running a while
        return state.health == "healthy" or elapsed >= WORKER_SETTLE
    return probe(p, timeout=timeout).ok


def _check_states(
    pending: Sequence[str],
    states: Mapping[str, ContainerState],
    readiness: Readiness,
    probes: Mapping[str, Probe],
    elapsed: float,
) -> None:
    """Record Docker's health words and the jobs that finished; :class:`HealthFailed` for a
    container that stopped (a job or worker: exited non-zero) or that Docker reports
    unhealthy."""
    for name in pending:
        state = states.get(name, ContainerState(""))
        kind = probes[name].kind if name in probes else "http"
        if kind in ("job", "process") and state.status in ("exited", "dead"):
            if state.exit_code == 0:  # a command that ends: a one-shot job, done
                readiness.answered[name] = readiness.healthy[name] = elapsed
                readiness.docker_health[name] = "none"
                continue
            role = "one-shot job" if kind == "job" else "worker"
            what = f"the {role} failed (exit code {state.exit_code})"
            raise HealthFailed("failed", name, what, readiness, pending)
        if state.status in ("exited", "dead") or (
            state.status == "restarting" and name not in readiness.answered
        ):
            what = f"the container {state.status} (exit code {state.exit_code})"
            raise HealthFailed("stopped", name, what, readiness, pending)
        readiness.docker_health[name] = state.health or "none"
        if state.health == "unhealthy":
            what = "Docker reports the container unhealthy (its HEALTHCHECK fails)"
            raise HealthFailed("unhealthy", name, what, readiness, pending)
