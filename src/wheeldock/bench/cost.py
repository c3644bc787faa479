"""What a native build costs besides its time: the memory of its processes, the bytes it leaves
on disk, and the size of what it installs.

* **Peak RSS** (:func:`run_measured`): the ``ru_maxrss`` that ``wait4`` returns for the
  ``wheeldock build`` process. Linux fills it with the largest resident set of that process and
  of every descendant it waited for (uv, ``docker load``, an sdist build), whichever was
  largest: the peak of the largest single process of the build's tree, not the sum of
  processes that ran at once. ``getrusage(RUSAGE_CHILDREN)`` would not do: its ``ru_maxrss``
  is the largest of every child the bench ever reaped (earlier builds, docker CLI calls), a
  maximum that a delta cannot take apart. Nor may the bench reap the build itself: a process
  starts its ``ru_maxrss`` from the memory of the one it was forked from (``exec`` keeps the
  old address space's high-water mark), so a build forked by the bench would report at least
  the bench's own size. A small launcher (:data:`_LAUNCHER`, a Python without ``site``) forks
  the build and reports what ``wait4`` says of it; its own size (a few MB) is the floor.
* **Bytes written** (:func:`tree_bytes`): the net growth, across the build, of the apparent
  size of the regular files under the folders the build writes (its wheeldock and uv caches,
  the working copy with its lock and OCI layouts), each inode once, symlinks not followed.
  Files written and removed during the build (staging, temporary files) and bytes overwritten
  in place are not counted; what ``docker load`` hands the engine is stored by dockerd and is
  not counted either.
* **Installed size** (:func:`installed_bytes`): the uncompressed size of the stack's dependency
  layers (the layer tars, each distinct layer once): the installed trees plus tar's headers
  and padding.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.layer import MAGIC_SIZE, open_uncompressed, sniff_compression


@dataclass(frozen=True)
class Finished:
    """A measured child process: its exit code, its output, and the peak RSS of its tree (bytes,
    as :func:`run_measured` describes)."""

    returncode: int
    stdout: str
    stderr: str
    peak_rss: int


#: Runs argv[2:], reaps it with wait4 and writes "<exit code> <ru_maxrss KiB>" to argv[1];
#: exits 0 (the child's own code is in the file).
_LAUNCHER = """
import os, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_measured(cmd: Sequence[str], env: Mapping[str, str]) -> Finished:
    """Run ``cmd`` to its end under :data:`_LAUNCHER`, which reaps it with ``wait4`` for its
    resource usage. Its output goes to temporary files, so a child that writes more than a pipe
    holds never blocks. A launcher that fails to start ``cmd`` gives exit code 127."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory(prefix="wdbench-rusage-") as tmp,
    ):
        usage = Path(tmp) / "usage"
        launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(usage)]
        proc = subprocess.run([*launcher, *cmd], stdout=out, stderr=err, env=dict(env))
        code, peak = 127, 0
        if proc.returncode == 0 and usage.is_file():
            text_code, _, text_peak = usage.read_text().partition(" ")
            code, peak = int(text_code), int(text_peak) * 1024  # Linux reports KiB
        out.seek(0)
        err.seek(0)
        return Finished(
            code, out.read().decode(errors="replace"), err.read().decode(errors="replace"), peak
        )


def tree_bytes(roots: Iterable[Path]) -> int:
    """The apparent size of every regular file under ``roots`` (each inode once, symlinks not
    followed, a missing root counted as empty)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    pending = [str(root) for root in roots]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # removed since the folder was listed
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total


def deps_layers(build_json: Mapping[str, Any]) -> list[str]:
    """The digests of the dependency layers in ``wheeldock build --json``'s result, each once,
    in the order the services list them (pure)."""
    found: dict[str, None] = {}
    if not isinstance(build_json, Mapping):
        return []
    for service in build_json.get("services", []):
        for layer in service.get("layers", []):
            if layer.get("kind") == "deps":
                found.setdefault(str(layer["digest"]), None)
    return list(found)


def installed_bytes(store: BlobStore, digests: Iterable[str]) -> int | None:
    """The uncompressed size of the layers ``digests`` names, read from ``store`` (None when
    there are none, or one of them is not in the store)."""
    total, count = 0, 0
    for text in digests:
        digest = Digest.parse(text)
        if not store.has(digest):
            return None
        with store.open(digest) as packed:
            compression = sniff_compression(packed.read(MAGIC_SIZE))
            packed.seek(0)
            with open_uncompressed(packed, compression) as tar:
                while chunk := tar.read(1 << 20):
                    total += len(chunk)
        count += 1
    return total if count else None
