"""One small exception hierarchy. Every message says what is wrong, where, and the fix.

The CLI turns a :class:`WheeldockError` into a message and a non-zero exit code; anything
else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path
from typing import Generic, TypeVar

_V = TypeVar("_V")


class WheeldockError(Exception):
    """Root of wheeldock's errors.

    ``what`` says what is wrong (and where), ``fix`` what the user can do about it.
    """

    exit_code = 1

    def __init__(self, what: str, *, fix: str | None = None, path: Path | str | None = None):
        self.what = what
        self.fix = fix
        self.path = Path(path) if path is not None else None
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = f"{self.path}: " if self.path is not None else ""
        text = f"{where}{self.what}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class UsageError(WheeldockError):
    """The command line itself is wrong."""

    exit_code = 2


class InvalidConfig(WheeldockError):
    """A file the user wrote (compose, wheeldock.toml, requirements) cannot be used as it is."""


class StaleLock(InvalidConfig):
    """A lock no longer matches its inputs (requirement files, platform, Python) and the
    command may not update it: ``build --locked``, or inputs that changed by more than
    versions moving."""


class InvalidDockerfile(InvalidConfig):
    """A service's own Dockerfile cannot be read (BuildKit's parser refuses it), or names a
    stage or build argument that is not there; ``line`` is where (``None``: the whole file)."""

    def __init__(
        self, what: str, *, path: Path | str, line: int | None = None, fix: str | None = None
    ):
        self.line = line
        super().__init__(f"line {line}: {what}" if line is not None else what, fix=fix, path=path)


class UnsupportedDockerfile(InvalidConfig):
    """A service's own Dockerfile has instructions the native builder cannot carry out (it
    runs no container); the message names each with its file and line."""


class InvalidReference(WheeldockError):
    """An image reference or transport name (``oci:DIR``, ``docker://…``) cannot be parsed."""


class InvalidDigest(WheeldockError, ValueError):
    """A digest string is not ``algorithm:hex`` of the right length."""


class InvalidElf(WheeldockError):
    """A file named like a shared library (``*.so``) is not a readable ELF file."""


class InvalidArchive(WheeldockError):
    """An archive (a wheel, a ``.deb``, an image tar or layer) is not what its name says."""


class InvalidLayout(WheeldockError):
    """A folder named as an OCI image layout (``oci:DIR``) is not a readable one."""


class InvalidDockerConfig(InvalidConfig):
    """Docker's ``config.json`` (where registry credentials are read) cannot be read."""


class InvalidCacheEntry(WheeldockError):
    """An entry of the registry cache (a key's manifest) is not one wheeldock wrote, or does
    not hold what an entry must: it is taken as a miss, never used."""


class InvalidCompression(WheeldockError):
    """A layer compression (or its level) wheeldock does not make."""


class NotFound(WheeldockError):
    """Something the user named (a file, a service, a tool, an image) does not exist."""


class LibraryNotFound(NotFound):
    """Files an image would run (extension modules, programs) need shared libraries, or symbol
    versions of them (``GLIBC_2.38``), that the image lacks. ``missing`` holds (file, soname,
    symbol version or None) for each."""

    def __init__(
        self,
        what: str,
        *,
        missing: Sequence[tuple[str, str, str | None]],
        fix: str | None = None,
    ):
        self.missing = tuple(missing)
        super().__init__(what, fix=fix)


class ToolNotFound(NotFound):
    """An external program wheeldock needs is not installed."""


class FolderNotFound(NotFound):
    """A folder to make a layer of does not exist (or is not a folder)."""


class ExtraNotFound(NotFound):
    """A Python package an optional feature needs (an extra, e.g. ``wheeldock[bench]``) is not
    installed."""


class NotWritable(WheeldockError):
    """A folder wheeldock writes to (the cache, the project, an output) refuses the write."""


class DownloadFailed(WheeldockError):
    """A file could not be downloaded (a package index, a Debian mirror, pip)."""


class RegistryUnreachable(WheeldockError):
    """A registry does not answer, or the connection to it broke."""


class IndexUnreachable(WheeldockError):
    """A package index does not answer (connection refused, DNS, TLS, a timeout): ``url`` is
    the address asked."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(
            f"the package index could not be reached ({reason}): {url}",
            fix="check the network and the proxy (HTTPS_PROXY); behind a proxy that intercepts "
            "TLS, point SSL_CERT_FILE at its CA; to use a mirror, set UV_DEFAULT_INDEX (or "
            "UV_INDEX_URL) to its simple index",
        )


class ImageNotLoaded(WheeldockError):
    """``docker load`` ran but does not report loading the image it was sent."""


class SdistNotBuildable(WheeldockError):
    """A package has no wheel for the target, and its sdist cannot be built on this machine."""


class SdistBuildFailed(WheeldockError):
    """Building a wheel from an sdist failed, or did not give one wheel."""


class _Mismatch(WheeldockError, Generic[_V]):
    """Something is not what a descriptor, lock or manifest says: ``expected`` and ``actual``."""

    #: Whether the message ends with both values (else the caller's ``what`` says them).
    _states_values = False

    def __init__(
        self,
        what: str,
        *,
        expected: _V,
        actual: _V,
        fix: str | None = None,
        path: Path | str | None = None,
    ):
        self.expected = expected
        self.actual = actual
        if self._states_values:
            what = f"{what} (expected {expected}, got {actual})"
        super().__init__(what, fix=fix, path=path)


class SizeMismatch(_Mismatch[int | None]):
    """Bytes are not as many as a descriptor (or the file's size a moment ago) says."""

    def __init__(
        self,
        what: str,
        *,
        expected: int | None = None,
        actual: int | None = None,
        fix: str | None = None,
        path: Path | str | None = None,
    ):
        super().__init__(what, expected=expected, actual=actual, fix=fix, path=path)


class DiffIdMismatch(_Mismatch[str]):
    """A layer's uncompressed bytes do not hash to the diff_id its image gives it."""


class EngineUnavailable(WheeldockError):
    """No Docker engine answers."""


class DigestMismatch(_Mismatch[str]):
    """Bytes do not hash to what a lock or manifest says they should."""

    _states_values = True


class CommandFailed(WheeldockError):
    """An external command exited non-zero. Carries argv, exit code and output tails."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        stdout: str = "",
        stderr: str = "",
        *,
        fix: str | None = None,
        tail_lines: int = 25,
    ):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = "\n".join((stderr or stdout).rstrip().splitlines()[-tail_lines:])
        what = f"`{' '.join(self.argv)}` exited with {returncode}"
        if tail:
            what += "; its last lines:\n" + "\n".join("    " + line for line in tail.splitlines())
        super().__init__(what, fix=fix)


#: What the machine refuses (not a bug): a full disk, a folder wheeldock may not write.
_OS_FIXES = {
    errno.ENOSPC: "free space on that file system, or point WHEELDOCK_CACHE (the cache) or "
    "--output at one with room",
    errno.EDQUOT: "free space under your quota, or point WHEELDOCK_CACHE (the cache) or "
    "--output at a folder with room",
    errno.EACCES: "make the folder writable for this user, or point WHEELDOCK_CACHE (the cache) "
    "or --output at a writable folder",
    errno.EPERM: "make the folder writable for this user, or point WHEELDOCK_CACHE (the cache) "
    "or --output at a writable folder",
    errno.EROFS: "point WHEELDOCK_CACHE (the cache) or --output at a writable file system",
}


def from_os_error(exc: OSError) -> WheeldockError | None:
    """``exc`` as a :class:`WheeldockError` naming the file and the fix when the machine
    refused a write or a read (a full disk, a folder not writable, a read-only file system);
    None for any other ``OSError``, which is a bug and keeps its traceback."""
    fix = _OS_FIXES.get(exc.errno or 0)
    if fix is None:
        return None
    where = exc.filename2 or exc.filename
    error = WheeldockError(f"{exc.strerror or exc}", fix=fix, path=where)
    error.__cause__ = exc
    return error
