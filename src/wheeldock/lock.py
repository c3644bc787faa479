"""Hash-locked requirements: one PEP 751 ``pylock.toml`` per service, made by ``uv pip compile``.

Where: ``<project>/wheeldock.lock/pylock.<service>.toml`` (``pylock.<service>-<arch>.toml`` for
platforms other than linux/amd64). The format is PEP 751's, so the lock carries each file's URL
(or path, relative to the lock's folder), size and sha256 — everything the wheelhouse needs to
fetch and verify without asking an index again. Services whose inputs are identical are resolved
once and get byte-identical locks, so they share their wheels and dependency layers.

Drift: the lock's ``[tool.wheeldock]`` table records ``input-hash``, the sha256 of the
requirement files' contents (following ``-r``/``-c`` includes), the target platform and the
Python version. :func:`status` recomputes it; ``build`` refuses a stale lock and ``lock --check``
exits non-zero on one.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import tomli_w
from filelock import FileLock

from wheeldock import process
from wheeldock.discover import requirement_closure
from wheeldock.errors import InvalidConfig, NotFound, UsageError
from wheeldock.fsutil import atomic_write_text
from wheeldock.project import Project, Service

log = logging.getLogger(__name__)

LOCK_DIR = "wheeldock.lock"
DEFAULT_PLATFORM = "linux/amd64"
#: Bumped when the meaning of the input hash changes, so old locks read as stale.
_FORMAT = "wheeldock-lock-1"

#: OCI platform → uv's ``--python-platform``. manylinux_2_36 is bookworm's glibc. uv has no
#: 32-bit ARM target, so linux/arm/v7 cannot be locked (uv resolves only for these).
UV_PLATFORMS: dict[str, str] = {
    "linux/amd64": "x86_64-manylinux_2_36",
    "linux/arm64": "aarch64-manylinux_2_36",
    "linux/arm64/v8": "aarch64-manylinux_2_36",
}

#: OCI platform → the wheel platform tags it accepts, best first (for choosing among wheels).
_ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64", "linux/arm64/v8": "aarch64"}

Status = Literal["fresh", "stale", "missing"]


def uv_platform(platform: str) -> str:
    """uv's ``--python-platform`` for an OCI platform; :class:`UsageError` if uv has none."""
    try:
        return UV_PLATFORMS[platform]
    except KeyError:
        raise UsageError(
            f"cannot lock for platform {platform!r}: uv resolves only for "
            + ", ".join(sorted(UV_PLATFORMS)),
            fix="use --platform linux/amd64 or linux/arm64",
        ) from None


def wheel_arch(platform: str) -> str:
    uv_platform(platform)
    return _ARCH[platform]


# -- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockInputs:
    """What a lock is computed from. ``files`` are (project-relative path, sha256 of content),
    top-level files first, then includes in the order met; ``top`` are the files given to uv."""

    top: tuple[str, ...]
    files: tuple[tuple[str, str], ...]
    platform: str
    python: str
    constraints: tuple[str, ...] = ()
    no_binary: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        h = hashlib.sha256(_FORMAT.encode())
        parts = (self.platform, self.python, *self.top, "-c", *self.constraints, "--no-binary")
        for part in (*parts, *self.no_binary):
            h.update(b"\0" + part.encode())
        for name, sha in self.files:
            h.update(f"\0{name}\0{sha}".encode())
        return f"sha256:{h.hexdigest()}"


def inputs_for(root: Path, svc: Service, platform: str) -> LockInputs:
    """The lock inputs of a service: its requirement and constraint files, and build options."""
    return collect_inputs(
        root,
        svc.requirements,
        platform=platform,
        python=svc.python,
        constraints=svc.constraints,
        no_binary=svc.no_binary,
    )


def collect_inputs(
    root: Path,
    requirements: Sequence[str],
    *,
    platform: str,
    python: str,
    constraints: Sequence[str] = (),
    no_binary: Sequence[str] = (),
) -> LockInputs:
    """Read the requirement files (and what they include) under ``root``; pure but for reads.

    ``requirements`` and ``constraints`` are project-relative (``requirements*.txt`` or
    ``pyproject.toml``); ``no_binary`` names distributions to build from source.
    """
    if not requirements:
        raise InvalidConfig(
            "the service lists no requirement files",
            path=root / "wheeldock.toml",
            fix='add `requirements = ["requirements.txt"]` to the service',
        )
    uv_platform(platform)
    for rel in (*requirements, *constraints):
        if not (root / rel).is_file():
            raise NotFound(
                f"requirement file {rel} does not exist",
                path=root / rel,
                fix="create it, or correct `requirements` / `constraints` in wheeldock.toml",
            )
    # discover follows -r/-c includes (relative to the including file) and names a missing
    # include's file and line.
    files, _ = requirement_closure(root, [*requirements, *constraints])
    seen = {rel: hashlib.sha256((root / rel).read_bytes()).hexdigest() for rel in files}
    return LockInputs(
        top=tuple(_relative(root, root / r) for r in requirements),
        files=tuple(seen.items()),
        platform=platform,
        python=python,
        constraints=tuple(_relative(root, root / c) for c in constraints),
        no_binary=tuple(sorted(no_binary)),
    )


def _relative(root: Path, path: Path) -> str:
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()  # outside the project: still hashed by content


# -- the lock file ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockedFile:
    """One distribution file in the lock: a wheel or an sdist, by URL or by local path."""

    filename: str
    sha256: str
    url: str | None = None
    path: Path | None = None  # absolute, for files on disk
    size: int | None = None

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    wheels: tuple[LockedFile, ...]
    sdist: LockedFile | None


@dataclass(frozen=True)
class Lock:
    path: Path
    packages: tuple[LockedPackage, ...]
    input_hash: str | None
    platform: str
    python: str
    text: str
    no_binary: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        """sha256 of the lock's package section: what the dependency layers depend on."""
        return "sha256:" + hashlib.sha256(_packages_part(self.text).encode()).hexdigest()


_TOOL_MARKER = "\n[tool.wheeldock]"


def _packages_part(text: str) -> str:
    return text.split(_TOOL_MARKER, 1)[0]


def lock_path(root: Path, service: str, platform: str = DEFAULT_PLATFORM) -> Path:
    # PEP 751 names are pylock.<name>.toml with no dot inside <name>.
    name = re.sub(r"[^A-Za-z0-9_-]", "-", service)
    if platform != DEFAULT_PLATFORM:
        name += "-" + wheel_arch(platform)
    return root / LOCK_DIR / f"pylock.{name}.toml"


def _file(entry: dict[str, Any], lock_dir: Path, lock: Path, package: str) -> LockedFile:
    hashes = entry.get("hashes", {})
    if "sha256" not in hashes:
        raise InvalidConfig(
            f"package {package}: a file has no sha256 hash",
            path=lock,
            fix="re-create the lock with `wheeldock lock`",
        )
    url = entry.get("url")
    local = entry.get("path")
    name = entry.get("name") or PurePosixPath(str(url or local)).name
    return LockedFile(
        filename=str(name),
        sha256=str(hashes["sha256"]),
        url=str(url) if url else None,
        path=(lock_dir / str(local)).resolve() if local and not url else None,
        size=int(entry["size"]) if "size" in entry else None,
    )


@lru_cache(maxsize=32)
def parse(text: str, path: Path) -> Lock:
    """Parse a pylock.toml; :class:`InvalidConfig` naming the file when it cannot be used.

    Memoised: services sharing a lock parse it once per process."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfig(
            f"is not valid TOML ({exc})", path=path, fix="re-create it with `wheeldock lock`"
        ) from exc
    packages: list[LockedPackage] = []
    for pkg in doc.get("packages", []):
        name = str(pkg.get("name", "?"))
        wheels = tuple(_file(w, path.parent, path, name) for w in pkg.get("wheels", []))
        sdist = _file(pkg["sdist"], path.parent, path, name) if "sdist" in pkg else None
        if "archive" in pkg:
            archive = _file(pkg["archive"], path.parent, path, name)
            if archive.is_wheel:
                wheels += (archive,)
            else:
                sdist = archive
        if not wheels and sdist is None:
            kind = next((k for k in ("directory", "vcs") if k in pkg), "no file")
            raise InvalidConfig(
                f"package {name} is locked as {kind}, which a hash-locked build cannot use",
                path=path,
                fix=f"require {name} as a wheel or sdist (a file or an index version)",
            )
        packages.append(LockedPackage(name, str(pkg.get("version", "")), wheels, sdist))
    tool = doc.get("tool", {}).get("wheeldock", {})
    return Lock(
        path=path,
        packages=tuple(packages),
        input_hash=tool.get("input-hash"),
        platform=str(tool.get("platform", DEFAULT_PLATFORM)),
        python=str(tool.get("python", "3.11")),
        text=text,
        no_binary=tuple(str(n) for n in tool.get("no-binary", ())),
    )


def read(path: Path) -> Lock:
    try:
        return parse(path.read_text(), path)
    except FileNotFoundError:
        raise NotFound(f"lock file {path} does not exist", fix="run `wheeldock lock`") from None


def status(path: Path, inputs: LockInputs) -> Status:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return "missing"
    # Only the drift table is parsed: it is last, and the package list can be long.
    _, marker, tail = text.partition(_TOOL_MARKER)
    try:
        recorded = tomllib.loads(marker.lstrip("\n") + tail).get("tool", {}).get("wheeldock", {})
    except tomllib.TOMLDecodeError:
        return "stale"
    return "fresh" if recorded.get("input-hash") == inputs.digest else "stale"


# -- making locks -------------------------------------------------------------------------------


def uv_bin() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        return process.which("uv")
    return find_uv_bin()


def compile_lock(root: Path, inputs: LockInputs, dest: Path, *, upgrade: bool = False) -> Lock:
    """Resolve ``inputs`` with uv into ``dest``, then add the ``[tool.wheeldock]`` drift table.

    uv writes ``dest`` itself: it wants a ``pylock.*.toml`` name, makes local paths relative to
    the lock's folder, and keeps the pins of an existing lock unless ``upgrade``. Until the table
    is added the file reads as stale, so an interrupted run is never mistaken for a fresh lock.
    A file lock keeps two wheeldock runs from resolving into the same file at once.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    argv: list[str] = [
        uv_bin(),
        "pip",
        "compile",
        "--quiet",
        "--generate-hashes",
        "--format",
        "pylock.toml",
        "--python-platform",
        uv_platform(inputs.platform),
        "--python-version",
        inputs.python,
        "--custom-compile-command",
        "wheeldock lock",
        "--output-file",
        _relative(root, dest),
    ]
    if upgrade:
        argv.append("--upgrade")
    for name in inputs.no_binary:
        argv += ["--no-binary", name]
    for constraint in inputs.constraints:
        argv += ["--constraint", constraint]
    argv += list(inputs.top)
    with FileLock(str(dest.parent / ".lock")):
        process.run(
            argv,
            cwd=root,
            fix="correct the requirement named in the lines above, then `wheeldock lock` again",
        )
        body = _packages_part(dest.read_text())
        tool = {
            "tool": {
                "wheeldock": {
                    "input-hash": inputs.digest,
                    "platform": inputs.platform,
                    "python": inputs.python,
                    "inputs": [name for name, _ in inputs.files],
                    "no-binary": list(inputs.no_binary),
                }
            }
        }
        text = body.rstrip("\n") + "\n\n" + tomli_w.dumps(tool)
        atomic_write_text(dest, text)
    return parse(text, dest)


@dataclass(frozen=True)
class LockResult:
    service: str
    path: Path
    status: Status  # before this run
    action: Literal["kept", "written", "shared", "checked"]
    packages: int | None = None


def lock_services(
    project: Project,
    services: Sequence[Service],
    *,
    platform: str = DEFAULT_PLATFORM,
    check: bool = False,
    force: bool = False,
    upgrade: bool = False,
) -> list[LockResult]:
    """Lock each service (resolving identical inputs once). With ``check`` only report status."""
    results: list[LockResult] = []
    made: dict[str, Lock] = {}
    for svc in services:
        inputs = inputs_for(project.root, svc, platform)
        path = lock_path(project.root, svc.name, platform)
        before = status(path, inputs)
        if check:
            results.append(LockResult(svc.name, path, before, "checked"))
            continue
        if before == "fresh" and not (force or upgrade):
            results.append(LockResult(svc.name, path, before, "kept", len(read(path).packages)))
            continue
        twin = made.get(inputs.digest)
        if twin is not None:
            atomic_write_text(path, twin.text)
            results.append(LockResult(svc.name, path, before, "shared", len(twin.packages)))
            continue
        log.info("locking %s → %s", svc.name, path)
        lock = compile_lock(project.root, inputs, path, upgrade=upgrade)
        made[inputs.digest] = lock
        results.append(LockResult(svc.name, path, before, "written", len(lock.packages)))
    return results


def ensure(
    project: Project, svc: Service, *, platform: str = DEFAULT_PLATFORM, relock: bool = False
) -> Lock:
    """The service's lock for ``build``: created when missing, refused when stale (its inputs
    changed since it was written) unless ``relock``, which re-resolves a stale one."""
    inputs = inputs_for(project.root, svc, platform)
    path = lock_path(project.root, svc.name, platform)
    state = status(path, inputs)
    if state == "fresh":
        return read(path)
    if state == "stale" and not relock:
        raise InvalidConfig(
            "the lock is stale: "
            + ", ".join(name for name, _ in inputs.files)
            + " (or the platform or Python version) changed since it was written",
            path=path,
            fix="run `wheeldock lock` (or build with --relock)",
        )
    # A twin service may have just written identical inputs' lock: reuse it rather than re-resolve.
    for other in project.services:
        other_path = lock_path(project.root, other.name, platform)
        # Same input hash means same files, platform and Python: the resolution is the same.
        if other_path != path and status(other_path, inputs) == "fresh":
            text = other_path.read_text()
            atomic_write_text(path, text)
            return parse(text, path)
    return compile_lock(project.root, inputs, path)
