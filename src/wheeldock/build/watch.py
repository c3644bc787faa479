"""``wheeldock build --watch``: rebuild a service's image as soon as its inputs change.

A ``wheeldock build`` run for a code change spends most of its time starting Python and
importing, not in the rebuild itself (hash the source, re-tar the app layer, write the
manifest). Watching keeps the process and its imports warm, so the edit-to-image loop costs
only the rebuild (docs/design/watch.md).

Inputs are polled (a ``stat`` of each file every ``interval`` seconds), not watched with
inotify: a service's inputs are one source folder and a few requirement files (hundreds of
stats, well under a millisecond), and polling also sees changes on bind mounts and network
folders, where inotify does not.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wheeldock import project as projects
from wheeldock.build.builder import BuildOptions, Progress, ServiceBuild, build
from wheeldock.build.session import Session
from wheeldock.errors import WheeldockError, from_os_error
from wheeldock.project import Project, Service

log = logging.getLogger(__name__)

#: Folders whose changes never reach an image (wheeldock's own state, bytecode, VCS).
_SKIP_DIRS = frozenset({".wheeldock", "__pycache__", ".git", ".venv", ".mypy_cache", ".ruff_cache"})


@dataclass(frozen=True)
class Rebuild:
    """One round of rebuilding: the services whose inputs changed, or the error it hit."""

    services: tuple[str, ...]
    results: tuple[ServiceBuild, ...]
    seconds: float
    error: WheeldockError | None = None


def fingerprint(root: Path, svc: Service) -> str:
    """A digest of what ``svc``'s image is built from, as the file system describes it: path,
    size and mtime of every file in its source folder and of its requirement and constraint
    files, and of ``wheeldock.toml``. Any edit, new file or removal changes it."""
    h = hashlib.sha256()

    def add(path: Path) -> None:
        try:
            st = path.stat()
        except OSError:
            h.update(f"{path}\0missing\n".encode())
            return
        h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())

    source = root / svc.source
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if not name.endswith((".pyc", ".pyo")):
                add(Path(dirpath) / name)
    for rel in (*svc.requirements, *svc.constraints, projects.CONFIG_NAME):
        add(root / rel)
    return h.hexdigest()


def changed(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """The services whose fingerprint differs (or that appeared), in ``after``'s order."""
    return [name for name, value in after.items() if before.get(name) != value]


@dataclass(frozen=True)
class Polling:
    """How :func:`watch` polls: every ``interval`` seconds, until ``should_stop()`` is true."""

    interval: float = 0.2
    should_stop: Callable[[], bool] = lambda: False


def watch(
    project: Project,
    services: Sequence[Service],
    outputs: Sequence[str],
    options: BuildOptions,
    *,
    on_rebuild: Callable[[Rebuild], None],
    polling: Polling | None = None,
    progress: Progress | None = None,
    session: Session | None = None,
) -> int:
    """Poll the inputs of ``services``; rebuild (and publish to ``outputs``) those that changed,
    together, reporting each round to ``on_rebuild``. A failed round (a syntax error in a
    requirements file, a pin that does not exist) is reported and watching goes on. Returns
    the number of rounds when ``polling.should_stop`` says so. Every round builds in one ``session``
    (the caller's, else one made here and closed at the end): the index connections stay warm
    and what the engine holds stays known."""
    if session is None:
        with Session() as made:
            return watch(
                project, services, outputs, options,
                on_rebuild=on_rebuild, polling=polling, progress=progress, session=made,
            )  # fmt: skip
    polling = polling or Polling()
    names = [s.name for s in services]
    prints = _fingerprints(project, names)
    rounds = 0
    current = project
    while not polling.should_stop():
        time.sleep(polling.interval)
        if not changed(prints, _fingerprints(current, names)):
            continue
        # something moved (wheeldock.toml is an input too): read the configuration again only
        # now, not on every poll, and fingerprint by it
        current = _reload(current, names)
        now = _fingerprints(current, names)
        todo = changed(prints, now)
        if not todo:
            continue
        prints = now  # taken before the build: an edit made during it triggers the next round
        rounds += 1
        started = time.monotonic()
        chosen = [s for s in current.services if s.name in todo]
        try:
            results = build(current, chosen, outputs, options, progress=progress, session=session)
        except (WheeldockError, OSError) as raised:
            error = raised if isinstance(raised, WheeldockError) else from_os_error(raised)
            if error is None:
                raise
            on_rebuild(Rebuild(tuple(todo), (), time.monotonic() - started, error))
            continue
        on_rebuild(Rebuild(tuple(todo), tuple(results), time.monotonic() - started))
    return rounds


def _fingerprints(project: Project, names: Sequence[str]) -> dict[str, str]:
    return {s.name: fingerprint(project.root, s) for s in project.services if s.name in names}


def _reload(project: Project, names: Sequence[str]) -> Project:
    """The project as ``wheeldock.toml`` now says (an edit there is an input too); the one
    given when the file cannot be read right now (mid-save), so watching goes on."""
    try:
        fresh = projects.load(project.root)
    except WheeldockError as exc:
        log.warning("keeping the previous configuration: %s", exc.message)
        return project
    if not all(any(s.name == n for s in fresh.services) for n in names):
        return project
    return fresh


__all__ = ["Rebuild", "changed", "fingerprint", "watch"]
