"""Where wheeldock keeps its caches: ``$WHEELDOCK_CACHE`` or ``$XDG_CACHE_HOME/wheeldock``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    explicit = os.environ.get("WHEELDOCK_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "wheeldock"


def cache_dir(*parts: str) -> Path:
    """A sub-folder of the cache, created on first use."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


#: tmpfs is used for staging only with this much room left, so a big stack cannot fill RAM.
_STAGING_MIN_FREE = 1 << 30
_STAGING_PREFIX = "wheeldock-staging-"


def staging_dir(parent: Path | None = None) -> Path:
    """A new private folder (in ``parent`` if given) for a build's short-lived files (installed
    trees before they are archived), removed by the caller.

    In RAM (``/dev/shm``) when it is a writable tmpfs with a GiB free, else in the cache. Why:
    an install makes ~80 files per wheel, and making files on a disk can be the costliest part
    of a cold build (docs/design/staging.md). Only one archive per wheel goes to the disk. ``$WHEELDOCK_STAGING`` picks the parent folder instead.
    Folders that builds killed with ``kill -9`` left behind are removed here (their process is
    gone)."""
    import tempfile

    explicit = os.environ.get("WHEELDOCK_STAGING")
    if parent is None:
        parent = Path(explicit) if explicit else _tmpfs() or cache_dir("staging")
    parent.mkdir(parents=True, exist_ok=True)
    _sweep(parent)
    return Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{os.getpid()}-", dir=parent))


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged process can still write in ``folder``'s file system (0 when it
    cannot be told)."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def _tmpfs() -> Path | None:
    shm = Path("/dev/shm")
    if free_bytes(shm) < _STAGING_MIN_FREE or not os.access(shm, os.W_OK):
        return None
    return shm


def _sweep(parent: Path) -> None:
    import shutil

    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        if not name.startswith(_STAGING_PREFIX):
            continue
        pid = name[len(_STAGING_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(parent / name, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    return True
