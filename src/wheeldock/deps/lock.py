"""Hash-locked requirements: one PEP 751 ``pylock.toml`` per service, made by ``uv pip compile``.

Where: ``<project>/wheeldock.lock/pylock.<service>.toml`` (``pylock.<service>-<arch>.toml`` for
platforms other than linux/amd64, ``<arch>`` being the wheel tags' machine: ``aarch64``,
``armv7l``). The format is PEP 751's, so the lock carries each file's URL (or path, relative to
the lock's folder), size and sha256 — everything the wheelhouse needs to fetch and verify
without asking an index again. Services whose inputs are identical are resolved once and get
byte-identical locks, so they share their wheels and dependency layers.

Platforms: uv resolves for linux/amd64 and linux/arm64 directly (``--python-platform``). It has
no 32-bit ARM target, so linux/arm/v7 is resolved *universally* (one resolution valid on every
platform, each package carrying the PEP 508 marker under which it is needed) and that lock is
projected onto armv7l by :func:`project_universal`: the packages whose marker holds there, each
with the wheels armv7l installs and its sdist (a package with no armv7l wheel keeps only its
sdist, and the build names it: :class:`wheeldock.build.multiarch.NoWheel`). A universal resolution
holds on every platform at once, so where the platforms' needs conflict it may pick an older
version than a resolution for armv7l alone would; uv forks it per marker where they differ.

Drift: the lock's ``[tool.wheeldock]`` table records ``input-hash``, the sha256 of the
requirement files' contents (following ``-r``/``-c`` includes), the target platform and the
Python version. :func:`status` recomputes it; ``lock --check`` exits non-zero on a stale lock.

The fast path (:func:`fast_lock`): when every requirement is pinned with ``==`` (as uv-compiled
requirements.txt files are), the resolution is forced, so no resolver is needed. Pins the old
lock has are kept as they are; the others' files and sha256s come from PyPI's JSON API
(``/pypi/NAME/VERSION/json``, one request each, in parallel), with the wheels the target can
run chosen by the wheelhouse's tag logic, as uv lists them. The result is written only if it is
exactly uv's answer: every dependency of every package (``Requires-Dist`` from the cached
wheel or from PyPI, markers evaluated for the target, extras followed) must be pinned and
satisfied by its pin; else :class:`NotFastLockable` and uv resolves. It is the default for
``wheeldock lock`` (``--full`` forces uv) and for ``build``.

The incremental re-lock (:func:`incremental_lock`, its pure part in
:mod:`wheeldock.deps.relock`): requirements that pin only the top level leave the rest to the
resolver, so the fast path cannot lock them. The lock records the requirement lines it was made
from; when the new ones differ only by versions moving (a top-level pin bumped), the last lock
is the starting point: the moved packages' releases are asked of the index as above, and the
lock is updated in place when every dependency they and the rest of the lock need is already
locked at a version that meets it. Otherwise uv resolves, writing over the last lock, whose pins
it keeps where it can (its preferences). ``build`` updates a lock that is stale only because
versions moved, by either way, as ``uv run`` re-locks (:data:`LockPolicy`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import logging
import os
import re
import threading
import tomllib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

import tomli_w

from wheeldock.deps.index import Index
from wheeldock.deps.pylock import (
    DEFAULT_PLATFORM,
    TOOL_MARKER,
    Lock,
    LockedFile,
    LockedPackage,
    lock_path,
    packages_part,
    parse,
    read,
)
from wheeldock.deps.requirements import (
    HashPins,
    hash_pins,
    locked_requirements,
    normalised_name,
    project_lock,
    read_requirements_text,
    requirement_closure,
    uv_bin,
)
from wheeldock.deps.wheeltags import supported_tags, uv_platform, wheel_arch, wheel_rank
from wheeldock.edges import process
from wheeldock.edges.fsutil import atomic_write_text, folder_lock
from wheeldock.errors import (
    CommandFailed,
    DigestMismatch,
    IndexUnreachable,
    InvalidConfig,
    NotFound,
    SdistNotBuildable,
    StaleLock,
    WheeldockError,
)
from wheeldock.project import Project, Service, config_path

if TYPE_CHECKING:
    import httpx
    from packaging.requirements import Requirement
    from packaging.tags import Tag
    from packaging.version import Version

    from wheeldock.deps.relock import Moves

log = logging.getLogger(__name__)

#: Bumped when the meaning of the input hash changes, so old locks read as stale.
_FORMAT = "wheeldock-lock-1"


Status = Literal["fresh", "stale", "missing"]
#: How :func:`ensure` (``build``) treats a stale lock. ``sync``: updated when the inputs differ
#: only by versions moving (in place when that is exact, else uv resolves with the old pins as
#: its preferences), as ``uv run`` re-locks; refused when they changed otherwise. ``relock``:
#: any stale lock is re-resolved. ``locked``: a stale or missing lock is refused, as
#: ``uv sync --locked`` refuses it (for CI). ``frozen``: the lock is used as it is.
LockPolicy = Literal["sync", "relock", "locked", "frozen"]
#: Told of each wheel the lock fetched, once verified: (sha256, path in the wheelhouse).
Landed = Callable[[str, Path], None]


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
    groups: tuple[str, ...] = ()  # a Poetry or PDM lock's groups (empty: its default)
    package: str | None = None  # the uv workspace member whose dependencies are locked

    @property
    def digest(self) -> str:
        h = hashlib.sha256(_FORMAT.encode())
        parts = (self.platform, self.python, *self.top, "-c", *self.constraints, "--no-binary")
        if self.groups:  # absent from the digest of the locks written before groups were read
            parts = (*parts, "--groups", *self.groups, "--no-binary")
        if self.package:  # likewise absent before workspace members were read
            parts = (*parts, "--package", self.package, "--no-binary")
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
        groups=svc.groups,
        package=svc.package,
    )


def collect_inputs(
    root: Path,
    requirements: Sequence[str],
    *,
    platform: str,
    python: str,
    constraints: Sequence[str] = (),
    no_binary: Sequence[str] = (),
    groups: Sequence[str] = (),
    package: str | None = None,
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
    wheel_arch(platform)  # a platform wheeldock does not build for is refused here
    locks = [r for r in requirements if project_lock(r) is not None]
    if locks and (len(requirements) > 1 or constraints):
        raise InvalidConfig(
            f"{locks[0]} is listed with other requirement or constraint files",
            path=root / "wheeldock.toml",
            fix="a project's lock file is the service's whole requirements: list it alone "
            "(add the other packages to the project, e.g. `uv add`, `poetry add`)",
        )
    for rel in (*requirements, *constraints):
        if not (root / rel).is_file():
            raise NotFound(
                f"requirement file {rel} does not exist",
                path=root / rel,
                fix="create it, or correct `requirements` / `constraints` in wheeldock.toml",
            )
    # discover follows -r/-c includes (relative to the including file) and names a missing
    # include's file and line.
    files, _ = requirement_closure(
        root, [*requirements, *constraints], parse=False, package=package
    )
    seen = {rel: hashlib.sha256((root / rel).read_bytes()).hexdigest() for rel in files}
    return LockInputs(
        top=tuple(_relative(root, root / r) for r in requirements),
        files=tuple(seen.items()),
        platform=platform,
        python=python,
        constraints=tuple(_relative(root, root / c) for c in constraints),
        no_binary=tuple(sorted(no_binary)),
        groups=tuple(groups),
        package=package,
    )


def _relative(root: Path, path: Path) -> str:
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()  # outside the project: still hashed by content


def status(path: Path, inputs: LockInputs) -> Status:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return "missing"
    # Only the drift table is parsed: it is last, and the package list can be long.
    _, marker, tail = text.partition(TOOL_MARKER)
    try:
        recorded = tomllib.loads(marker.lstrip("\n") + tail).get("tool", {}).get("wheeldock", {})
    except tomllib.TOMLDecodeError:
        return "stale"
    return "fresh" if recorded.get("input-hash") == inputs.digest else "stale"


# -- making locks -------------------------------------------------------------------------------


def project_universal(text: str, platform: str, python: str, *, path: Path | None = None) -> str:
    """A universal lock's text (``uv pip compile --universal``) narrowed to ``platform`` running
    CPython ``python`` (pure; ``path`` only names the lock in errors).

    A package is kept when its PEP 508 ``marker`` holds in :func:`target_environment` (or it has
    none), and is written without it. Its ``wheels`` are cut to those the platform installs
    (:func:`wheeldock.deps.wheeltags.supported_tags`, in uv's order) and its ``sdist`` is kept, so a
    package without a wheel for the platform keeps only its sdist. uv's header is kept, with a
    line saying what was projected. :class:`NotFound` for a kept package with neither a wheel
    for the platform nor an sdist; :class:`InvalidConfig` when two versions of one package are
    both kept (their markers overlap on this platform).
    """
    from packaging.markers import InvalidMarker, Marker
    from packaging.utils import canonicalize_name

    where = path or Path("pylock.toml")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfig(
            f"uv's universal lock is not valid TOML ({exc})",
            path=where,
            fix="run `wheeldock lock --force` again",
        ) from exc
    env = target_environment(platform, python)
    ranks = supported_tags(platform, python)
    blocks: list[str] = []
    kept: dict[str, str] = {}  # canonical name → version
    for pkg in doc.get("packages", []):
        name, version = str(pkg.get("name", "?")), str(pkg.get("version", ""))
        marker = pkg.get("marker")
        try:
            if marker is not None and not Marker(str(marker)).evaluate(env):
                continue
        except InvalidMarker as exc:
            raise InvalidConfig(
                f"package {name} {version}: its marker {marker!r} cannot be read ({exc})",
                path=where,
                fix="run `wheeldock lock --force` again",
            ) from exc
        entry = {k: v for k, v in pkg.items() if k != "marker"}
        if "wheels" in pkg:
            wheels = [w for w in pkg["wheels"] if wheel_rank(_entry_name(w), ranks) is not None]
            entry.pop("wheels")
            if wheels:
                entry["wheels"] = wheels
            elif "sdist" not in pkg:
                raise NotFound(
                    f"package {name} {version} has no wheel for {platform} and no sdist, so "
                    "it cannot be installed there",
                    path=where,
                    fix=f"require a version of {name} that publishes a {platform} wheel or an "
                    "sdist, or leave it out for this platform with a marker "
                    f"(platform_machine != {env['platform_machine']!r})",
                )
        canonical: str = canonicalize_name(name)
        if canonical in kept:
            raise InvalidConfig(
                f"package {name} is locked twice for {platform} ({kept[canonical]} and "
                f"{version}): the markers of uv's universal resolution overlap there",
                path=where,
                fix=f"pin {name} to one version in the requirements, then `wheeldock lock`",
            )
        kept[canonical] = version
        blocks.append(_package_block(entry))
    head = re.split(r"^\[\[packages\]\]$", text, maxsplit=1, flags=re.M)[0].rstrip("\n")
    lines = head.splitlines()
    comments = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    lines.insert(
        comments,
        f"# then projected onto {platform} (platform_machine {env['platform_machine']!r}) by "
        "wheeldock, as uv has no target for it",
    )
    return "\n".join(lines) + "\n" + "".join("\n" + block + "\n" for block in blocks)


def _entry_name(entry: dict[str, Any]) -> str:
    """A PEP 751 file entry's file name: ``name``, else the last part of its URL or path."""
    return str(entry.get("name") or PurePosixPath(str(entry.get("url") or entry.get("path"))).name)


def _package_block(pkg: dict[str, Any]) -> str:
    """One ``[[packages]]`` entry as uv writes it: file entries inline, several on lines of
    their own."""
    lines = ["[[packages]]"]
    for key, value in pkg.items():
        if isinstance(value, list) and len(value) > 1:
            lines += [f"{_toml_key(key)} = [", *(f"    {_toml_value(v)}," for v in value), "]"]
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(lines)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_str(key)


def _toml_value(value: Any) -> str:
    """``value`` as an inline TOML value (tables inline; UTC times with ``Z``, as uv does)."""
    if isinstance(value, dict):
        pairs = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }" if pairs else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, datetime.datetime) and value.utcoffset() == datetime.timedelta(0):
        return value.replace(tzinfo=None).isoformat() + "Z"
    return tomli_w.dumps({"x": value}).split(" = ", 1)[1].strip()


def compile_lock(root: Path, inputs: LockInputs, dest: Path, *, upgrade: bool = False) -> Lock:
    """Resolve ``inputs`` with uv into ``dest``, then add the ``[tool.wheeldock]`` drift table.

    A platform uv has no target for is resolved universally and projected onto the platform
    (:func:`project_universal`) before the table is added.

    uv writes ``dest`` itself: it wants a ``pylock.*.toml`` name, makes local paths relative to
    the lock's folder, and keeps the pins of an existing lock unless ``upgrade``. Until the table
    is added the file reads as stale, so an interrupted run is never mistaken for a fresh lock.
    A file lock keeps two wheeldock runs from resolving into the same file at once.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    target = uv_platform(inputs.platform)
    # No uv target (linux/arm/v7): resolve for every platform, then keep the target's part.
    where = ["--universal"] if target is None else ["--python-platform", target]
    argv: list[str] = [
        uv_bin(),
        "pip",
        "compile",
        "--quiet",
        "--generate-hashes",
        "--format",
        "pylock.toml",
        *where,
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
    with folder_lock(dest.parent):
        exported: Path | None = None
        for rel in inputs.top:
            if project_lock(rel) is not None:
                # uv pip reads no project lock: it gets the lock's pins, which resolve to themselves
                exported = dest.with_name(f".{dest.name}.export.txt")
                pins = locked_requirements(root / rel, inputs.groups, inputs.package)
                atomic_write_text(exported, "\n".join(pins) + "\n")
                argv.append(_relative(root, exported))
            else:
                argv.append(rel)
        try:
            process.run(
                argv,
                cwd=root,
                fix="correct the requirement named in the lines above, then `wheeldock lock` again",
            )
        except CommandFailed as exc:
            known = (
                _unreachable_index(exc)
                or _sdist_not_buildable(exc, inputs.platform)
                or _python_too_old(exc, inputs.python, root)
            )
            if known is None:
                raise
            raise known from exc
        finally:
            if exported is not None:
                exported.unlink(missing_ok=True)
        body = packages_part(dest.read_text())
        try:
            if target is None:
                body = project_universal(body, inputs.platform, inputs.python, path=dest)
            return _write_lock(root, dest, body, inputs)
        except (WheeldockError, OSError):
            dest.unlink()  # uv's answer, refused: no lock rather than one that reads as stale
            raise


@dataclass(frozen=True)
class LockResult:
    service: str
    path: Path
    status: Status  # before this run
    action: Literal["kept", "written", "pinned", "updated", "shared", "checked"]
    packages: int | None = None


def lock_services(
    project: Project,
    services: Sequence[Service],
    *,
    platform: str = DEFAULT_PLATFORM,
    check: bool = False,
    force: bool = False,
    upgrade: bool = False,
    fast: bool = True,
    session: LockSession | None = None,
) -> list[LockResult]:
    """Lock each service (resolving identical inputs once). With ``check`` only report status.
    ``session`` is the command's (its index client); a fresh one without.

    With ``fast`` (not with ``force``/``upgrade``), fully pinned inputs are locked without uv
    (:func:`fast_lock`, action ``pinned``), and a lock whose inputs differ only by versions
    moving is updated in place when that is exact (:func:`incremental_lock`, action
    ``updated``); anything else is resolved by uv, which keeps the old lock's pins where it can."""
    session = session if session is not None else LockSession()
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
            kept = _pinned(project.root, read(path), inputs)
            results.append(LockResult(svc.name, path, before, "kept", len(kept.packages)))
            continue
        twin = made.get(inputs.digest)
        if twin is not None:
            atomic_write_text(path, twin.text)
            results.append(LockResult(svc.name, path, before, "shared", len(twin.packages)))
            continue
        log.info("locking %s → %s", svc.name, path)
        quick = None
        if fast and not (force or upgrade):
            quick = quick_lock(project.root, inputs, path, session=session)
        lock, action = quick or (
            compile_lock(project.root, inputs, path, upgrade=upgrade),
            "written",
        )
        made[inputs.digest] = lock
        results.append(LockResult(svc.name, path, before, action, len(lock.packages)))
    return results


def ensure(
    project: Project,
    svc: Service,
    *,
    platform: str = DEFAULT_PLATFORM,
    policy: LockPolicy = "sync",
    landed: Landed | None = None,
    fetching: Callable[[], None] | None = None,
    session: LockSession | None = None,
    wheels: bool = True,
) -> Lock:
    """The service's lock for ``build``: created when missing; when stale (its inputs changed
    since it was written), treated as ``policy`` says (:data:`LockPolicy`). An update is made
    without uv when it can be exact (:func:`quick_lock`), else by uv. ``landed`` hears of each
    wheel fetched on the way (the build starts installing it at once); ``fetching`` is called
    first, once it is known that the index will be asked. ``session`` is the command's (its
    index client, the answers asked early); a fresh one without. ``wheels`` false: the build
    may not install the wheels (its layers come from a registry cache), so only their
    metadata is fetched."""
    inputs = inputs_for(project.root, svc, platform)
    path = lock_path(project.root, svc.name, platform)
    state = status(path, inputs)
    if state == "fresh":
        return _pinned(project.root, read(path), inputs)
    if policy in ("locked", "frozen"):
        return _strict(path, inputs, state, policy)
    twin = _fresh_twin(project, path, inputs, platform)
    if twin is not None:
        return twin
    if fetching is not None:
        fetching()
    # a build installs the wheels next: fetch them now instead of their metadata files
    session = session if session is not None else LockSession()
    quick = quick_lock(project.root, inputs, path, session=session, wheels=wheels, landed=landed)
    if quick is not None:
        return quick[0]
    old = _readable_lock(path)
    if (
        state == "stale"
        and policy != "relock"
        and not only_versions_moved(project.root, inputs, old)
    ):
        raise StaleLock(
            "the lock is stale: "
            + ", ".join(name for name, _ in inputs.files)
            + " (or the platform or Python version) changed since it was written by more than"
            " versions moving (a requirement added or removed, its extras or markers changed, or"
            " a lock too old to tell), so build leaves the re-resolution to you",
            path=path,
            fix="run `wheeldock lock` (or build with --relock)",
        )
    return compile_lock(project.root, inputs, path)


def _strict(path: Path, inputs: LockInputs, state: Status, policy: LockPolicy) -> Lock:
    """A lock that is not fresh under ``--locked`` (refused) or ``--frozen`` (used as it is)."""
    if state == "missing":
        raise NotFound(
            f"there is no lock, and --{policy} does not make one",
            path=path,
            fix="run `wheeldock lock` and keep wheeldock.lock/ with the code",
        )
    if policy == "frozen":
        log.info("%s: stale, used as it is (--frozen)", path.name)
        return read(path)
    raise StaleLock(
        "the lock is stale: "
        + ", ".join(name for name, _ in inputs.files)
        + " (or the platform or Python version) changed since it was written, and --locked"
        " refuses to update it",
        path=path,
        fix="run `wheeldock lock` and keep the lock with the code, or build without --locked",
    )


def _fresh_twin(project: Project, path: Path, inputs: LockInputs, platform: str) -> Lock | None:
    """A twin service's fresh lock of identical inputs, copied to ``path`` (a twin may have just
    written it: reused rather than re-resolved); None when there is none."""
    for other in project.services:
        other_path = lock_path(project.root, other.name, platform)
        # Same input hash means same files, platform and Python: the resolution is the same.
        if other_path != path and status(other_path, inputs) == "fresh":
            text = other_path.read_text()
            atomic_write_text(path, text)
            return parse(text, path)
    return None


# -- hash pins ------------------------------------------------------------------------------------


def pin_hashes(body: str, pins: HashPins, root: Path, dest: Path) -> str:
    """A lock's package section (``body``) held to the inputs' hash pins, as pip holds an
    install to them: a pinned package keeps only its files whose sha256 is pinned (the others
    are dropped from the lock, so no build installs them), and none left is a
    :class:`DigestMismatch` naming the package, the pinned and the found hashes. In
    hash-checking mode (``--require-hashes``, or ``--hash`` on any line) a package without
    pins, a dependency included, is refused, as pip refuses it. ``body`` comes back as it was
    when nothing is dropped."""
    if not pins:
        return body
    doc = tomllib.loads(body)
    changed = False
    entries: list[dict[str, Any]] = []
    for pkg in doc.get("packages", []):
        name, version = str(pkg.get("name", "?")), str(pkg.get("version", ""))
        pin = pins.pins.get(normalised_name(name))
        if pin is None:
            if pins.required is not None:
                raise InvalidConfig(
                    f"package {name} {version} has no hash pin, and hashes are required "
                    f"(hash-checking mode, turned on at {pins.required}), as pip requires them",
                    path=root / pins.required.rpartition(":")[0],
                    fix=f"pin {name}=={version} with its --hash=sha256:… too (dependencies "
                    "included: `uv pip compile --generate-hashes` writes them all), or drop "
                    "every --hash and --require-hashes",
                )
            entries.append(pkg)
            continue
        entry, found = _files_pinned(pkg, pin.hashes)
        if entry is None:
            raise DigestMismatch(
                f"package {name} {version}: no file of it has a pinned hash ({pin.where})",
                expected=" or ".join(sorted(pin.hashes)) or "nothing (the pins disagree)",
                actual=" or ".join(sorted(found)),
                path=root / pin.where.split(",")[0].rpartition(":")[0],
                fix=f"check where {name} comes from; if the index's files are the right ones, "
                "pin their hashes (`pip hash FILE`), or pin the version the hashes are of",
            )
        changed = changed or entry != pkg
        entries.append(entry)
    if not changed:
        return body
    log.info("%s: files without a pinned hash left out of the lock", dest.name)
    head = re.split(r"^\[\[packages\]\]$", body, maxsplit=1, flags=re.M)[0].rstrip("\n")
    return head + "\n" + "".join("\n" + _package_block(e) + "\n" for e in entries)


def _files_pinned(
    pkg: dict[str, Any], allowed: frozenset[str]
) -> tuple[dict[str, Any] | None, set[str]]:
    """``pkg`` with only its files whose sha256 is ``allowed`` (None when no file is), and the
    hashes of all its files."""

    def ok(entry: dict[str, Any]) -> bool:
        return f"sha256:{entry.get('hashes', {}).get('sha256', '')}".lower() in allowed

    found: set[str] = set()
    entry = dict(pkg)
    for key in ("wheels", "sdist", "archive"):
        files = pkg.get(key)
        if files is None:
            continue
        listed = files if isinstance(files, list) else [files]
        found.update(f"sha256:{f.get('hashes', {}).get('sha256', '?')}" for f in listed)
        kept = [f for f in listed if ok(f)]
        if not kept:
            del entry[key]
        else:
            entry[key] = kept if isinstance(files, list) else kept[0]
    if not any(key in entry for key in ("wheels", "sdist", "archive")):
        return None, found
    return entry, found


def _held(pkg: LockedPackage, pins: HashPins) -> bool:
    """Whether every file of ``pkg`` is one its pins allow (no pins: unless they are required)."""
    pin = pins.pins.get(normalised_name(pkg.name))
    if pin is None:
        return pins.required is None
    files = (*pkg.wheels, *([pkg.sdist] if pkg.sdist else []))
    return all(f"sha256:{f.sha256}".lower() in pin.hashes for f in files)


def _pinned(root: Path, lock: Lock, inputs: LockInputs) -> Lock:
    """A fresh ``lock`` held to the inputs' hash pins (:func:`pin_hashes`); rewritten in
    place when that drops files (a lock written before pins were honoured)."""
    pins = hash_pins(root, [n for n, _ in inputs.files])
    if all(_held(pkg, pins) for pkg in lock.packages):
        return lock  # what every build of a fresh lock finds: its parse is enough to tell
    body = packages_part(lock.text)
    pinned = pin_hashes(body, pins, root, lock.path)
    text = pinned.rstrip("\n") + "\n" + lock.text[len(body) :]
    atomic_write_text(lock.path, text)
    return parse(text, lock.path)


# -- the fast path: fully pinned inputs -----------------------------------------------------------

#: The index the fast path asks, as uv does: PEP 691 JSON, PEP 658 metadata files (behind a
#: proxy: SSL_CERT_FILE's CA).
PYPI_SIMPLE = "https://pypi.org/simple/{name}/"
_SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
_PYPI_FILES = "https://files.pythonhosted.org/"


class NotFastLockable(Exception):
    """The inputs are outside what the fast path resolves exactly; ``str()`` says why."""


#: What uv says when a request never got an answer (refused, DNS, TLS, timeout): reqwest's
#: transport error, naming the URL; the last ``cause:`` line under it says why.
_UV_UNSENT = re.compile(r"error sending request for url \((?P<url>[^)\s]+)\)")
#: Settings that point uv at another index than PyPI: the fast path, which asks PyPI, failing
#: to reach it is then no reason to think uv cannot.
_UV_INDEX_ENV = ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "UV_INDEX")


def _unreachable_index(failed: CommandFailed) -> IndexUnreachable | None:
    """uv's failure as :class:`IndexUnreachable` when it could not reach the index, else None."""
    match = _UV_UNSENT.search(failed.stderr)
    if match is None:
        return None
    causes = re.findall(r"^\s*(?:cause|Caused by):\s*(.+?)\s*$", failed.stderr, re.MULTILINE)
    return IndexUnreachable(match["url"], causes[-1] if causes else "no answer")


#: uv's word that it could not build a source distribution to read its metadata.
_UV_BUILD_FAILED = re.compile(
    r"^\s*(?:×|error:)?\s*Failed to build `(?P<dist>[^`]+)`", re.MULTILINE
)


def _sdist_not_buildable(failed: CommandFailed, platform: str) -> SdistNotBuildable | None:
    """uv's failure as :class:`SdistNotBuildable` when it had to build a package that has no
    wheel for the target on this machine, to read its dependencies, and the build failed
    (the requirement is not wrong: this machine lacks what the build needs); else None."""
    match = _UV_BUILD_FAILED.search(failed.stderr)
    if match is None:
        return None
    lines = [line.strip() for line in failed.stderr.splitlines()]
    said = [line for line in lines if re.match(r"^[\w.]*(Error|error):\s", line)]
    return SdistNotBuildable(
        f"{match['dist']} has no wheel for {platform}: uv builds its source distribution on "
        "this machine to read its dependencies, and the build failed"
        + (f" ({said[-1]})" if said else ""),
        fix="install what that build needs on this machine (its C headers and tools, as the "
        "Dockerfile's build stage installs them) and lock again, or pin a version of it with a "
        "wheel for the target",
    )


#: uv's hint that the Python it resolved for is older than a requirement supports.
_UV_PYTHON_HINT = re.compile(
    r"The `--python-version` value \([^)]*\) includes Python versions that are not supported "
    r"by your dependencies \(e\.g\., (?P<example>[^)]+)\)"
)


def _python_too_old(failed: CommandFailed, python: str, root: Path) -> InvalidConfig | None:
    """uv's failure as :class:`InvalidConfig` of the service's Python when the requirements
    need a newer one (the requirements are not wrong: the service's ``python`` is); else None."""
    match = _UV_PYTHON_HINT.search(failed.stderr)
    if match is None:
        return None
    return InvalidConfig(
        f"the requirements need a newer Python than the service's {python} ({match['example']})",
        path=config_path(root),
        fix="set the service's `python` to a version they support, or pin versions that "
        f"still support Python {python}; then `wheeldock lock` again",
    )


def _ask(client: httpx.Client, url: str, accept: str | None = None) -> httpx.Response:
    """``client.get(url)``; :class:`IndexUnreachable` when no answer came (refused, DNS, TLS,
    a timeout, a proxy), naming ``url``."""
    import httpx

    try:
        return client.get(url, headers={"Accept": accept} if accept else None)
    except (
        httpx.TimeoutException,
        httpx.NetworkError,
        httpx.ProxyError,
        httpx.RemoteProtocolError,
    ) as exc:
        raise IndexUnreachable(url, str(exc) or type(exc).__name__) from exc


@dataclass(frozen=True)
class _Pin:
    name: str  # canonical
    version: str
    extras: frozenset[str]


#: ``name==version`` or ``name[extras]==version`` and nothing else: most pinned lines, read
#: without packaging's requirement parser (importing it would delay a bump's first index
#: request; the parser still reads every other line).
_PLAIN_PIN = re.compile(
    r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*"
    r"(?:\[(?P<extras>[A-Za-z0-9._,\s-]*)\])?\s*==\s*(?P<version>[^\s;,*@]+)"
)


@lru_cache(maxsize=1)
def _version_re() -> re.Pattern[str]:
    from packaging.version import VERSION_PATTERN

    return re.compile(VERSION_PATTERN, re.VERBOSE | re.IGNORECASE)


def _plain_pin(line: str) -> tuple[str, frozenset[str], str] | None:
    """(name, extras, version) of a plain pin line, else None (for the full parser)."""
    match = _PLAIN_PIN.fullmatch(line)
    if match is None or _version_re().fullmatch(match["version"]) is None:
        return None
    extras = frozenset(e.strip() for e in (match["extras"] or "").split(",") if e.strip())
    return match["name"], extras, match["version"]


def _canonical_name(name: str) -> str:
    """PEP 503's normalised name, as ``packaging.utils.canonicalize_name`` gives it; that module
    imports packaging's tag machinery, before a bump's first index request."""
    return _SEPARATORS.sub("-", name).lower()


_SEPARATORS = re.compile(r"[-_.]+")


@lru_cache(maxsize=4096)
def _requirement(line: str) -> Requirement:
    """A parsed requirement line (the same lines recur across services and rebuilds)."""
    from packaging.requirements import Requirement

    return Requirement(line)


def pinned_requirements(root: Path, inputs: LockInputs) -> dict[str, _Pin]:
    """Every requirement of ``inputs`` as ``name==version`` (markers false for the target
    dropped); :class:`NotFastLockable` for anything else (ranges, URLs, hashes, options,
    constraints, ``--no-binary``)."""
    if inputs.constraints or inputs.no_binary:
        raise NotFastLockable("constraints or no_binary are set")
    env = target_environment(inputs.platform, inputs.python)
    pins: dict[str, _Pin] = {}
    projects = {  # the manifests read with a lock file
        str(PurePosixPath(r).parent / kind.manifest)
        for r, _ in inputs.files
        if (kind := project_lock(r)) is not None
    }
    for rel, _ in inputs.files:
        if rel in projects or (inputs.package and rel.endswith("pyproject.toml")):
            continue  # read with its lock file (a workspace's members too): the lock has the pins
        text = _pins_text(root, rel, inputs.groups, inputs.package)
        for number, raw in enumerate(text.splitlines(), 1):
            line = _requirement_line(raw, f"{rel}:{number}")
            pinned = _line_pin(line, f"{rel}:{number}", env) if line else None
            if pinned is not None:
                _add_pin(pins, *pinned)
    if not pins:
        raise NotFastLockable("no requirements")
    return pins


def _pins_text(root: Path, rel: str, groups: Sequence[str] = (), package: str | None = None) -> str:
    """The requirement lines of an input file: a lock file's pinned lines (markers and all),
    a requirements file's with its continued lines joined."""
    path = root / rel
    if project_lock(rel) is not None:
        return "\n".join(locked_requirements(path, groups, package))
    if path.suffix == ".toml":
        raise NotFastLockable(f"{rel} is a pyproject.toml")
    return read_requirements_text(path).replace("\\\n", " ")


def _requirement_line(raw: str, where: str) -> str | None:
    """A requirement line without its comment; ``None`` for a blank line, a comment or an
    include (the included file is one of the inputs); :class:`NotFastLockable` for an
    option or a hash."""
    line = raw.split(" #", 1)[0].strip()
    if not line or line.startswith("#"):
        return None
    if line.startswith(("-r ", "--requirement")):
        return None
    if line.startswith("-") or "--hash" in line:
        raise NotFastLockable(f"{where}: an option ({line.split()[0]})")
    return line


def _line_pin(line: str, where: str, env: dict[str, str]) -> tuple[str, frozenset[str], str] | None:
    """(name, extras, version) a line pins with ``==``; ``None`` when its marker is false for
    the target; :class:`NotFastLockable` for anything but one exact pin."""
    plain = _plain_pin(line)
    if plain is not None:
        return plain
    from packaging.requirements import InvalidRequirement

    try:
        req = _requirement(line)
    except InvalidRequirement as exc:
        raise NotFastLockable(f"{where}: {exc}") from None
    if req.marker is not None and not req.marker.evaluate(env):
        return None
    specs = list(req.specifier)
    if req.url or len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
        raise NotFastLockable(f"{where}: {req.name} is not pinned with ==")
    return req.name, frozenset(req.extras), specs[0].version


def _add_pin(
    pins: dict[str, _Pin], raw_name: str, raw_extras: frozenset[str], version: str
) -> None:
    """Add a pin to ``pins``, extras merged; :class:`NotFastLockable` for two versions."""
    name = _canonical_name(raw_name)
    old = pins.get(name)
    if old is not None and old.version != version:
        raise NotFastLockable(f"{name} is pinned twice")
    extras = raw_extras | (old.extras if old else frozenset())
    pins[name] = _Pin(name, version, extras)


def target_environment(platform: str, python: str) -> dict[str, str]:
    """PEP 508 marker values of a Debian image for ``platform`` running CPython ``python``."""
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": wheel_arch(platform),
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "implementation_version": f"{python}.0",
        "platform_release": "",
        "platform_version": "",
        "extra": "",
    }


@dataclass(frozen=True)
class _Release:
    """A pinned release's files (as lock text) and its dependencies."""

    pin: _Pin
    block: str  # the [[packages]] entry
    requires_dist: tuple[str, ...]
    metadata_url: str = ""  # empty when the index serves no PEP 658 metadata for ``best``
    best: LockedFile | None = None  # the wheel the target installs


def _toml_str(text: str) -> str:
    return tomli_w.dumps({"x": text}).split(" = ", 1)[1].strip()


def _file_entry(f: dict[str, Any]) -> str:
    uploaded = str(f.get("upload-time") or "")
    uploaded = re.sub(r"\.\d+", "", uploaded).replace("+00:00", "Z")
    if uploaded and not uploaded.endswith("Z"):
        uploaded += "Z"
    sha = str(f["hashes"]["sha256"])
    parts = [f"url = {_toml_str(str(f['url']))}"]
    if uploaded:
        parts.append(f"upload-time = {uploaded}")
    parts += [f"size = {int(f['size'])}", f'hashes = {{ sha256 = "{sha}" }}']
    return "{ " + ", ".join(parts) + " }"


def _version_text(filename: str) -> str | None:
    """The version's text in a file name, cut out as packaging's filename parsers cut it;
    ``None`` for a name no wheel can have."""
    if filename.endswith(".whl"):
        if not 4 <= filename.count("-") <= 5:
            return None  # not a wheel name: packaging would refuse it
        start = filename.index("-") + 1
        return filename[start : filename.index("-", start)]
    return filename.rpartition("-")[2].removesuffix(".zip").removesuffix(".tar.gz")


def _is_release_file(f: dict[str, Any], filename: str, wanted: Version) -> bool:
    """Whether an index file is one of the pinned release's: not yanked, from PyPI's file
    host, and named with exactly that version."""
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    if f.get("yanked") or not str(f.get("url", "")).startswith(_PYPI_FILES):
        return False
    try:
        if filename.endswith(".whl"):
            version = parse_wheel_filename(filename)[1]
        else:
            version = parse_sdist_filename(filename)[1]
    except ValueError:
        return False
    return version == wanted


def _check_requires_python(f: dict[str, Any], pin: _Pin, python: str) -> None:
    """:class:`NotFastLockable` when the file's ``requires-python`` excludes ``python``."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    requires_python = f.get("requires-python")
    if not requires_python:
        return
    try:
        ok = SpecifierSet(requires_python).contains(f"{python}.0", prereleases=True)
    except InvalidSpecifier:
        ok = False
    if not ok:
        raise NotFastLockable(f"{pin.name} {pin.version} requires Python {requires_python}")


def _release_block(
    pin: _Pin, sdists: Sequence[dict[str, Any]], wheels: list[dict[str, Any]]
) -> str:
    """The ``[[packages]]`` entry uv writes: the first sdist, the wheels sorted by name."""
    lines = ["[[packages]]", f'name = "{pin.name}"', f"version = {_toml_str(pin.version)}"]
    if sdists:
        lines.append(f"sdist = {_file_entry(sdists[0])}")
    wheels.sort(key=lambda f: str(f["filename"]))
    if len(wheels) == 1:
        lines.append(f"wheels = [{_file_entry(wheels[0])}]")
    else:
        lines.append("wheels = [")
        lines += [f"    {_file_entry(w)}," for w in wheels]
        lines.append("]")
    return "\n".join(lines)


def _release_files(pin: _Pin, index: dict[str, Any], inputs: LockInputs) -> _Release:
    """The lock entry uv writes for ``pin`` (its sdist and the wheels the target can use) from
    the project's PEP 691 page; ``requires_dist`` is filled in by the caller."""
    from packaging.version import InvalidVersion, Version

    ranks = supported_tags(inputs.platform, inputs.python)
    try:
        wanted = Version(pin.version)
    except InvalidVersion:
        raise NotFastLockable(f"{pin.name}: {pin.version!r} is not a version") from None
    seen: dict[str, bool] = {}  # version text → is it ``wanted``? (a few hundred per page)

    def wanted_text(text: str) -> bool:
        if text not in seen:
            try:
                seen[text] = Version(text) == wanted
            except InvalidVersion:
                seen[text] = False
        return seen[text]

    sdists, wheels = [], []
    for f in index.get("files") or []:
        filename = str(f.get("filename", ""))
        # The version's text is checked first: a page may list thousands of files
        # (pydantic-core's), each name a full parse.
        text = _version_text(filename)
        if text is None or not wanted_text(text) or not _is_release_file(f, filename, wanted):
            continue
        _check_requires_python(f, pin, inputs.python)
        if not filename.endswith(".whl"):
            sdists.append(f)
        elif wheel_rank(filename, ranks) is not None:
            wheels.append(f)
    if not wheels:
        # an sdist-only pin's dependencies are known only by building it: uv's job
        raise NotFastLockable(f"{pin.name} {pin.version} has no wheel for {inputs.platform}")
    block = _release_block(pin, sdists, wheels)
    best = min(wheels, key=lambda f: wheel_rank(str(f["filename"]), ranks) or 0)
    chosen = LockedFile(
        filename=str(best["filename"]),
        sha256=str(best["hashes"]["sha256"]),
        url=str(best["url"]),
        size=int(best["size"]),
    )
    # PEP 714 (``core-metadata``; the older ``data-dist-info-metadata``): without it the index
    # has no .metadata file, and asking would cost a round trip for a 404
    served = best.get("core-metadata") or best.get("data-dist-info-metadata")
    metadata_url = str(best["url"]) + ".metadata" if served else ""
    return _Release(pin, block, (), metadata_url, chosen)


def _fetch_releases(
    pins: Sequence[_Pin],
    inputs: LockInputs,
    index: Index,
    *,
    wheels: bool = False,
    landed: Landed | None = None,
) -> list[_Release]:
    """The releases of ``pins`` from the index (two requests each, all in parallel, through
    ``index``'s client).

    The second request is the chosen wheel's PEP 658 metadata, or, with ``wheels`` (the caller
    installs them next) or when the index has no metadata file, the wheel itself, fetched into
    the wheelhouse: its METADATA is read from it and the build finds it there. ``landed`` is
    called with each such wheel's sha256 and path as soon as it is verified.

    The second request waits on the first only for what the index says now. When the project's
    page from an earlier lock already lists the pinned version, the second request is made
    from it at once, beside the first, and kept only if the fresh page picks the very same
    file (name, URL, size and sha256): the lock is the fresh page's either way, and a guess the
    fresh page disagrees with is dropped unseen by ``landed``."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    if not pins:
        return []

    def get(client: httpx.Client, url: str, accept: str) -> httpx.Response:
        try:
            response = _ask(client, url, accept)
        except httpx.HTTPError as exc:
            raise NotFastLockable(f"{url}: {exc}") from None
        if response.status_code != 200:
            raise NotFastLockable(f"{url}: HTTP {response.status_code}")
        return response

    def second(client: httpx.Client, release: _Release) -> tuple[str, Path | None]:
        """The release's METADATA, and the wheel's path when the wheel was fetched for it."""
        if release.metadata_url and not wheels:
            response = _ask(client, release.metadata_url)
            if response.status_code == 200:
                return response.text, None
        return _wheel_and_metadata(release.best, index)

    def one(client: httpx.Client, pin: _Pin) -> _Release:
        known: Future[_Release | None] = Future()

        def guess() -> tuple[str, Path | None] | None:
            kept = None
            try:
                kept = _known_release(pin, inputs)
            finally:  # also on an unexpected error, so that nobody waits forever
                known.set_result(kept)
            return None if kept is None else second(client, kept)

        # the kept page is read on another thread, so the index request goes out first
        early = guesses.submit(guess)
        response = get(client, PYPI_SIMPLE.format(name=pin.name), _SIMPLE_JSON)
        release = _release_files(pin, response.json(), inputs)
        _keep_page(pin.name, response.content)
        answer = None
        if known.result() == release:
            try:
                answer = early.result()
                assert answer is not None  # a guess was made: it matched
            except Exception as exc:  # asked again just below, where errors are reported
                log.debug("%s: the request made from the kept page failed (%s)", pin.name, exc)
        if answer is None:
            answer = second(client, release)
        metadata, wheel = answer
        if wheel is not None and landed is not None and release.best is not None:
            landed(release.best.sha256, wheel)
        # beside a fetched wheel they are kept, so the next lock need not open the zip
        requires = _keep_requires(wheel, metadata) if wheel is not None else _requires(metadata)
        return dataclasses.replace(release, requires_dist=requires)

    client = index.client()
    guesses = ThreadPoolExecutor(max_workers=min(8, len(pins)), thread_name_prefix="guess")
    try:
        with ThreadPoolExecutor(max_workers=min(8, len(pins))) as pool:
            return list(pool.map(lambda p: one(client, p), pins))
    finally:
        guesses.shutdown(wait=False, cancel_futures=True)  # a dropped guess is not waited for


def _page_path(name: str) -> Path:
    from wheeldock.edges.paths import cache_root

    return cache_root() / "index" / "pypi.org" / f"{name}.json"


def _keep_page(name: str, content: bytes) -> None:
    """Keep a project's index page for :func:`_known_release`. Best effort and not fsynced: a
    page lost or torn is only a guess not made."""
    from wheeldock.edges.fsutil import atomic_write_bytes

    with contextlib.suppress(OSError, WheeldockError):
        atomic_write_bytes(_page_path(name), content, durable=False)


def _known_release(pin: _Pin, inputs: LockInputs) -> _Release | None:
    """The release ``pin`` had on its project's kept page (None without a page, or when the
    page does not list that version for the target). Only a guess at what the index says now."""
    import json

    try:
        page = json.loads(_page_path(pin.name).read_bytes())
        return _release_files(pin, page, inputs) if isinstance(page, dict) else None
    except (OSError, ValueError, NotFastLockable, KeyError, TypeError):
        return None


def _wheel_and_metadata(wheel: LockedFile | None, index: Index) -> tuple[str, Path]:
    """The METADATA of ``wheel`` and its path in the wheelhouse, fetched (hash-checked) there
    if missing."""
    import zipfile

    from wheeldock.deps.wheelhouse import Artifact, Wheelhouse
    from wheeldock.errors import WheeldockError

    if wheel is None:
        raise NotFastLockable("no wheel to read the metadata of")
    try:
        house = Wheelhouse(index=index)
        path = house.fetch(
            [Artifact("?", "?", wheel, "wheel")], platform=DEFAULT_PLATFORM, python="3.11"
        )[0]
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            return zf.read(name).decode(errors="replace"), path
    except (WheeldockError, OSError, zipfile.BadZipFile, StopIteration) as exc:
        raise NotFastLockable(f"{wheel.filename}: cannot read its metadata ({exc})") from None


def _local_requires(pkg: LockedPackage) -> tuple[str, ...] | None:
    """Requires-Dist of a locked package from its wheel in the wheelhouse cache, if there.

    Kept beside the wheel once read (``requires-dist.json``): a wheel's METADATA never changes,
    and a one-pin bump need not open two dozen zips and parse their headers again."""
    import json
    import zipfile

    from wheeldock.deps.wheelhouse import Wheelhouse

    house = Wheelhouse()
    for wheel in pkg.wheels:
        path = house.path(wheel)
        sidecar = path.with_name(_REQUIRES_SIDECAR)
        try:
            cached = json.loads(sidecar.read_text())
            if isinstance(cached, list) and path.is_file():
                return tuple(str(line) for line in cached)
        except (OSError, ValueError):
            pass
        if not path.is_file():
            continue
        try:
            with zipfile.ZipFile(path) as zf:
                name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
                text = zf.read(name).decode(errors="replace")
        except (OSError, zipfile.BadZipFile, StopIteration):
            continue
        return _keep_requires(path, text)
    return None


#: Beside a wheel in the wheelhouse: its METADATA's Requires-Dist, as a JSON list.
_REQUIRES_SIDECAR = "requires-dist.json"


def _requires(metadata: str) -> tuple[str, ...]:
    """The Requires-Dist lines of a METADATA file."""
    from email.parser import HeaderParser

    return tuple(str(r) for r in HeaderParser().parsestr(metadata).get_all("Requires-Dist") or ())


def _keep_requires(wheel: Path, metadata: str) -> tuple[str, ...]:
    """The Requires-Dist of ``metadata`` (``wheel``'s), also kept beside the wheel for
    :func:`_local_requires`. Not fsynced: a sidecar lost or torn is read from the wheel again."""
    import json

    from wheeldock.edges.fsutil import atomic_write_text

    requires = _requires(metadata)
    with contextlib.suppress(OSError, WheeldockError):  # a read-only cache still works, slower
        atomic_write_text(
            wheel.with_name(_REQUIRES_SIDECAR), json.dumps(list(requires)), durable=False
        )
    return requires


def _check_closed(
    pins: dict[str, _Pin], requires: dict[str, tuple[str, ...]], env: dict[str, str]
) -> None:
    """Every dependency (markers evaluated for the target, with each extra asked of a package)
    is a pinned package whose pin satisfies it; else :class:`NotFastLockable`."""
    from packaging.utils import canonicalize_name

    extras = {name: set(pin.extras) for name, pin in pins.items()}
    changed = True
    while changed:  # extras asked by dependencies can ask for more extras
        changed = False
        for name, lines in requires.items():
            for line in lines:
                req = _requirement(line)
                wanted = ["", *sorted(extras[name])]
                if req.marker is not None and not any(
                    req.marker.evaluate({**env, "extra": e}) for e in wanted
                ):
                    continue
                dep = canonicalize_name(req.name)
                pin = pins.get(dep)
                if pin is None:
                    raise NotFastLockable(f"{name} needs {req}, which is not pinned")
                if not req.specifier.contains(pin.version, prereleases=True):
                    raise NotFastLockable(f"{name} needs {req}, but {dep}=={pin.version} is pinned")
                if not set(req.extras) <= extras[dep]:
                    extras[dep] |= set(req.extras)
                    changed = True


def fast_lock(
    root: Path,
    inputs: LockInputs,
    dest: Path,
    old: Lock | None,
    *,
    session: LockSession,
    wheels: bool = False,
    landed: Landed | None = None,
) -> Lock:
    """Lock fully pinned ``inputs`` without a resolver; :class:`NotFastLockable` when it cannot
    be exact. Only pins not in ``old`` (same platform and Python) are asked of PyPI (through
    ``session``, which may hold the answers already: :meth:`LockSession.ask_early`); with
    ``wheels`` (a build, which installs them next) their wheels are fetched rather than their
    metadata files, and ``landed`` hears of each (see :func:`_fetch_releases`)."""
    pins = pinned_requirements(root, inputs)
    env = target_environment(inputs.platform, inputs.python)
    reuse, blocks, ask = _reuse_or_ask(pins, inputs, old)
    requires: dict[str, tuple[str, ...]] = {}
    # The index requests go first, on their own thread: the cached packages' requirements are
    # read while the new pins' answers are on the way.
    with ThreadPoolExecutor(max_workers=1) as background:
        early = session.take_early(inputs.digest, ask) if wheels else None
        if early is not None:
            fetching = background.submit(_take_early, early, ask, inputs, session.index, landed)
        else:
            fetching = background.submit(
                _fetch_releases, ask, inputs, session.index, wheels=wheels, landed=landed
            )
        unknown: list[_Pin] = []
        for name, pkg in reuse.items():
            local = _local_requires(pkg)
            if local is None:
                unknown.append(pins[name])  # no wheel in the cache: its metadata comes from PyPI
            else:
                requires[name] = local
                for line in local:  # parsed now, for the closure check, while the index answers
                    with contextlib.suppress(ValueError):  # the check reports bad lines
                        _requirement(line)
        releases = fetching.result()
    releases += _fetch_releases(unknown, inputs, session.index, wheels=wheels, landed=landed)
    for release in releases:
        requires[release.pin.name] = release.requires_dist
        if release.pin.name not in reuse:
            blocks[release.pin.name] = release.block
    _check_closed(pins, requires, env)
    body = _lock_text("pinned inputs, no resolver needed", blocks, sorted(blocks), inputs)
    return _write_lock(root, dest, body, inputs)


def _lock_text(
    how: str, blocks: Mapping[str, str], names: Sequence[str], inputs: LockInputs
) -> str:
    """A lock wheeldock wrote itself: its header (``how`` it was made) and the package blocks
    of ``names``, in that order."""
    header = (
        f"# This file was autogenerated by wheeldock ({how}):\n"
        "#    wheeldock lock\n"
        'lock-version = "1.0"\n'
        'created-by = "wheeldock"\n'
        f'requires-python = ">={inputs.python}"\n'
    )
    return header + "".join("\n" + blocks[n] + "\n" for n in names)


def _reuse_or_ask(
    pins: dict[str, _Pin], inputs: LockInputs, old: Lock | None
) -> tuple[dict[str, LockedPackage], dict[str, str], tuple[_Pin, ...]]:
    """The packages of ``old`` still pinned at the same version (same platform and Python,
    files on PyPI) with their lock blocks, and the other pins, in name order: the ones a fast
    lock asks the index for (:meth:`LockSession.ask_early` asks the same question)."""
    reuse: dict[str, LockedPackage] = {}
    blocks: dict[str, str] = {}
    if old is not None and (old.platform, old.python) == (inputs.platform, inputs.python):
        from packaging.utils import canonicalize_name

        old_blocks = _old_blocks(old)
        for pkg in old.packages:
            name: str = canonicalize_name(pkg.name)
            pin = pins.get(name)
            urls = [f.url or "" for f in (*pkg.wheels, *([pkg.sdist] if pkg.sdist else []))]
            if (
                pin is not None
                and pin.version == pkg.version
                and name in old_blocks
                and all(u.startswith(_PYPI_FILES) for u in urls)
            ):
                reuse[name] = pkg
                blocks[name] = old_blocks[name]
    return reuse, blocks, tuple(p for n, p in sorted(pins.items()) if n not in reuse)


def _old_blocks(old: Lock) -> dict[str, str]:
    """The ``[[packages]]`` entries of ``old`` as written, by canonical name."""
    from packaging.utils import canonicalize_name

    blocks: dict[str, str] = {}
    for block in packages_part(old.text).split("[[packages]]\n")[1:]:
        match = re.match(r'name = "([^"]+)"', block)
        if match:
            blocks[canonicalize_name(match.group(1))] = "[[packages]]\n" + block.rstrip("\n")
    return blocks


class _Relay:
    """Holds the wheels an early fetch lands until the build says where they go, then passes
    them (and those landing later) on: a cold build installs each wheel as it lands."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[tuple[str, Path]] = []
        self._to: Landed | None = None

    def __call__(self, sha256: str, path: Path) -> None:
        with self._lock:
            to = self._to
            if to is None:
                self._held.append((sha256, path))
                return
        to(sha256, path)

    def forward(self, to: Landed) -> None:
        with self._lock:
            held, self._held, self._to = self._held, [], to
        for sha256, path in held:
            to(sha256, path)


class LockSession:
    """What one command's locks share: the index client (:class:`Index`) and the index
    answers a build asked for before importing its own machinery (:meth:`ask_early`), by
    (inputs digest, pins asked); :func:`fast_lock` takes the one that matches its question.

    Made once per command (``build --watch`` keeps it, so its connections stay warm)."""

    def __init__(self, index: Index | None = None) -> None:
        self.index = index if index is not None else Index()
        self._asked_early: dict[
            tuple[str, tuple[_Pin, ...]], tuple[Future[list[_Release]], _Relay]
        ] = {}

    def close(self) -> None:
        """Close the index client's connections."""
        self.index.close()

    def ask_early(
        self, project: Project, services: Sequence[Service], *, platform: str
    ) -> frozenset[str]:
        """Start the index requests a build's fast lock will make, now.

        A bumped pin's build waits on two requests in a row (the index page, then the wheel).
        Asked here, at the start of ``build``, they travel while the builder's modules import
        (CPU work that would otherwise come first). Only the HTTPS client is made on this
        thread (the requests need it, and the lock would make it anyway); the requests run on
        another. Best effort: a service whose lock is fresh, or whose inputs the fast path cannot
        lock, is skipped, and a failed request is made again by the lock, which reports it.

        Returns the Python versions (of the locks' inputs) whose wheels were asked for: the build
        will install them, so it can start what that needs."""
        questions: dict[tuple[str, tuple[_Pin, ...]], LockInputs] = {}
        for svc in services:
            try:
                inputs = inputs_for(project.root, svc, platform)
                path = lock_path(project.root, svc.name, platform)
                if status(path, inputs) == "fresh":
                    continue
                pins = pinned_requirements(project.root, inputs)
                old = read(path) if path.is_file() else None
            except (NotFastLockable, WheeldockError):
                continue  # the lock says why, at its turn
            _, _, ask = _reuse_or_ask(pins, inputs, old)
            if ask and (inputs.digest, ask) not in self._asked_early:
                questions[(inputs.digest, ask)] = inputs
        if not questions:
            return frozenset()
        self.index.client()
        pool = ThreadPoolExecutor(max_workers=len(questions), thread_name_prefix="ask-early")
        for (digest, ask), inputs in questions.items():
            relay = _Relay()
            future = pool.submit(
                _fetch_releases, ask, inputs, self.index, wheels=True, landed=relay
            )
            self._asked_early[(digest, ask)] = (future, relay)
        pool.shutdown(wait=False)
        return frozenset(inputs.python for inputs in questions.values())

    def take_early(
        self, digest: str, ask: tuple[_Pin, ...]
    ) -> tuple[Future[list[_Release]], _Relay] | None:
        """The answers :meth:`ask_early` started for this question (given once), or None."""
        return self._asked_early.pop((digest, ask), None)

    def asked_early(self) -> list[tuple[str, tuple[_Pin, ...]]]:
        """The questions asked early and not taken yet, as (inputs digest, pins asked)."""
        return list(self._asked_early)


def _take_early(
    early: tuple[Future[list[_Release]], _Relay],
    ask: Sequence[_Pin],
    inputs: LockInputs,
    index: Index,
    landed: Landed | None,
) -> list[_Release]:
    """The releases :meth:`LockSession.ask_early` is fetching; ``landed`` hears of their wheels, those
    already there at once. If the early requests failed, they are made again (a wheel that
    did land is then taken from the wheelhouse)."""
    future, relay = early
    if landed is not None:
        relay.forward(landed)
    try:
        return future.result()
    except Exception as exc:  # made again below, where errors are reported
        log.debug("the early index requests failed (%s); asking again", exc)
        return _fetch_releases(ask, inputs, index, wheels=True, landed=landed)


def _write_lock(root: Path, dest: Path, body: str, inputs: LockInputs) -> Lock:
    body = pin_hashes(body, hash_pins(root, [name for name, _ in inputs.files]), root, dest)
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
    lines = _top_lines(root, inputs)
    if lines is not None:
        tool["tool"]["wheeldock"]["requirements"] = list(lines)
    text = body.rstrip("\n") + "\n\n" + tomli_w.dumps(tool)
    atomic_write_text(dest, text)
    return parse(text, dest)


def try_fast_lock(
    root: Path,
    inputs: LockInputs,
    dest: Path,
    *,
    session: LockSession,
    wheels: bool = False,
    landed: Landed | None = None,
) -> Lock | None:
    """:func:`fast_lock` with the lock at ``dest`` (if readable) as the old one; None (logged)
    when the inputs need the resolver. :class:`IndexUnreachable` when PyPI does not answer,
    unless uv is pointed at another index (``UV_DEFAULT_INDEX``…): then uv is left to try it."""
    old: Lock | None
    try:
        old = read(dest)
    except (NotFound, InvalidConfig):
        old = None
    return _without_resolver(
        dest,
        lambda: fast_lock(root, inputs, dest, old, session=session, wheels=wheels, landed=landed),
        (NotFastLockable,),
        ("resolving with uv", "locked from the pins (no resolver)"),
    )


def _without_resolver(
    dest: Path,
    attempt: Callable[[], Lock],
    not_here: tuple[type[Exception], ...],
    said: tuple[str, str],
) -> Lock | None:
    """``attempt()`` under the lock folder's lock; None (logged with ``said[0]``) when it raises
    one of ``not_here`` (uv must resolve), or :class:`IndexUnreachable` while uv is pointed at
    another index (``UV_DEFAULT_INDEX``…, which uv is then left to try)."""
    try:
        with folder_lock(dest.parent):
            lock = attempt()
    except not_here as exc:
        log.info("%s: %s (%s)", dest.name, said[0], exc)
        return None
    except IndexUnreachable as exc:
        if not any(os.environ.get(name) for name in _UV_INDEX_ENV):
            raise
        log.info("%s: resolving with uv, which asks its own index (%s)", dest.name, exc.what)
        return None
    log.info("%s: %s", dest.name, said[1])
    return lock


# -- incremental re-lock: the last lock, updated where versions moved -----------------------------


def _top_lines(root: Path, inputs: LockInputs) -> tuple[str, ...] | None:
    """The inputs' requirement lines as written (comments, blank lines and ``-r`` includes left
    out; continued lines joined), recorded in the lock for :func:`incremental_lock`. None for
    inputs that are not plain requirements files (options, hashes, constraints, no-binary, a
    pyproject.toml or a project's lock): their locks are never updated in place."""
    if inputs.constraints or inputs.no_binary or inputs.groups or inputs.package:
        return None
    lines: list[str] = []
    for rel, _ in inputs.files:
        if project_lock(rel) is not None or rel.endswith(".toml"):
            return None
        try:
            for number, raw in enumerate(_pins_text(root, rel).splitlines(), 1):
                line = _requirement_line(raw, f"{rel}:{number}")
                if line:
                    lines.append(line)
        except (NotFastLockable, OSError, WheeldockError):
            return None
    return tuple(lines)


def _top_level_pinned(old: Lock) -> bool:
    """Whether ``old`` records its requirements and locks packages they do not name (their
    dependencies were left to the resolver): such a lock is updated by :func:`incremental_lock`;
    one whose every package is a requirement, by :func:`fast_lock`."""
    from wheeldock.deps import relock  # packaging's parsers: imported when needed

    if old.requirements is None:
        return False
    from packaging.utils import canonicalize_name

    try:
        named = {canonicalize_name(relock.parse_requirement(r).name) for r in old.requirements}
    except relock.NotIncremental:
        return False
    return any(canonicalize_name(p.name) not in named for p in old.packages)


def _moves(root: Path, inputs: LockInputs, old: Lock) -> Moves:
    """What moved between the requirements ``old`` was made from and ``inputs``'
    (:func:`wheeldock.deps.relock.version_moves`); :class:`~wheeldock.deps.relock.InputsChanged`
    when they differ by more than versions, or ``old`` cannot tell."""
    from wheeldock.deps import relock  # packaging's parsers: imported when needed

    if (old.platform, old.python, old.no_binary) != (
        inputs.platform,
        inputs.python,
        inputs.no_binary,
    ):
        raise relock.InputsChanged("the platform, Python version or no-binary changed")
    lines = _top_lines(root, inputs)
    if old.requirements is None or lines is None:
        raise relock.InputsChanged(
            "the lock or the inputs record no plain requirement lines to compare"
        )
    env = target_environment(inputs.platform, inputs.python)
    from packaging.utils import canonicalize_name

    locked: dict[str, str] = {canonicalize_name(p.name): p.version for p in old.packages}
    new = relock.top_requirements(lines, env)
    return relock.version_moves(relock.top_requirements(old.requirements, env), new, locked)


def only_versions_moved(root: Path, inputs: LockInputs, old: Lock | None) -> bool:
    """Whether ``inputs`` differ from the requirements ``old`` was made from only by version
    specifiers (the same packages, extras and markers): a lock that uv may re-resolve with the
    old pins as its preferences, as ``uv run`` re-locks."""
    from wheeldock.deps import relock  # packaging's parsers: imported when needed

    if old is None:
        return False
    try:
        _moves(root, inputs, old)
    except relock.InputsChanged:
        return False
    except relock.NotIncremental:
        return True  # e.g. a range that excludes the locked version: uv chooses in it
    return True


def incremental_lock(
    root: Path,
    inputs: LockInputs,
    dest: Path,
    old: Lock,
    *,
    session: LockSession,
    wheels: bool = False,
    landed: Landed | None = None,
) -> Lock:
    """``old`` updated in place for ``inputs``, which differ from the requirements it was made
    from only by versions moving; :class:`~wheeldock.deps.relock.NotIncremental` when that
    cannot be exact (then uv resolves).

    Only the moved packages are asked of the index (their files and metadata, as
    :func:`fast_lock` asks; with ``wheels`` their wheels, heard of by ``landed``); the other
    packages' ``Requires-Dist`` come from the wheelhouse or their PEP 658 metadata files
    (:func:`_locked_requires`). The lock is written only if every dependency the requirements
    reach is locked at a version that meets it (:func:`wheeldock.deps.relock.closure`);
    packages nothing needs any more are left out."""
    from packaging.utils import canonicalize_name

    from wheeldock.deps import relock  # packaging's parsers: imported when needed

    moves = _moves(root, inputs, old)
    env = target_environment(inputs.platform, inputs.python)
    packages = {canonicalize_name(p.name): p for p in old.packages}
    ask = tuple(_Pin(n, v, moves.top[n].extras) for n, v in sorted(moves.versions.items()))
    with ThreadPoolExecutor(max_workers=1) as background:
        fetching = background.submit(_fetch_moved, ask, inputs, session, wheels, landed)
        kept = [p for n, p in packages.items() if n not in moves.versions]
        requires = _locked_requires(kept, inputs, session.index)
        releases = fetching.result()
    versions: dict[str, str] = {n: p.version for n, p in packages.items()}
    versions.update(moves.versions)
    blocks = _old_blocks(old)
    for release in releases:
        requires[release.pin.name] = release.requires_dist
        blocks[release.pin.name] = release.block
    needed = relock.closure(moves.top, versions, requires, env)
    body = _lock_text("the last lock, updated where versions moved", blocks, sorted(needed), inputs)
    return _write_lock(root, dest, body, inputs)


def _fetch_moved(
    ask: tuple[_Pin, ...],
    inputs: LockInputs,
    session: LockSession,
    wheels: bool,
    landed: Landed | None,
) -> list[_Release]:
    """The moved pins' releases: the answers :meth:`LockSession.ask_early` got for this very
    question if a build asked it, else asked now."""
    early = session.take_early(inputs.digest, ask) if wheels else None
    if early is not None:
        return _take_early(early, ask, inputs, session.index, landed)
    return _fetch_releases(ask, inputs, session.index, wheels=wheels, landed=landed)


def _locked_requires(
    packages: Sequence[LockedPackage], inputs: LockInputs, index: Index
) -> dict[str, tuple[str, ...]]:
    """The ``Requires-Dist`` of locked packages, by canonical name: from the wheelhouse or
    wheeldock's metadata cache when there, else from the PEP 658 metadata file of the wheel
    the target installs (the wheel itself when the index has none), asked in parallel and
    kept. :class:`~wheeldock.deps.relock.NotIncremental` for a package without such a wheel."""
    from packaging.utils import canonicalize_name

    from wheeldock.deps import relock  # packaging's parsers: imported when needed

    found: dict[str, tuple[str, ...]] = {}
    missing: list[tuple[str, LockedFile]] = []
    ranks = supported_tags(inputs.platform, inputs.python)
    for pkg in packages:
        name: str = canonicalize_name(pkg.name)
        local = _local_requires(pkg)
        best = _best_wheel(pkg, ranks)
        if local is None and best is not None:
            local = _cached_requires(best)
        if local is not None:
            found[name] = local
        elif best is None or not (best.url or "").startswith(_PYPI_FILES):
            raise relock.NotIncremental(f"{pkg.name} {pkg.version} has no index wheel to read")
        else:
            missing.append((name, best))
    if missing:
        client = index.client()
        with ThreadPoolExecutor(max_workers=min(8, len(missing))) as pool:
            fetched = pool.map(lambda m: _metadata_requires(client, m[1], index), missing)
            found.update(zip((n for n, _ in missing), fetched, strict=True))
    return found


def _best_wheel(pkg: LockedPackage, ranks: dict[Tag, int]) -> LockedFile | None:
    """The locked wheel of ``pkg`` the target prefers (None: none it can install)."""
    usable = [(rank, w) for w in pkg.wheels if (rank := wheel_rank(w.filename, ranks)) is not None]
    return min(usable, key=lambda rw: rw[0])[1] if usable else None


def _metadata_requires(client: httpx.Client, wheel: LockedFile, index: Index) -> tuple[str, ...]:
    """A wheel's ``Requires-Dist`` from its PEP 658 metadata file, else from the wheel (fetched
    into the wheelhouse); kept in wheeldock's metadata cache (:func:`_cached_requires`)."""
    from wheeldock.deps import relock  # packaging's parsers: imported when needed

    response = _ask(client, f"{wheel.url}.metadata")
    if response.status_code == 200:
        requires = _requires(response.text)
    else:
        try:
            requires = _requires(_wheel_and_metadata(wheel, index)[0])
        except NotFastLockable as exc:
            raise relock.NotIncremental(str(exc)) from None
    _keep_cached_requires(wheel, requires)
    return requires


def _requires_path(wheel: LockedFile) -> Path:
    from wheeldock.edges.paths import cache_root

    return cache_root() / "requires-dist" / f"{wheel.sha256}.json"


def _cached_requires(wheel: LockedFile) -> tuple[str, ...] | None:
    """The ``Requires-Dist`` kept for the wheel of this sha256 (a file's metadata never
    changes), or None."""
    import json

    try:
        cached = json.loads(_requires_path(wheel).read_text())
    except (OSError, ValueError):
        return None
    return tuple(str(line) for line in cached) if isinstance(cached, list) else None


def _keep_cached_requires(wheel: LockedFile, requires: tuple[str, ...]) -> None:
    """Best effort and not fsynced: a file lost or torn is asked of the index again."""
    import json

    with contextlib.suppress(OSError, WheeldockError):
        atomic_write_text(_requires_path(wheel), json.dumps(list(requires)), durable=False)


def _readable_lock(dest: Path) -> Lock | None:
    try:
        return read(dest)
    except (NotFound, InvalidConfig):
        return None


def try_incremental_lock(
    root: Path,
    inputs: LockInputs,
    dest: Path,
    old: Lock,
    *,
    session: LockSession,
    wheels: bool = False,
    landed: Landed | None = None,
) -> Lock | None:
    """:func:`incremental_lock`, or None (logged) when uv must resolve. Errors reaching the
    index are handled as :func:`try_fast_lock` handles them."""
    from wheeldock.deps import relock  # packaging's parsers: imported when needed

    return _without_resolver(
        dest,
        lambda: incremental_lock(
            root, inputs, dest, old, session=session, wheels=wheels, landed=landed
        ),
        (relock.NotIncremental, NotFastLockable),
        (
            "resolving with uv, the last lock as preferences",
            "the last lock updated where versions moved (no resolver)",
        ),
    )


def quick_lock(
    root: Path,
    inputs: LockInputs,
    dest: Path,
    *,
    session: LockSession,
    wheels: bool = False,
    landed: Landed | None = None,
) -> tuple[Lock, Literal["pinned", "updated"]] | None:
    """The lock made without uv, if it can be exact, and how: ``pinned`` when every package is
    pinned (:func:`fast_lock`), or ``updated`` in place from the lock at ``dest`` when the inputs
    differ from its requirements only by versions moving (:func:`incremental_lock`). The
    update is tried first for a lock whose requirements left dependencies to the resolver (a
    bump of such inputs fails the fast path only after asking the index), the fast path first
    otherwise. None: uv must resolve."""
    old = _readable_lock(dest)
    top_level = old is not None and _top_level_pinned(old)
    if top_level and old is not None:
        updated = try_incremental_lock(
            root, inputs, dest, old, session=session, wheels=wheels, landed=landed
        )
        if updated is not None:
            return updated, "updated"
        if only_versions_moved(root, inputs, old):
            return None  # the versions the update could not make: uv's choice
    pinned = try_fast_lock(root, inputs, dest, session=session, wheels=wheels, landed=landed)
    if pinned is not None:
        return pinned, "pinned"
    if top_level or old is None or old.requirements is None:
        return None
    updated = try_incremental_lock(
        root, inputs, dest, old, session=session, wheels=wheels, landed=landed
    )
    return None if updated is None else (updated, "updated")
