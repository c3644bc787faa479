"""The wheelhouse: a per-wheel, content-addressed cache of the files a lock names.

Layout under ``root`` (default ``cache_dir("wheels")``)::

    sha256/<kk>/<hex>/<filename>          a file from an index or a path, named by its sha256
    built/<key>/<name>-<ver>-….whl        a wheel built from an sdist, per :meth:`Wheelhouse.build_key`

A file is downloaded once (in parallel with the others), hashed while it is written to a temp
file in the same folder, and renamed into place only when its sha256 is the lock's: a complete
file under its final name is the only state a reader can see, after ``kill -9`` too, and two
processes fetching the same wheel both succeed. Every use re-hashes the cached file, so a wheel
changed in the cache is refused (:class:`DigestMismatch`, naming the package and both hashes)
rather than installed.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import os
import queue
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from packaging.utils import canonicalize_name

from wheeldock.deps import pylock
from wheeldock.deps.index import Index
from wheeldock.deps.pylock import Lock, LockedFile
from wheeldock.deps.wheeltags import supported_tags, wheel_rank
from wheeldock.edges.fsutil import file_lock
from wheeldock.edges.paths import cache_dir
from wheeldock.edges.sweep import Age, Candidate, size_of
from wheeldock.errors import (
    DigestMismatch,
    DownloadFailed,
    InvalidConfig,
    NotFound,
    SdistBuildFailed,
    SdistNotBuildable,
    WheeldockError,
)
from wheeldock.oci.blobs import CHUNK, hash_file

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

#: Parallel downloads; PyPI's CDN is happy with this many per client.
DOWNLOAD_WORKERS = 8


@dataclass(frozen=True)
class Artifact:
    """The one file of a locked package a build uses: its best wheel, else its sdist."""

    name: str
    version: str
    file: LockedFile
    kind: Literal["wheel", "sdist"]

    @property
    def sha256(self) -> str:
        return self.file.sha256

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


# -- choosing files -----------------------------------------------------------------------------


def select(lock: Lock) -> tuple[Artifact, ...]:
    """The file each package of ``lock`` installs from, in the lock's order (pure)."""
    ranks = supported_tags(lock.platform, lock.python)
    from_source = {canonicalize_name(n) for n in lock.no_binary}
    chosen: list[Artifact] = []
    for pkg in lock.packages:
        best: tuple[int, LockedFile] | None = None
        if pkg.sdist is not None and canonicalize_name(pkg.name) in from_source:
            chosen.append(Artifact(pkg.name, pkg.version, pkg.sdist, "sdist"))
            continue
        for wheel in pkg.wheels:
            rank = wheel_rank(wheel.filename, ranks)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, wheel)
        if best is not None:
            chosen.append(Artifact(pkg.name, pkg.version, best[1], "wheel"))
        elif pkg.sdist is not None:
            chosen.append(Artifact(pkg.name, pkg.version, pkg.sdist, "sdist"))
        else:
            names = ", ".join(w.filename for w in pkg.wheels)
            raise InvalidConfig(
                f"package {pkg.name} {pkg.version} has no wheel for {lock.platform} / Python "
                f"{lock.python} and no sdist (wheels: {names})",
                path=lock.path,
                fix=f"pin a version of {pkg.name} that publishes a wheel for this platform",
            )
    return tuple(chosen)


# -- the cache ----------------------------------------------------------------------------------


#: Folders under a project that hold no lock of its own.
_NOT_PROJECT = {".git", ".venv", "venv", "node_modules", "__pycache__", ".tox"}


@dataclass(frozen=True)
class Named:
    """The files the locks of a project name: sha256s, and the keys of wheels built from their
    sdists."""

    sha256s: frozenset[str]
    built: frozenset[str]
    locks: tuple[Path, ...]


def named_by_locks(root: Path, house: Wheelhouse | None = None) -> Named:
    """Every file named by a lock (``pylock.*.toml``) under ``root``, and the keys ``house``
    (default: a plain :class:`Wheelhouse`) builds their sdists under; a lock that cannot be
    read names nothing (it is logged)."""
    house = house if house is not None else Wheelhouse()
    shas: set[str] = set()
    built: set[str] = set()
    locks: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _NOT_PROJECT)
        for name in sorted(names):
            if not (name.startswith("pylock.") and name.endswith(".toml")):
                continue
            try:
                lock = pylock.read(Path(folder) / name)
            except WheeldockError as exc:
                log.warning("prune: not reading %s/%s (%s)", folder, name, exc.what)
                continue
            locks.append(lock.path)
            for pkg in lock.packages:
                shas.update(f.sha256 for f in pkg.wheels)
                if pkg.sdist is not None:
                    shas.add(pkg.sdist.sha256)
                    sdist = Artifact(pkg.name, pkg.version, pkg.sdist, "sdist")
                    built.add(house.build_key(sdist, platform=lock.platform, python=lock.python))
    return Named(frozenset(shas), frozenset(built), tuple(locks))


class Wheelhouse:
    """Downloads, verifies and builds the files of a lock. Safe to share between processes."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        workers: int = DOWNLOAD_WORKERS,
        index: Index | None = None,
    ) -> None:
        self.root = Path(root) if root is not None else cache_dir("wheels")
        self.workers = workers
        #: the HTTPS client downloads go through (a command's, shared with its locks)
        self.index = index if index is not None else Index()

    def __repr__(self) -> str:
        return f"Wheelhouse({str(self.root)!r})"

    def path(self, file: LockedFile) -> Path:
        """Where the cached copy of ``file`` lives (whether or not it is there yet)."""
        return self.root / "sha256" / file.sha256[:2] / file.sha256 / file.filename

    def fetch(self, artifacts: Sequence[Artifact], *, platform: str, python: str) -> list[Path]:
        """A verified local wheel for each artifact, in order.

        Missing files are downloaded in parallel; sdists are built into wheels by
        :meth:`build_sdist` (once per :meth:`build_key`). Raises :class:`DigestMismatch` for a file whose bytes are
        not the lock's.
        """
        got = dict(self.fetch_each(artifacts, platform=platform, python=python))
        return [got[a] for a in artifacts]

    def fetch_each(
        self, artifacts: Sequence[Artifact], *, platform: str, python: str
    ) -> Iterator[tuple[Artifact, Path]]:
        """As :meth:`fetch`, but each (artifact, verified wheel) is yielded as soon as it is
        ready: cached ones first, then downloads as they finish, so the caller installs one
        wheel while the others are still arriving. Sdists come last, built one at a time."""
        cached = [a for a in artifacts if self.path(a.file).is_file()]
        missing = [a for a in artifacts if a not in cached]
        sdists: list[Artifact] = []

        damaged: list[Artifact] = []

        def ready(artifact: Artifact, *, checked: bool) -> Iterator[tuple[Artifact, Path]]:
            if artifact.kind == "sdist":
                sdists.append(artifact)
            elif checked or self._intact(artifact):
                yield artifact, self.path(artifact.file)
            else:
                damaged.append(artifact)

        # the downloads start now, so they arrive while the cached wheels are being installed
        arriving = self._download_each(missing)
        for artifact in cached:
            yield from ready(artifact, checked=False)
        for artifact in arriving:  # hashed while downloading: no second read
            yield from ready(artifact, checked=True)
        for artifact in self._download_each(damaged):  # fetched again, as if never cached
            yield from ready(artifact, checked=True)
        for artifact in sdists:
            local = self.verified(artifact)
            yield artifact, self.build_sdist(artifact, local, platform=platform, python=python)

    def _intact(self, artifact: Artifact) -> bool:
        """Whether the cached file of ``artifact`` is the lock's; one that is not is removed,
        with a warning naming it, so it is fetched again."""
        path = self.path(artifact.file)
        actual = hash_file(path).digest.hex
        if actual == artifact.sha256:
            return True
        log.warning(
            "%s in the wheel cache is damaged (sha256:%s, the lock says sha256:%s); removed, "
            "it is fetched again", path, actual, artifact.sha256,
        )  # fmt: skip
        path.unlink(missing_ok=True)
        return False

    def verified(self, artifact: Artifact) -> Path:
        """The cached file of ``artifact`` after checking its sha256 against the lock."""
        path = self.path(artifact.file)
        actual = hash_file(path).digest.hex
        if actual != artifact.sha256:
            raise DigestMismatch(
                f"{artifact.file.filename} ({artifact}) in the wheel cache is not the file the "
                "lock names",
                expected=f"sha256:{artifact.sha256}",
                actual=f"sha256:{actual}",
                path=path,
                fix=f"delete it (rm -r {path.parent}) and build again to fetch it afresh",
            )
        return path

    # -- downloading ---------------------------------------------------------------------------

    def _download_all(self, artifacts: Sequence[Artifact]) -> None:
        for _ in self._download_each(artifacts):
            pass

    def _download_each(self, artifacts: Sequence[Artifact]) -> Iterator[Artifact]:
        """Download ``artifacts`` in parallel into the cache, yielding each as it lands.

        Of the files landed by the time the next is asked for, the one first in ``artifacts``
        comes first: the caller installs one wheel at a time, and a build lists them in its
        layers' order (largest first), so the big layers are made first and the engine can
        start loading them while the rest is built. Not a generator itself: the downloads
        start when this is called, not when the first result is asked for."""
        local = [a for a in artifacts if a.file.url is None]
        remote = [a for a in artifacts if a.file.url is not None]
        pool: ThreadPoolExecutor | None = None
        futures: list[Future[None]] = []  # in the order of ``remote``
        finished: queue.SimpleQueue[int] = queue.SimpleQueue()  # their places, as they land
        if remote:
            log.info("downloading %d file(s)", len(remote))
            client = self.index.client()  # httpx is imported only when something is downloaded
            pool = ThreadPoolExecutor(max_workers=self.workers)

            def landed_as(rank: int) -> Callable[[Future[None]], None]:
                return lambda _: finished.put(rank)

            for rank, artifact in enumerate(remote):
                future = pool.submit(self._download, client, artifact)
                future.add_done_callback(landed_as(rank))
                futures.append(future)

        def landed() -> Iterator[Artifact]:
            try:
                for artifact in local:
                    self._copy_local(artifact)
                    yield artifact
                waiting: list[int] = []  # places of the landed downloads not yet handed on
                for _ in futures:
                    # wait for one if none is waiting, then take in all that landed meanwhile
                    while not waiting or not finished.empty():
                        heapq.heappush(waiting, finished.get())
                    rank = heapq.heappop(waiting)
                    futures[rank].result()  # re-raises that download's failure
                    yield remote[rank]
            finally:
                for future in futures:  # on a failure, start no more downloads
                    future.cancel()
                if pool is not None:
                    pool.shutdown(wait=True)

        return landed()

    def _store(self, artifact: Artifact, chunks: Iterable[bytes], source: str) -> None:
        """Write ``chunks`` to the cache atomically if they hash to the lock's sha256."""
        dest = self.path(artifact.file)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".download.")
        try:
            hasher = hashlib.sha256()
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    hasher.update(chunk)
                    fh.write(chunk)
            if hasher.hexdigest() != artifact.sha256:
                raise DigestMismatch(
                    f"{artifact.file.filename} ({artifact}) from {source} is not the file the "
                    "lock names",
                    expected=f"sha256:{artifact.sha256}",
                    actual=f"sha256:{hasher.hexdigest()}",
                    fix="if the file was meant to change, re-lock with `wheeldock lock --upgrade`;"
                    " otherwise the source is corrupt or tampered with",
                )
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _download(self, client: httpx.Client, artifact: Artifact) -> None:
        import httpx

        url = artifact.file.url
        assert url is not None
        for attempt in (1, 2):
            try:
                with client.stream("GET", url) as response:
                    response.raise_for_status()
                    self._store(artifact, response.iter_bytes(CHUNK), url)
                return
            except httpx.HTTPStatusError as exc:
                raise DownloadFailed(
                    f"cannot download {artifact} ({exc.response.status_code}): {url}",
                    fix="check the index is reachable; re-lock if the file was removed",
                ) from exc
            except httpx.TransportError as exc:
                if attempt == 2:
                    raise DownloadFailed(
                        f"cannot download {artifact} ({exc}): {url}",
                        fix="check the network (and SSL_CERT_FILE behind a proxy), then retry",
                    ) from exc
                log.warning("retrying %s after %s", url, exc)

    def _copy_local(self, artifact: Artifact) -> None:
        src = artifact.file.path
        assert src is not None
        if not src.is_file():
            raise NotFound(
                f"{artifact} is locked from a local file that is gone",
                path=src,
                fix="restore the file, or re-lock with `wheeldock lock`",
            )

        def chunks() -> Iterator[bytes]:
            with src.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk

        self._store(artifact, chunks(), str(src))

    # -- sdists --------------------------------------------------------------------------------

    def build_key(self, artifact: Artifact, *, platform: str, python: str) -> str:
        """What names the wheel :meth:`build_sdist` makes of ``artifact``: a hex digest of
        everything that decides its bytes (here the sdist, platform and Python; a subclass that
        compiles in a base adds the base)."""
        return hashlib.sha256(f"{artifact.sha256}\0{platform}\0{python}".encode()).hexdigest()

    def build_sdist(self, artifact: Artifact, sdist: Path, *, platform: str, python: str) -> Path:
        """A wheel built from ``sdist`` by :meth:`compile`, once per :meth:`build_key`: cached
        under ``built/<key>/``, which holds exactly one wheel once it exists (two processes
        building the same sdist: one builds, the other waits and reuses it)."""
        folder = self.root / "built" / self.build_key(artifact, platform=platform, python=python)
        found = sorted(folder.glob("*.whl")) if folder.is_dir() else []
        if found:
            return found[0]
        folder.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(str(folder) + ".lock"):
            found = sorted(folder.glob("*.whl")) if folder.is_dir() else []
            if found:
                return found[0]
            tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".build."))
            try:
                self.compile(artifact, sdist, tmp, platform=platform, python=python)
                wheels = sorted(tmp.glob("*.whl"))
                if len(wheels) != 1:
                    raise SdistBuildFailed(
                        f"building {artifact} from {sdist.name} gave {len(wheels)} wheels",
                        fix="report this; the sdist's build backend misbehaves",
                    )
                for other in tmp.iterdir():  # only the wheel is kept
                    if other != wheels[0]:
                        shutil.rmtree(other) if other.is_dir() else other.unlink()
                os.replace(tmp, folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return next(folder.glob("*.whl"))

    def prune_candidates(
        self, named: Named, age: Age, *, everything: bool = False
    ) -> list[Candidate]:
        """What a prune removes: files (and wheels built from sdists) that no lock in ``named``
        names, and named ones not used within ``age.keep_seconds``. ``everything``: all.
        Nothing younger than :data:`~wheeldock.edges.sweep.GRACE`."""
        found: list[Candidate] = []
        for entries, keep in [
            (self.root.glob("sha256/*/*"), named.sha256s),
            (self.root.glob("built/*"), named.built),
        ]:
            for entry in sorted(e for e in entries if e.is_dir()):
                if age.young(entry):
                    continue
                if everything:
                    why = "--all"
                elif entry.name not in keep:
                    why = "named by no lock in the project"
                elif not age.kept(entry):
                    why = "not used lately"
                else:
                    continue
                found.append(Candidate("wheels", entry, size_of(entry), why))
        return found

    def compile(
        self, artifact: Artifact, sdist: Path, out: Path, *, platform: str, python: str
    ) -> None:
        """Build ``sdist`` into one wheel in ``out`` for ``platform``/``python``.

        This class compiles nothing: a wheel compiled on this host would link the host's glibc
        and libraries, not the image's. :class:`wheeldock.build.sdists.BaseWheelhouse` compiles
        in the target's ``builder`` base."""
        raise SdistNotBuildable(
            f"{artifact} has no wheel for {platform} (only an sdist), and this wheelhouse "
            "compiles no sdists",
            fix="build the image with `wheeldock build`, which compiles sdists in the builder "
            f"base, or pin a version of {artifact.name} that publishes a wheel",
        )
