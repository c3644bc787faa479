"""wheeldock bench: the seed's lifecycle table, measured for real, scenario against scenario.

Scenarios (each on its own working copy of the stack, so the user's folder is never touched):

* before  - the compose file as it is: pip install at every container start;
* seed    - the seed's hand-made multi-stage Dockerfiles (wheeldock.bench.baselines);
* uvguide - a Dockerfile written the way uv's Docker guide teaches;
* init    - wheeldock's generated Dockerfiles (wheeldock init), built by compose/BuildKit;
* native  - wheeldock's native builder (wheeldock build) loaded into the engine;
* native-oci - the same build writing an OCI image layout per service (the daemonless
  output, what a registry push or skopeo copy starts from): build times only, nothing is
  started from it.

Events, each timed from just before the first command to (a) every service answering its health
endpoint with 200 and (b) Docker reporting every container healthy: cold (empty BuildKit
cache, empty wheel/blob caches), restart (down, then up with no change), code (one source
file edited), bump (one requirement pin changed). With source_builds the cold and
bump events are repeated with those packages forced to build from source.

With a platform (--platform linux/arm64) every scenario builds and runs for it: the
compose-built ones through a compose override (wheeldock.compose.foreign: a platform: key, and
wheeldock's bases swapped for that platform's), so BuildKit runs their RUN steps under
qemu-user; the native builder with wheeldock build --platform (nothing emulated; sdists
forced by source_builds are built under qemu with --emulate-sdists). The containers of
every scenario run under qemu, so the table compares the approaches on the foreign platform.

Honesty rules: every timer starts before the command and stops at the observed event; cold runs
start from docker builder prune --all (BuildKit's layer and cache-mount storage) and, for the
native builder, from an empty WHEELDOCK_CACHE and UV_CACHE_DIR; the base images (made
once per machine by wheeldock base) are shared by every scenario alike.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from wheeldock import platforms
from wheeldock.bench import baselines, cost, outputs
from wheeldock.compose import files as compose
from wheeldock.compose import health
from wheeldock.compose import survey as discover
from wheeldock.edges import ca, engine
from wheeldock.edges.fsutil import atomic_write_text
from wheeldock.errors import CommandFailed, UsageError, WheeldockError
from wheeldock.project import Service

if TYPE_CHECKING:
    from wheeldock.platforms import Target

log = logging.getLogger(__name__)

SCENARIOS = ("before", "seed", "uvguide", "init", "native", "native-oci")
EVENTS = ("cold", "restart", "code", "bump")
SOURCE_EVENTS = ("cold-src", "bump-src")
EVENT_TITLES = {
    "cold": "First build + start",
    "restart": "Start, no change",
    "code": "Code change",
    "bump": "Requirements change (one pin)",
    "cold-src": "First build, source builds forced",
    "bump-src": "One pin, source builds forced",
}
#: the per-event figures summarised (median, min, max) in the JSON
SUMMARY_METRICS = ("build_s", "answer_s", "healthy_s", "peak_rss", "written_bytes")
_COPY_IGNORE = shutil.ignore_patterns(".git", ".wheeldock", "__pycache__", "*.pyc", ".venv")


class BenchFailed(WheeldockError):
    """A scenario did not reach healthy; carries the scenario, event and the last log lines."""


class BuildSessionLost(BenchFailed):
    """``docker compose build`` ended without printing a single line: BuildKit's session never
    started (seen here once in a bench run: the engine reset the socket), so no build step ran
    and the event can be timed again from the start."""


# --- plain data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    scenario: str
    event: str
    run: int
    build_s: float  # the build command alone (0 where there is none)
    answer_s: float | None  # start of the event -> every service answers 200 (None: not started)
    healthy_s: float | None  # start of the event -> Docker reports every container healthy
    new_layer_bytes: int | None = None  # compressed bytes of layers this event added
    new_layer_bytes_raw: int | None = None  # the same, uncompressed
    #: the build's own cost (wheeldock.bench.cost says what each is); None: not measured
    #: (no build ran, or it ran inside dockerd)
    peak_rss: int | None = None  # bytes: the largest process of the build's tree at its peak
    written_bytes: int | None = None  # net growth of the caches and outputs the build writes


@dataclass(frozen=True)
class ImageSize:
    scenario: str
    service: str
    ref: str
    bytes: int  # uncompressed, as the engine reports it
    compressed_bytes: int  # every layer gzip-6 compressed, as a registry would store it


@dataclass(frozen=True)
class Stat:
    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        return cls(statistics.median(values), min(values), max(values), len(values))


@dataclass
class BenchReport:
    stack: str
    runs: int
    scenarios: tuple[str, ...]
    events: tuple[str, ...]
    machine: dict[str, str]
    measurements: list[Measurement] = field(default_factory=list)
    sizes: list[ImageSize] = field(default_factory=list)
    idle_rss: dict[str, dict[str, int]] = field(default_factory=dict)  # scenario -> svc -> bytes
    build_peak_rss: dict[str, int] = field(default_factory=dict)  # scenario -> bytes
    failures: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)  # builds timed again after a lost session
    #: cold builds whose image layers the engine already held (so its unpacking was skipped)
    warm_engine: list[str] = field(default_factory=list)
    bumped: str = ""
    services: int = 0  # Python services in the stack
    #: the dependency layers' uncompressed size (each distinct layer once), from the first
    #: native build that reported it (None: no native scenario ran)
    installed_bytes: int | None = None
    platform: str = ""  # what the images were built for and run as (e.g. linux/arm64)
    emulated: bool = False  # the containers (and the Dockerfiles' RUN steps) ran under qemu

    def stat(self, scenario: str, event: str, metric: str) -> Stat | None:
        values = [
            getattr(m, metric)
            for m in self.measurements
            if m.scenario == scenario and m.event == event and getattr(m, metric) is not None
        ]
        return Stat.of(values) if values else None

    def new_bytes(self, scenario: str, event: str) -> int | None:
        for m in self.measurements:
            if m.scenario == scenario and m.event == event and m.new_layer_bytes is not None:
                return m.new_layer_bytes
        return None

    def image_bytes(self, scenario: str, *, compressed: bool = False) -> int | None:
        sizes = [s for s in self.sizes if s.scenario == scenario]
        if not sizes:
            return None
        return max(s.compressed_bytes if compressed else s.bytes for s in sizes)

    def to_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        for scenario in self.scenarios:
            summary[scenario] = {}
            for event in self.events:
                entry: dict[str, Any] = {}
                for metric in SUMMARY_METRICS:
                    stat = self.stat(scenario, event, metric)
                    if stat is not None:
                        entry[metric] = stat.__dict__
                entry["new_layer_bytes"] = self.new_bytes(scenario, event)
                summary[scenario][event] = entry
        return {
            "stack": self.stack,
            "runs": self.runs,
            "bumped": self.bumped,
            "services": self.services,
            "installed_bytes": self.installed_bytes,
            "platform": self.platform,
            "emulated": self.emulated,
            "machine": self.machine,
            "scenarios": list(self.scenarios),
            "events": list(self.events),
            "summary": summary,
            "sizes": [s.__dict__ for s in self.sizes],
            "idle_rss": self.idle_rss,
            "build_peak_rss": self.build_peak_rss,
            "measurements": [m.__dict__ for m in self.measurements],
            "failures": self.failures,
            "retried": self.retried,
            "warm_engine": self.warm_engine,
        }


# --- the stack ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    """A working copy of the project and the Python services found in it."""

    root: Path
    services: tuple[Service, ...]
    compose_files: tuple[Path, ...]

    @classmethod
    def load(cls, root: Path) -> Stack:
        paths = compose.find_files(root)
        files = [compose.load(p) for p in paths]
        findings = discover.discover(root, files, compose.interpolation_env(root))
        return cls(root, tuple(f.service for f in findings), tuple(paths))

    @property
    def main_compose(self) -> Path:
        return self.compose_files[0]


def copy_stack(source: Path, dest: Path) -> Path:
    """A clean copy of the project folder (no VCS, caches or wheeldock state)."""
    shutil.copytree(source, dest, ignore=_COPY_IGNORE, symlinks=True)
    return dest


def project_prefix() -> str:
    """The compose project (and image name) prefix of this bench process."""
    return f"wdbench{os.getpid()}-"


def port_in_use(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pin_re(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"^(?P<name>{re.escape(name)}(?:\[[^\]]*\])?)\s*==\s*(?P<version>[^\s;#]+)",
        re.IGNORECASE | re.MULTILINE,
    )


def pins(text: str) -> dict[str, str]:
    found = {}
    for match in re.finditer(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)", text, re.M):
        found[match.group(1).lower()] = match.group(2)
    return found


def bump_requirement(path: Path, name: str, version: str) -> str:
    """Rewrite the pin of ``name`` in ``path`` to ``version``; returns the old version."""
    text = path.read_text()
    match = _pin_re(name).search(text)
    if match is None:
        raise UsageError(
            f"{name} is not pinned with == in this file",
            path=path,
            fix="pick a pinned requirement with --bump NAME==VERSION",
        )
    new = text[: match.start("version")] + version + text[match.end("version") :]
    atomic_write_text(path, new)
    return match.group("version")


def previous_release(name: str, current: str, client: httpx.Client | None = None) -> str:
    """The release of ``name`` just before ``current`` on PyPI that ships wheels or an sdist."""
    from packaging.version import InvalidVersion, Version

    own = client or httpx.Client(timeout=30)
    try:
        data = own.get(f"https://pypi.org/pypi/{name}/json").raise_for_status().json()
    finally:
        if client is None:
            own.close()
    versions = []
    for text, files in data.get("releases", {}).items():
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if files and not version.is_prerelease and not all(f.get("yanked") for f in files):
            versions.append(version)
    older = sorted(v for v in versions if v < Version(current))
    if not older:
        raise UsageError(
            f"{name} has no release older than {current} to bump to",
            fix="pick another package with --bump NAME==VERSION",
        )
    return str(older[-1])


def code_change(stack: Stack, n: int) -> Path:
    """Edit the first service's entry script the way a developer would (a new line of code)."""
    svc = stack.services[0]
    script = next((a for a in svc.command if a.endswith(".py")), None)
    target = stack.root / svc.source / script if script else None
    if target is None or not target.is_file():
        target = next((stack.root / svc.source).rglob("*.py"))
    with target.open("a") as fh:
        fh.write(f"\nBENCH_CODE_CHANGE = {n}  # edited by wheeldock bench\n")
    return target


# --- probing ----------------------------------------------------------------------------------


#: Bench's polling: probes every 50 ms, container states every 200 ms, on perf_counter.
_BENCH_PACE = health.Pace(
    probe_every=0.05, states_every=0.2, probe_timeout=1.0, clock=time.perf_counter
)


def wait_healthy(
    services: Sequence[Service],
    containers: Callable[[], Mapping[str, health.ContainerState]],
    t0: float,
    *,
    timeout: float,
    docker_health: bool,
    on_fail: Callable[[str], str],
) -> tuple[float, float | None]:
    """Wait as ``up`` does (:func:`wheeldock.compose.health.wait_healthy`, whose meaning of
    answering and healthy this shares) until every service answers and, if asked, Docker says
    healthy.

    Returns the two elapsed times since ``t0`` (``time.perf_counter``): when the last service
    answered, and when the last was healthy (None without ``docker_health``). Probes run every
    50 ms, ``containers`` (service name -> its container's state) is read every 200 ms.
    """
    probes = {s.name: health.Probe.for_service(s) for s in services}
    try:
        ready = health.wait_healthy(
            probes,
            lambda pending: containers(),
            t0,
            timeout,
            docker_health=docker_health,
            pace=_BENCH_PACE,
        )
    except health.HealthFailed as exc:
        if exc.reason == "timeout":
            what = f"{', '.join(exc.pending)} not healthy after {timeout:.0f} s"
        else:
            what = f"{exc.service} not healthy: {exc.what}"
        raise BenchFailed(
            what + "\n" + on_fail(exc.service),
            fix="see the service's log lines above; `wheeldock bench --scenarios …` runs one",
        ) from None
    answered = max(ready.answered.values(), default=0.0)
    return answered, (max(ready.healthy.values(), default=0.0) if docker_health else None)


# --- scenarios ----------------------------------------------------------------------------------


def _ps_state(state: str, status: str) -> health.ContainerState:
    """``docker ps``'s State and Status columns (``running``, ``Up 3 seconds (healthy)``;
    ``exited``, ``Exited (1) 2 seconds ago``) as a container state."""
    code = re.search(r"^Exited \((-?\d+)\)", status)
    word = re.search(r"\((healthy|unhealthy|health: starting)\)", status)
    return health.ContainerState(
        status=state,
        health=word.group(1).removeprefix("health: ") if word else None,
        exit_code=int(code.group(1)) if code else None,
    )


class Scenario:
    """One way of getting the stack running. Subclasses say how to build and start it."""

    name = ""
    docker_health = True  # the images carry a HEALTHCHECK
    #: Same inputs give the same layers, so another image in the engine can already hold them
    #: (a Dockerfile build's RUN layers are new each time; only a few bytes, such as WORKDIR's
    #: folder or a copied requirements file, come out the same).
    reproducible_layers = False
    compose_builds = True  # compose builds the images (false: they come from elsewhere)
    starts = True  # the stack is started from the images (false: build times only)

    def __init__(
        self,
        stack: Stack,
        work: Path,
        *,
        ca_file: Path | None,
        wheeldock: Sequence[str],
        platform: Target | None = None,
    ):
        self.stack = stack
        self.work = work
        self.ca_file = ca_file
        self.wheeldock = list(wheeldock)
        # unique per bench process: two benches on one engine never stop each other's stacks
        self.project = f"{project_prefix()}{self.name}"
        self.no_binary: tuple[str, ...] = ()
        self.peak_rss = 0
        #: the peak RSS of the last build's process tree (None: not measured)
        self.last_peak_rss: int | None = None
        self.platform = platform
        self.platform_override: Path | None = None
        #: IDs of every image this scenario's builds made (a rebuild leaves the last untagged)
        self.made: set[str] = set()

    def setup(self) -> None:
        """:meth:`prepare`, then, with a platform, the compose override for it (untimed)."""
        self.prepare()
        if self.platform is None:
            return
        from wheeldock.compose import foreign

        own_files = compose.find_files(self.work)  # the override is computed without itself
        config = json.loads(
            engine.compose(
                self.work, "config", "--format", "json", files=own_files, project_name=self.project
            ).stdout
        )
        data = foreign.override(
            config,
            [s.name for s in self.stack.services],
            self.platform,
            bases_for=foreign.engine_bases(),
            retag=False,  # the tags are this bench process's own already
            builds=self.compose_builds,
        )
        self.platform_override = foreign.write_override(
            self.work / ".wheeldock", data, self.platform
        )

    def compose_files(self) -> tuple[Path, ...]:
        """The ``-f`` files of every compose call: none (compose's own choice) without a
        platform; with one, the working copy's compose files and the platform's override."""
        if self.platform_override is None:
            return ()
        return (*compose.find_files(self.work), self.platform_override)

    def note_images(self) -> None:
        """Remember the images the last build made, for :meth:`remove_images` (untimed)."""
        refs = self.image_refs()
        if refs:
            out = engine.docker("image", "inspect", "--format", "{{.Id}}", *refs, check=False)
            self.made.update(out.stdout.split())

    def remove_images(self) -> None:
        """Remove every image this scenario made: its tags, and the images a code change or
        a bump left untagged, which would otherwise pile up over the runs."""
        try:
            refs = self.image_refs()
        except WheeldockError:  # a working copy its set-up did not finish: the IDs are known
            refs = []
        if refs or self.made:
            engine.docker("image", "rm", "--force", *refs, *sorted(self.made), check=False)
        self.made.clear()

    def discard(self) -> None:
        """Remove what the scenario keeps outside its working copy (after its last event)."""

    # hooks
    def prepare(self) -> None:
        """Write what the scenario needs into the working copy (untimed)."""

    def clear_caches(self) -> None:
        """Empty every cache this scenario's builds use (untimed, before a cold event)."""
        engine.docker("builder", "prune", "--all", "--force", check=False)
        for ref in self.image_refs():
            engine.docker("image", "rm", "--force", ref, check=False)

    def build(self) -> None:
        try:
            engine.compose(
                self.work,
                "build",
                files=self.compose_files(),
                project_name=self.project,
                timeout=3600,
            )
        except CommandFailed as exc:
            if exc.stdout.strip() or exc.stderr.strip():
                raise
            raise BuildSessionLost(
                f"{exc.what} before BuildKit reported any step",
                fix="check the engine's log; the bench times such a build again once",
            ) from exc

    def start(self) -> None:
        engine.compose(
            self.work,
            "up",
            "-d",
            "--no-build",
            "--force-recreate",
            files=self.compose_files(),
            project_name=self.project,
        )

    def stop(self) -> None:
        engine.compose(
            self.work,
            "down",
            "--timeout",
            "3",
            files=self.compose_files(),
            project_name=self.project,
            check=False,
        )

    def image_refs(self) -> list[str]:
        return [f"{self.project}-{s.name}:latest" for s in self.stack.services]

    def relock(self) -> None:
        """Re-resolve after the requirements changed (timed: it is part of the user's wait)."""

    def written_roots(self) -> tuple[Path, ...]:
        """The folders whose growth is what a build writes (none: not measured here; a
        compose build writes inside dockerd, which other users of the engine write to too)."""
        return ()

    def installed_bytes(self) -> int | None:
        """The stack's installed size as the last build made it (None: not known here)."""
        return None

    def set_source_builds(self, packages: tuple[str, ...]) -> None:
        """Force ``packages`` to build from source from now on (for the ``*-src`` events)."""
        self.no_binary = packages
        self.setup()

    # shared helpers
    def containers(self) -> dict[str, health.ContainerState]:
        """service name -> its container's state, from ``docker ps``."""
        out = engine.docker(
            "ps",
            "--all",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--format",
            '{{.Label "com.docker.compose.service"}}\t{{.State}}\t{{.Status}}',
            check=False,
        ).stdout
        states = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 3:
                states[parts[0]] = _ps_state(parts[1], parts[2])
        return states

    def logs(self, service: str) -> str:
        out = engine.compose(
            self.work,
            "logs",
            "--no-color",
            "--tail",
            "30",
            service,
            files=self.compose_files(),
            project_name=self.project,
            check=False,
        )
        return out.stdout + out.stderr

    def _patch_compose(
        self, dockerfile: Callable[[Service], str], image: Callable[[Service], str]
    ) -> None:
        """Point each service at a Dockerfile, as the seed did by hand (and drop the pip start)."""
        files = [compose.load(p) for p in self.stack.compose_files]
        env = compose.interpolation_env(self.work)
        findings = {f.service.name: f for f in discover.discover(self.work, files, env)}
        patches = []
        for svc in self.stack.services:
            finding = findings[svc.name]
            build: dict[str, Any] = {"context": ".", "dockerfile": dockerfile(svc)}
            if svc.network_mode == "host":
                build["network"] = "host"
            if self.ca_file is not None:
                build["secrets"] = [ca.SECRET_ID]
            patches.append(
                compose.ServicePatch(
                    name=svc.name,
                    build=build,
                    image=image(svc),
                    drop_keys=finding.drop_keys,
                    drop_volumes=(finding.source_volume,),
                )
            )
        change = compose.Patch(
            services=tuple(patches),
            secrets={ca.SECRET_ID: str(self.ca_file)} if self.ca_file else {},
        )
        for i, cf in enumerate(files):
            atomic_write_text(cf.path, compose.patch(cf, change, primary=i == 0))


class Before(Scenario):
    name = "before"
    docker_health = False

    def prepare(self) -> None:
        write_ca_override(self.work, self.stack, self.ca_file)

    def clear_caches(self) -> None:
        # pip's cache lives in the throw-away container: nothing persists between starts.
        self.stop()

    def build(self) -> None:  # the "build" happens at every start
        return None

    def image_refs(self) -> list[str]:
        return []


def write_ca_override(root: Path, stack: Stack, ca_file: Path | None) -> Path | None:
    """Let ``pip install`` at container start reach the index through the host's proxy CA.

    The BEFORE stack installs at run time, so the CA is bind-mounted read-only into the running
    container (never into an image), through a compose override file next to the main one.
    """
    if ca_file is None:
        return None
    main = stack.main_compose.name
    name = main.replace(".yaml", ".override.yaml").replace(".yml", ".override.yml")
    path = root / name
    lines = ["# written by wheeldock: the host's proxy CA for pip at container start", "services:"]
    for svc in stack.services:
        lines += [
            f"  {svc.name}:",
            "    volumes:",
            f"      - {ca_file}:/run/secrets/ca:ro",
            "    environment:",
            "      PIP_CERT: /run/secrets/ca",
            "      SSL_CERT_FILE: /run/secrets/ca",
        ]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


class _Handmade(Scenario):
    render: Callable[[baselines.DockerfileInputs], str]

    def prepare(self) -> None:
        for svc in self.stack.services:
            inputs = baselines.DockerfileInputs(
                source=svc.source,
                requirements=svc.requirements[0],
                command=tuple("python3" if a == "python" else a for a in svc.command),
                port=svc.port,
                health_path=svc.health if svc.health.startswith("/") else None,
                with_ca=self.ca_file is not None,
                no_binary=self.no_binary,
                runtime_packages=svc.runtime_packages,
            )
            atomic_write_text(
                self.work / f"Dockerfile.{self.name}.{svc.name}", type(self).render(inputs)
            )
        if not (self.work / ".dockerignore").exists():
            # the seed's .dockerignore
            atomic_write_text(
                self.work / ".dockerignore",
                "__pycache__/\n*.pyc\n.git/\n.env.local\nlogs/\ntests/\n",
            )
        self._patch_compose(
            lambda s: f"Dockerfile.{self.name}.{s.name}",
            lambda s: f"{self.project}-{s.name}:latest",
        )


class Seed(_Handmade):
    name = "seed"
    render = staticmethod(baselines.seed_dockerfile)


class UvGuide(_Handmade):
    name = "uvguide"
    render = staticmethod(baselines.uvguide_dockerfile)


class Init(Scenario):
    name = "init"

    def prepare(self) -> None:
        if not (self.work / "wheeldock.toml").exists():
            self._wheeldock("init")
        if self.no_binary:
            _set_no_binary(self.work / "wheeldock.toml", self.no_binary)
            self._wheeldock("init")

    def image_refs(self) -> list[str]:
        from wheeldock import project as project_mod

        data = compose.load(self.stack.main_compose).services
        refs = [
            str(data[s.name].get("image"))
            for s in project_mod.load(self.work).services
            if s.name in data
        ]
        return refs

    def _wheeldock(self, *args: str, env: dict[str, str] | None = None) -> None:
        cmd = [*self.wheeldock, "-C", str(self.work), *args]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}
        )
        if proc.returncode != 0:
            raise BenchFailed(f"`{' '.join(args)}` failed:\n{proc.stderr[-3000:]}")


class Native(Init):
    name = "native"
    compose_builds = False  # `wheeldock build` loads the images; compose only runs them
    reproducible_layers = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.cache = Path(tempfile.mkdtemp(prefix="wdbench-cache-"))
        self.deps_digests: list[str] = []  # the last build's dependency layers

    def written_roots(self) -> tuple[Path, ...]:
        return (self.cache, self.work)

    def discard(self) -> None:
        """Remove the scenario's wheeldock and uv caches (a large stack's are GBs)."""
        shutil.rmtree(self.cache, ignore_errors=True)

    def installed_bytes(self) -> int | None:
        from wheeldock.oci.blobs import BlobStore

        return cost.installed_bytes(
            BlobStore(self.cache / "wheeldock" / "blobs"), self.deps_digests
        )

    def _env(self) -> dict[str, str]:
        return {
            "WHEELDOCK_CACHE": str(self.cache / "wheeldock"),
            "UV_CACHE_DIR": str(self.cache / "uv"),
        }

    def clear_caches(self) -> None:
        super().clear_caches()
        # The images an earlier code change or bump left untagged hold the same layers, which
        # `docker load` would then not send: a cold build starts without them.
        for svc in self.stack.services:
            engine.docker(
                "image",
                "prune",
                "--force",
                "--filter",
                f"label=org.opencontainers.image.title={svc.name}",
                check=False,
            )
        # an empty wheel/blob/layer cache; the base rootfs (made once per machine by
        # `wheeldock base`, like the engine's base images) is shared with the other scenarios.
        shutil.rmtree(self.cache, ignore_errors=True)
        (self.cache / "wheeldock").mkdir(parents=True)
        from wheeldock.edges.paths import cache_root

        bases = cache_root() / "bases"
        if bases.is_dir():
            (self.cache / "wheeldock" / "bases").symlink_to(bases)

    def outputs(self) -> list[str]:
        return [f"--output=docker-daemon:{ref}" for ref in self.image_refs()]

    def build(self) -> None:
        outputs = self.outputs()
        names = [s.name for s in self.stack.services]
        # a bumped pin is re-locked inside the build, as a user would run it (one command, one
        # process start: build updates a lock whose versions moved); a fresh lock is kept as is.
        cmd = [
            *self.wheeldock,
            "-C",
            str(self.work),
            "build",
            *names,
            *outputs,
            "--json",
        ]
        cmd += self._platform_args()
        done = cost.run_measured(cmd, {**os.environ, **self._env()})
        self.last_peak_rss = done.peak_rss
        self.peak_rss = max(self.peak_rss, done.peak_rss)
        if done.returncode != 0:
            raise BenchFailed(
                f"`wheeldock build` failed:\n{done.stderr[-3000:]}{done.stdout[-1000:]}"
            )
        with contextlib.suppress(ValueError):  # no JSON: the sizes stay unknown
            self.deps_digests = cost.deps_layers(json.loads(done.stdout))

    def image_refs(self) -> list[str]:
        return [f"{self.project}-{s.name}:wheeldock" for s in self.stack.services]

    def relock(self) -> None:
        """Nothing here: ``build`` updates a lock whose versions moved itself (timed with the
        build)."""

    def _platform_args(self) -> list[str]:
        """``--platform`` for ``wheeldock build``; for a foreign one, packages forced to build
        from source are built under qemu (``--emulate-sdists``): no wheel of theirs can be used."""
        if self.platform is None:
            return []

        args = ["--platform", self.platform.name]
        if self.no_binary and platforms.needs_emulation(self.platform):
            args.append("--emulate-sdists")
        return args

    def prepare(self) -> None:
        super().prepare()
        # run the native images under the compose file init wrote, by their own tags
        for path in self.stack.compose_files:
            cf = compose.load(path)
            services = cf.data.get("services") or {}
            for svc in self.stack.services:
                if svc.name in services and "image" in services[svc.name]:
                    services[svc.name]["image"] = f"{self.project}-{svc.name}:wheeldock"
            atomic_write_text(path, compose.dump(cf))


class NativeOci(Native):
    """``wheeldock build --output oci:DIR:{service}``: the native builder without an engine at
    the end. Only build times are taken (``restart`` has nothing to time): the images land in
    one OCI image layout, a tag per service (the layers services share stored once), which a
    registry push or ``skopeo copy`` reads, not in the engine."""

    name = "native-oci"
    starts = False

    @property
    def layouts(self) -> Path:
        return self.work / ".wheeldock" / "bench-oci"

    def outputs(self) -> list[str]:
        return [f"--output=oci:{self.layouts}:{{service}}"]

    def image_refs(self) -> list[str]:
        return []  # nothing goes into the engine

    def clear_caches(self) -> None:
        super().clear_caches()
        # a layout that already holds the blobs would be written faster than a cold one
        shutil.rmtree(self.layouts, ignore_errors=True)

    def prepare(self) -> None:
        Init.prepare(self)  # wheeldock.toml; there is no compose run to point at the images

    def start(self) -> None:
        """Nothing is started from a layout."""

    def stop(self) -> None:
        """Nothing was started."""


def _set_no_binary(config: Path, packages: tuple[str, ...]) -> None:
    import tomllib

    import tomli_w

    data = tomllib.loads(config.read_text())
    for svc in data.get("services", {}).values():
        svc["no_binary"] = list(packages)
    atomic_write_text(config, tomli_w.dumps(data))


SCENARIO_TYPES: dict[str, type[Scenario]] = {
    "before": Before,
    "seed": Seed,
    "uvguide": UvGuide,
    "init": Init,
    "native": Native,
    "native-oci": NativeOci,
}


# --- sizes ------------------------------------------------------------------------------------


def layer_sizes(ref: str) -> dict[str, tuple[int, int]]:
    """diff_id -> (uncompressed bytes, gzip-6 bytes) of every layer of ``ref``, via docker save."""
    sizes: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory(prefix="wdbench-save-") as tmp:
        archive = Path(tmp) / "image.tar"
        engine.docker("save", "--output", str(archive), ref)
        with tarfile.open(archive) as tar:
            manifest = json.loads(_member(tar, "manifest.json"))
            config = json.loads(_member(tar, manifest[0]["Config"]))
            for name, diff_id in zip(
                manifest[0]["Layers"], config["rootfs"]["diff_ids"], strict=True
            ):
                fh = tar.extractfile(name)
                assert fh is not None
                raw = 0
                packed = 0
                comp = zlib.compressobj(6, zlib.DEFLATED, 31)
                while chunk := fh.read(1 << 20):
                    raw += len(chunk)
                    packed += len(comp.compress(chunk))
                packed += len(comp.flush())
                sizes[diff_id] = (raw, packed)
    return sizes


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    fh = tar.extractfile(name)
    assert fh is not None
    return fh.read()


def diff_ids(ref: str) -> list[str]:
    return list(engine.image_inspect(ref)["RootFS"]["Layers"])


def engine_layers() -> dict[str, tuple[str, ...]]:
    """Every image in the engine: its first name (else its ID) and its layers' diff_ids."""
    ids = engine.docker("images", "--quiet", "--no-trunc", check=False).stdout.split()
    if not ids:
        return {}
    found: list[dict[str, Any]] = json.loads(
        engine.docker("image", "inspect", *sorted(set(ids)), check=False).stdout or "[]"
    )
    return {
        (img.get("RepoTags") or [img["Id"]])[0]: tuple(img["RootFS"].get("Layers", ()))
        for img in found
    }


def already_held(
    built: Sequence[str], before: Mapping[str, Sequence[str]]
) -> tuple[int, list[str]]:
    """How many of ``built``'s layers (past its base) images the engine held ``before`` had,
    and which images (pure). The base is the longest prefix of ``built`` that is some earlier
    image's whole layer list (``python:3.11-slim``, ``wheeldock/python:3.11-slim``): every
    scenario starts from its base in the engine. A shared layer past it is one the engine
    does not unpack again, so the build was not cold."""
    base = 0
    for layers in before.values():
        if layers and tuple(built[: len(layers)]) == tuple(layers):
            base = max(base, len(layers))
    rest = set(built[base:])
    holders = sorted(name for name, layers in before.items() if rest & set(layers))
    shared = {d for layers in before.values() for d in layers} & rest
    return len(shared), holders


def idle_rss(project: str) -> dict[str, int]:
    out = engine.docker(
        "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", check=False
    ).stdout
    names = engine.docker(
        "ps",
        "--filter",
        f"label=com.docker.compose.project={project}",
        "--format",
        '{{.Names}}\t{{.Label "com.docker.compose.service"}}',
        check=False,
    ).stdout
    service_of = dict(line.split("\t", 1) for line in names.splitlines() if "\t" in line)
    result = {}
    for line in out.splitlines():
        name, _, usage = line.partition("\t")
        if name in service_of:
            result[service_of[name]] = _parse_bytes(usage.split("/")[0].strip())
    return result


def _parse_bytes(text: str) -> int:
    match = re.match(r"([\d.]+)\s*([KMGT]?i?B)", text)
    if not match:
        return 0
    units = {
        "B": 1,
        "KiB": 1024,
        "MiB": 1024**2,
        "GiB": 1024**3,
        "kB": 1000,
        "KB": 1000,
        "MB": 1000**2,
        "GB": 1000**3,
    }
    return int(float(match.group(1)) * units.get(match.group(2), 1))


# --- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchOptions:
    runs: int = 3
    scenarios: tuple[str, ...] = SCENARIOS
    source_builds: tuple[str, ...] = ()
    bump: str | None = None  # NAME==VERSION; default: the previous release of a small pin
    timeout: float = 900.0
    ca_file: Path | None = None
    wheeldock: tuple[str, ...] = (sys.executable, "-m", "wheeldock.cli")
    platform: Target | None = None  # None: the engine's own
    binfmt_dir: Path | None = None  # where qemu-user's handlers are registered (None: /proc's)


def machine_details() -> dict[str, str]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    server = engine.docker("version", "--format", "{{.Server.Version}}", check=False).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "docker": server,
    }


#: The pins a bump event prefers, in order: small pure-Python distributions.
_SMALL_PINS = (
    "idna",
    "certifi",
    "click",
    "h11",
    "python-dotenv",
    "typing-extensions",
    "python-multipart",
    "itsdangerous",
    "jinja2",
    "pydantic-settings",
    "httpx",
    "requests",
    "fastapi",
    "flask",
)


def _choose_bump(stack: Stack, wanted: str | None) -> tuple[str, str, str]:
    """(name, old version, new version) of the pin the ``bump`` events change."""
    req = stack.root / stack.services[0].requirements[0]
    current = pins(req.read_text())
    if wanted:
        name, _, version = wanted.partition("==")
        if not version:
            raise UsageError(
                f"--bump wants NAME==VERSION, got {wanted!r}", fix="e.g. --bump idna==3.9"
            )
        if name.lower() not in current:
            raise UsageError(f"{name} is not pinned with ==", path=req, fix="pick a pinned package")
        return name, current[name.lower()], version
    # a small pure-Python package that many stacks pin: cheap to fetch, changes one wheel;
    # then the small pure-Python packages that requirements pinning only the top level name
    for name in _SMALL_PINS:
        if name in current:
            return name, current[name], previous_release(name, current[name])
    if not current:
        raise UsageError("no == pins to bump", path=req, fix="pass --bump NAME==VERSION")
    name = sorted(current)[0]
    return name, current[name], previous_release(name, current[name])


@contextlib.contextmanager
def _working_copy(source: Path) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="wdbench-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_platform(options: BenchOptions) -> tuple[str, bool]:
    """The platform the bench measures and whether it runs emulated; a platform this machine
    cannot run is refused before any work."""
    from wheeldock.compose import foreign

    if options.platform is None:
        return platforms.host().name, False
    target = options.platform
    foreign.require_runnable(target, binfmt_dir=options.binfmt_dir or platforms.BINFMT_DIR)
    return target.name, platforms.needs_emulation(target)


def run_bench(
    root: Path,
    options: BenchOptions,
    progress: Callable[[str], None] = lambda msg: None,
) -> BenchReport:
    """Run every scenario and event ``options.runs`` times; the stack at ``root`` is only read."""
    for name in options.scenarios:
        if name not in SCENARIO_TYPES:
            raise UsageError(
                f"unknown scenario {name!r}", fix=f"use some of: {', '.join(SCENARIOS)}"
            )
    platform_name, emulated = _check_platform(options)
    engine.require()
    _compile_wheeldock()
    events = EVENTS + (SOURCE_EVENTS if options.source_builds else ())
    probe = Stack.load(root)
    busy = [s for s in probe.services if s.port is not None and port_in_use(s.port)]
    if busy:
        raise UsageError(
            "port(s) "
            + ", ".join(f"{s.port} ({s.name})" for s in busy)
            + " already answer on 127.0.0.1: the bench would time someone else's server",
            fix="stop what listens there first (e.g. `wheeldock -C DIR down` for a running stack)",
        )
    report = BenchReport(
        stack=root.name,
        runs=options.runs,
        scenarios=options.scenarios,
        events=events,
        machine=machine_details(),
        platform=platform_name,
        emulated=emulated,
        services=len(probe.services),
    )
    with _working_copy(root) as tmp:
        bump = _choose_bump(probe, options.bump)
        report.bumped = f"{bump[0]} {bump[1]} -> {bump[2]}"
        bench = _BenchRun(root, probe, tmp, events, options, report, progress, bump)
        for scenario_name in options.scenarios:
            try:
                for run in range(options.runs):
                    _run_scenario(bench, scenario_name, run)
            finally:
                # also after Ctrl-C or a failure: no container or image of ours is left behind
                _cleanup_images(scenario_name, probe)
    return report


def _compile_wheeldock() -> None:
    """Write wheeldock's own bytecode, as installing its wheel does. An editable install has
    none, and under PYTHONDONTWRITEBYTECODE each timed ``wheeldock`` command would compile its
    modules again, a cost no installed copy pays."""
    import compileall

    import wheeldock

    compileall.compile_dir(Path(wheeldock.__file__).parent, quiet=1)


@dataclass(frozen=True)
class _BenchRun:
    """What every scenario run of one bench shares: the stack as found and the working copies'
    folder, the events, the options, the report it fills and where progress goes."""

    root: Path
    probe: Stack
    tmp: Path
    events: tuple[str, ...]
    options: BenchOptions
    report: BenchReport
    progress: Callable[[str], None]
    bump: tuple[str, str, str]


def _run_scenario(bench: _BenchRun, scenario_name: str, run: int) -> None:
    """One run of a scenario on a fresh copy of the stack; a failure is recorded in the report
    and the scenario's containers and images are removed either way."""
    work = copy_stack(bench.root, bench.tmp / f"{scenario_name}-{run}")
    stack = replace(
        bench.probe,
        root=work,
        compose_files=tuple(work / p.relative_to(bench.root) for p in bench.probe.compose_files),
    )
    options = bench.options
    scenario = SCENARIO_TYPES[scenario_name](
        stack, work, ca_file=options.ca_file, wheeldock=options.wheeldock, platform=options.platform
    )
    report = bench.report
    try:
        _run_events(bench, scenario, run)
    except WheeldockError as exc:
        report.failures.append(f"{scenario_name} run {run + 1}: {exc.message}")
        bench.progress(f"[red]{scenario_name} run {run + 1} failed[/]: {exc.what.splitlines()[0]}")
    finally:
        scenario.stop()
        scenario.remove_images()
        scenario.discard()
    if scenario.peak_rss:
        report.build_peak_rss[scenario_name] = max(
            report.build_peak_rss.get(scenario_name, 0), scenario.peak_rss
        )


def _cleanup_images(scenario_name: str, stack: Stack) -> None:
    prefix = f"{project_prefix()}{scenario_name}-"
    out = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout
    for ref in out.splitlines():
        if ref.startswith(prefix):
            engine.docker("image", "rm", "--force", ref, check=False)


def _check_cold(
    bench: _BenchRun,
    scenario: Scenario,
    run: int,
    event: str,
    held: Mapping[str, Sequence[str]],
) -> None:
    """Note a cold build whose layers the engine already had from other images: reproducible
    layers (the native builder's) are then not unpacked again, and the figure is too low."""
    for ref in scenario.image_refs():
        built = diff_ids(ref)
        count, holders = already_held(built, {k: v for k, v in held.items() if k != ref})
        if count:
            note = (
                f"{scenario.name} run {run + 1} {event}: the engine already held {count} of "
                f"{ref}'s {len(built)} layers (from {', '.join(holders[:4])}"
                f"{', …' if len(holders) > 4 else ''}); remove those images for a cold figure"
            )
            bench.report.warm_engine.append(note)
            bench.progress(f"[yellow]{note}[/]")


def _skipped(scenario: Scenario, event: str) -> bool:
    """Events a scenario has no use for: source builds of the seed's approach, and a restart
    of one that builds without starting (nothing to build, nothing to start)."""
    if scenario.name == "before" and event.endswith("-src"):
        return True
    return not scenario.starts and event == "restart"


def _prepare_event(
    bench: _BenchRun, scenario: Scenario, run: int, event: str
) -> dict[str, tuple[str, ...]] | None:
    """Stop the stack and make the event's change (empty caches, a code change, a bumped pin);
    for a cold build of reproducible layers, the layers the engine holds beforehand."""
    scenario.stop()
    stack = scenario.stack
    if event in ("cold", "cold-src"):
        if event == "cold-src":
            scenario.set_source_builds(bench.options.source_builds)
        scenario.clear_caches()
        return engine_layers() if scenario.reproducible_layers else None
    if event == "code":
        code_change(stack, run)
    elif event in ("bump", "bump-src"):
        name, old, new = bench.bump
        # bump-src goes back to the original pin, so it too changes exactly one pin
        bump_requirement(
            stack.root / stack.services[0].requirements[0],
            name,
            new if event == "bump" else old,
        )
    return None


def _timed_build(bench: _BenchRun, scenario: Scenario, run: int, event: str) -> float:
    """Re-lock and build as the event needs; the time it started (a lost build session is
    built again, timed from then on, the relock still counted)."""
    t0 = time.perf_counter()
    if event in ("cold", "cold-src", "bump", "bump-src"):
        scenario.relock()
    if event != "restart" or scenario.name == "before":
        started = time.perf_counter()
        try:
            scenario.build()
        except BuildSessionLost as exc:
            # nothing was built: time the build again, from now (the relock stays counted)
            bench.progress(f"[yellow]{scenario.name}: {exc.what}; building again[/]")
            bench.report.retried.append(f"{scenario.name} run {run + 1} {event}: {exc.what}")
            t0 += time.perf_counter() - started
            scenario.build()
    return t0


def _new_layer_bytes(
    bench: _BenchRun, scenario: Scenario, event: str, previous: dict[str, list[str]]
) -> tuple[int, int]:
    """The bytes (uncompressed, packed) of the layers the event added to the scenario's images
    since ``previous`` (updated); a cold build also records each image's size."""
    new_raw, new_packed = 0, 0
    for ref in scenario.image_refs():
        ids = diff_ids(ref)
        fresh = [d for d in ids if d not in previous.get(ref, [])]
        if fresh:
            sizes = layer_sizes(ref)
            new_raw += sum(sizes[d][0] for d in fresh)
            new_packed += sum(sizes[d][1] for d in fresh)
            if event == "cold":
                bench.report.sizes.extend(
                    [
                        ImageSize(
                            scenario.name,
                            _service_of(ref, scenario.stack),
                            ref,
                            sum(v[0] for v in sizes.values()),
                            sum(v[1] for v in sizes.values()),
                        )
                    ]
                )
        previous[ref] = ids
    return new_raw, new_packed


def _start_timed(
    bench: _BenchRun, scenario: Scenario, t0: float
) -> tuple[float | None, float | None]:
    """Start the scenario's stack: seconds from ``t0`` until it answers and is healthy
    (``None`` for a scenario that only builds)."""
    if not scenario.starts:
        return None, None
    scenario.start()
    return wait_healthy(
        scenario.stack.services,
        scenario.containers,
        t0,
        timeout=bench.options.timeout,
        docker_health=scenario.docker_health,
        on_fail=scenario.logs,
    )


def _run_events(bench: _BenchRun, scenario: Scenario, run: int) -> None:
    """Every event of one run of ``scenario``, each measured into the report."""
    scenario.setup()
    previous: dict[str, list[str]] = {}
    for event in bench.events:
        if _skipped(scenario, event):
            continue
        bench.progress(
            f"{scenario.name} · run {run + 1}/{bench.options.runs} · {EVENT_TITLES[event]}"
        )
        held = _prepare_event(bench, scenario, run, event)
        roots = scenario.written_roots()
        before = cost.tree_bytes(roots) if roots else None
        scenario.last_peak_rss = None
        t0 = _timed_build(bench, scenario, run, event)
        build_s = time.perf_counter() - t0
        scenario.note_images()
        if held is not None:
            _check_cold(bench, scenario, run, event, held)
        answer_s, healthy_s = _start_timed(bench, scenario, t0)
        if scenario.name == "before":
            build_s = 0.0
        new_raw = new_packed = None
        if run == 0 and scenario.image_refs():
            new_raw, new_packed = _new_layer_bytes(bench, scenario, event, previous)
        if run == 0 and event == "cold" and scenario.starts:
            time.sleep(2)  # let the services settle before reading their idle memory
            bench.report.idle_rss[scenario.name] = idle_rss(scenario.project)
        peak_rss, written = _build_cost(bench, scenario, event, before)
        bench.report.measurements.append(
            Measurement(
                scenario.name,
                event,
                run,
                round(build_s, 3),
                round(answer_s, 3) if answer_s is not None else None,
                round(healthy_s, 3) if healthy_s is not None else None,
                new_packed,
                new_raw,
                peak_rss,
                written,
            )
        )
        bench.progress(f"  {scenario.name} {event}: " + _timings(build_s, answer_s, healthy_s))


def _build_cost(
    bench: _BenchRun, scenario: Scenario, event: str, before: int | None
) -> tuple[int | None, int | None]:
    """The peak RSS and bytes written of the build the event ran (None, None: no build ran,
    or not one measured here), read after the event's timers stopped; the first cold build
    that knows it gives the stack's installed size."""
    if scenario.last_peak_rss is None:
        return None, None
    written = None
    if before is not None:
        written = cost.tree_bytes(scenario.written_roots()) - before
    if event == "cold" and bench.report.installed_bytes is None:
        bench.report.installed_bytes = scenario.installed_bytes()
    return scenario.last_peak_rss, written


def _timings(build_s: float, answer_s: float | None, healthy_s: float | None) -> str:
    return (
        f"build {build_s:.2f} s"
        + (f", answers {answer_s:.2f} s" if answer_s is not None else "")
        + (f", healthy {healthy_s:.2f} s" if healthy_s is not None else "")
    )


def _service_of(ref: str, stack: Stack) -> str:
    for svc in stack.services:
        if svc.name in ref:
            return svc.name
    return ref


# --- rendering ----------------------------------------------------------------------------------


def _seconds(stat: Stat | None) -> str:
    if stat is None:
        return "–"
    return f"{stat.median:.2f} s" if stat.median < 10 else f"{stat.median:.1f} s"


def _mb(n: int | None) -> str:
    if n is None:
        return "–"
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _ratio(base: Stat | None, ours: Stat | None) -> str:
    if base is None or ours is None or ours.median <= 0:
        return "–"
    return f"{base.median / ours.median:.1f}×"


def _best_ours(report: BenchReport, event: str, metric: str) -> tuple[str, Stat | None]:
    best: tuple[str, Stat | None] = ("", None)
    for name in ("native", "init"):
        stat = report.stat(name, event, metric)
        if stat is not None and (best[1] is None or stat.median < best[1].median):
            best = (name, stat)
    return best


def _started(report: BenchReport) -> list[str]:
    """The scenarios whose stacks were started (the others have build times only)."""
    return [n for n in report.scenarios if SCENARIO_TYPES[n].starts]


def render_markdown(report: BenchReport) -> str:
    """The seed's comparison table, measured: medians of ``report.runs`` runs, with ratios."""
    scen = _started(report)
    daemonless = "native-oci" in report.scenarios
    lines = [
        f"# wheeldock bench: {report.stack}" + (f" ({report.platform})" if report.emulated else ""),
        "",
        f"Medians of {report.runs} runs per cell (min–max in the JSON). Measured "
        f"{report.machine.get('date', '')} on {report.machine.get('cpu', '?')}, "
        f"{report.machine.get('cores', '?')} cores, {report.machine.get('memory', '?')}, "
        f"Docker {report.machine.get('docker', '?')}. One pin bumped: {report.bumped}.",
        "",
    ]
    if report.platform:
        lines += [
            f"Platform: {report.platform}"
            + (
                ", emulated: every container, and every Dockerfile's RUN step, ran under "
                "qemu-user on this machine; the native builder did not (it unpacks the "
                "platform's wheels on the host; only sdists forced by --source-builds are built "
                "under qemu)."
                if report.emulated
                else " (this machine's own)."
            ),
            "",
        ]
    lines += [
        "## Time until every service answers its health endpoint with 200 (Docker healthy)",
        "",
        "| Event | " + " | ".join(scen) + " | wheeldock vs seed | wheeldock vs uvguide |",
        "|---|" + "---:|" * (len(scen) + 2),
    ]
    for event in report.events:
        cells = []
        for name in scen:
            answer = report.stat(name, event, "answer_s")
            healthy = report.stat(name, event, "healthy_s")
            cell = _seconds(answer)
            if healthy is not None:
                cell += f" ({_seconds(healthy)})"
            cells.append(cell)
        who, ours = _best_ours(report, event, "answer_s")
        vs_seed = _ratio(report.stat("seed", event, "answer_s"), ours)
        vs_uv = _ratio(report.stat("uvguide", event, "answer_s"), ours)
        tag = f" ({who})" if who else ""
        lines.append(
            f"| {EVENT_TITLES[event]} | "
            + " | ".join(cells)
            + f" | {vs_seed}{tag} | {vs_uv}{tag} |"
        )
    builders = [n for n in report.scenarios if n != "before"]
    extra = " native-oci vs seed | native-oci vs uvguide |" if daemonless else ""
    lines += [
        "",
        "## Build time alone (the image is ready; start not included)",
        "",
        "Into the engine for every column but `native-oci`, which writes one OCI image layout "
        "(a tag per service).",
        "",
        "| Event | "
        + " | ".join(builders)
        + " | wheeldock vs seed | wheeldock vs uvguide |"
        + extra,
        "|---|" + "---:|" * (len(builders) + 2 + (2 if daemonless else 0)),
    ]
    for event in report.events:
        if event == "restart":
            continue
        cells = [_seconds(report.stat(n, event, "build_s")) for n in builders]
        who, ours = _best_ours(report, event, "build_s")
        tag = f" ({who})" if who else ""
        seed, uv = report.stat("seed", event, "build_s"), report.stat("uvguide", event, "build_s")
        row = (
            f"| {EVENT_TITLES[event]} | "
            + " | ".join(cells)
            + f" | {_ratio(seed, ours)}{tag} | {_ratio(uv, ours)}{tag} |"
        )
        if daemonless:
            oci = report.stat("native-oci", event, "build_s")
            row += f" {_ratio(seed, oci)} | {_ratio(uv, oci)} |"
        lines.append(row)
    built = [n for n in scen if n != "before"]
    lines += [
        "",
        "## Size and memory",
        "",
        "| | " + " | ".join(built) + " |",
        "|---|" + "---:|" * len(built),
        "| Image size (largest service, uncompressed) | "
        + " | ".join(_mb(report.image_bytes(n)) for n in built)
        + " |",
        "| Image size (gzip, as pulled) | "
        + " | ".join(_mb(report.image_bytes(n, compressed=True)) for n in built)
        + " |",
    ]
    for event in ("code", "bump"):
        if event in report.events:
            lines.append(
                f"| New layer bytes to pull after: {EVENT_TITLES[event].lower()} (gzip, all services) | "
                + " | ".join(_mb(report.new_bytes(n, event)) for n in built)
                + " |"
            )
    lines.append(
        "| Idle RSS (sum of services) | "
        + " | ".join(
            _mb(sum(report.idle_rss[n].values())) if report.idle_rss.get(n) else "–" for n in built
        )
        + " |"
    )
    lines.append(
        "| Build peak RSS (the build process) | "
        + " | ".join(
            _mb(report.build_peak_rss.get(n)) if n in report.build_peak_rss else "in dockerd"
            for n in built
        )
        + " |"
    )
    lines += cost_lines(report)
    if report.failures:
        lines += ["", "## Failures", ""] + [f"- {f.splitlines()[0]}" for f in report.failures]
    if report.retried:
        lines += ["", "## Builds timed again (nothing had been built)", ""]
        lines += [f"- {r.splitlines()[0]}" for r in report.retried]
    if report.warm_engine:
        lines += ["", "## Cold builds that were not cold in the engine", ""]
        lines += [f"- {w}" for w in report.warm_engine]
    lines += [
        "",
        "How it was measured: each timer starts just before the first command of the event and "
        "stops when the last service answers (or Docker reports it healthy). Cold events start "
        "from `docker builder prune --all` and, for the native builder, an empty wheeldock and uv "
        "cache; base images are built once beforehand by `wheeldock base` and shared by every "
        "scenario. `before` installs at every start, so its build column is empty."
        + (
            " `native-oci` is the same `wheeldock build` writing an OCI image layout per service "
            "(the daemonless output) instead of loading the engine; nothing is started from it, "
            "so it has build times only."
            if daemonless
            else ""
        ),
        "",
    ]
    return "\n".join(lines)


def cost_lines(report: BenchReport) -> list[str]:
    """The Markdown section of what each measured build cost (medians): build time, peak RSS
    and bytes written per event and scenario, with the stack's size; none when no scenario's
    builds were measured."""
    measured = [
        n
        for n in report.scenarios
        if any(m.scenario == n and m.peak_rss is not None for m in report.measurements)
    ]
    if not measured:
        return []
    lines = [
        "",
        "## What each build costs",
        "",
        f"{report.services} service{'s' if report.services != 1 else ''}; installed size "
        f"{_mb(report.installed_bytes)} (the dependency layers, uncompressed, each distinct "
        "layer once). Peak RSS: the largest single process of `wheeldock build`'s process tree "
        "(wait4's ru_maxrss), not a sum. Written: the net growth of the build's caches and "
        "outputs (what `docker load` hands the engine is not counted). The Dockerfile "
        "scenarios build inside dockerd, which other users of the engine share: not measured.",
        "",
        "| Event | "
        + " | ".join(f"{n} build | {n} peak RSS | {n} written" for n in measured)
        + " |",
        "|---|" + "---:|" * (3 * len(measured)),
    ]
    for event in report.events:
        if event == "restart":
            continue
        cells = []
        for name in measured:
            rss, written = (
                report.stat(name, event, "peak_rss"),
                report.stat(name, event, "written_bytes"),
            )
            cells += [
                _seconds(report.stat(name, event, "build_s")),
                _mb(round(rss.median)) if rss else "–",
                _mb(round(written.median)) if written else "–",
            ]
        lines.append(f"| {EVENT_TITLES[event]} | " + " | ".join(cells) + " |")
    return lines


def render_chart(report: BenchReport, path: Path) -> Path:
    """A grouped bar chart (log scale) of the time-to-answer medians, one group per event."""
    plt = outputs.pyplot()
    events = list(report.events)
    scen = _started(report)
    width = 0.8 / max(len(scen), 1)
    fig, ax = plt.subplots(figsize=(10, 5))
    for i, name in enumerate(scen):
        values = []
        for event in events:
            stat = report.stat(name, event, "answer_s")
            values.append(stat.median if stat else 0.0)
        xs = [j + i * width for j in range(len(events))]
        bars = ax.bar(xs, values, width, label=name)
        for bar, value in zip(bars, values, strict=True):
            if value:
                ax.annotate(
                    f"{value:.1f}",
                    (bar.get_x() + bar.get_width() / 2, value),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks([j + width * (len(scen) - 1) / 2 for j in range(len(events))])
    ax.set_xticklabels([EVENT_TITLES[e] for e in events], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("seconds until every service answers 200 (log)")
    ax.set_title(f"wheeldock bench: {report.stack} (median of {report.runs})")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
