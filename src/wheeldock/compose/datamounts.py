"""Data folders inside a code mount: what must stay mounted when the code moves into the image.

A service that bind-mounts its code writable may also write into that folder: a job's
``rm -rf /app/events/* && python /app/main.py``, a SQLite database (``sqlite:///…``), an upload
folder. Once the code is in the image, those writes would land in the container and be lost; so
the folders written to stay mounted from the host (the whole mount when the writes go to its top).
Pure: steps, environment and the mount in; the mounts to keep, with why, out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

#: Programs whose path arguments are written to.
WRITERS = ("rm", "mkdir", "touch", "cp", "mv", "tee", "chmod", "chown", "ln", "rsync", "truncate")
_SQLITE = re.compile(r"^sqlite(?:\+\w+)?:///(?P<path>[^?]+)")
_DATA_VARIABLE = re.compile(
    r"(UPLOAD|MEDIA|DATA|OUTPUT|STORAGE|REPORTS?|EXPORTS?|RESULTS?)_?(DIR|FOLDER|PATH|ROOT)S?$"
)
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Mount:
    """The code mount: as written (``./app``), on the host, in the container, and its mode."""

    source: str
    host: Path
    target: str
    writable: bool


@dataclass(frozen=True)
class Kept:
    """What to keep of the code mount: ``whole``, or these short-syntax ``volumes:`` entries."""

    whole: bool
    entries: tuple[str, ...]
    notes: tuple[str, ...]


def writable(volumes: Sequence[Any] | None, source: str) -> bool:
    """Whether the ``volumes:`` entry mounting ``source`` is writable (no ``:ro``/``read_only``)."""
    for vol in volumes or ():
        if isinstance(vol, str):
            parts = vol.split(":")
            if parts[0] == source:
                return len(parts) < 3 or "ro" not in parts[2].split(",")
        elif isinstance(vol, Mapping) and str(vol.get("source", "")) == source:
            return not vol.get("read_only")
    return True


def _absolute(path: str, workdir: str) -> PurePosixPath:
    return PurePosixPath(path) if path.startswith("/") else PurePosixPath(workdir) / path


def written_paths(
    steps: Sequence[Sequence[str]], env: Mapping[str, str | None], workdir: str
) -> list[tuple[PurePosixPath, str]]:
    """Container paths the service writes to, each with where that was read: path arguments of
    writing programs and redirections in ``steps`` (the command's simple commands, pip steps
    left out), SQLite URLs and data-folder variables in ``env``."""
    found: list[tuple[PurePosixPath, str]] = []
    for words in steps:
        program = PurePosixPath(words[0]).name if words else ""
        for i, word in enumerate(words[1:], start=1):
            redirected = words[i - 1] in (">", ">>") or word.startswith((">/", ">>/"))
            word = word.lstrip(">")
            if word.startswith("-") or not word or "=" in word:
                continue
            if redirected or (program in WRITERS and ("/" in word or _GLOB.search(word))):
                found.append((_absolute(word, workdir), f"`{' '.join(words)}` writes there"))
    for key, value in env.items():
        if not value:
            continue
        sqlite = _SQLITE.match(value)
        if sqlite:
            found.append((_absolute(sqlite["path"], workdir), f"the SQLite database in {key}"))
        elif _DATA_VARIABLE.search(key.upper()) and ("/" in value or value.startswith(".")):
            found.append((_absolute(value, workdir), f"{key} names a data folder"))
    return found


def _folder(path: PurePosixPath, host: Path) -> PurePosixPath:
    """The folder to keep for ``path``: glob parts cut, a file's parent (``host``: where
    ``path`` is on the host, to tell files from folders that exist)."""
    parts = path.parts
    cut = next((i for i, part in enumerate(parts) if _GLOB.search(part)), len(parts))
    folder = PurePosixPath(*parts[:cut])
    if cut < len(parts):
        return folder
    if host.is_file() or (not host.exists() and PurePosixPath(path).suffix):
        return folder.parent
    return folder


def kept(mount: Mount, paths: Sequence[tuple[PurePosixPath, str]]) -> Kept:
    """What of ``mount`` stays mounted for ``paths`` (see :func:`written_paths`)."""
    target = PurePosixPath(mount.target)
    if not mount.writable:
        return Kept(False, (), ())
    folders: dict[PurePosixPath, str] = {}
    for path, why in paths:
        if path != target and target not in path.parents:
            continue
        folder = _folder(path, mount.host / path.relative_to(target))
        folders.setdefault(folder, why)
    if target in folders:
        note = f"kept the code mount {mount.source}:{mount.target} ({folders[target]})"
        return Kept(True, (), (note,))
    entries: list[str] = []
    notes: list[str] = []
    for folder in sorted(folders):
        if any(other in folder.parents for other in folders):
            continue  # inside a folder kept already
        rel = folder.relative_to(target).as_posix()
        source = f"{mount.source.rstrip('/')}/{rel}"
        entries.append(f"{source}:{folder}")
        notes.append(f"kept a mount for the data folder {source}:{folder} ({folders[folder]})")
    return Kept(False, tuple(entries), tuple(notes))
