"""What a cache prune may remove, and the removing: files and folders with their size and why.

Each cache chooses its own candidates (the package that owns the cache knows what its entries
mean); this module only measures, finds stale temp files and removes. Nothing younger than
:data:`GRACE` is ever a candidate: a build running meanwhile may have just written it and not yet
recorded it anywhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Seconds an entry is safe from a prune after its last write or read.
GRACE = 3600.0
DAY = 86400.0

#: Temp files the caches write before a rename: ``*.tmp`` (atomic writes), ``.download.*`` (the
#: wheelhouse), ``blob.*`` in the blob store's ``tmp/``. Left behind by ENOSPC or ``kill -9``.
TEMP_PREFIXES = (".download.",)


@dataclass(frozen=True)
class Candidate:
    """A file or folder a prune would remove: which cache (``kind``), its size, and why."""

    kind: str
    path: Path
    size: int
    reason: str


#: Days an entry that is still wanted stays after its last use, unless told otherwise.
KEEP_DAYS = 30.0


@dataclass(frozen=True)
class Age:
    """When a prune runs (``now``, epoch seconds) and how long an entry that is still wanted
    stays after its last use (``keep_seconds``)."""

    now: float
    keep_seconds: float = KEEP_DAYS * DAY

    @classmethod
    def of(cls, keep_days: float = KEEP_DAYS, now: float | None = None) -> Age:
        return cls(time.time() if now is None else now, keep_days * DAY)

    def idle(self, path: Path) -> float:
        """Seconds since ``path`` was last written or read (0 when it is gone)."""
        try:
            st = path.stat()
        except OSError:
            return 0.0
        return self.now - max(st.st_atime, st.st_mtime)

    def young(self, path: Path) -> bool:
        return self.idle(path) < GRACE

    def kept(self, path: Path) -> bool:
        """Whether ``path`` was used within :data:`GRACE` or ``keep_seconds``."""
        return self.idle(path) < max(GRACE, self.keep_seconds)


def size_of(path: Path) -> int:
    """Bytes a file or a folder's files take (apparent size; links not followed)."""
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_size
    except OSError:
        return 0
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # removed meanwhile
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def files(root: Path) -> Iterator[Path]:
    """Every file under ``root`` (none when it does not exist), in a stable order."""
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            yield Path(folder) / name


def is_temp(path: Path) -> bool:
    return (
        path.name.endswith(".tmp")
        or path.name.startswith(TEMP_PREFIXES)
        or (path.parent.name == "tmp" and path.name.startswith("blob."))
    )


def stale_temps(root: Path, age: Age) -> list[Candidate]:
    """Temp files under ``root`` (see :func:`is_temp`) untouched for more than :data:`GRACE`."""
    return [
        Candidate("temp files", path, size_of(path), "left by a build that stopped")
        for path in files(root)
        if is_temp(path) and not age.young(path)
    ]


def remove(candidates: Iterable[Candidate]) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
    """Remove each candidate; returns those removed and those that could not be (with why).
    A candidate already gone counts as removed."""
    done: list[Candidate] = []
    failed: list[tuple[Candidate, str]] = []
    for cand in candidates:
        try:
            if cand.path.is_dir() and not cand.path.is_symlink():
                shutil.rmtree(cand.path)
            else:
                cand.path.unlink(missing_ok=True)
            done.append(cand)
        except OSError as exc:
            log.warning("cannot remove %s (%s)", cand.path, exc.strerror)
            failed.append((cand, exc.strerror or str(exc)))
    return done, failed
