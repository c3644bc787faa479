"""A content-addressed blob store, plus a small key → value index for incremental builds.

Layout under ``root`` (default ``cache_dir("blobs")``)::

    sha256/<hex>          one file per blob, named by the sha256 of its bytes, read-only
    checked/<hex>         the blob file's identity when it was written or last hashed
    tmp/                  blobs being written (removed on failure; stale ones are harmless)
    index/<kk>/<key-hash>.json   the index: "inputs hashing to K gave descriptor D"

Writes go to a temp file in ``tmp/`` and are renamed into place, so a blob under its final name
is always complete — after ``kill -9`` too — and two processes writing the same blob at once
both succeed (the second rename replaces identical bytes). Index entries are written the same
way, under a file lock (:func:`wheeldock.edges.fsutil.file_lock`) so concurrent ``set_cached`` calls
do not interleave.

A blob is trusted on reuse only through :meth:`BlobStore.verified`: a blob whose file changed
since the store wrote or last hashed it is hashed again, and one that no longer matches its
digest (a flipped byte, a truncation) is removed with a warning naming it; its user makes it
again or fails with the fix, so no destination is given bytes that do not match their digest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from wheeldock.edges.fsutil import atomic_write_bytes, file_lock, temp_file
from wheeldock.edges.paths import cache_dir
from wheeldock.edges.sweep import Age, Candidate, size_of
from wheeldock.errors import DigestMismatch, NotFound
from wheeldock.oci.digest import Digest

log = logging.getLogger(__name__)

#: Read and write granularity for streaming copies.
CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    """What the store knows of a blob: its digest and size in bytes."""

    digest: Digest
    size: int


class BlobWriter:
    """Streams bytes into the store, hashing while writing. Use via :meth:`BlobStore.writer`.

    After the ``with`` block ends without an error, :attr:`blob` holds the digest and size.
    """

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._hasher = hashlib.sha256()
        self.size = 0
        self._blob: Blob | None = None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._hasher.update(data)
        self._fh.write(data)
        self.size += len(data)
        return len(data)

    @property
    def digest(self) -> Digest:
        """The digest of the bytes written so far."""
        return Digest.from_hasher(self._hasher)

    @property
    def blob(self) -> Blob:
        if self._blob is None:
            raise RuntimeError("the blob is committed only when the writer's `with` block ends")
        return self._blob


class BlobStore:
    """Content-addressed blobs on disk. Safe to share between processes."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir("blobs")
        for sub in ("sha256", "tmp", "index", "checked"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        #: blobs written or hashed here, by path, with their :func:`file_identity` then
        self._checked: dict[Path, list[int]] = {}
        self._checked_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BlobStore({str(self.root)!r})"

    # -- blobs ---------------------------------------------------------------------------------

    def path(self, digest: Digest) -> Path:
        """Where the blob with ``digest`` lives (whether or not it is there yet)."""
        return self.root / digest.algorithm / digest.hex

    def has(self, digest: Digest) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: Digest) -> int:
        return self._existing(digest).stat().st_size

    def open(self, digest: Digest) -> IO[bytes]:
        """Open a stored blob for reading; :class:`NotFound` when it is not in the store."""
        return self._existing(digest).open("rb")

    def read_bytes(self, digest: Digest) -> bytes:
        return self._existing(digest).read_bytes()

    def verified(self, digest: Digest, size: int | None = None) -> Path | None:
        """The blob's path once its bytes are checked to hash to ``digest`` (and to be ``size``
        bytes long), or None when it is not in the store. A blob that fails the check is
        removed, with a warning naming it, and None is returned: the caller makes it again.

        A file is hashed when the store has not seen it as it is now: its identity (inode,
        size, mtime, ctime) is recorded under ``checked/`` once it was written or hashed, and
        any write to the file, or its replacement, changes that identity.
        """
        path = self.path(digest)
        try:
            identity = file_identity(path)
        except FileNotFoundError:
            return None
        if self._seen(path, digest, identity):
            return path
        problem = None
        if size is not None and identity[1] != size:
            problem = f"is {identity[1]} bytes, its descriptor says {size}"
        else:
            actual = hash_file(path).digest
            if actual != digest:
                problem = f"hashes to {actual}"
        if problem is None:
            self._saw(path, digest, identity)
            return path
        log.warning("cached blob %s is damaged (%s); removed, it is made again", path, problem)
        self.drop(digest)
        return None

    def _checked_path(self, digest: Digest) -> Path:
        return self.root / "checked" / digest.hex

    def _seen(self, path: Path, digest: Digest, identity: list[int]) -> bool:
        with self._checked_lock:
            if self._checked.get(path) == identity:
                return True
        if recorded_identity(self._checked_path(digest)) != identity:
            return False
        with self._checked_lock:
            self._checked[path] = identity
        return True

    def _saw(self, path: Path, digest: Digest, identity: list[int]) -> None:
        with self._checked_lock:
            self._checked[path] = identity
        # not fsynced: a torn record reads as none, and the blob is hashed again
        record_identity(self._checked_path(digest), identity)

    def drop(self, digest: Digest) -> None:
        """Remove a blob from the store (a damaged one: its users make it again)."""
        path = self.path(digest)
        with self._checked_lock:
            self._checked.pop(path, None)
        self._checked_path(digest).unlink(missing_ok=True)
        path.unlink(missing_ok=True)

    def _existing(self, digest: Digest) -> Path:
        path = self.path(digest)
        if not path.is_file():
            raise NotFound(
                f"blob {digest} is not in the blob store",
                path=self.root,
                fix="rebuild the image (the cache may have been cleaned while it was in use)",
            )
        return path

    @contextmanager
    def writer(self, *, expected: Digest | None = None) -> Iterator[BlobWriter]:
        """Stream a blob in; it is committed atomically when the block ends without an error.

        With ``expected``, bytes hashing to anything else raise :class:`DigestMismatch` and
        nothing is stored.
        """
        fd, tmp = temp_file(
            self.root / "tmp",
            prefix="blob.",
            what="to the blob store",
            fix="make it writable, or point WHEELDOCK_CACHE at a writable folder",
            shown=self.root,
        )
        try:
            with os.fdopen(fd, "wb") as fh:
                writer = BlobWriter(fh)
                yield writer
            digest = writer.digest
            if expected is not None and digest != expected:
                raise DigestMismatch(
                    "downloaded or copied blob does not match its descriptor",
                    expected=str(expected),
                    actual=str(digest),
                    fix="retry; if it persists the source is corrupt",
                )
            self._commit(Path(tmp), digest)
            writer._blob = Blob(digest, writer.size)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _commit(self, tmp: Path, digest: Digest) -> None:
        # A blob already there is replaced too: the new bytes were hashed as they were written,
        # the old ones may have changed on disk since.
        final = self.path(digest)
        # No fsync: the rename makes the blob all-or-nothing against a killed process, which is
        # what a cache needs; a power loss at worst costs a rebuild.
        os.chmod(tmp, 0o444)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        self._saw(final, digest, file_identity(final))

    def put_bytes(self, data: bytes) -> Blob:
        with self.writer() as w:
            w.write(data)
        return w.blob

    def put_file(self, src: Path, *, expected: Digest | None = None) -> Blob:
        """Copy a file into the store, hashing while copying."""
        with Path(src).open("rb") as fh, self.writer(expected=expected) as w:
            while chunk := fh.read(CHUNK):
                w.write(chunk)
        return w.blob

    def put_stream(self, stream: IO[bytes], *, expected: Digest | None = None) -> Blob:
        with self.writer(expected=expected) as w:
            shutil.copyfileobj(stream, w, CHUNK)
        return w.blob

    # -- the index -----------------------------------------------------------------------------

    def _index_path(self, key: str) -> Path:
        h = hashlib.sha256(key.encode()).hexdigest()
        return self.root / "index" / h[:2] / f"{h}.json"

    def get_cached(self, key: str) -> dict[str, Any] | None:
        """The value recorded for ``key``, or None. A corrupt entry reads as a miss."""
        path = self._index_path(key)
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("ignoring unreadable cache index entry %s", path)
            return None
        if not isinstance(record, dict) or record.get("key") != key:
            return None  # a hash collision on the file name, or a foreign file
        value = record.get("value")
        return value if isinstance(value, dict) else None

    def set_cached(self, key: str, value: dict[str, Any]) -> None:
        """Record ``value`` (JSON-serialisable) for ``key``; atomic, last writer wins."""
        path = self._index_path(key)
        data = json.dumps({"key": key, "value": value}, sort_keys=True).encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(str(self.root / "index" / ".lock")):
            atomic_write_bytes(path, data)

    # -- pruning -------------------------------------------------------------------------------

    def prune_candidates(self, age: Age, *, everything: bool = False) -> list[Candidate]:
        """What a prune removes: index entries not used within ``age.keep_seconds``, then the
        blobs no remaining entry names (a layer pulled from a registry is named by none: it is
        downloaded again when needed). ``everything``: all. Nothing younger than
        :data:`~wheeldock.edges.sweep.GRACE` (a build may be between writing a blob and its
        entry). Temp files are :func:`~wheeldock.edges.sweep.stale_temps`'s."""
        found: list[Candidate] = []
        named: set[str] = set()
        for entry in sorted((self.root / "index").glob("*/*.json")):
            if (everything and not age.young(entry)) or not age.kept(entry):
                found.append(Candidate("blob index", entry, size_of(entry), "not used lately"))
            else:
                named.update(_DIGEST_HEX.findall(entry.read_text(errors="replace")))
        for blob in sorted((self.root / "sha256").glob("*")):
            if blob.name not in named and not age.young(blob):
                found.append(Candidate("blobs", blob, size_of(blob), "named by no cache entry"))
        return found


_DIGEST_HEX = re.compile(r"sha256:([0-9a-f]{64})")


def default_store() -> BlobStore:
    return BlobStore(cache_dir("blobs"))


def file_identity(path: Path) -> list[int]:
    """What changes whenever a file's bytes are written or the file is replaced: its inode,
    size, mtime and ctime (a tool that restores the mtime still changes the ctime)."""
    st = Path(path).stat()
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def recorded_identity(record: Path) -> list[int] | None:
    """The :func:`file_identity` kept in ``record`` (None: none, or unreadable)."""
    try:
        value = json.loads(record.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, list) else None


def record_identity(record: Path, identity: list[int]) -> None:
    """Keep ``identity`` in ``record``. Not fsynced: a torn record reads as none, and the
    file it describes is then hashed again."""
    atomic_write_bytes(record, json.dumps(identity).encode(), durable=False)


def hash_file(path: Path) -> Blob:
    """sha256 and size of a file, streamed."""
    hasher = hashlib.sha256()
    size = 0
    with Path(path).open("rb") as fh:
        while chunk := fh.read(CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return Blob(Digest.from_hasher(hasher), size)
