"""One small exception hierarchy. Every message says what is wrong, where, and the fix.

The CLI turns a :class:`WheeldockError` into a message and a non-zero exit code; anything
else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


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


class InvalidReference(WheeldockError):
    """An image reference or transport name (``oci:DIR``, ``docker://…``) cannot be parsed."""


class InvalidDigest(WheeldockError, ValueError):
    """A digest string is not ``algorithm:hex`` of the right length."""


class InvalidElf(WheeldockError):
    """A file named like a shared library (``*.so``) is not a readable ELF file."""


class InvalidArchive(WheeldockError):
    """An archive (a wheel, a ``.deb``, an image tar or layer) is not what its name says."""


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


class EngineUnavailable(WheeldockError):
    """No Docker engine answers."""


class DigestMismatch(WheeldockError):
    """Bytes do not hash to what a lock or manifest says they should."""

    def __init__(
        self,
        what: str,
        *,
        expected: str,
        actual: str,
        fix: str | None = None,
        path: Path | None = None,
    ):
        self.expected = expected
        self.actual = actual
        super().__init__(f"{what} (expected {expected}, got {actual})", fix=fix, path=path)


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
