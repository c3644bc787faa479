"""Run a command inside an unpacked root file system, with no container engine.

The command runs in new mount and PID namespaces (``unshare``; a user namespace too when this
process is not root), chrooted into an overlay whose lower layer is ``rootfs``: every run starts
from the same files and leaves nothing in ``rootfs``, and what it writes (caches, ``/tmp``) goes
with the scratch folder. ``/dev`` and ``/proc`` are the host's and a new one; the network is the
host's (with its ``/etc/resolv.conf``), as ``docker run --network host``. Only the environment
given reaches the command.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from wheeldock.edges import process

#: What the command sees when ``env`` sets no PATH.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def script(
    rootfs: Path,
    scratch: Path,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    binds: Mapping[Path, str],
    writable: Mapping[Path, str],
    scratch_tmpfs: bool = False,
) -> str:
    """The shell script :func:`run` hands to ``sh`` inside the namespaces (pure).

    ``binds`` maps host paths (files or folders) to absolute paths inside the rootfs, bound
    read-only; ``writable`` does the same for folders the command writes to. With
    ``scratch_tmpfs`` a tmpfs is mounted on ``scratch`` first (in the private mount namespace):
    the overlay's files go with the process, and several runs can share one ``scratch``."""
    merged, upper, work = scratch / "merged", scratch / "upper", scratch / "work"
    q = shlex.quote
    m = q(str(merged))
    lines = ["set -e"]
    if scratch_tmpfs:
        lines.append(f"mount -t tmpfs -o mode=0700 wheeldock-scratch {q(str(scratch))}")
    lines += [
        f"mkdir -p {m} {q(str(upper))} {q(str(work))}",
        f"mount -t overlay overlay -o lowerdir={q(str(rootfs))},upperdir={q(str(upper))},"
        f"workdir={q(str(work))} {m}",
        f"mount --rbind /dev {m}/dev",
        f"mount -t proc proc {m}/proc",
    ]
    mounts = [
        (h, i, True) for h, i in {Path("/etc/resolv.conf"): "/etc/resolv.conf", **binds}.items()
    ]
    mounts += [(h, i, False) for h, i in writable.items()]
    for host, inside, read_only in mounts:
        target = q(f"{merged}{inside}")
        if host.is_dir():
            lines.append(f"mkdir -p {target}")
        elif host.exists():
            lines += [
                f"mkdir -p {q(f'{merged}{os.path.dirname(inside)}')}",
                f"rm -f {target}",  # a dangling symlink would send the mount out of the rootfs
                f"touch {target}",
            ]
        else:
            continue
        lines.append(f"mount --bind {q(str(host))} {target}")
        if read_only:
            lines.append(f"mount -o remount,bind,ro {target}")
    assigned = [f"{k}={v}" for k, v in sorted({"PATH": DEFAULT_PATH, **env}.items())]
    command = ["/usr/bin/env", "-i", *assigned, *argv]
    lines.append(f"exec chroot {m} " + " ".join(q(a) for a in command))
    return "\n".join(lines) + "\n"


def argv_for(shell_script: str) -> list[str]:
    """``unshare`` around ``sh -c shell_script`` (a user namespace unless this is root)."""
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    return ["unshare", *user, "--mount", "--pid", "--fork", "sh", "-c", shell_script]


def run(
    rootfs: Path,
    argv: Sequence[str],
    *,
    scratch: Path,
    env: Mapping[str, str] | None = None,
    binds: Mapping[Path, str] | None = None,
    writable: Mapping[Path, str] | None = None,
    timeout: float | None = None,
    fix: str | None = None,
) -> process.Result:
    """Run ``argv`` chrooted into an overlay of ``rootfs`` (``binds`` and ``writable`` as in
    :func:`script`); the overlay's folders go under
    ``scratch`` (which the caller removes). Raises :class:`wheeldock.errors.CommandFailed` on a
    non-zero exit."""
    text = script(rootfs, scratch, argv, env=env or {}, binds=binds or {}, writable=writable or {})
    return process.run(argv_for(text), timeout=timeout, fix=fix)
