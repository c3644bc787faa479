"""Pruning: what the caches and the engine hold that no build of the project needs any more.

Each cache chooses its own candidates (:meth:`BlobStore.prune_candidates`,
:meth:`Wheelhouse.prune_candidates`, :meth:`InstalledTrees.prune_candidates`); this module
gathers them with the stale temp files (:func:`wheeldock.edges.sweep.stale_temps`) and the
dangling images wheeldock made in the engine (labelled :data:`LABEL_IMAGE` or
:data:`wheeldock.debian.bases.LABEL_BASE`), and removes them unless it is a dry run.

Contract: nothing used or written within :data:`wheeldock.edges.sweep.GRACE` is removed, so a
build running meanwhile keeps what it just made; an image a container still uses is kept
(and reported), never forced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wheeldock.build.builder import LABEL_IMAGE
from wheeldock.build.install import InstalledTrees
from wheeldock.build.sdists import BaseWheelhouse
from wheeldock.debian import listings
from wheeldock.debian.bases import LABEL_BASE
from wheeldock.deps.wheelhouse import named_by_locks
from wheeldock.edges import engine
from wheeldock.edges.paths import cache_root
from wheeldock.edges.sweep import KEEP_DAYS, Age, Candidate, remove, stale_temps
from wheeldock.errors import CommandFailed, ToolNotFound
from wheeldock.oci.blobs import BlobStore

log = logging.getLogger(__name__)

#: Labels that mark an image as wheeldock's: built services, and the bases.
IMAGE_LABELS = (LABEL_IMAGE, LABEL_BASE)


@dataclass(frozen=True)
class PruneOptions:
    """``keep_days``: entries still wanted stay this long after their last use; ``everything``:
    remove all (but what the grace protects); ``dry_run``: only say what would go."""

    keep_days: float = KEEP_DAYS
    everything: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class PruneReport:
    """What was removed (or, in a dry run, would be), and what could not be."""

    dry_run: bool
    files: tuple[Candidate, ...]
    images: tuple[engine.EngineImage, ...]
    failed: tuple[tuple[Candidate, str], ...] = ()
    kept_images: dict[str, str] = field(default_factory=dict)
    locks: tuple[Path, ...] = ()
    engine: bool = True

    def totals(self) -> list[tuple[str, int, int]]:
        """(kind, count, bytes) per cache, then the engine's images; kinds with nothing too."""
        rows: dict[str, list[int]] = {k: [0, 0] for k in KINDS}
        for cand in self.files:
            rows.setdefault(cand.kind, [0, 0])
            rows[cand.kind][0] += 1
            rows[cand.kind][1] += cand.size
        for image in self.images:
            rows[ENGINE_KIND][0] += 1
            rows[ENGINE_KIND][1] += image.size
        return [(kind, count, size) for kind, (count, size) in rows.items()]

    @property
    def freed(self) -> int:
        return sum(size for _, _, size in self.totals())

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "freed_bytes": self.freed,
            "totals": [{"kind": k, "count": c, "bytes": b} for k, c, b in self.totals()],
            "files": [
                {"kind": c.kind, "path": str(c.path), "bytes": c.size, "reason": c.reason}
                for c in self.files
            ],
            "images": [{"id": i.id, "bytes": i.size} for i in self.images],
            "failed": [{"path": str(c.path), "error": why} for c, why in self.failed],
            "kept_images": [{"id": i, "reason": why} for i, why in self.kept_images.items()],
            "locks": [str(p) for p in self.locks],
            "engine": self.engine,
        }


ENGINE_KIND = "dangling images"
KINDS = (
    "wheels",
    "installed trees",
    "blobs",
    "blob index",
    listings.KIND,
    "temp files",
    ENGINE_KIND,
)


def file_candidates(
    project: Path, options: PruneOptions, *, cache: Path | None = None, now: float | None = None
) -> tuple[list[Candidate], tuple[Path, ...]]:
    """What a prune removes from the caches under ``cache`` (default: the cache root), and the
    locks read under ``project`` (the files they name are kept)."""
    root = cache or cache_root()
    age = Age.of(options.keep_days, now)
    # the wheelhouse builds use: its keys for wheels built from sdists name the builder base
    house = BaseWheelhouse(root / "wheels")
    named = named_by_locks(project, house)
    found: list[Candidate] = []
    if (root / "wheels").is_dir():
        found += house.prune_candidates(named, age, everything=options.everything)
    if (root / "installed").is_dir():
        found += InstalledTrees(root / "installed").prune_candidates(
            age, everything=options.everything
        )
    if (root / "blobs").is_dir():
        found += BlobStore(root / "blobs").prune_candidates(age, everything=options.everything)
    if (root / "check" / "listings").is_dir():
        found += listings.prune_candidates(
            root / "check" / "listings", age, everything=options.everything
        )
    taken = {c.path for c in found}
    found += [c for c in stale_temps(root, age) if not any(p in taken for p in c.path.parents)]
    return found, named.locks


def dangling_images() -> list[engine.EngineImage] | None:
    """The dangling images carrying one of :data:`IMAGE_LABELS`; None when no engine answers."""
    try:
        if not engine.available():
            return None
        found: dict[str, engine.EngineImage] = {}
        for label in IMAGE_LABELS:
            found.update((i.id, i) for i in engine.dangling_images(label))
    except (CommandFailed, ToolNotFound) as exc:
        log.warning("prune: not asking the engine for dangling images (%s)", exc)
        return None
    return list(found.values())


def prune(
    project: Path,
    options: PruneOptions,
    *,
    cache: Path | None = None,
    now: float | None = None,
    images: bool = True,
) -> PruneReport:
    """Find what :func:`file_candidates` and :func:`dangling_images` (when ``images``) name,
    and remove it unless ``options.dry_run``."""
    files, locks = file_candidates(project, options, cache=cache, now=now)
    found = dangling_images() if images else []
    if options.dry_run:
        return PruneReport(True, tuple(files), tuple(found or ()), locks=locks,
                           engine=found is not None)  # fmt: skip
    done, failed = remove(files)
    kept = engine.remove_images([i.id for i in found]) if found else {}
    removed = tuple(i for i in found or () if i.id not in kept)
    return PruneReport(False, tuple(done), removed, tuple(failed), kept, locks,
                       engine=found is not None)  # fmt: skip


__all__ = ["IMAGE_LABELS", "PruneOptions", "PruneReport", "prune"]
