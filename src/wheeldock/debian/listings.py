"""Cached entry lists of layer tars, so that a check after a bump reads only the new layers.

A layer blob or base rootfs tar in wheeldock's cache does not change once written. Its entries
(names, types, link targets, sizes and offsets in the uncompressed tar) are kept in
``<cache>/check/listings/<key>.json``, keyed by the file's path and identity (inode, size,
mtime, ctime), so a file written anew gets a new key; ``wheeldock prune`` removes the listings
no check has read lately. With the listing at hand a layer is merged into
the image's tree without being read (nor, for a compressed blob, decompressed); its bytes are
read only when the check opens one of its files.

A listing is a shortcut, never the truth: one that cannot be parsed is ignored and the tar
read again; one whose tar turns out to have another size when it is opened is removed, and the
check stops with an error that says to run it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wheeldock.debian.rootfs import LazyLayer, TarSource, tar_members
from wheeldock.edges.fsutil import atomic_write_text
from wheeldock.edges.sweep import Age, Candidate, size_of
from wheeldock.errors import InvalidArchive
from wheeldock.oci.blobs import file_identity

log = logging.getLogger(__name__)

#: the listing format; a change of it changes every key
VERSION = 1
#: the prune report's name for these files
KIND = "check listings"


def listing_key(path: Path) -> str:
    """The key of ``path``'s listing: its resolved path and identity, hashed."""
    ident = [VERSION, str(path.resolve()), *file_identity(path)]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()


def prune_candidates(folder: Path, age: Age, *, everything: bool = False) -> list[Candidate]:
    """The listings in ``folder`` no check read within ``age.keep_seconds`` (``everything``:
    all), none younger than :data:`~wheeldock.edges.sweep.GRACE`."""
    return [
        Candidate(KIND, path, size_of(path), "not read lately")
        for path in sorted(folder.glob("*.json"))
        if (everything and not age.young(path)) or not age.kept(path)
    ]


def encode(members: list[tarfile.TarInfo], tar_size: int) -> str:
    """A listing as JSON text (pure)."""
    rows = [[m.name, m.type.decode("latin-1"), m.linkname, m.offset_data, m.size] for m in members]
    return json.dumps({"version": VERSION, "tar_size": tar_size, "members": rows})


def decode(text: str) -> tuple[list[tarfile.TarInfo], int] | None:
    """The members and tar size of a listing; None when ``text`` is not one (pure)."""
    try:
        data: Any = json.loads(text)
        if data.get("version") != VERSION or not isinstance(data.get("tar_size"), int):
            return None
        members = [_member(row) for row in data["members"]]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if any(m.offset_data + m.size > data["tar_size"] for m in members):
        return None
    return members, data["tar_size"]


def _member(row: Any) -> tarfile.TarInfo:
    name, kind, linkname, offset, size = row
    if not (isinstance(name, str) and isinstance(kind, str) and len(kind) == 1):
        raise TypeError("not a listing row")
    if not (isinstance(offset, int) and isinstance(size, int) and offset >= 0 and size >= 0):
        raise TypeError("not a listing row")
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind.encode("latin-1"), str(linkname)
    info.offset_data, info.size = offset, size
    return info


class Listings:
    """The layers of one check as :class:`LazyLayer`\\ s, their listings read from (and
    written to) ``folder``; ``open_tar`` opens a layer file's uncompressed tar (decompressing
    it where needed), once per check."""

    def __init__(self, folder: Path, open_tar: Callable[[Path], TarSource]) -> None:
        self._folder = folder
        self._open_tar = open_tar
        self._opened: dict[Path, TarSource] = {}  # each file is opened once per check
        self.read = 0  # how many layer files were opened (for the log)

    def layer(self, path: Path) -> LazyLayer:
        """``path``'s layer: from its listing when there is a sound one, else read now (and
        its listing written for the next check)."""
        listing = self._folder / f"{listing_key(path)}.json"
        with contextlib.suppress(OSError):
            known = decode(listing.read_text())
            if known is not None:
                members, size = known
                return LazyLayer(members, lambda: self._checked(path, listing, size))
        source = self._open(path)
        members = tar_members(source, shown=str(path))
        with contextlib.suppress(OSError):
            self._folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(listing, encode(members, source[2]))
        return LazyLayer(members, lambda: source)

    def _open(self, path: Path) -> TarSource:
        if path not in self._opened:
            self.read += 1
            self._opened[path] = self._open_tar(path)
        return self._opened[path]

    def _checked(self, path: Path, listing: Path, size: int) -> TarSource:
        source = self._open(path)
        if source[2] != size:
            listing.unlink(missing_ok=True)
            raise InvalidArchive(
                f"{path} is {source[2]} bytes uncompressed, its cached listing says {size}",
                fix="run the command again (the stale listing was removed)",
            )
        return source
