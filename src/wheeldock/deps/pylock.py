"""The lock file: wheeldock's PEP 751 ``pylock.<service>.toml``, read and parsed.

A lock names each distribution's files (wheels, an sdist) by URL or local path with their sha256
and size; wheeldock's own ``[tool.wheeldock]`` table (input hash, platform, Python, no-binary)
comes last, so the package section can be hashed on its own (:attr:`Lock.digest`). That table also
records the top-level requirement lines the lock was made from, for an incremental re-lock.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from wheeldock.deps.wheeltags import wheel_arch
from wheeldock.errors import InvalidConfig, NotFound

LOCK_DIR = "wheeldock.lock"
DEFAULT_PLATFORM = "linux/amd64"


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
    #: The inputs' top-level requirement lines it was made from (None: not recorded, for inputs
    #: that are not plain requirements files or a lock written before they were recorded).
    requirements: tuple[str, ...] | None = None

    @property
    def digest(self) -> str:
        """sha256 of the lock's package section: what the dependency layers depend on."""
        return "sha256:" + hashlib.sha256(packages_part(self.text).encode()).hexdigest()


TOOL_MARKER = "\n[tool.wheeldock]"


def packages_part(text: str) -> str:
    """The package section of a lock's text (what comes before wheeldock's own table)."""
    return text.split(TOOL_MARKER, 1)[0]


def lock_path(root: Path, service: str, platform: str = DEFAULT_PLATFORM) -> Path:
    """Where the lock of ``service`` for ``platform`` lives in the project at ``root``."""
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


@lru_cache(maxsize=8)
def _toml(text: str) -> dict[str, Any]:
    """``tomllib.loads``, once per text: twin services' locks (same text, other paths) are
    read by one build. Callers only read the result."""
    return tomllib.loads(text)


@lru_cache(maxsize=32)
def parse(text: str, path: Path) -> Lock:
    """Parse a pylock.toml; :class:`InvalidConfig` naming the file when it cannot be used.

    Memoised: services sharing a lock parse it once per process."""
    try:
        doc = _toml(text)
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
        requirements=(
            tuple(str(r) for r in tool["requirements"]) if "requirements" in tool else None
        ),
    )


def read(path: Path) -> Lock:
    """The lock at ``path``; :class:`NotFound` when there is none, :class:`InvalidConfig` when it is unusable."""
    try:
        return parse(path.read_text(), path)
    except FileNotFoundError:
        raise NotFound(f"lock file {path} does not exist", fix="run `wheeldock lock`") from None
