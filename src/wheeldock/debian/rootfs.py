"""A rootfs as a read-only file tree, wherever it is: a folder on this host
(:class:`DirTree`), an image's layers merged (:class:`LayeredTree`), or only a tar's symlinks
(:class:`SymlinkMap`); and the one way symlinks are followed inside it (:func:`resolve`):
absolute targets start at the tree's root, never at this host's.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from wheeldock.errors import InvalidArchive, NotFound


@dataclass(frozen=True)
class Node:
    """One entry of a file tree: ``kind`` is file, dir, symlink or other; ``linkname`` a
    symlink's target."""

    kind: str
    linkname: str = ""
    size: int = 0


class FileTree(Protocol):
    """A read-only file system (a folder, or an image's layers merged). Paths are relative,
    without a leading ``/``; :meth:`node` does not follow symlinks (see :func:`resolve`)."""

    def node(self, path: str) -> Node | None: ...

    def paths(self) -> Iterable[str]: ...

    def open(self, path: str) -> IO[bytes]: ...


def norm(name: str) -> str:
    """A tar member name or an absolute path as a tree path: no ``./``, no leading slash, the
    root is ``""``."""
    path = posixpath.normpath("/" + name).lstrip("/")
    return "" if path == "." else path


class SymlinkMap:
    """A tree known only by its symlinks (normalised path -> link target), as a
    :class:`FileTree` for :func:`resolve`: every other path is taken to be a folder that exists,
    so resolving never fails but on a loop. For planning on a tar's member list."""

    def __init__(self, links: Mapping[str, str]) -> None:
        self._links = links

    def node(self, path: str) -> Node | None:
        target = self._links.get(path)
        return Node("dir") if target is None else Node("symlink", target)

    def paths(self) -> Iterable[str]:
        return iter(self._links)

    def open(self, path: str) -> IO[bytes]:
        raise NotFound(f"{path!r} is known only by its symlinks; it cannot be read")


class DirTree:
    """A folder on this host as a :class:`FileTree` (an unpacked rootfs, a site-packages)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def node(self, path: str) -> Node | None:
        # Callers resolve symlinks component by component (resolve()), so parents here are
        # real folders inside root: lstat never follows a link out of the tree.
        try:
            st = os.lstat(self.root / path) if path else os.stat(self.root)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            return Node("symlink", os.readlink(self.root / path))
        if stat.S_ISDIR(st.st_mode):
            return Node("dir")
        if stat.S_ISREG(st.st_mode):
            return Node("file", size=st.st_size)
        return Node("other")

    def paths(self) -> Iterator[str]:
        for folder, dirs, files in os.walk(self.root):
            rel = os.path.relpath(folder, self.root)
            for name in (*dirs, *files):
                yield name if rel == "." else f"{rel}/{name}"

    def open(self, path: str) -> IO[bytes]:
        return (self.root / path).open("rb")


class _Window(io.RawIOBase):
    """A read-only, seekable view of ``size`` bytes at ``start`` of an open file (``pread``:
    several views share one descriptor)."""

    def __init__(self, fd: int, start: int, size: int) -> None:
        self._fd, self._start, self._size, self._pos = fd, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._start + self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def open_window(fd: int, start: int, size: int) -> IO[bytes]:
    return io.BufferedReader(_Window(fd, start, size))


#: A tar inside an open file: (file descriptor, offset, size).
TarSource = tuple[int, int, int]


def tar_members(source: TarSource, *, shown: str = "the layer") -> list[tarfile.TarInfo]:
    """The entries of the tar at ``source``, in order (their ``offset_data`` relative to its
    start)."""
    fd, start, size = source
    try:
        with tarfile.open(fileobj=open_window(fd, start, size), mode="r:") as tar:
            return list(tar)
    except tarfile.TarError as exc:
        raise InvalidArchive(
            f"{shown} is not a readable tar ({exc})", fix="export the image again"
        ) from exc


@dataclass(frozen=True)
class LazyLayer:
    """A layer whose entries are known before its bytes are read: ``members`` (offsets into
    the uncompressed tar), and ``source``, called on the first read of a file of it, which
    opens (or decompresses) that tar."""

    members: Sequence[tarfile.TarInfo]
    source: Callable[[], TarSource]


class LayeredTree:
    """Image layers (uncompressed tars, base first) merged as the engine would: later layers
    win, ``.wh.NAME`` deletes NAME, ``.wh..wh..opq`` empties a folder of lower layers.

    ``layers`` are (file descriptor, offset, size) of each tar inside an open file, whose
    descriptors must stay open while the tree is used, or :class:`LazyLayer`\\ s, opened only
    when a file of theirs is read.
    """

    def __init__(self, layers: Sequence[TarSource | LazyLayer]) -> None:
        self._layers = list(layers)
        self._opened: dict[int, TarSource] = {}
        self._entries: dict[str, tuple[int, tarfile.TarInfo]] = {}
        self._dirs: set[str] = set()
        for index, layer in enumerate(self._layers):
            if isinstance(layer, LazyLayer):
                members: Iterable[tarfile.TarInfo] = layer.members
            else:
                self._opened[index] = layer
                shown = f"layer {index + 1} of {len(self._layers)}"
                members = tar_members(layer, shown=shown)
            for info in members:
                self._add(index, info)
        # Folders that exist only implicitly (a member "a/b" without an entry for "a").
        for key in self._entries:
            parent = posixpath.dirname(key)
            while parent and parent not in self._dirs:
                self._dirs.add(parent)
                parent = posixpath.dirname(parent)

    def _source(self, index: int) -> TarSource:
        if index not in self._opened:
            layer = self._layers[index]
            assert isinstance(layer, LazyLayer)  # the others are opened in __init__
            self._opened[index] = layer.source()
        return self._opened[index]

    def _drop(self, prefix: str, below: int) -> None:
        doomed = [
            k for k, (i, _) in self._entries.items() if i < below and k.startswith(prefix + "/")
        ]
        for key in doomed:
            del self._entries[key]

    def _add(self, index: int, info: tarfile.TarInfo) -> None:
        name = norm(info.name)
        if not name:
            return
        folder, base = posixpath.split(name)
        if base == ".wh..wh..opq":
            self._drop(folder, index)
            return
        if base.startswith(".wh."):
            target = posixpath.join(folder, base[4:])
            self._entries.pop(target, None)
            self._drop(target, index + 1)
            return
        old = self._entries.get(name)
        if old is not None and old[1].isdir() and not info.isdir():
            self._drop(name, index)
        self._entries[name] = (index, info)

    def node(self, path: str) -> Node | None:
        entry = self._entries.get(path)
        if entry is None:
            return Node("dir") if not path or path in self._dirs else None
        info = entry[1]
        if info.issym():
            return Node("symlink", info.linkname)
        if info.isdir():
            return Node("dir")
        if info.isreg() or info.islnk():
            return Node("file", size=info.size)
        return Node("other")

    def paths(self) -> Iterator[str]:
        return iter(list(self._entries))

    def layer_of(self, path: str) -> int | None:
        """The number (0-based, base first) of the layer ``path``'s entry comes from; None
        for a path no layer has (or a folder only implied by its files)."""
        entry = self._entries.get(path)
        return entry[0] if entry is not None else None

    def open(self, path: str) -> IO[bytes]:
        for _ in range(10):
            entry = self._entries.get(path)
            if entry is None:
                raise NotFound(f"no file {path!r} in the image")
            index, info = entry
            if info.islnk():
                path = norm(info.linkname)
                continue
            fd, start, _ = self._source(index)
            return open_window(fd, start + info.offset_data, info.size)
        raise NotFound(f"hard links around {path!r} do not end in a file")


def resolve(tree: FileTree, path: str, *, limit: int = 40) -> str | None:
    """``path`` with every symlink in it followed inside ``tree`` (absolute targets start at
    the tree's root, never at this host's); None when it does not exist or links loop."""
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        here = "/".join((*done, part))
        node = tree.node(here)
        if node is None:
            return None
        if node.kind == "symlink":
            hops += 1
            if hops > limit:
                return None
            if node.linkname.startswith("/"):
                done = []
            parts = [p for p in node.linkname.split("/") if p and p != "."] + parts
            continue
        if parts and node.kind != "dir":
            return None
        done.append(part)
    return "/".join(done)
