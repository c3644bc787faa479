"""Deterministic image layers: tar entries in, a compressed blob in the store out.

A :class:`Layer` is a descriptor (digest, diff_id, size, media type, annotations) plus a way to
reach its compressed bytes. Layers are made from an *opener*: the bytes can be re-read any number
of times and each read gives the same content; they are hashed once, while being written.

Determinism: :func:`build_layer` sorts entries by path, adds missing parent folders (mode 0755,
owner 0:0), writes every entry with the same mtime, empty user/group names and no access or
change times (PAX headers appear only for long or non-ASCII names and carry no time), then
compresses with a fixed gzip header (mtime 0, no file name). The same entries therefore give the
same diff_id everywhere, and the same digest with the same compressor build (ISA-L or zstd).
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tarfile
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal, Protocol

from isal import igzip, isal_zlib

from wheeldock.errors import (
    DigestMismatch,
    FolderNotFound,
    InvalidArchive,
    InvalidCompression,
    InvalidConfig,
    NotFound,
    SizeMismatch,
    WheeldockError,
)
from wheeldock.oci.blobs import CHUNK, Blob, BlobStore, BlobWriter, hash_file
from wheeldock.oci.digest import Digest

log = logging.getLogger(__name__)

Compression = Literal["gzip", "zstd", "none"]
Kind = Literal["file", "dir", "symlink", "hardlink"]

MEDIA_TYPE_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MEDIA_TYPE_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_MEDIA_TYPE_TAR = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_TYPES: dict[Compression, str] = {
    "gzip": MEDIA_TYPE_GZIP,
    "zstd": MEDIA_TYPE_ZSTD,
    "none": MEDIA_TYPE_TAR,
}
#: Docker's layer media types and the OCI ones with the same bytes.
DOCKER_TO_OCI = {DOCKER_MEDIA_TYPE_GZIP: MEDIA_TYPE_GZIP, DOCKER_MEDIA_TYPE_TAR: MEDIA_TYPE_TAR}

#: ISA-L offers levels 0-3; 1 is close to zlib -6 in size at a tenth of its time (see the
#: figures in the report that introduced this module).
DEFAULT_GZIP_LEVEL = 1
DEFAULT_ZSTD_LEVEL = 3

_KINDS: dict[str, bytes] = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
}
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: How many leading bytes :func:`sniff_compression` needs.
MAGIC_SIZE = len(_ZSTD_MAGIC)


def sniff_compression(head: bytes) -> Compression:
    """The compression a blob's first bytes show (gzip or zstd magic), else ``"none"``.

    ``head`` is at least the first :data:`MAGIC_SIZE` bytes (fewer: the whole blob).
    """
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head[:MAGIC_SIZE] == _ZSTD_MAGIC:
        return "zstd"
    return "none"


def open_uncompressed(fh: IO[bytes], compression: Compression) -> IO[bytes]:
    """A reader of ``fh``'s bytes decompressed (``fh`` itself when ``compression`` is none);
    closing it closes ``fh``."""
    if compression == "gzip":
        gz: IO[bytes] = igzip.IGzipFile(fileobj=fh, mode="rb")  # type: ignore[no-untyped-call,assignment]
        return gz
    if compression == "zstd":
        import zstandard

        reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(fh, closefd=True)
        return reader
    return fh


def compression_of(media_type: str) -> Compression:
    """The compression a layer media type (OCI or Docker) implies."""
    mt = DOCKER_TO_OCI.get(media_type, media_type)
    if mt.endswith("+gzip"):
        return "gzip"
    if mt.endswith("+zstd"):
        return "zstd"
    return "none"


def normalize_path(path: str) -> str:
    """A path inside the image: POSIX, relative (no leading ``/``), no ``.``/``..`` parts."""
    parts = [p for p in PurePosixPath(path.replace("\\", "/")).parts if p not in ("/", ".", "")]
    if not parts or ".." in parts:
        raise InvalidConfig(
            f"not a usable path inside an image: {path!r}",
            fix="use a path like 'app/main.py' (relative, no '..')",
        )
    return "/".join(parts)


# -- entries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TarEntry:
    """One member of a layer tar.

    ``path`` is inside the image, without a leading ``/``. ``source`` is the content of a file:
    a host file (read when the layer is built; it must still have ``size`` bytes then) or
    bytes. ``linkname`` is the target of a symlink (as written) or of a hardlink (a path in the
    same layer or below, normalised like ``path``).
    """

    path: str
    kind: Kind = "file"
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    linkname: str = ""
    source: Path | bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", normalize_path(self.path))
        if self.kind not in _KINDS:
            raise InvalidConfig(f"{self.path}: unknown tar entry kind {self.kind!r}")
        if self.kind == "hardlink":
            object.__setattr__(self, "linkname", normalize_path(self.linkname))
        if self.kind in ("symlink", "hardlink") and not self.linkname:
            raise InvalidConfig(f"{self.path}: a {self.kind} needs a linkname")
        if self.kind == "file":
            if isinstance(self.source, bytes):
                object.__setattr__(self, "size", len(self.source))
            elif self.source is None:
                raise InvalidConfig(f"{self.path}: a file entry needs a source (a Path or bytes)")
        object.__setattr__(self, "mode", self.mode & 0o7777)

    @classmethod
    def file(
        cls, path: str, source: Path | bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0
    ) -> TarEntry:
        """A regular file; a host file's size is taken now."""
        size = len(source) if isinstance(source, bytes) else Path(source).stat().st_size
        return cls(path, "file", mode, uid, gid, size, "", source)

    @classmethod
    def directory(cls, path: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0) -> TarEntry:
        return cls(path, "dir", mode, uid, gid)

    @classmethod
    def symlink(cls, path: str, target: str, *, uid: int = 0, gid: int = 0) -> TarEntry:
        return cls(path, "symlink", 0o777, uid, gid, 0, target)

    @classmethod
    def hardlink(cls, path: str, target: str, *, mode: int = 0o644) -> TarEntry:
        return cls(path, "hardlink", mode, 0, 0, 0, target)


def plan_entries(entries: Iterable[TarEntry], *, provided: Collection[str] = ()) -> list[TarEntry]:
    """Entries in the order a layer holds them: sorted by path, missing parents added (0755).

    The same set of entries in any order gives the same list. Two entries for one path are an
    error unless both are identical folders. ``provided``: folders the layers below already
    have (``usr/local/lib/python3.11/dist-packages``): neither written nor added as parents, so
    a stack of small layers does not repeat them (and cannot change their mode or owner).
    """
    by_path: dict[str, TarEntry] = {}
    for entry in entries:
        if entry.path in provided and entry.kind == "dir":
            continue
        old = by_path.get(entry.path)
        if old is not None and old != entry:
            if old.kind == entry.kind == "dir":
                # two sources agree it is a folder; keep the lower mode/owner deterministically
                entry = min(old, entry, key=lambda e: (e.mode, e.uid, e.gid))
            else:
                raise InvalidConfig(
                    f"two different entries for {entry.path!r} in one layer",
                    fix="drop one of them (e.g. exclude it from one of the source folders)",
                )
        by_path[entry.path] = entry
    for path in list(by_path):
        parent = PurePosixPath(path).parent
        while str(parent) != ".":
            key = str(parent)
            existing = by_path.get(key)
            if existing is None:
                if key not in provided:
                    by_path[key] = TarEntry(key, "dir", 0o755)
            elif existing.kind != "dir":
                raise InvalidConfig(
                    f"{key!r} is a {existing.kind} in the layer, but {path!r} is inside it",
                    fix="make it a folder, or drop the entries inside it",
                )
            parent = parent.parent
    return [by_path[p] for p in sorted(by_path)]


def entries_from_dir(
    root: Path,
    *,
    prefix: str,
    exclude: Callable[[str], bool] | None = None,
    uid: int = 0,
    gid: int = 0,
    normalize_modes: bool = True,
) -> list[TarEntry]:
    """Walk ``root`` into entries under ``prefix`` inside the image, sorted by path.

    Symlinks are kept as symlinks (never followed); files sharing an inode become one file
    and hardlinks to it (the first path in sorted order holds the bytes); sockets, FIFOs and
    devices are skipped. ``exclude`` gets the POSIX path relative to ``root``; an excluded
    folder is not entered. With ``normalize_modes`` files get 0755 when any execute bit is set
    and 0644 otherwise, folders 0755, so the host's umask does not change the digest. Owners are
    ``uid``/``gid`` whoever owns the files on the host.
    """
    root = Path(root)
    if not root.is_dir():
        raise FolderNotFound(f"not a folder: {root}", fix="check the path (it must exist)")
    base = prefix.strip("/")
    found: list[tuple[str, os.stat_result, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        rel_here = here.relative_to(root).as_posix()
        keep_dirs = []
        for name in sorted(dirnames) + sorted(filenames):
            full = here / name
            rel = name if rel_here == "." else f"{rel_here}/{name}"
            if exclude is not None and exclude(rel):
                continue
            st = full.lstat()
            found.append((rel, st, full))
            if stat.S_ISDIR(st.st_mode):
                keep_dirs.append(name)
        dirnames[:] = sorted(keep_dirs)  # symlinks to folders are not entered (lstat: not dirs)
    found.sort(key=lambda item: item[0])

    def image_path(rel: str) -> str:
        return f"{base}/{rel}" if base else rel

    entries: list[TarEntry] = []
    first_of_inode: dict[tuple[int, int], str] = {}
    for rel, st, full in found:
        name = image_path(rel)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            entries.append(TarEntry(name, "dir", 0o755 if normalize_modes else mode, uid, gid))
        elif stat.S_ISLNK(st.st_mode):
            entries.append(TarEntry(name, "symlink", 0o777, uid, gid, 0, os.readlink(full)))
        elif stat.S_ISREG(st.st_mode):
            if normalize_modes:
                mode = 0o755 if mode & 0o111 else 0o644
            inode = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and inode in first_of_inode:
                entries.append(TarEntry(name, "hardlink", mode, uid, gid, 0, first_of_inode[inode]))
                continue
            first_of_inode[inode] = name
            entries.append(TarEntry(name, "file", mode, uid, gid, st.st_size, "", full))
        else:
            log.debug("skipping %s: not a file, folder or symlink", full)
    return entries


# -- writing ------------------------------------------------------------------------------------


class _Compressor(Protocol):
    def compress(self, data: bytes | memoryview, /) -> bytes | memoryview: ...
    def flush(self) -> bytes: ...


class _Identity:
    def compress(self, data: bytes | memoryview, /) -> bytes | memoryview:
        return data

    def flush(self) -> bytes:
        return b""


def _compressor(compression: Compression, level: int | None) -> _Compressor:
    if compression == "gzip":
        # wbits 31 = gzip wrapper; ISA-L writes mtime 0, no name, OS 255: a fixed header.
        lvl = DEFAULT_GZIP_LEVEL if level is None else level
        if not 0 <= lvl <= 3:
            raise InvalidCompression(
                f"gzip level {lvl} is out of range", fix="use 0-3 (ISA-L levels)"
            )
        obj: _Compressor = isal_zlib.compressobj(lvl, isal_zlib.DEFLATED, 31)
        return obj
    if compression == "zstd":
        import zstandard

        lvl = DEFAULT_ZSTD_LEVEL if level is None else level
        # Single-threaded and without a content size: the frame depends on the bytes only.
        cctx = zstandard.ZstdCompressor(level=lvl, write_content_size=False, threads=0)
        return cctx.compressobj()
    if compression == "none":
        return _Identity()
    raise InvalidCompression(
        f"unknown layer compression {compression!r}", fix="use gzip, zstd or none"
    )


class _LayerSink:
    """Takes tar bytes; hashes them (diff_id), compresses, and feeds a :class:`BlobWriter`.

    The compressor is fed in blocks of exactly ``CHUNK`` bytes (the last one shorter), however
    the writes come: ISA-L's deflate output depends on where its input is cut, so the
    compressed bytes, and the layer's digest, are a function of the tar's bytes alone (not of
    whether a file came from disk in pieces or from memory whole).
    """

    def __init__(
        self,
        out: BlobWriter,
        compression: Compression,
        level: int | None,
        tee: IO[bytes] | None = None,
    ) -> None:
        self._out = out
        self._tee = tee
        self._compressor = _compressor(compression, level)
        self._hasher = hashlib.sha256()
        self._buf = bytearray()
        self.uncompressed_size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        if self._buf:
            take = CHUNK - len(self._buf)
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) < CHUNK:
                return size
            self._feed(bytes(self._buf))
            self._buf.clear()
        while len(view) >= CHUNK:
            self._feed(view[:CHUNK])
            view = view[CHUNK:]
        self._buf += view
        return size

    def _feed(self, data: bytes | memoryview) -> None:
        if self._tee is not None:
            self._tee.write(data)
        self._hasher.update(data)
        self.uncompressed_size += len(data)
        out = self._compressor.compress(data)
        if out:
            self._out.write(out)

    def close(self) -> Digest:
        if self._buf:
            self._feed(bytes(self._buf))
            self._buf.clear()
        tail = self._compressor.flush()
        if tail:
            self._out.write(tail)
        return Digest.from_hasher(self._hasher)


def compress_file(
    src: Path, out: BlobWriter, compression: Compression, *, level: int | None = None
) -> Digest:
    """Stream the uncompressed tar ``src`` through the layer compressor into ``out``; returns
    its diff_id (the sha256 of ``src``'s bytes as read)."""
    sink = _LayerSink(out, compression, level)
    with Path(src).open("rb") as fh:
        while chunk := fh.read(CHUNK):
            sink.write(chunk)
    return sink.close()


def _header(entry: TarEntry, mtime: int) -> bytes:
    info = tarfile.TarInfo(entry.path)
    info.type = _KINDS[entry.kind]
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = mtime
    info.size = entry.size if entry.kind == "file" else 0
    info.linkname = entry.linkname
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def write_tar(entries: Iterable[TarEntry], out: Any, *, mtime: int) -> None:
    """Write ``entries`` (already planned: see :func:`plan_entries`) as a tar to ``out``.

    ``out`` needs only ``write(bytes)``.
    """
    for entry in entries:
        out.write(_header(entry, mtime))
        if entry.kind != "file" or entry.size == 0:
            continue
        if isinstance(entry.source, bytes):
            out.write(entry.source)
        else:
            assert entry.source is not None
            _copy_exact(Path(entry.source), entry.size, out, entry.path)
        pad = -entry.size % tarfile.BLOCKSIZE
        if pad:
            out.write(b"\0" * pad)
    out.write(b"\0" * (2 * tarfile.BLOCKSIZE))


def _copy_exact(src: Path, size: int, out: Any, name: str) -> None:
    remaining = size
    with src.open("rb") as fh:
        while remaining:
            chunk = fh.read(min(CHUNK, remaining))
            if not chunk:
                break
            out.write(chunk)
            remaining -= len(chunk)
        grew = bool(fh.read(1))
    if remaining or grew:
        raise SizeMismatch(
            f"{src} changed size while the layer was being written ({name})",
            path=src,
            fix="make sure nothing writes to the source folder during a build, then retry",
        )


# -- the layer ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """An image layer: its descriptor fields and a way to reach its compressed bytes.

    ``digest``/``size`` are of the compressed blob, ``diff_id`` of the uncompressed tar.
    ``uncompressed_size`` is known for layers wheeldock wrote and None for others. Bytes are
    reached through ``locate``, which returns a file holding the blob and may first produce it
    (a lazy layer: ko's model, where the digest comes from the cache and bytes are made only
    when a destination lacks the blob).
    """

    digest: Digest
    diff_id: Digest
    size: int
    media_type: str
    locate: Callable[[], Path] = field(compare=False, repr=False)
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)
    uncompressed_size: int | None = field(default=None, compare=False)

    @property
    def compression(self) -> Compression:
        return compression_of(self.media_type)

    def blob_path(self) -> Path:
        """A file holding the compressed bytes (produced first if the layer is lazy)."""
        return self.locate()

    def compressed(self) -> IO[bytes]:
        """The blob as stored and pushed; each call opens a new reader."""
        return self.locate().open("rb")

    def uncompressed(self) -> IO[bytes]:
        """The layer tar; each call opens a new reader."""
        return open_uncompressed(self.compressed(), self.compression)

    def descriptor(self) -> dict[str, Any]:
        """The layer's OCI descriptor (Docker media types are given their OCI names)."""
        desc: dict[str, Any] = {
            "mediaType": DOCKER_TO_OCI.get(self.media_type, self.media_type),
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.annotations:
            desc["annotations"] = dict(self.annotations)
        return desc

    def to_json(self) -> dict[str, Any]:
        """What the cache index records for this layer (see :meth:`from_json`)."""
        data: dict[str, Any] = {
            "digest": str(self.digest),
            "diff_id": str(self.diff_id),
            "size": self.size,
            "media_type": self.media_type,
        }
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        if self.uncompressed_size is not None:
            data["uncompressed_size"] = self.uncompressed_size
        return data

    @classmethod
    def from_json(
        cls,
        data: Mapping[str, Any],
        store: BlobStore,
        *,
        produce: Callable[[], Layer] | None = None,
    ) -> Layer:
        """A layer recorded by :meth:`to_json`, backed by ``store``.

        The blob is checked against its digest and size when it is first located
        (:meth:`BlobStore.verified`). With ``produce``, the layer is lazy: if the store lacks
        the blob, or it was damaged, ``produce()`` is called (at most when bytes are needed) and
        must give a layer with the same digest.
        """
        digest = Digest.parse(data["digest"])
        size = int(data["size"])
        if produce is None:
            locate = _store_locator(store, digest, size)
        else:
            locate = _lazy_locator(store, digest, size, produce)
        return cls(
            digest=digest,
            diff_id=Digest.parse(data["diff_id"]),
            size=size,
            media_type=str(data["media_type"]),
            locate=locate,
            annotations=dict(data.get("annotations", {})),
            uncompressed_size=data.get("uncompressed_size"),
        )

    @classmethod
    def from_store(
        cls,
        store: BlobStore,
        digest: Digest,
        *,
        diff_id: Digest,
        media_type: str,
        size: int | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Layer:
        return cls(
            digest=digest,
            diff_id=diff_id,
            size=store.size(digest) if size is None else size,
            media_type=media_type,
            locate=_store_locator(store, digest, size),
            annotations=dict(annotations or {}),
        )

    @classmethod
    def from_tar_file(
        cls,
        path: Path,
        store: BlobStore,
        compression: Compression = "gzip",
        *,
        level: int | None = None,
    ) -> Layer:
        """An existing uncompressed tar (e.g. a base rootfs) as a layer: compress and hash.

        The result is cached by the tar's sha256, compression and level, so a second call only
        hashes the file.
        """
        path = Path(path)
        with path.open("rb") as fh:
            magic = fh.read(MAGIC_SIZE)
        if sniff_compression(magic) != "none":
            raise InvalidArchive(
                "is compressed; a layer is made from an uncompressed tar",
                path=path,
                fix="decompress it first (gunzip / zstd -d)",
            )
        source = hash_file(path)
        key = f"layer/tar-file/v1/{source.digest}/{compression}/{level}"
        cached = store.get_cached(key)
        if cached is not None and store.verified(Digest.parse(cached["digest"]), cached["size"]):
            return cls.from_json(cached, store)
        with store.writer() as w:
            sink = _LayerSink(w, compression, level)
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    sink.write(chunk)
            diff_id = sink.close()
        if diff_id != source.digest:
            raise DigestMismatch(
                "changed while it was being read",
                expected=str(source.digest),
                actual=str(diff_id),
                path=path,
                fix="retry when nothing writes to it",
            )
        layer = _finish(w.blob, diff_id, compression, store, sink.uncompressed_size, None)
        store.set_cached(key, layer.to_json())
        return layer


def _store_locator(store: BlobStore, digest: Digest, size: int | None) -> Callable[[], Path]:
    def locate() -> Path:
        path = store.verified(digest, size)
        if path is None:
            raise NotFound(
                f"blob {digest} is missing from the blob store, or was damaged and removed",
                path=store.path(digest),
                fix="build the image again: its layers are made anew",
            )
        return path

    return locate


def _lazy_locator(
    store: BlobStore, digest: Digest, size: int, produce: Callable[[], Layer]
) -> Callable[[], Path]:
    def locate() -> Path:
        path = store.verified(digest, size)
        if path is None:
            made = produce()
            if made.digest != digest:
                raise DigestMismatch(
                    "rebuilding a cached layer gave different bytes (its inputs are not "
                    "deterministic)",
                    expected=str(digest),
                    actual=str(made.digest),
                    fix="clear the layer cache (WHEELDOCK_CACHE) and rebuild",
                )
            path = store.path(digest)
        return path

    return locate


def _finish(
    blob: Blob,
    diff_id: Digest,
    compression: Compression,
    store: BlobStore,
    uncompressed_size: int,
    annotations: Mapping[str, str] | None,
) -> Layer:
    return Layer(
        digest=blob.digest,
        diff_id=diff_id,
        size=blob.size,
        media_type=MEDIA_TYPES[compression],
        locate=_store_locator(store, blob.digest, blob.size),
        annotations=dict(annotations or {}),
        uncompressed_size=uncompressed_size,
    )


def build_layer(
    entries: Iterable[TarEntry],
    *,
    store: BlobStore,
    compression: Compression = "gzip",
    mtime: int,
    level: int | None = None,
    annotations: Mapping[str, str] | None = None,
    provided: Collection[str] = (),
    tee: IO[bytes] | None = None,
) -> Layer:
    """Write ``entries`` as a deterministic layer straight into ``store``.

    One streaming pass: tar → sha256 (diff_id) → compressor → sha256 (digest) → store; memory
    stays at a few MiB whatever the layer's size. ``mtime`` (SOURCE_DATE_EPOCH) is every
    entry's modification time. ``provided``: see :func:`plan_entries`. ``tee`` gets a copy of
    the uncompressed tar (an installed wheel's archive is its own layer's tar).
    """
    planned = plan_entries(entries, provided=provided)
    with store.writer() as w:
        sink = _LayerSink(w, compression, level, tee)
        write_tar(planned, sink, mtime=int(mtime))
        diff_id = sink.close()
    return _finish(w.blob, diff_id, compression, store, sink.uncompressed_size, annotations)


def cached_layer(
    store: BlobStore, key: str, build: Callable[[], Layer], *, lazy: bool = False
) -> Layer:
    """The layer recorded under ``key``, or ``build()``'s (then recorded).

    ``key`` must hash every input that changes the bytes (entries, modes, mtime, compression,
    level). With ``lazy``, a recorded layer whose blob is no longer in the store is returned
    without building: ``build()`` runs only if a destination needs the bytes. A recorded blob
    that is found damaged when located is removed and made again by ``build()``.
    """
    cached = store.get_cached(key)
    if cached is not None:
        try:
            digest = Digest.parse(cached["digest"])
        except (KeyError, WheeldockError):
            cached = None
        else:
            if lazy or store.has(digest):
                # a blob found damaged when it is located is made again by ``build``
                return Layer.from_json(cached, store, produce=build)
    layer = build()
    store.set_cached(key, layer.to_json())
    return layer


def with_annotations(layer: Layer, annotations: Mapping[str, str]) -> Layer:
    return replace(layer, annotations={**layer.annotations, **annotations})
