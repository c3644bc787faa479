"""``wheeldock up``: build the images, start the services and time them until healthy.

Steps, each timed: *build* (``docker compose build``, one service after the other so each gets
its own time; BuildKit shares the common stages), *start* (``docker compose up -d``), *health*
(until our own probe of the port as compose publishes it passes **and** Docker reports the
container healthy; a port the host cannot reach is judged by Docker's health alone, a worker by
running past its start, a one-shot job by exiting 0). A failure raises :class:`UpFailed` naming
the step and carrying the service's last log lines, terminal escape codes stripped.

Before building, ``up`` writes wheeldock's own override (:mod:`wheeldock.compose.override`) for
what this machine's engine needs; every compose call here passes it after the user's files.

With a ``platform`` (``--platform linux/arm64``) the same steps build and run the services for
that platform, through a compose override (:mod:`wheeldock.compose.foreign`): BuildKit runs the build's
``RUN`` steps and the engine the containers under qemu-user, so a foreign image is seen
answering here before it goes to the board.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wheeldock import project
from wheeldock.compose import files as compose_mod
from wheeldock.compose import health, ports
from wheeldock.compose import override as override_mod
from wheeldock.compose import survey as discover
from wheeldock.edges import ca as ca_mod
from wheeldock.edges import engine, process
from wheeldock.errors import CommandFailed, NotFound, WheeldockError
from wheeldock.project import Project, Service

if TYPE_CHECKING:
    from wheeldock.platforms import Target

log = logging.getLogger(__name__)

#: BuildKit for every build compose runs.
BUILD_ENV = {"DOCKER_BUILDKIT": "1", "COMPOSE_DOCKER_CLI_BUILD": "1"}
LOG_TAIL = 30
#: Seconds a service without a port must keep running to count as a worker that is up.

#: Terminal control sequences (CSI such as ``ESC[2K``, OSC, single-character escapes).
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


class UpFailed(WheeldockError):
    """A step of ``up`` failed for a service; carries the step and the service's last log lines."""

    def __init__(self, step: str, service: str, what: str, logs: str, *, fix: str | None = None):
        self.step = step
        self.service = service
        self.logs = logs
        super().__init__(f"{step} failed for {service}: {what}", fix=fix)


@dataclass(frozen=True)
class Timeouts:
    build: float = 1800.0
    start: float = 180.0
    health: float = 120.0


#: Seconds to wait for health when the services run under qemu (the interpreter alone starts
#: several times slower there).
EMULATED_HEALTH_TIMEOUT = 300.0


@dataclass(frozen=True)
class ServiceReport:
    name: str
    image: str | None
    probe: str
    port: int | None
    build_s: float | None  # None: not built (--no-build)
    answer_s: float | None  # from `up -d` to the first passing probe (HTTP 200 / TCP accept)
    healthy_s: float | None  # from `up -d` to Docker's "healthy"
    docker_health: str  # "healthy", "none" (image without HEALTHCHECK), …


@dataclass(frozen=True)
class UpReport:
    services: tuple[ServiceReport, ...]
    build_s: float
    start_s: float
    total_s: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    platform: str | None = None  # None: the engine's own platform
    emulated: bool = False  # the containers ran under qemu-user


@dataclass(frozen=True)
class Stack:
    """What every compose call needs: the folder, the compose files, the services."""

    root: Path
    files: tuple[Path, ...]
    project: Project
    project_name: str | None = None  # -p; None: COMPOSE_PROJECT_NAME, `name:` or the folder

    @classmethod
    def load(cls, root: Path, selection: compose_mod.Selection | None = None) -> Stack:
        """The stack in ``root``: the compose files named with ``-f`` or ``COMPOSE_FILE`` when
        some are, else those ``init`` recorded in wheeldock.toml, else compose's defaults."""
        selection = selection or compose_mod.Selection()
        proj = project.load(root)
        if compose_mod.named_files(selection.files):
            files = compose_mod.find_files(root, selection.files)
        elif proj.compose_file:
            for rel in proj.compose_files:
                if not (root / rel).is_file():
                    raise NotFound(
                        f"the compose file {rel} named in {project.CONFIG_NAME} is missing",
                        path=root / rel,
                        fix="fix [project] compose in wheeldock.toml, or re-run `wheeldock init`",
                    )
            files = tuple(root / rel for rel in proj.compose_files)
            defaults = compose_mod.default_files(root)
            if not proj.compose_overrides and defaults[:1] == files:
                files = defaults  # with its override file, as compose adds it
        else:
            files = compose_mod.find_files(root)
        own = root / override_mod.PATH
        return cls(
            root,
            (*files, own) if own.is_file() else tuple(files),
            proj,
            selection.project_name,
        )

    def adapted(self, facts: override_mod.EngineFacts, ca: Path | None) -> Stack:
        """This stack with wheeldock's override rewritten for ``facts`` and ``ca`` (from the
        user's files alone, so an earlier override never feeds the next)."""
        own = self.root / override_mod.PATH
        users = Stack(
            self.root, tuple(f for f in self.files if f != own), self.project, self.project_name
        )
        config = users.config()
        services = self.project.services
        data = override_mod.override(
            config, services, facts, ca=ca, owners=override_mod.owners(config, services)
        )
        path = override_mod.write(self.root, data)
        return Stack(
            self.root,
            (*users.files, path) if path else users.files,
            self.project,
            self.project_name,
        )

    @property
    def project_dir(self) -> Path:
        """Compose's project directory, against which the files' relative paths are read:
        the first compose file's folder (the project folder, unless the file is in a
        subfolder such as ``docker/compose.yml``)."""
        return self.files[0].parent

    def compose(
        self, *args: str, check: bool = True, capture: bool = True, timeout: float | None = None
    ) -> process.Result:
        return engine.compose(
            self.project_dir,
            "--ansi",
            "never",
            *args,
            files=self.files,
            project_name=self.project_name,
            check=check,
            capture=capture,
            timeout=timeout,
            env=BUILD_ENV,
        )

    def for_platform(
        self,
        target: Target,
        names: Sequence[str],
        *,
        builds: bool = True,
        progress: Callable[[str], None] = lambda message: None,
    ) -> Stack:
        """This stack with an override building and running ``names`` for ``target`` (written to
        ``.wheeldock/compose.<arch>.yaml``); the compose files themselves are not touched.
        ``builds`` false: only run (the build sections, and the bases they need, are left out)."""
        from wheeldock.compose import foreign  # the bases' module: only --platform needs it

        data = foreign.override(
            self.config(), names, target, bases_for=foreign.engine_bases(progress), builds=builds
        )
        path = foreign.write_override(self.root / ".wheeldock", data, target)
        return Stack(self.root, (*self.files, path), self.project, self.project_name)

    def config(self) -> dict[str, Any]:
        """``docker compose config`` as JSON: variables resolved with the current environment."""
        data: dict[str, Any] = json.loads(self.compose("config", "--format", "json").stdout)
        return data

    def container_ids(self, names: Sequence[str]) -> dict[str, str]:
        ids: dict[str, str] = {}
        for name in names:
            out = self.compose("ps", "--all", "-q", name).stdout.split()
            if out:
                ids[name] = out[0]
        return ids

    def logs(self, name: str, tail: int = LOG_TAIL) -> str:
        result = self.compose("logs", "--no-color", "--tail", str(tail), name, check=False)
        return strip_escapes(result.stdout + result.stderr).rstrip()

    def published(self, name: str, binding: ports.Binding) -> tuple[str, int] | None:
        """The host address the engine picked for ``binding`` (``docker compose port``)."""
        result = self.compose("port", name, str(binding.target), check=False)
        host, _, port = result.stdout.strip().rpartition(":")
        if result.returncode != 0 or not port.isdigit():
            return None
        host = host.strip("[]")
        return (ports.LOOPBACK if host in ("", "0.0.0.0", "::") else host, int(port))


def strip_escapes(text: str) -> str:
    """``text`` without terminal control sequences (progress output's ``ESC[2K`` and colours)."""
    return _ESCAPES.sub("", text)


def probe_for(
    stack: Stack,
    service: Service,
    config: Mapping[str, Any],
    port: int | None,
    facts: override_mod.EngineFacts | None = None,
) -> health.Probe:
    """How the host judges ``service``: its port where compose publishes it; a port the host
    cannot reach by Docker's health; no port: a worker (keeps running) or, with ``restart:
    "no"`` written, a one-shot job (exits 0)."""
    svc = (config.get("services") or {}).get(service.name) or {}
    if port is None or service.health == "process":
        job = str(svc.get("restart", "")) == "no"
        return health.Probe("job" if job else "process")
    where = ports.reach(svc, port)
    address = where.address
    if address is None and where.pick is not None:
        address = stack.published(service.name, where.pick)
    if address is None:
        return health.Probe("docker", port, why=where.why)
    host, published = address
    if facts is not None and facts.probe_host and host == ports.LOOPBACK:
        host = facts.probe_host
    kind = "tcp" if service.health == "tcp" else "http"
    path = service.health if service.health.startswith("/") else "/"
    return health.Probe(kind, published, path, host=host)


def resolve_port(service: Service, config: Mapping[str, Any]) -> int | None:
    """The port as the stack runs now (``PORT`` from the environment may differ from init's)."""
    svc = (config.get("services") or {}).get(service.name)
    if svc is None or service.port is None:
        return service.port
    port, _ = discover.infer_port(svc, service.command, {})
    return port or service.port


def _inspect(ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    result = engine.docker("inspect", "--format", "{{json .State}}", *ids, check=False)
    states: dict[str, dict[str, Any]] = {}
    for cid, line in zip(ids, result.stdout.splitlines(), strict=False):
        try:
            states[cid] = json.loads(line)
        except ValueError:
            continue
    return states


def up(
    root: Path,
    names: Sequence[str] = (),
    *,
    build: bool = True,
    timeouts: Timeouts = Timeouts(),
    progress: Callable[[str], None] = lambda message: None,
    platform: Target | None = None,
    ca_cert: Path | None = None,
    selection: compose_mod.Selection | None = None,
) -> UpReport:
    """Build (unless ``build`` is false), start and wait for ``names`` (default: all services).

    ``platform``: build and run for that platform; one this machine cannot run (no qemu-user
    binfmt handler for it in :data:`wheeldock.platforms.BINFMT_DIR`) is refused before anything
    else happens. ``ca_cert``: the proxy CA for builds
    (default: ``SSL_CERT_FILE``, ``PIP_CERT`` or ``REQUESTS_CA_BUNDLE``)."""
    emulated = False
    if platform is not None:
        from wheeldock import platforms  # the bases' module: only when asked
        from wheeldock.compose import foreign

        foreign.require_runnable(platform, binfmt_dir=platforms.BINFMT_DIR)
        emulated = platforms.needs_emulation(platform)
    engine.require()
    facts = override_mod.engine_facts()
    stack = Stack.load(root, selection).adapted(facts, ca_mod.find(ca_cert))
    services = stack.project.select(tuple(names))
    if platform is not None:
        stack = stack.for_platform(
            platform, [s.name for s in services], builds=build, progress=progress
        )
    t0 = time.monotonic()
    build_times: dict[str, float] = {}
    if build and platform is None:
        ensure_bases(stack, services, progress)
    if build:
        for svc in services:
            progress(f"building {svc.name}")
            start = time.monotonic()
            try:
                # Plain progress: the failing step's own output reaches stderr, hence the tail.
                stack.compose("--progress", "plain", "build", svc.name, timeout=timeouts.build)
            except CommandFailed as exc:
                raise UpFailed(
                    "build",
                    svc.name,
                    f"`docker compose build {svc.name}` exited with {exc.returncode}",
                    _tail(exc.stderr or exc.stdout),
                    fix=_build_fix(exc.stderr or exc.stdout, svc.name),
                ) from exc
            build_times[svc.name] = time.monotonic() - start
    build_s = time.monotonic() - t0

    config = stack.config()
    container_ports = {svc.name: resolve_port(svc, config) for svc in services}
    images = {
        svc.name: (config.get("services") or {}).get(svc.name, {}).get("image") for svc in services
    }
    progress("starting " + ", ".join(s.name for s in services))
    up_start = time.monotonic()
    try:
        stack.compose("up", "-d", "--no-build", *(s.name for s in services), timeout=timeouts.start)
    except CommandFailed as exc:
        failing = services[0].name
        raise UpFailed(
            "start",
            failing,
            f"`docker compose up -d` exited with {exc.returncode}: {_tail(exc.stderr, 5)}",
            stack.logs(failing),
            fix="see the service's log lines above; `wheeldock logs` shows more",
        ) from exc
    start_s = time.monotonic() - up_start

    progress("waiting until healthy")
    probes = {s.name: probe_for(stack, s, config, container_ports[s.name], facts) for s in services}
    answers, healthy, docker_health = _wait_healthy(
        stack, services, probes, up_start, timeouts.health
    )
    total = time.monotonic() - t0
    reports = tuple(
        ServiceReport(
            name=svc.name,
            image=images.get(svc.name),
            probe=probes[svc.name].describe(),
            port=probes[svc.name].port,
            build_s=build_times.get(svc.name),
            answer_s=answers.get(svc.name),
            healthy_s=healthy.get(svc.name),
            docker_health=docker_health.get(svc.name, "none"),
        )
        for svc in services
    )
    return UpReport(
        services=reports,
        build_s=build_s,
        start_s=start_s,
        total_s=total,
        platform=platform.name if platform is not None else None,
        emulated=emulated,
    )


def ensure_bases(
    stack: Stack, services: Sequence[Service], progress: Callable[[str], None]
) -> tuple[str, ...]:
    """Make the wheeldock bases the services' Dockerfiles start from that the engine lacks
    (from Debian packages, as ``wheeldock base build`` does: no registry has them), so ``up``
    works on a machine that never ran ``wheeldock base``. The names made, in order."""
    from wheeldock.compose import foreign
    from wheeldock.debian import bases
    from wheeldock.platforms import native_arch

    candidates = {i for svc in services for i in bases.own_images(svc.python, svc.base)}
    if all(engine.image_exists(image) for image in candidates):
        return ()  # the usual case: one `docker image inspect` per base, no compose call
    made: list[str] = []
    config_services = stack.config().get("services") or {}
    for svc in services:
        build = (config_services.get(svc.name) or {}).get("build")
        text = foreign.dockerfile_text(build) if isinstance(build, Mapping) else None
        for image in foreign.dockerfile_bases(text or "", (build or {}).get("args") or {}):
            own = bases.parse_own_image(image)
            if own is None or image in made or engine.image_exists(image):
                continue
            variant, suite = own
            progress(f"making the base {image} from Debian {suite} packages (once per machine)")
            bases.ensure_image(variant, arch=native_arch(), suite=suite)
            made.append(image)
    return tuple(made)


def _wait_healthy(
    stack: Stack,
    services: Sequence[Service],
    probes: Mapping[str, health.Probe],
    since: float,
    timeout: float,
) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    names = [s.name for s in services]
    ids = stack.container_ids(names)
    for name in names:
        if name not in ids:
            raise UpFailed("start", name, "no container was created", stack.logs(name))

    def states(pending: Sequence[str]) -> dict[str, health.ContainerState]:
        found = _inspect([ids[n] for n in pending])
        return {n: _container_state(found.get(ids[n], {})) for n in pending}

    try:
        ready = health.wait_healthy(probes, states, since, timeout)
    except health.HealthFailed as exc:
        step, fix = _HEALTH_FAILURES[exc.reason]
        raise UpFailed(step, exc.service, exc.what, stack.logs(exc.service), fix=fix) from None
    return ready.answered, ready.healthy, ready.docker_health


#: A failed wait's reason -> the step named and the fix given.
_HEALTH_FAILURES = {
    "stopped": ("start", "the app itself failed to start: see its log lines above"),
    "failed": ("start", "the command itself failed: see its log lines above"),
    "unhealthy": (
        "health",
        "check the health endpoint in wheeldock.toml (`health = …`) and the app's logs",
    ),
    "timeout": (
        "health",
        "raise --timeout if the app is just slow; otherwise see its log lines above",
    ),
}


def _container_state(state: Mapping[str, Any]) -> health.ContainerState:
    """``docker inspect``'s ``.State`` as a :class:`~wheeldock.compose.health.ContainerState`."""
    return health.ContainerState(
        status=str(state.get("Status", "unknown")),
        health=(state.get("Health") or {}).get("Status"),
        exit_code=state.get("ExitCode"),
    )


def _build_fix(output: str, name: str) -> str:
    if "network bridge not found" in output:
        return (
            "the engine has no default `bridge` network (dockerd --bridge=none) and the build "
            f"asked for it: add `network: host` under {name}'s `build:` in "
            f"{override_mod.PATH} or start dockerd with its bridge"
        )
    return (
        "read the build output above; `docker compose build --progress plain "
        f"{name}` shows every step"
    )


def _tail(text: str, lines: int = LOG_TAIL) -> str:
    return "\n".join(strip_escapes(text).rstrip().splitlines()[-lines:])


# --- down / status / logs ----------------------------------------------------------------------


def down(
    root: Path, *, volumes: bool = False, selection: compose_mod.Selection | None = None
) -> None:
    engine.require()
    stack = Stack.load(root, selection)
    args = ["down", "--remove-orphans"] + (["--volumes"] if volumes else [])
    stack.compose(*args, timeout=300)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # running, exited, … or "absent"
    docker_health: str
    port: int | None  # the port probed: the published one (None: nothing probed from the host)
    probe: str  # what was judged, with the URL or address probed
    probe_ok: bool
    probe_detail: str


def status(
    root: Path, names: Sequence[str] = (), *, selection: compose_mod.Selection | None = None
) -> tuple[ServiceStatus, ...]:
    engine.require()
    stack = Stack.load(root, selection)
    services = stack.project.select(tuple(names))
    config = stack.config()
    ids = stack.container_ids([s.name for s in services])
    states = _inspect(list(ids.values()))
    facts = override_mod.EngineFacts(
        remote_host=override_mod.remote_host(os.environ.get("DOCKER_HOST", ""))
    )
    result: list[ServiceStatus] = []
    for svc in services:
        p = probe_for(stack, svc, config, resolve_port(svc, config), facts)
        state = states.get(ids.get(svc.name, ""), {})
        outcome = _status_outcome(p, state)
        result.append(
            ServiceStatus(
                name=svc.name,
                state=str(state.get("Status", "absent")),
                docker_health=str((state.get("Health") or {}).get("Status", "none")),
                port=p.port if p.kind in ("http", "tcp") else None,
                probe=p.describe(),
                probe_ok=outcome.ok,
                probe_detail=outcome.detail,
            )
        )
    return tuple(result)


def _status_outcome(p: health.Probe, state: Mapping[str, Any]) -> health.Outcome:
    """The service judged as what it is: a port by probing it, a job by its exit code, a worker
    by running, a port the host cannot reach by Docker's health."""
    status = state.get("Status")
    code = state.get("ExitCode")
    if status in ("exited", "dead") and p.kind in ("job", "process"):
        return health.Outcome(code == 0, f"{'done' if code == 0 else 'failed'} (exit code {code})")
    if status != "running":
        return health.Outcome(False, "not running")
    if p.kind == "docker":
        docker = (state.get("Health") or {}).get("Status")
        if docker is None:
            return health.Outcome(True, "running (the image has no HEALTHCHECK)")
        return health.Outcome(docker == "healthy", f"Docker health: {docker}")
    if p.kind in ("job", "process"):
        return health.Outcome(True, "running")
    return health.probe(p, timeout=1.0)


def logs(
    root: Path,
    names: Sequence[str] = (),
    *,
    tail: int | None = None,
    follow: bool = False,
    selection: compose_mod.Selection | None = None,
) -> None:
    """Stream ``docker compose logs`` to the terminal."""
    engine.require()
    stack = Stack.load(root, selection)
    stack.project.select(tuple(names))  # unknown names fail here, with the known ones listed
    args = ["logs", "--no-color"]
    if tail is not None:
        args += ["--tail", str(tail)]
    if follow:
        args.append("--follow")
    stack.compose(*args, *names, capture=False)
