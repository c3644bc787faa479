"""``wheeldock up``: build the images, start the services and time them until healthy.

Steps, each timed: *build* (``docker compose build``, one service after the other so each gets
its own time; BuildKit shares the common stages), *start* (``docker compose up -d``), *health*
(until our own probe of 127.0.0.1:<port> passes **and** Docker reports the container healthy).
A failure raises :class:`UpFailed` naming the step and carrying the service's last log lines.

With a ``platform`` (``--platform linux/arm64``) the same steps build and run the services for
that platform, through a compose override (:mod:`wheeldock.compose.foreign`): BuildKit runs the build's
``RUN`` steps and the engine the containers under qemu-user, so a foreign image is seen
answering here before it goes to the board.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wheeldock import project
from wheeldock.compose import files as compose_mod
from wheeldock.compose import health
from wheeldock.compose import survey as discover
from wheeldock.edges import engine, process
from wheeldock.errors import CommandFailed, NotFound, WheeldockError
from wheeldock.project import Project, Service

if TYPE_CHECKING:
    from wheeldock.platforms import Target

log = logging.getLogger(__name__)

#: BuildKit for every build compose runs.
BUILD_ENV = {"DOCKER_BUILDKIT": "1", "COMPOSE_DOCKER_CLI_BUILD": "1"}
LOG_TAIL = 30


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
        return cls(root, tuple(files), proj, selection.project_name)

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
        return (result.stdout + result.stderr).rstrip()


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
    binfmt_dir: Path | None = None,
    selection: compose_mod.Selection | None = None,
) -> UpReport:
    """Build (unless ``build`` is false), start and wait for ``names`` (default: all services).

    ``platform``: build and run for that platform; one this machine cannot run (no qemu-user
    binfmt handler for it) is refused before anything else happens (``binfmt_dir``: where the
    handlers are registered, /proc/sys/fs/binfmt_misc)."""
    emulated = False
    if platform is not None:
        from wheeldock import platforms  # the bases' module: only when asked
        from wheeldock.compose import foreign

        foreign.require_runnable(platform, binfmt_dir=binfmt_dir or platforms.BINFMT_DIR)
        emulated = platforms.needs_emulation(platform)
    engine.require()
    stack = Stack.load(root, selection)
    services = stack.project.select(tuple(names))
    if platform is not None:
        stack = stack.for_platform(
            platform, [s.name for s in services], builds=build, progress=progress
        )
    t0 = time.monotonic()
    build_times: dict[str, float] = {}
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
                    fix="read the build output above; `docker compose build --progress plain "
                    f"{svc.name}` shows every step",
                ) from exc
            build_times[svc.name] = time.monotonic() - start
    build_s = time.monotonic() - t0

    config = stack.config()
    ports = {svc.name: resolve_port(svc, config) for svc in services}
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
    answers, healthy, docker_health = _wait_healthy(
        stack, services, ports, up_start, timeouts.health
    )
    total = time.monotonic() - t0
    reports = tuple(
        ServiceReport(
            name=svc.name,
            image=images.get(svc.name),
            probe=health.Probe.for_service(svc, ports[svc.name]).describe(),
            port=ports[svc.name],
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


def _wait_healthy(
    stack: Stack,
    services: Sequence[Service],
    ports: Mapping[str, int | None],
    since: float,
    timeout: float,
) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    names = [s.name for s in services]
    ids = stack.container_ids(names)
    for name in names:
        if name not in ids:
            raise UpFailed("start", name, "no container was created", stack.logs(name))
    probes = {s.name: health.Probe.for_service(s, ports[s.name]) for s in services}
    answers: dict[str, float] = {}
    healthy: dict[str, float] = {}
    docker_health: dict[str, str] = {}
    deadline = since + timeout
    while True:
        pending = [n for n in names if n not in answers or n not in healthy]
        if not pending:
            return answers, healthy, docker_health
        states = _inspect([ids[n] for n in pending])
        now = time.monotonic()
        for name in pending:
            state = states.get(ids[name], {})
            status = state.get("Status", "unknown")
            if status in ("exited", "dead") or (status == "restarting" and name not in answers):
                raise UpFailed(
                    "start",
                    name,
                    f"the container {status} (exit code {state.get('ExitCode')})",
                    stack.logs(name),
                    fix="the app itself failed to start: see its log lines above",
                )
            running = status == "running"
            if name not in answers and running and health.probe(probes[name], timeout=0.5).ok:
                answers[name] = time.monotonic() - since
            docker = (state.get("Health") or {}).get("Status")
            docker_health[name] = docker or "none"
            if docker == "unhealthy":
                raise UpFailed(
                    "health",
                    name,
                    "Docker reports the container unhealthy (its HEALTHCHECK fails)",
                    stack.logs(name),
                    fix="check the health endpoint in wheeldock.toml (`health = …`) and the app's logs",
                )
            if name not in healthy and running:
                if docker == "healthy":
                    healthy[name] = now - since
                elif docker is None and name in answers:  # no HEALTHCHECK: our probe decides
                    healthy[name] = answers[name]
        if time.monotonic() > deadline:
            late = [n for n in names if n not in answers or n not in healthy]
            name = late[0]
            what = (
                f"{probes[name].describe()} did not pass"
                if name not in answers
                else f"Docker did not report it healthy (health: {docker_health.get(name)})"
            )
            raise UpFailed(
                "health",
                name,
                f"{what} within {timeout:.0f} s",
                stack.logs(name),
                fix="raise --timeout if the app is just slow; otherwise see its log lines above",
            )
        time.sleep(0.1)


def _tail(text: str, lines: int = LOG_TAIL) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


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
    port: int | None
    probe: str
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
    result: list[ServiceStatus] = []
    for svc in services:
        port = resolve_port(svc, config)
        p = health.Probe.for_service(svc, port)
        state = states.get(ids.get(svc.name, ""), {})
        running = state.get("Status") == "running"
        outcome = health.probe(p, timeout=1.0) if running else health.Outcome(False, "not running")
        result.append(
            ServiceStatus(
                name=svc.name,
                state=str(state.get("Status", "absent")),
                docker_health=str((state.get("Health") or {}).get("Status", "none")),
                port=port,
                probe=p.describe(),
                probe_ok=outcome.ok,
                probe_detail=outcome.detail,
            )
        )
    return tuple(result)


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
