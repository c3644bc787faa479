"""File-system helpers: atomic writes, so nothing the user had is ever half-written."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from wheeldock.errors import InvalidConfig, NotWritable


def read_text(path: Path) -> str:
    """A file the user wrote, decoded as UTF-8 (:func:`decode`)."""
    return decode(path.read_bytes(), path)


def decode(data: bytes, path: Path) -> str:
    """The bytes of the user's file at ``path``, decoded as UTF-8; :class:`InvalidConfig`
    naming the line, column and byte offset of the first byte that is not UTF-8."""
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InvalidConfig(
            f"line {line}, column {column} (byte offset {exc.start}): byte "
            f"{data[exc.start : exc.start + 1]!r} is not UTF-8 ({exc.reason})",
            path=path,
            fix="save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`), or remove that byte",
        ) from exc


def temp_file(
    folder: Path,
    *,
    prefix: str,
    suffix: str = "",
    what: str = "here",
    fix: str,
    shown: Path | None = None,
) -> tuple[int, str]:
    """``tempfile.mkstemp`` in ``folder`` (made if missing): its descriptor and path. A folder
    that takes no new file is :class:`NotWritable` ("cannot write {what}"), naming ``shown``
    (default: ``folder``)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    except OSError as exc:
        raise NotWritable(
            f"cannot write {what} ({exc.strerror})", path=shown or folder, fix=fix
        ) from exc


def atomic_write_bytes(
    path: Path, data: bytes, *, mode: int | None = None, durable: bool = True
) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``.

    Readers see the old file or the new one, never a partial one. The old file's mode is kept.
    ``durable=False`` skips the fsync, for a cache whose reader can tell a torn file and ignore
    it: after a power cut the file may then be empty, but never half-old, half-new.
    """
    path = Path(path)
    fd, tmp = temp_file(
        path.parent,
        prefix=f".{path.name}.",
        suffix=".tmp",
        fix="make the folder writable, or pick another with -C / --output",
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(
    path: Path, text: str, *, mode: int | None = None, durable: bool = True
) -> None:
    atomic_write_bytes(path, text.encode(), mode=mode, durable=durable)


@contextmanager
def atomic_writer(path: Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file to stream ``path``'s bytes into: a temp file beside it, put in place with
    ``os.replace`` when the block ends without an error and removed when it raises (a check
    inside the block that raises keeps ``path`` as it was). Not fsynced: for files whose readers
    verify them (digests, archive trailers). ``mode``: the file's mode (None: the temp file's
    0600). For bytes already in memory, :func:`atomic_write_bytes`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block.

    Shared by processes and by threads of one process (each call opens its own descriptor); the
    kernel drops it when its holder dies, so a ``kill -9`` never leaves the cache locked. Not
    re-entrant: a block must not take the same lock again. (Not the ``filelock`` package: see
    docs/design/start-up.md.)"""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with _held(os.open(path, os.O_RDWR | os.O_CREAT, 0o644)):
        yield


@contextmanager
def folder_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """:func:`file_lock` held on the folder ``path`` itself (created if missing), so no lock
    file is left in it: for folders the user keeps, such as ``wheeldock.lock``."""
    Path(path).mkdir(parents=True, exist_ok=True)
    with _held(os.open(path, os.O_RDONLY | os.O_DIRECTORY)):
        yield


@contextmanager
def _held(fd: int) -> Iterator[None]:
    """An exclusive ``flock`` on the open descriptor ``fd``, which is closed at the end."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
