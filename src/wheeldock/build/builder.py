"""The native builder: a service's lock, wheels and code → an OCI image, with no daemon.

An image is ``base`` + ``runtime libraries`` + ``dependencies`` (several layers) + ``app``:

1. base — a ``wheeldock base`` rootfs tar (slim or minimal), or an existing image (``oci:…``,
   ``docker-archive:…``, ``docker://…``);
2. runtime libraries — the Debian packages the wheels' ELF files need and the base lacks,
   unpacked from their .debs (no layer when there are none);
3. dependencies — the locked wheels installed (:mod:`wheeldock.build.install`), a layer per
   distribution (wheels under :data:`SMALL_WHEEL` share one, and past :data:`MAX_DEP_LAYERS`
   the smallest do), so a one-pin bump re-tars and ships only that distribution;
4. app — the service's source folder, filtered by its ``.dockerignore``, at its workdir.

Every layer is cached in the blob store's index under a key hashing all of its inputs, so a
code change rebuilds only the app layer and a bump fetches one wheel and rebuilds one layer.
Only the app layer and the config carry ``SOURCE_DATE_EPOCH`` (default: the last commit of the
project folder): the other layers use a fixed mtime, so a new commit does not invalidate them.
The same inputs give the same image digest in any folder and on any machine with the same
Python build (the .pyc bytes come from the host's interpreter of the image's version).

A cold build overlaps its steps (:class:`_LayerPipeline`): each dependency layer is tarred as
soon as its trees are compiled, and for an engine output the finished layers are loaded early
(:class:`wheeldock.oci.daemon.Preloader`) while the rest is built.

:func:`plan_dependencies` and :func:`app_key` are pure; :func:`build` does the I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from packaging.utils import parse_wheel_filename

from wheeldock import platforms
from wheeldock.build.context import excluded as dockerignore_excluded
from wheeldock.build.install import (
    Bytecode,
    InstalledTrees,
    Preinstaller,
    Scheme,
    compiler_id,
    debian_scheme,
    python_org_version,
    scheme_for,
)
from wheeldock.build.runtime import APP_UID, exec_form, health_command
from wheeldock.build.sdists import BaseWheelhouse
from wheeldock.build.session import Session
from wheeldock.debian import bases, dpkg
from wheeldock.deps import lock as locks
from wheeldock.deps import pylock
from wheeldock.deps.wheelhouse import Artifact, Wheelhouse, select
from wheeldock.edges import engine, process
from wheeldock.edges.fsutil import atomic_write_text, atomic_writer, read_text
from wheeldock.errors import (
    DigestMismatch,
    InvalidArchive,
    InvalidConfig,
    UsageError,
    WheeldockError,
)
from wheeldock.oci.blobs import (
    Blob,
    BlobStore,
    BlobWriter,
    file_identity,
    hash_file,
    record_identity,
    recorded_identity,
)
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import Healthcheck, History, Image, ImageConfig, Platform, rfc3339
from wheeldock.oci.layer import (
    MEDIA_TYPE_TAR,
    MEDIA_TYPES,
    Compression,
    Layer,
    TarEntry,
    build_layer,
    cached_layer,
    compress_file,
    entries_from_dir,
)
from wheeldock.oci.mutate import append_layers, with_annotations, with_config, with_created
from wheeldock.oci.open import open_image
from wheeldock.oci.publish import PublishResult, publish
from wheeldock.oci.reference import DaemonRef, OciRef, RegistryRef, coerce
from wheeldock.project import CONFIG_NAME, Project, Service

if TYPE_CHECKING:
    from wheeldock.debian.archive import DebMember
    from wheeldock.debian.libs import CheckReport
    from wheeldock.deps.lock import LockPolicy
    from wheeldock.oci import daemon
    from wheeldock.oci.cache import CacheMode, Entry, RegistryCache

log = logging.getLogger(__name__)

#: Bumped when what a cache key stands for changes, so old entries are not reused (3: an
#: sdist's layer and scan are keyed by the sdist, whose wheel is now compiled in the builder
#: base, not on the host).
_KEY_VERSION = "wheeldock-build-3"
#: Dependency layers at most: one per distribution up to this many. Docker's overlay2 stacks at
#: most 127 layers per image; this leaves room for a multi-layer base image.
MAX_DEP_LAYERS = 48
#: Wheels smaller than this (bytes, as the lock gives them) share one dependency layer.
SMALL_WHEEL = 64 * 1024
#: The mtime of base-derived, library and dependency layer entries: fixed, so those layers do
#: not change with each commit (bookworm's release, the bases' SOURCE_DATE_EPOCH too).
FIXED_MTIME = bases.SOURCE_DATE_EPOCH
#: SOURCE_DATE_EPOCH when the project is not in git and none is set.
FALLBACK_EPOCH = bases.SOURCE_DATE_EPOCH

LayerKind = Literal["base", "libs", "deps", "app"]


# -- options and results ------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildOptions:
    """How to build. ``base`` None means each service's own (``slim`` unless it says)."""

    base: str | None = None
    #: None: none when every output is the Docker engine (it unpacks layers anyway), else gzip.
    compression: Compression | None = None
    platform: str = pylock.DEFAULT_PLATFORM
    #: how a stale lock is treated (:data:`wheeldock.deps.lock.LockPolicy`)
    lock_policy: LockPolicy = "sync"
    max_dep_layers: int = MAX_DEP_LAYERS
    source_date_epoch: int | None = None
    #: the dependencies' bytecode (see :data:`wheeldock.build.install.Bytecode`)
    bytecode: Bytecode = "full"
    #: a registry repository (``docker://HOST/REPO``) kept as the second level of the layer
    #: cache (see :mod:`wheeldock.oci.cache`); ``cache_mode`` read only looks it up
    cache: str | None = None
    cache_mode: CacheMode = "readwrite"


@dataclass(frozen=True)
class LayerReport:
    kind: LayerKind
    title: str
    digest: Digest
    size: int
    cached: bool
    seconds: float
    #: taken from the registry cache (``cached`` too): nothing was fetched, installed or built
    remote: bool = False


@dataclass(frozen=True)
class ServiceBuild:
    """What :func:`build` made for one service: the image, each layer's report and the publishes."""

    service: str
    image: Image = field(repr=False)
    digest: Digest
    layers: tuple[LayerReport, ...]
    outputs: tuple[PublishResult, ...]
    lock: Path
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "digest": str(self.digest),
            "lock": str(self.lock),
            "seconds": round(self.seconds, 3),
            "layers": [
                {
                    "kind": r.kind,
                    "title": r.title,
                    "digest": str(r.digest),
                    "size": r.size,
                    "cached": r.cached,
                    "remote": r.remote,
                    "seconds": round(r.seconds, 3),
                }
                for r in self.layers
            ],
            "outputs": [
                {"ref": o.ref, "digest": str(o.digest), "seconds": round(o.seconds, 3)}
                for o in self.outputs
            ],
        }


Progress = Callable[[str, LayerReport], None]


# -- the pure plan ------------------------------------------------------------------------------


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for part in (_KEY_VERSION, *parts):
        h.update(json.dumps(part, sort_keys=True, default=str).encode() + b"\0")
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class DepLayerPlan:
    """One dependency layer: its wheels and the cache key of its bytes."""

    title: str
    artifacts: tuple[Artifact, ...]
    key: str


def plan_dependencies(
    artifacts: Sequence[Artifact],
    *,
    scheme: Scheme,
    compression: Compression,
    compiler: str,
    max_layers: int = MAX_DEP_LAYERS,
) -> tuple[DepLayerPlan, ...]:
    """Split ``artifacts`` into at most ``max_layers`` layers (pure).

    Each distribution gets a layer of its own, so a one-pin bump re-tars, loads and pulls only
    that distribution's files, except the small ones: wheels under :data:`SMALL_WHEEL` share
    the top layer. A layer has a fixed cost (its tar's end marker and headers, a descriptor in
    the manifest, a history entry, a round trip when pushed or pulled, an unpack step in the
    engine), and the smallest are on top anyway, so a bump of one re-sends the small ones
    either way. Past ``max_layers``, the largest ``max_layers - 1`` (by the lock's file sizes,
    known before anything is fetched) keep their own and the rest share the last one. A layer's
    key is its wheels' sha256s, the install scheme, the compiling interpreter and the
    compression.

    Order: largest first (lowest), then by name. An engine knows a layer by its chain (the
    layers below it too), so a changed layer makes every layer above it new to the engine: it
    is sent by ``docker load``, pulled and unpacked again. With the big ones at the bottom, a
    bump resends the bumped layer and only smaller ones (for cb-totem's idna: 3 MB, not 56).
    """
    if max_layers < 1:
        raise UsageError("max_dep_layers must be at least 1")
    ranked = sorted(artifacts, key=lambda a: (-(a.file.size or 0), a.name))
    small = [a for a in ranked if a.file.size is not None and a.file.size < SMALL_WHEEL]
    if len(small) < 2:
        small = []  # one small wheel sharing a layer with nobody saves nothing
    big_ones = [a for a in ranked if a not in small]
    if len(big_ones) + (1 if small else 0) > max_layers:
        big_ones = big_ones[: max_layers - 1]
    rest = tuple(sorted((a for a in artifacts if a not in big_ones), key=lambda a: a.name))
    groups: list[tuple[str, tuple[Artifact, ...]]] = [
        (f"{a.name} {a.version}", (a,)) for a in big_ones
    ]
    if rest:
        groups.append((f"{len(rest)} packages", rest))
    return tuple(
        DepLayerPlan(
            title=title,
            artifacts=group,
            key=_digest(
                "deps",
                [a.sha256 for a in group],
                scheme.__dict__,
                compiler,
                compression,
                FIXED_MTIME,
            ),
        )
        for title, group in groups
    )


def official_name(python: str, variant: str) -> str:
    """The official image of ``python`` standing in for wheeldock's ``variant`` base (``slim`` →
    ``python:3.12-slim``, ``builder`` → ``python:3.12``)."""
    return f"python:{python}-slim" if variant != "builder" else f"python:{python}"


def official_image(python: str, variant: str) -> str:
    """:func:`official_name`'s reference: the engine's image when it has it, else Docker Hub's."""
    name = official_name(python, variant)
    if engine.available() and engine.image_exists(name):
        return f"docker-daemon:{name}"
    return f"docker://docker.io/library/{name}"


def _check_python(svc: Service, base: str, carried: str, config: Path) -> None:
    """Refuse a service whose Python is not its base's: its wheels (locked for ``svc.python``)
    would be installed where the base's interpreter never looks."""
    if svc.python != carried:
        raise InvalidConfig(
            f'service {svc.name}: python = "{svc.python}", but its base {base} has Python '
            f"{carried}",
            path=config,
            fix=f'set python = "{carried}" for it (the lock follows), or a base with Python '
            f'{svc.python} (base = "oci:DIR" or "docker-archive:FILE" of such an image)',
        )


def scheme_folders(scheme: Scheme) -> frozenset[str]:
    """The install scheme's folders and their parents (``usr``, ``usr/local``, …,
    ``…/dist-packages``, ``usr/local/bin``): every Python base has them, so the dependency
    layers leave them out rather than repeat them once per distribution (pure)."""
    found: set[str] = set()
    for folder in (scheme.purelib, scheme.platlib, scheme.scripts):
        path = PurePosixPath(folder.strip("/"))
        found.update(str(p) for p in (path, *path.parents) if str(p) != ".")
    return frozenset(found)


def app_key(entries: Sequence[TarEntry], compression: Compression, mtime: int) -> str:
    """The app layer's cache key: every entry's path, kind, mode, owner, link and content."""
    rows: list[list[object]] = []
    for e in entries:
        content = ""
        if e.kind == "file":
            data = e.source if isinstance(e.source, bytes) else Path(str(e.source)).read_bytes()
            content = hashlib.sha256(data).hexdigest()
        rows.append([e.path, e.kind, e.mode, e.uid, e.gid, e.linkname, content])
    return _digest("app", rows, compression, mtime)


def image_config(svc: Service, base_env: Sequence[str]) -> dict[str, Any]:
    """The config fields a service's image sets on top of its base (pure)."""
    env: dict[str, str] = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    if svc.port is not None:
        env["PORT"] = str(svc.port)
    env.update(svc.env)
    if not any(e.startswith("PATH=") for e in base_env) and "PATH" not in env:
        env["PATH"] = bases.IMAGE_PATH
    return {
        "cmd": tuple(exec_form(svc.command)),
        "entrypoint": None,
        "env": env,
        "working_dir": svc.workdir,
        "user": f"{APP_UID}:{APP_UID}",
        "exposed_ports": (f"{svc.port}/tcp",) if svc.port is not None else (),
        "healthcheck": Healthcheck(
            test=("CMD", *health_command(svc)),
            interval=30,
            timeout=5,
            start_period=60,
            start_interval=1,
            retries=3,
        ),
    }


#: Marks the images wheeldock builds, so ``wheeldock prune`` knows which dangling ones it made.
LABEL_IMAGE = "wheeldock.image"


def default_outputs(project: Project, svc: Service, *, engine_up: bool) -> tuple[str, ...]:
    if engine_up:
        return (f"docker-daemon:{repository_name(project.root.name)}-{svc.name}:wheeldock",)
    return (f"oci:{project.root / '.wheeldock' / 'oci'}:{svc.name}",)


def repository_name(text: str) -> str:
    """A folder name made into a valid image repository component."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("._-")
    return name or "project"


def output_for(ref: str, svc: Service, services: int) -> str:
    """``ref`` for one service: ``{service}`` is replaced; an ``oci:DIR`` without a tag is
    tagged with the service's name. Several services may not share one fixed name."""
    if "{service}" in ref:
        return ref.replace("{service}", svc.name)
    parsed = coerce(ref)
    if isinstance(parsed, OciRef) and parsed.tag is None:
        return f"{ref}:{svc.name}"
    if services > 1 and not isinstance(parsed, OciRef):
        raise UsageError(
            f"--output {ref} names one image, but {services} services are being built",
            fix="put {service} in it (e.g. docker-daemon:app-{service}:latest), or build one "
            "service",
        )
    return ref


# -- project facts (git, time) ------------------------------------------------------------------


def _git(root: Path, *args: str) -> str | None:
    try:
        result = process.run(["git", *args], cwd=root, check=False, timeout=20)
    except (WheeldockError, OSError, subprocess.SubprocessError):
        return None
    out = result.stdout.strip()
    return out if result.returncode == 0 and out else None


def source_date_epoch(root: Path) -> int:
    """``$SOURCE_DATE_EPOCH``, else the time of the last commit touching the project folder,
    else :data:`FALLBACK_EPOCH` (so a folder outside git builds the same everywhere)."""
    explicit = os.environ.get("SOURCE_DATE_EPOCH")
    if explicit:
        try:
            return int(explicit)
        except ValueError:
            raise InvalidConfig(
                f"SOURCE_DATE_EPOCH is not a whole number of seconds: {explicit!r}",
                fix="set it to e.g. $(git log -1 --format=%ct), or unset it",
            ) from None
    found = _git(root, "log", "-1", "--format=%ct", "--", ".")
    return int(found) if found and found.isdigit() else FALLBACK_EPOCH


def git_labels(root: Path) -> dict[str, str]:
    """``org.opencontainers.image.revision``/``source`` from git, when the project is in git."""
    labels: dict[str, str] = {}
    revision = _git(root, "rev-parse", "HEAD")
    if revision:
        labels["org.opencontainers.image.revision"] = revision
    remote = _git(root, "config", "--get", "remote.origin.url")
    if remote:
        parts = urlsplit(remote)
        if parts.scheme and parts.hostname:  # drop any user:token@ from the URL
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            remote = urlunsplit(parts._replace(netloc=netloc))
        labels["org.opencontainers.image.source"] = remote
    return labels


def _git_facts(root: Path, epoch: int | None) -> tuple[int, dict[str, str]]:
    """The build's epoch (``epoch``, else :func:`source_date_epoch`) and :func:`git_labels`."""
    return (epoch if epoch is not None else source_date_epoch(root)), git_labels(root)


# -- the builder --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Base:
    name: str  # slim, minimal, or the image reference
    image: Image
    scheme: Scheme
    key: str
    arch: str
    rootfs: bases.BaseRootfs | None
    reports: tuple[LayerReport, ...]
    installed: Mapping[str, str] | None = None  # the rootfs's dpkg status, when known


class _LayerPipeline:
    """Tars each dependency layer on one thread as soon as its installed trees are ready.

    A cold build's compiler keeps every core busy; the layers whose trees are done
    (the big compiled-extension wheels come first) are tarred meanwhile instead of after. The
    runtime-libraries layer is made once every wheel with ELF files is installed (it scans
    them). ``ready_prefix`` hears the image's new layers so far (libraries, then the dependency
    layers in the image's order) each time that run grows: the engine can load them while the
    rest is built. Trees are reported from the compiler's reader thread (:meth:`tree_ready`).
    """

    def __init__(
        self,
        plans: Sequence[DepLayerPlan],
        missing: Sequence[DepLayerPlan],
        *,
        dep: Callable[[DepLayerPlan], tuple[Layer, LayerReport]],
        libs: Callable[[], tuple[Layer, LayerReport] | None],
        ready_prefix: Callable[[list[Layer]], None] | None,
    ) -> None:
        self._plans = plans
        self._dep = dep
        self._libs = libs
        self._ready_prefix = ready_prefix
        self._guard = threading.Lock()
        self._waiting = {p.key: {a.sha256 for a in p.artifacts} for p in missing}
        self._unscanned = {a.sha256 for p in missing for a in p.artifacts if _scanned(a)}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="layers")
        self._jobs: dict[str, Future[tuple[Layer, LayerReport]]] = {}
        self._libs_job: Future[tuple[Layer, LayerReport] | None] | None = None
        # written and read on the layers thread only
        self._done: dict[str, Layer] = {}
        self._libs_layers: list[Layer] | None = None
        self._offered = 0
        for plan in plans:
            if plan.key not in self._waiting:  # cached: taken from the cache in turn
                self._submit(plan)
        self._libs_if_scannable()

    def __enter__(self) -> _LayerPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)

    def tree_unpacked(self, sha256: str) -> None:
        """A tree's files are in place and scanned: the libraries layer may be made."""
        with self._guard:
            self._unscanned.discard(sha256)
        self._libs_if_scannable()

    def tree_ready(self, sha256: str) -> None:
        """A tree is installed and compiled: start the layers it completes."""
        with self._guard:
            complete = []
            for key, left in self._waiting.items():
                if sha256 in left:
                    left.discard(sha256)
                    if not left:
                        complete.append(key)
        self._libs_if_scannable()
        for plan in self._plans:
            if plan.key in complete:
                self._submit(plan)

    def results(
        self,
    ) -> tuple[list[tuple[Layer, LayerReport]], tuple[Layer, LayerReport] | None]:
        """Every layer, once all trees are in (layers the callbacks did not start start now)."""
        with self._guard:
            self._unscanned.clear()
        self._libs_if_scannable()
        for plan in self._plans:
            self._submit(plan)
        libs = self._libs_job
        assert libs is not None
        return [self._jobs[p.key].result() for p in self._plans], libs.result()

    def _submit(self, plan: DepLayerPlan) -> None:
        with self._guard:
            if plan.key not in self._jobs:
                self._jobs[plan.key] = self._pool.submit(self._dep_step, plan)

    def _libs_if_scannable(self) -> None:
        with self._guard:
            if self._libs_job is None and not self._unscanned:
                self._libs_job = self._pool.submit(self._libs_step)

    def _libs_step(self) -> tuple[Layer, LayerReport] | None:
        made = self._libs()
        self._libs_layers = [made[0]] if made is not None else []
        self._offer()
        return made

    def _dep_step(self, plan: DepLayerPlan) -> tuple[Layer, LayerReport]:
        made = self._dep(plan)
        self._done[plan.key] = made[0]
        self._offer()
        return made

    def _offer(self) -> None:
        if self._ready_prefix is None or self._libs_layers is None:
            return
        run = list(itertools.takewhile(lambda k: k in self._done, (p.key for p in self._plans)))
        if len(run) > self._offered:
            self._offered = len(run)
            self._ready_prefix([*self._libs_layers, *(self._done[k] for k in run)])


class Builder:
    """Builds services' images; holds the caches (blob store, wheelhouse, installed trees)."""

    def __init__(
        self,
        project: Project,
        options: BuildOptions | None = None,
        *,
        store: BlobStore | None = None,
        wheelhouse: Wheelhouse | None = None,
        trees: InstalledTrees | None = None,
        progress: Progress | None = None,
        session: Session | None = None,
    ) -> None:
        self.project = project
        self.options = options or BuildOptions()
        self.session = session if session is not None else Session()
        self.store = store or BlobStore()
        self.wheelhouse = wheelhouse or BaseWheelhouse(index=self.session.locks.index)
        self.trees = trees or InstalledTrees(compilers=self.session.compilers)
        self.progress = progress
        self._preloaders: dict[str, daemon.Preloader] = {}
        #: the registry cache (second level), and its layer entries found so far, by key
        self.remote: RegistryCache | None = None
        if self.options.cache:
            # imported only when asked for: the registry client's imports slow every start-up
            from wheeldock.oci.cache import RegistryCache

            self.remote = RegistryCache(
                self.options.cache, self.options.cache_mode, store=self.store
            )
        self._remote_hits: dict[str, Entry] = {}
        #: per registry host, the repository this build pushed an image to last: the next
        #: service's push mounts the layers they share from it instead of sending them again
        self._pushed: dict[str, str] = {}
        explicit = self.options.source_date_epoch
        if explicit is None and os.environ.get("SOURCE_DATE_EPOCH"):
            explicit = source_date_epoch(project.root)  # a bad value fails the build at once
        # git answers on a thread, while the lock and the base are read
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="git")
        self._facts = pool.submit(_git_facts, project.root, explicit)
        pool.shutdown(wait=False)

    @property
    def epoch(self) -> int:
        return self._facts.result()[0]

    @property
    def _git_labels(self) -> dict[str, str]:
        return self._facts.result()[1]

    @property
    def compression(self) -> Compression:
        return self.options.compression or "gzip"

    def _report(self, svc: Service, report: LayerReport) -> LayerReport:
        log.info(
            "%s: %s layer %s %s (%d bytes, %.2f s)",
            svc.name,
            report.kind,
            report.title,
            "cached" if report.cached else "built",
            report.size,
            report.seconds,
        )
        if self.progress is not None:
            self.progress(svc.name, report)
        return report

    def _layer(
        self, svc: Service, kind: LayerKind, title: str, key: str, make: Callable[[], Layer]
    ) -> tuple[Layer, LayerReport]:
        started = time.monotonic()
        built = False

        def tracked() -> Layer:
            nonlocal built
            built = True
            return make()

        entry = None if _cached(self.store, key) else self._remote_layer(key)
        if entry is not None:
            assert self.remote is not None
            layer = self.remote.layer(entry, tracked)
            self.store.set_cached(key, layer.to_json())
        else:
            layer = cached_layer(self.store, key, tracked)
            if self.remote is not None:
                self.remote.save(key, layer)
        report = LayerReport(
            kind,
            title,
            layer.digest,
            layer.size,
            not built,
            time.monotonic() - started,
            remote=entry is not None,
        )
        return layer, self._report(svc, report)

    # -- the registry cache ------------------------------------------------------------------

    def _remote_layer(self, key: str) -> Entry | None:
        """The registry cache's entry of a layer's ``key`` (None: no cache, or a miss)."""
        if self.remote is None:
            return None
        if key not in self._remote_hits:
            entry = self.remote.lookup(key)
            if entry is None or entry.layer is None:
                return None
            self._remote_hits[key] = entry
        return self._remote_hits[key]

    def _ask_remote(self, keys: Sequence[str]) -> None:
        """Look ``keys`` up in the registry cache at once, those not found before (their
        entries are kept for :meth:`_layer`, and for the next service sharing them)."""
        asking = [k for k in keys if k not in self._remote_hits]
        if self.remote is None or not asking:
            return
        for key, entry in self.remote.lookup_many(asking).items():
            if entry.layer is not None:
                self._remote_hits[key] = entry

    def _record(self, key: str) -> dict[str, Any] | None:
        """A recorded value: the local index's, else the registry cache's (then kept locally);
        a local one the registry cache lacks is saved there."""
        value = self.store.get_cached(key)
        if value is not None:
            if self.remote is not None:
                self.remote.save_record(key, value)
            return value
        entry = self.remote.lookup(key) if self.remote is not None else None
        if entry is None or entry.value is None:
            return None
        value = dict(entry.value)
        self.store.set_cached(key, value)
        return value

    def _remember(self, key: str, value: dict[str, Any]) -> None:
        """Record ``value`` locally and in the registry cache."""
        self.store.set_cached(key, value)
        if self.remote is not None:
            self.remote.save_record(key, value)

    def mount_source(self, ref: str) -> str | None:
        """The repository a ``docker://`` output mounts blobs from: the registry cache's, on
        its registry; else the one this build pushed to last on the same registry (services
        share their base and dependency layers, whose bytes are then sent once)."""
        if self.remote is not None and self.remote.same_registry(ref):
            return self.remote.repository
        parsed = coerce(ref)
        if isinstance(parsed, RegistryRef):
            return self._pushed.get(parsed.name.registry)
        return None

    def _note_pushed(self, ref: str) -> None:
        parsed = coerce(ref)
        if isinstance(parsed, RegistryRef):
            self._pushed[parsed.name.registry] = parsed.name.repository

    def flush_cache(self) -> None:
        """Wait for the registry cache's saves (before the images are pushed: their blobs are
        then mounted from it)."""
        if self.remote is not None:
            self.remote.flush()

    def close_cache(self) -> None:
        if self.remote is not None:
            self.remote.close()

    # -- base --------------------------------------------------------------------------------

    def _base(self, svc: Service) -> _Base:
        spec = self.options.base or svc.base
        platform = Platform.parse(self.options.platform)
        python = svc.python
        suite = bases.suite_for(python)
        if spec in bases.VARIANTS and suite is None:
            # no Debian suite carries this Python: the official image is the base, as the
            # Dockerfile init writes for it has it (never another Python than the user's)
            return self._official_base(svc, spec, platform)
        if spec in bases.VARIANTS and suite is not None:
            started = time.monotonic()
            rootfs = bases.ensure_rootfs(spec, arch=platforms.debian_arch(platform), suite=suite)
            _check_python(svc, spec, rootfs.python_version, self.project.root / CONFIG_NAME)
            facts = base_facts(rootfs)
            key = _digest("base", rootfs.key, facts.sha256)
            title = f"{spec} ({rootfs.suite}, Python {rootfs.python_version})"
            compression = self.compression
            if compression == "zstd":
                layer, report = self._layer(
                    svc,
                    "base",
                    title,
                    _digest(key, compression),
                    lambda: Layer.from_tar_file(rootfs.tar_path, self.store, compression),
                )
            else:
                layer = base_layer(rootfs, facts, compression)
                if self.remote is not None:
                    self.remote.save(_digest(key, compression), layer)
                report = self._report(
                    svc,
                    LayerReport(
                        "base", title, layer.digest, layer.size, True, time.monotonic() - started
                    ),
                )
            image = Image(
                layers=(layer,),
                config=ImageConfig(
                    env=(f"PATH={bases.IMAGE_PATH}", "LANG=C.UTF-8"), cmd=("python3",)
                ),
                platform=platform,
                history=(
                    History(created_by=f"wheeldock base {spec}", created=rfc3339(FIXED_MTIME)),
                ),
            )
            return _Base(
                spec,
                image,
                debian_scheme(python),
                key,
                rootfs.arch,
                rootfs,
                (report,),
                installed=facts.installed,
            )
        return self._base_image(svc, spec, platform)

    def _official_base(self, svc: Service, variant: str, platform: Platform) -> _Base:
        """The official image of the service's Python as its base; an error naming the ways
        out when neither the engine nor the registry has it."""
        try:
            return self._base_image(svc, official_image(svc.python, variant), platform)
        except WheeldockError as exc:
            name = official_name(svc.python, variant)
            carried = ", ".join(f"{v} ({s})" for s, v in bases.SUITE_PYTHON.items())
            raise InvalidConfig(
                f'service {svc.name}: python = "{svc.python}": wheeldock\'s bases carry '
                f"{carried}, and the official image {name} is neither in the engine nor to "
                f"be had from Docker Hub ({exc.what.splitlines()[0]})",
                path=self.project.root / CONFIG_NAME,
                fix=f"docker pull {name} (the engine's copy is used), or set python to one of "
                f"{carried} for it (`wheeldock init --python X.Y`)",
            ) from exc

    def _base_image(self, svc: Service, spec: str, platform: Platform) -> _Base:
        started = time.monotonic()
        ref = coerce(spec)
        source = open_image(ref, self.store, platform=platform)
        seconds = time.monotonic() - started
        reports = tuple(
            self._report(svc, LayerReport("base", str(ref), lay.digest, lay.size, True, seconds))
            for lay in source.layers
        )
        version = python_org_version(source.config.env)
        if version is not None:  # python.org images say which; others are taken on trust
            _check_python(svc, spec, version, self.project.root / CONFIG_NAME)
        scheme = scheme_for(source.config.env, svc.python)
        arch = platforms.debian_arch(source.platform)  # linux/arm/v7 is Debian's armhf
        return _Base(spec, source, scheme, str(source.digest), arch, None, reports)

    # -- dependencies ------------------------------------------------------------------------

    def _fetch_trees(
        self,
        artifacts: Sequence[Artifact],
        lock: pylock.Lock,
        scheme: Scheme,
        installed: Callable[[str, Path], None] | None = None,
        ready: Callable[[str, Path], None] | None = None,
        early: Preinstaller | None = None,
    ) -> list[Path]:
        """The installed tree of each artifact. Only wheels whose tree is missing are fetched,
        and each is installed as its download lands (the others still downloading).
        ``installed`` and ``ready`` are :meth:`InstalledTrees.ensure_each`'s; the trees already
        cached are reported to both first. Trees ``early`` is still making (the lock handed it
        their wheels) are not installed again: both hooks hear of each as it is compiled, so
        its layer is made while the others compile, not after the last one."""

        def report(sha: str, tree: Path) -> None:
            for hook in (installed, ready):
                if hook is not None:
                    hook(sha, tree)

        shas = [a.sha256 for a in artifacts]
        coming = early.follow(shas, report) if early is not None else set()
        need = [
            a for a in artifacts if a.sha256 not in coming and not self.trees.has(a.sha256, scheme)
        ]
        wanted = {a.sha256 for a in need} | coming
        for art in artifacts:
            if art.sha256 not in wanted:
                try:
                    report(art.sha256, self.trees.path(art.sha256, scheme))
                except InvalidArchive:  # damaged in the cache, and removed: install it again
                    need.append(art)
        if need:
            self._install_trees(need, lock, scheme, installed, ready)
        if coming:
            assert early is not None
            early.wait(coming)
            # what the early installs gave up on (a failure there is only logged): here it is
            # installed again, and its error, if any, is reported
            left = [
                a for a in artifacts if a.sha256 in coming and not self.trees.has(a.sha256, scheme)
            ]
            if left:
                self._install_trees(left, lock, scheme, installed, ready)
        return self.trees.ensure_each(shas, (), scheme)

    def _install_trees(
        self,
        need: Sequence[Artifact],
        lock: pylock.Lock,
        scheme: Scheme,
        installed: Callable[[str, Path], None] | None,
        ready: Callable[[str, Path], None] | None,
    ) -> None:
        """Fetch ``need``'s wheels and install each as its download lands."""
        arriving = (
            (art.sha256, wheel)
            for art, wheel in self.wheelhouse.fetch_each(
                need, platform=lock.platform, python=lock.python
            )
        )
        self.trees.ensure_each(
            [a.sha256 for a in need], arriving, scheme, installed=installed, ready=ready
        )

    def _dep_layer(
        self,
        svc: Service,
        plan: DepLayerPlan,
        trees: dict[str, Path],
        lock: pylock.Lock,
        base: _Base,
    ) -> tuple[Layer, LayerReport]:
        """One dependency layer, from the cache or tarred from its installed trees."""

        def make() -> Layer:
            if any(a.sha256 not in trees for a in plan.artifacts):
                for art, tree in zip(
                    plan.artifacts,
                    self._fetch_trees(plan.artifacts, lock, base.scheme),
                    strict=True,
                ):
                    trees[art.sha256] = tree
            entries: list[TarEntry] = []
            for art in plan.artifacts:
                entries += entries_from_dir(trees[art.sha256], prefix="")
            shas = [a.sha256 for a in plan.artifacts]
            alone = len(shas) == 1
            # a tree installed now is archived from its layer's own tar when it is alone in it
            writer = self.trees.archive_writer(shas[0], base.scheme) if alone else nullcontext()
            with writer as tee:
                layer = build_layer(
                    entries,
                    store=self.store,
                    compression=self.compression,
                    mtime=FIXED_MTIME,
                    annotations={"org.opencontainers.image.title": f"deps: {plan.title}"},
                    provided=scheme_folders(base.scheme),
                    tee=tee,
                )
            if not alone:
                for sha in shas:
                    self.trees.write_archive(sha, base.scheme)
            return layer

        return self._layer(svc, "deps", plan.title, plan.key, make)

    def _deps_and_libs(
        self,
        svc: Service,
        lock: pylock.Lock,
        base: _Base,
        ready_prefix: Callable[[list[Layer]], None] | None = None,
        early: Preinstaller | None = None,
    ) -> tuple[list[tuple[Layer, LayerReport]], tuple[Layer, LayerReport] | None]:
        """The dependency layers and the runtime-libraries layer (None: none needed).

        The wheels of every layer not in the cache are fetched and installed in one go (parallel
        downloads, one bytecode compiler process); each layer is tarred as soon as its trees are
        compiled, while the others still compile (see :class:`_LayerPipeline`, which also calls
        ``ready_prefix``)."""
        artifacts = select(lock)
        plans = plan_dependencies(
            artifacts,
            scheme=base.scheme,
            compression=self.compression,
            compiler=compiler_id(svc.python),
            max_layers=self.options.max_dep_layers,
        )
        trees: dict[str, Path] = {}
        missing = [p for p in plans if not _cached(self.store, p.key)]
        self._ask_remote([p.key for p in missing])
        missing = [p for p in missing if p.key not in self._remote_hits]
        if not missing:
            deps = [self._dep_layer(svc, p, trees, lock, base) for p in plans]
            return deps, self._libs(svc, lock, base)

        by_sha = {a.sha256: a for p in missing for a in p.artifacts}

        def unpacked(sha: str, path: Path) -> None:
            # scanned now, before it compiles: the libraries layer (below the dependencies)
            # can then be made before the last tree is compiled
            art = by_sha[sha]
            if _scanned(art) and self.store.get_cached(_scan_key(art, base)) is None:
                self._scan_one(art, path, base)
            pipeline.tree_unpacked(sha)

        def tree(sha: str, path: Path) -> None:
            trees[sha] = path
            pipeline.tree_ready(sha)

        with _LayerPipeline(
            plans,
            missing,
            dep=lambda plan: self._dep_layer(svc, plan, trees, lock, base),
            libs=lambda: self._libs(svc, lock, base),
            ready_prefix=ready_prefix,
        ) as pipeline:
            todo = [a for p in missing for a in p.artifacts]
            self._fetch_trees(todo, lock, base.scheme, installed=unpacked, ready=tree, early=early)
            return pipeline.results()

    # -- runtime libraries -------------------------------------------------------------------

    def _libs(
        self, svc: Service, lock: pylock.Lock, base: _Base
    ) -> tuple[Layer, LayerReport] | None:
        """The runtime-libraries layer: Debian packages the wheels need that the base lacks."""
        artifacts = select(lock)
        # Recorded per wheel set × base × declared packages: a rebuild reads neither the wheels
        # nor the base's package list.
        needed_key = _digest(
            "libs-needed", sorted(a.sha256 for a in artifacts), base.key, svc.runtime_packages
        )
        recorded = self._record(needed_key)
        if recorded is not None:
            packages = tuple(str(p) for p in recorded.get("packages", []))
        else:
            scanned = self._scan(artifacts, lock, base)
            packages = tuple(sorted({*scanned, *svc.runtime_packages} - set(_installed(base))))
            self._remember(needed_key, {"packages": list(packages)})
        if not packages:
            return None
        suite = base.rootfs.suite if base.rootfs is not None else bases.DEFAULT_SUITE
        key = _digest("libs", packages, suite, base.arch, self.compression, FIXED_MTIME)

        def make() -> Layer:
            have = sorted(_installed(base))
            return build_layer(
                _deb_entries(packages, suite=suite, arch=base.arch, installed=have),
                store=self.store,
                compression=self.compression,
                mtime=FIXED_MTIME,
                annotations={"org.opencontainers.image.title": "runtime libraries"},
            )

        return self._layer(svc, "libs", ", ".join(packages), key, make)

    def _scan(self, artifacts: Sequence[Artifact], lock: pylock.Lock, base: _Base) -> set[str]:
        """Union of each wheel's ELF scan (``wheeldock.debian.libs``), recorded per wheel × base, so a
        bump scans (and fetches) only the new wheel. The scan judges each wheel on its own
        (what a wheel vendors counts for that wheel only), so the union is the set's answer."""
        found: set[str] = set()
        todo: list[tuple[Artifact, str]] = []
        for art in filter(_scanned, artifacts):
            key = _scan_key(art, base)
            recorded = self.store.get_cached(key)
            if recorded is None:
                todo.append((art, key))
            else:
                found.update(str(p) for p in recorded.get("packages", []))
        todo = self._scans_from_remote(todo, found)
        for (art, _), where in zip(todo, self._scan_sources(todo, lock, base), strict=True):
            found.update(self._scan_one(art, where, base))
        return found

    def _scans_from_remote(
        self, todo: list[tuple[Artifact, str]], found: set[str]
    ) -> list[tuple[Artifact, str]]:
        """The scans of ``todo`` the registry cache has, added to ``found`` (and kept locally);
        the others. A fresh machine then fetches no wheel to scan on a bump: only the new one."""
        if self.remote is None or not todo:
            return todo
        entries = self.remote.lookup_many([key for _, key in todo])
        left: list[tuple[Artifact, str]] = []
        for art, key in todo:
            entry = entries.get(key)
            if entry is None or entry.value is None:
                left.append((art, key))
                continue
            self.store.set_cached(key, dict(entry.value))
            found.update(str(p) for p in entry.value.get("packages", []))
        return left

    def _scan_one(self, art: Artifact, where: Path, base: _Base) -> tuple[str, ...]:
        """The ELF scan of one wheel's files at ``where`` (a tree or the wheel), recorded for
        :meth:`_scan`."""
        from wheeldock.debian import libs  # the ELF scan's imports are needed only here

        packages = libs.runtime_packages(where, base=base.name, arch=base.arch)
        self._remember(_scan_key(art, base), {"packages": sorted(packages)})
        return packages

    def _scan_sources(
        self, todo: Sequence[tuple[Artifact, str]], lock: pylock.Lock, base: _Base
    ) -> list[Path]:
        """What to scan for each wheel: its installed tree when the dependency step left one
        (files on disk: only the ELF headers are read), else the wheel (fetched if need be)."""
        sources: dict[str, Path] = {}
        fetch = []
        for art, _ in todo:
            if self.trees.has(art.sha256, base.scheme):
                sources[art.sha256] = self.trees.path(art.sha256, base.scheme)
            else:
                fetch.append(art)
        if fetch:
            wheels = self.wheelhouse.fetch(fetch, platform=lock.platform, python=lock.python)
            sources.update((a.sha256, w) for a, w in zip(fetch, wheels, strict=True))
        return [sources[art.sha256] for art, _ in todo]

    def _check_new_layers(
        self,
        svc: Service,
        base: _Base,
        runtime_libs: tuple[Layer, LayerReport] | None,
        deps: Sequence[tuple[Layer, LayerReport]],
    ) -> None:
        """Fail the build when a file of a dependency layer made now (not taken from the cache)
        needs a library, or a glibc symbol version, the image lacks: it would fail at import or
        start. Libraries resolve against every layer; only the new layers' files are read."""
        if all(report.cached for _, report in deps):
            return
        from wheeldock.debian import libs  # the ELF check's imports are needed only here

        # The layers from the registry cache whose bytes are not here yet are left out of a
        # first check (a new layer's files rarely load another wheel's); only when it finds
        # something missing are they fetched, and the check made again against all.
        remote = {layer.digest for layer, _ in deps if not self.store.has(layer.digest)}
        report = self._check_layers(svc, base, runtime_libs, deps, remote)
        if report.missing and remote:
            report = self._check_layers(svc, base, runtime_libs, deps, set())
        if report.missing:
            raise libs.missing_error(report, config=str(self.project.root / CONFIG_NAME))

    def _check_layers(
        self,
        svc: Service,
        base: _Base,
        runtime_libs: tuple[Layer, LayerReport] | None,
        deps: Sequence[tuple[Layer, LayerReport]],
        left_out: set[Digest],
    ) -> CheckReport:
        """One ELF check of the dependency layers made now, resolving libraries against the
        base, the runtime libraries and every dependency layer but ``left_out``."""
        from wheeldock.debian import libs

        layers = (
            [base.rootfs.tar_path]
            if base.rootfs is not None
            else [layer.blob_path() for layer in base.image.layers]
        )
        if runtime_libs is not None:
            layers.append(runtime_libs[0].blob_path())
        made_now: set[int] = set()
        for layer, made in deps:
            if layer.digest in left_out:
                continue
            if not made.cached:
                made_now.add(len(layers))
            layers.append(layer.blob_path())
        report = libs.check_layers(
            layers,
            made_now,
            arch=base.arch,
            env=dict(e.partition("=")[::2] for e in base.image.config.env),
            ref=f"the image of {svc.name}",
        )
        log.info(
            "%s: %d ELF file(s) of the new layers checked against %d layers in %.2f s",
            svc.name,
            len(report.checked),
            len(layers),
            report.seconds,
        )
        return report

    # -- app ---------------------------------------------------------------------------------

    def _app(self, svc: Service) -> tuple[Layer, LayerReport]:
        source = (self.project.root / svc.source).resolve()
        if not source.is_dir():
            raise InvalidConfig(
                f"service {svc.name}: its source folder {svc.source} does not exist",
                path=self.project.root / "wheeldock.toml",
                fix="correct `source` in wheeldock.toml",
            )
        target = svc.source_target or svc.workdir
        entries = app_entries(source, target, self.project.root)
        if svc.writable_code:
            entries = owned_by_app(entries, target)
        key = app_key(entries, self.compression, self.epoch)
        annotations = {"org.opencontainers.image.title": f"app: {svc.source}"}

        def make() -> Layer:
            return build_layer(
                entries,
                store=self.store,
                compression=self.compression,
                mtime=self.epoch,
                annotations=annotations,
            )

        layer, report = self._layer(svc, "app", f"{svc.source} → {target}", key, make)
        # The title is not in the key (the same files from another folder make the same
        # bytes): a layer recorded by another project carries that project's title.
        return dataclasses.replace(layer, annotations=annotations), report

    # -- the whole image ---------------------------------------------------------------------

    def image(self, svc: Service) -> tuple[Image, list[LayerReport], pylock.Lock]:
        """Build (or reuse) every layer of ``svc``'s image and assemble it; publishes nothing."""
        base = self._base(svc)
        if base.scheme.bytecode != self.options.bytecode:
            scheme = dataclasses.replace(base.scheme, bytecode=self.options.bytecode)
            base = dataclasses.replace(base, scheme=scheme)
        try:
            # wheels the lock fetches are installed as they land, while it waits on the index;
            # each tree's layer is made as soon as it is compiled (the lock is known by then)
            with Preinstaller(self.trees, base.scheme) as early:

                def fetching() -> None:
                    # wheels will come: the HTTPS client, the installer thread and its compiler
                    # start now, while the lock reads its inputs
                    self.session.locks.index.warm()
                    early.start()

                lock = locks.ensure(
                    self.project,
                    svc,
                    platform=self.options.platform,
                    policy=self.options.lock_policy,
                    landed=early.submit,
                    fetching=fetching,
                    session=self.session.locks,
                    wheels=self.remote is None,  # a registry cache may have every layer
                )
                # deps before libs: the wheels download while they install, and the ELF scan
                # then finds them in the cache (the image's order is still libs, deps, app)
                deps, runtime_libs = self._deps_and_libs(
                    svc, lock, base, self._early_load(svc, base), early=early
                )
        finally:
            # the layers are made (and every early install is over): the staged trees go
            self.trees.release()
        self._check_new_layers(svc, base, runtime_libs, deps)
        reports: list[LayerReport] = list(base.reports)
        layers: list[Layer] = []
        history: list[History] = []
        created = rfc3339(self.epoch)
        parts: list[tuple[Layer, LayerReport]] = []
        if runtime_libs is not None:
            parts.append(runtime_libs)
        parts += deps
        parts.append(self._app(svc))
        for layer, report in parts:
            layers.append(layer)
            reports.append(report)
            history.append(
                History(
                    created_by=f"wheeldock build: {report.kind} {report.title}", created=created
                )
            )
        image = append_layers(base.image, layers, history=history)
        image = with_config(
            image,
            labels={
                "org.opencontainers.image.title": svc.name,
                "org.opencontainers.image.created": created,
                LABEL_IMAGE: "service",
                **self._git_labels,
            },
            **image_config(svc, base.image.config.env),
        )
        image = with_created(image, self.epoch)
        image = with_annotations(image, {"org.opencontainers.image.created": created})
        return image, reports, lock

    def _engine_hints(self, svc: Service) -> tuple[str, ...] | None:
        """The ``wheeldock base`` image tags the engine may have ``svc``'s base layer under, or
        None when the base is not a ``wheeldock base`` variant."""
        spec = self.options.base or svc.base
        if spec not in bases.VARIANTS:
            return None
        arch = platforms.debian_arch(Platform.parse(self.options.platform))
        return tuple(bases.image_tags(bases.recipe(spec), python_version=svc.python, arch=arch))

    def _publish(self, image: Image, ref: str, svc: Service) -> PublishResult:
        """:func:`publish`, but the engine is told where the base's layer may already be (the
        ``wheeldock base`` image), so ``docker load`` is not sent what it has."""
        parsed = coerce(ref)
        hints = self._engine_hints(svc)
        if not isinstance(parsed, DaemonRef):
            result = publish(image, ref, self.store, mount_from=self.mount_source(ref))
            self._note_pushed(ref)
            return result
        if hints is None:
            return publish(image, ref, self.store, known=self.session.engine)
        from wheeldock.oci import daemon

        started = time.monotonic()
        result = daemon.load(image, parsed.name, self.store, hints=hints, known=self.session.engine)
        return dataclasses.replace(result, seconds=time.monotonic() - started)

    def prefetch_engine(self, planned: Sequence[tuple[Service, Sequence[str]]]) -> None:
        """Start asking the engine what the ``docker-daemon:`` outputs' loads will need (see
        :meth:`wheeldock.oci.daemon.EngineLayers.prefetch`) while the images are built."""
        names: list[str] = []
        first: dict[str, tuple[str, tuple[str, ...]]] = {}  # service -> (its first name, hints)
        for svc, refs in planned:
            hints = self._engine_hints(svc)
            if hints is None:
                continue
            for parsed in map(coerce, refs):
                if isinstance(parsed, DaemonRef):
                    names += [parsed.name, *hints]
                    first.setdefault(svc.name, (parsed.name, hints))
        if names:
            from wheeldock.oci import daemon

            self.session.engine.prefetch(names)
            for service, (name, hints) in first.items():
                self._preloaders[service] = daemon.Preloader(
                    self.store, name, hints, known=self.session.engine
                )

    def _early_load(self, svc: Service, base: _Base) -> Callable[[list[Layer]], None] | None:
        """Where :class:`_LayerPipeline` hands the new layers finished so far, when ``svc`` is
        loaded into the engine: an image of the base and those layers, loaded on a thread."""
        preloader = self._preloaders.get(svc.name)
        if preloader is None:
            return None
        return lambda layers: preloader.offer(append_layers(base.image, layers))

    def finish_early_loads(self) -> None:
        """Wait for the early loads in flight (before the images' own loads)."""
        for preloader in self._preloaders.values():
            preloader.finish()

    def close_early_loads(self) -> None:
        """Remove the early loads' untagged images (after the images' own loads)."""
        for preloader in self._preloaders.values():
            preloader.close()

    def load_together(
        self, items: Sequence[tuple[Service, Image, str]]
    ) -> dict[tuple[str, str], PublishResult]:
        """One ``docker load`` for every (service, image, ``docker-daemon:`` ref) whose base is
        a ``wheeldock base`` variant: the stack's shared layers travel once. Keyed by
        (service name, ref); refs of other kinds are left to :meth:`_publish`."""
        chosen: list[tuple[Service, Image, str, str]] = []
        hints: list[str] = []
        for svc, image, ref in items:
            parsed = coerce(ref)
            found = self._engine_hints(svc)
            if isinstance(parsed, DaemonRef) and found is not None:
                chosen.append((svc, image, ref, parsed.name))
                hints += [h for h in found if h not in hints]
        if len(chosen) < 2:
            return {}
        from wheeldock.oci import daemon

        started = time.monotonic()
        loaded = daemon.load_many(
            [(image, name) for _, image, _, name in chosen],
            self.store,
            hints=hints,
            known=self.session.engine,
        )
        seconds = time.monotonic() - started
        return {
            (svc.name, ref): dataclasses.replace(result, seconds=seconds)
            for (svc, _, ref, _), result in zip(chosen, loaded, strict=True)
        }


# -- base facts -----------------------------------------------------------------------------------

#: Bumped when what a base's facts file holds changes.
_FACTS_VERSION = 1


@dataclass(frozen=True)
class BaseFacts:
    """What a base rootfs tar is, kept beside it (``<tar stem>.facts.json``) and keyed by the
    tar's size, mtime and inode: its sha256 (the base layer's diff_id), dpkg's installed
    packages, and its gzip blob's digest and size (the blob itself is ``<tar stem>.tar.gz``).
    An emptied layer cache therefore neither re-hashes, re-reads nor recompresses the base."""

    path: Path
    sha256: str
    size: int
    installed: Mapping[str, str]
    gzip: Mapping[str, Any] | None


def _identity(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _facts_path(tar: Path) -> Path:
    return tar.with_name(tar.stem + ".facts.json")


def _gzip_path(tar: Path) -> Path:
    return tar.with_name(tar.stem + ".tar.gz")


def _gzip_id() -> dict[str, Any]:
    from isal import __version__ as isal_version

    from wheeldock.oci.layer import DEFAULT_GZIP_LEVEL

    return {"isal": isal_version, "level": DEFAULT_GZIP_LEVEL}


def base_facts(rootfs: bases.BaseRootfs) -> BaseFacts:
    """The facts of ``rootfs``'s tar, computed (one read of the tar) when not recorded."""
    tar = rootfs.tar_path
    path = _facts_path(tar)
    identity = _identity(tar)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = None
    if (
        not isinstance(data, dict)
        or data.get("version") != _FACTS_VERSION
        or data.get("identity") != identity
    ):
        digest = hash_file(tar).digest
        data = {
            "version": _FACTS_VERSION,
            "identity": identity,
            "sha256": digest.hex,
            "installed": bases.installed_packages(rootfs),
        }
        _write_facts(path, data)
    gzip = data.get("gzip")
    return BaseFacts(
        path=tar,
        sha256=str(data["sha256"]),
        size=identity[0],
        installed=dict(data["installed"]),
        gzip=gzip if isinstance(gzip, dict) and gzip.get("id") == _gzip_id() else None,
    )


def _write_facts(path: Path, data: Mapping[str, Any]) -> None:
    try:
        atomic_write_text(path, json.dumps(data, sort_keys=True))
    except WheeldockError as exc:  # a read-only bases folder: facts are recomputed next time
        log.warning("cannot record the base's facts: %s", exc.message)


def _gzip_base(facts: BaseFacts) -> dict[str, Any]:
    """Compress the base tar to ``<tar stem>.tar.gz`` (atomically); its digest and size."""
    dest = _gzip_path(facts.path)
    with atomic_writer(dest, mode=0o444) as fh:
        writer = BlobWriter(fh)
        diff_id = compress_file(facts.path, writer, "gzip")
        if diff_id.hex != facts.sha256:
            raise DigestMismatch(
                "changed while it was being compressed",
                expected=f"sha256:{facts.sha256}",
                actual=str(diff_id),
                path=facts.path,
                fix="retry when nothing writes to it (or rebuild it: wheeldock base --rebuild)",
            )
    return {"id": _gzip_id(), "digest": str(writer.digest), "size": writer.size}


def base_layer(rootfs: bases.BaseRootfs, facts: BaseFacts, compression: Compression) -> Layer:
    """The base rootfs as a layer, its bytes read in place (nothing copied into the blob store).

    ``none``: the tar itself. ``gzip``: ``<tar stem>.tar.gz``, made once; the descriptor is
    taken from the facts file and the blob is remade lazily if it was deleted.
    """
    tar = facts.path
    diff_id = Digest.parse(f"sha256:{facts.sha256}")
    annotations = {"org.opencontainers.image.title": f"base: {rootfs.variant}"}
    if compression == "none":
        return Layer(
            diff_id,
            diff_id,
            facts.size,
            MEDIA_TYPE_TAR,
            lambda: tar,
            annotations,
            uncompressed_size=facts.size,
        )
    gz = dict(facts.gzip) if facts.gzip is not None else None
    if gz is None:
        gz = _gzip_base(facts)
        data = json.loads(_facts_path(tar).read_text())
        data["gzip"] = gz
        _write_facts(_facts_path(tar), data)
    digest = Digest.parse(str(gz["digest"]))
    size = int(gz["size"])
    blob = _gzip_path(tar)
    record = blob.with_name(blob.name + ".checked")  # its identity when last hashed

    def locate() -> Path:
        if blob.is_file() and recorded_identity(record) != file_identity(blob):
            if hash_file(blob) == Blob(digest, size):
                record_identity(record, file_identity(blob))
            else:
                log.warning("cached base blob %s is damaged; removed, it is made again", blob)
                blob.unlink()
        if not blob.is_file():
            again = _gzip_base(facts)
            if again["digest"] != str(digest):
                raise DigestMismatch(
                    "recompressing the base gave different bytes",
                    expected=str(digest),
                    actual=str(again["digest"]),
                    path=blob,
                    fix=f"delete {_facts_path(tar)} and build again",
                )
            record_identity(record, file_identity(blob))
        return blob

    return Layer(
        digest,
        diff_id,
        int(gz["size"]),
        MEDIA_TYPES["gzip"],
        locate,
        annotations,
        uncompressed_size=facts.size,
    )


def _installed(base: _Base) -> dict[str, str]:
    """Debian packages the base has: its rootfs's dpkg status, or the topmost
    ``var/lib/dpkg/status`` in an image's layers (none: a base without dpkg)."""
    if base.installed is not None:
        return dict(base.installed)
    if base.rootfs is not None:
        return bases.installed_packages(base.rootfs)
    text = dpkg.status_in_layers(base.image.layers)
    return {} if text is None else dpkg.installed_versions(text)


def _is_pure(filename: str) -> bool:
    _, _, _, wheel_tags = parse_wheel_filename(filename)
    return all(t.abi == "none" and t.platform == "any" for t in wheel_tags)


def _scanned(art: Artifact) -> bool:
    """Whether the ELF scan reads ``art``: a py3-none-any wheel holds no ELF files (an sdist
    may build into anything)."""
    return not (art.kind == "wheel" and _is_pure(art.file.filename))


def _scan_key(art: Artifact, base: _Base) -> str:
    """Where one wheel's ELF scan on a base is recorded."""
    return _digest("libs-wheel", art.sha256, base.key)


def _cached(store: BlobStore, key: str) -> bool:
    value = store.get_cached(key)
    if value is None:
        return False
    try:
        return store.has(Digest.parse(str(value["digest"])))
    except (KeyError, WheeldockError):
        return False


#: Top-level folders that are symlinks into /usr on merged-/usr bases (bookworm): a .deb's
#: ``lib/…`` must land in ``usr/lib/…``, or the layer would replace the symlink with a folder.
_MERGED_USR = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
#: What the bases leave out (dpkg path-exclude), left out of the libraries layer too.
_DEB_SKIP = (
    "usr/share/doc/",
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/locale/",
    "usr/share/lintian/",
)


def deb_member_entry(member: DebMember) -> TarEntry | None:
    """A .deb data member as a layer entry on a merged-/usr base; None for what is skipped."""
    path = member.path.rstrip("/")
    if path.split("/", 1)[0] in _MERGED_USR:
        path = "usr/" + path
    if member.kind == "other" or path in ("", ".") or (path + "/").startswith(_DEB_SKIP):
        return None
    if member.kind == "dir":
        return TarEntry.directory(path, mode=member.mode)
    if member.kind == "symlink":
        return TarEntry.symlink(path, member.linkname)
    if member.kind == "hardlink":
        target = member.linkname.lstrip("/")
        if target.split("/", 1)[0] in _MERGED_USR:
            target = "usr/" + target
        return TarEntry.hardlink(path, target, mode=member.mode)
    return TarEntry.file(path, member.data or b"", mode=member.mode)


def _deb_entries(
    packages: Sequence[str], *, suite: str, arch: str, installed: Sequence[str]
) -> list[TarEntry]:
    """The data members of the packages' .debs (and of their dependencies the base lacks) as
    layer entries: no container, no dpkg."""
    from wheeldock.debian import archive as debian

    folder = Path(tempfile.mkdtemp(prefix="wheeldock-debs-"))
    try:
        debs = debian.download_debs(
            packages, suite=suite, arch=arch, dest=folder, installed=installed
        )
        entries: list[TarEntry] = []
        for deb in debs:
            for member in debian.deb_data_members(deb):
                entry = deb_member_entry(member)
                if entry is not None:
                    entries.append(entry)
        return entries
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def owned_by_app(entries: Sequence[TarEntry], target: str) -> list[TarEntry]:
    """``entries`` and their folder ``target`` itself owned by the image's user (pure): the
    service writes into its code folder (``writable_code``), as ``COPY --chown`` gives it."""
    top = target.strip("/")
    owned = [dataclasses.replace(e, uid=APP_UID, gid=APP_UID) for e in entries]
    if not top:
        return owned
    return [TarEntry(top, "dir", 0o755, APP_UID, APP_UID), *owned]


def app_entries(source: Path, target: str, context: Path | None = None) -> list[TarEntry]:
    """The files of ``source`` that the build ``context``'s ``.dockerignore`` keeps, under
    ``target`` in the image; ``context`` is the folder ``source`` is in (the project's root,
    where ``init`` writes it and compose builds from), ``source`` itself when None.

    BuildKit's semantics: patterns relative to the context's root, last match wins, ``!``
    re-includes, ``**`` spans folders; a ``.dockerignore`` inside ``source`` is a plain file.
    Folders are entered even when excluded if a ``!`` pattern might re-include something inside
    them; excluded folders themselves are left out (their kept contents bring them back).
    """
    context = source if context is None else context
    ignore = context / ".dockerignore"
    inside = source.resolve().relative_to(context.resolve()).as_posix()
    base = "" if inside == "." else inside + "/"
    patterns = [".wheeldock", f"{base}.wheeldock"]  # our output folder never goes into an image
    if ignore.is_file():
        patterns += read_text(ignore).splitlines()
    negations = any(p.strip().startswith("!") for p in patterns)
    excluded_dirs: set[str] = set()

    def exclude(rel: str) -> bool:
        if not dockerignore_excluded(base + rel, patterns):
            return False
        if negations and (source / rel).is_dir() and not (source / rel).is_symlink():
            excluded_dirs.add(rel)
            return False
        return True

    entries = entries_from_dir(source, prefix=target, exclude=exclude)
    if not excluded_dirs:
        return entries
    prefix = target.strip("/")
    dropped = {f"{prefix}/{d}" if prefix else d for d in excluded_dirs}
    return [e for e in entries if not (e.kind == "dir" and e.path in dropped)]


# -- several services ---------------------------------------------------------------------------


def _names_a_service(ref: str, services: Sequence[Service]) -> bool:
    return "{service}" not in ref and any(s.name in ref for s in services)


def _meant_for(ref: str, svc: Service, services: Sequence[Service]) -> bool:
    """Whether ``ref`` is an output of ``svc``: a template or OCI folder is everyone's; with
    several services, a fixed name that contains exactly one service's name is that service's
    (``--output docker-daemon:stack-api:1 --output docker-daemon:stack-worker:1``)."""
    if len(services) < 2 or "{service}" in ref:
        return True
    parsed = coerce(ref)
    if isinstance(parsed, OciRef) and parsed.tag is None:
        return True
    # the longest name wins, so "api" does not claim "stack-api-admin:1" from "api-admin"
    named = sorted((s.name for s in services if s.name in ref), key=len, reverse=True)
    if not named:
        return True  # output_for refuses it, saying how to write it
    return named[0] == svc.name


def build(
    project: Project,
    services: Sequence[Service],
    outputs: Sequence[str] = (),
    options: BuildOptions | None = None,
    *,
    store: BlobStore | None = None,
    progress: Progress | None = None,
    session: Session | None = None,
) -> list[ServiceBuild]:
    """Build and publish each service. Empty ``outputs``: the engine when one answers, else an
    OCI layout in ``<project>/.wheeldock/oci`` (tagged with the service's name). ``session`` is
    the command's (``build --watch`` passes the same one to every rebuild); without one, a
    session is made and closed here."""
    options = options or BuildOptions()
    engine_up = engine.available() if not outputs else False
    if options.compression is None:
        daemon_only = (
            all(isinstance(coerce(r.replace("{service}", "s")), DaemonRef) for r in outputs)
            if outputs
            else engine_up
        )
        options = dataclasses.replace(options, compression="none" if daemon_only else "gzip")
    own = session is None  # made here, so closed here
    session = session if session is not None else Session()
    builder = Builder(project, options, store=store, progress=progress, session=session)
    planned = [
        (
            svc,
            tuple(
                # a fixed name claimed by one service is that service's alone
                output_for(ref, svc, 1 if _names_a_service(ref, services) else len(services))
                for ref in outputs
                if _meant_for(ref, svc, services)
            )
            if outputs
            else default_outputs(project, svc, engine_up=engine_up),
        )
        for svc in services
    ]
    builder.prefetch_engine(planned)
    try:
        made: list[tuple[Service, tuple[str, ...], Image, list[LayerReport], pylock.Lock, float]]
        made = []
        for svc, refs in planned:
            started = time.monotonic()
            image, reports, lock = builder.image(svc)
            made.append((svc, refs, image, reports, lock, time.monotonic() - started))
        builder.finish_early_loads()
        builder.flush_cache()
        together = builder.load_together(
            [(svc, image, ref) for svc, refs, image, *_ in made for ref in refs]
        )
        results = []
        for svc, refs, image, reports, lock, seconds in made:
            published = tuple(
                together.get((svc.name, ref)) or builder._publish(image, ref, svc) for ref in refs
            )
            results.append(
                ServiceBuild(
                    service=svc.name,
                    image=image,
                    digest=image.digest,
                    layers=tuple(reports),
                    outputs=published,
                    lock=lock.path,
                    seconds=seconds + sum(o.seconds for o in published),
                )
            )
    finally:
        builder.close_early_loads()
        builder.close_cache()
        builder.trees.close()
        if own:
            session.close()
    return results
