"""Incremental re-lock against uv, on PyPI: every version move gives the lock uv gives when it
resolves the same requirements with the last lock as its preferences (the file it writes over)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from support.projects import service, write_files

from wheeldock.deps import lock, pylock
from wheeldock.project import Project

#: Top-level pins only (the lock has a dozen packages more), moved one at a time, each from
#: the lock the move before it left, with the path each move is expected to take.
START = {"fastapi": "0.115.0", "httpx": "0.28.1", "pydantic": "2.9.0"}
MOVES = [
    ("fastapi", "0.115.2", "updated"),  # up: starlette's locked version still fits
    ("fastapi", "0.114.2", "updated"),  # down
    ("httpx", "0.27.2", "written"),  # adds a dependency (sniffio): uv
    ("httpx", "0.28.1", "updated"),  # removes it again: dropped in place
    ("pydantic", "2.9.2", "written"),  # conflicts: it pins another pydantic-core, uv decides
    ("pydantic", "2.9.0", "written"),  # and back
]


def _requirements(pins: dict[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def _versions(path: Path) -> dict[str, str]:
    return {p.name: p.version for p in pylock.read(path).packages}


@pytest.mark.integration
def test_every_version_move_gives_the_lock_uv_gives_with_the_last_lock_as_preferences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    proj = Project(tmp_path, None, (service("api"),))
    pins = dict(START)
    write_files(tmp_path, {"svc/requirements.txt": _requirements(pins)})
    (first,) = lock.lock_services(proj, proj.services)
    assert first.action == "written" and first.packages is not None and first.packages > 10
    ours = pylock.lock_path(tmp_path, "api")
    theirs = pylock.lock_path(tmp_path, "uv")
    taken: list[tuple[str, str, str]] = []
    for name, version, _ in MOVES:
        shutil.copy(ours, theirs)  # uv's preferences: the lock this move starts from
        pins[name] = version
        write_files(tmp_path, {"svc/requirements.txt": _requirements(pins)})
        (result,) = lock.lock_services(proj, proj.services)
        inputs = lock.inputs_for(tmp_path, proj.services[0], "linux/amd64")
        lock.compile_lock(tmp_path, inputs, theirs)
        assert _versions(ours) == _versions(theirs), f"{name}=={version}"
        assert _versions(ours)[name] == version
        assert lock.status(ours, inputs) == "fresh"
        taken.append((name, version, result.action))
    assert taken == MOVES


@pytest.mark.integration
def test_an_in_place_update_locks_the_files_uv_locks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    proj = Project(tmp_path, None, (service("api"),))
    write_files(tmp_path, {"svc/requirements.txt": _requirements(START)})
    lock.lock_services(proj, proj.services)
    ours = pylock.lock_path(tmp_path, "api")
    theirs = pylock.lock_path(tmp_path, "uv")
    shutil.copy(ours, theirs)
    write_files(tmp_path, {"svc/requirements.txt": _requirements({**START, "fastapi": "0.115.2"})})
    (result,) = lock.lock_services(proj, proj.services)
    assert result.action == "updated"
    inputs = lock.inputs_for(tmp_path, proj.services[0], "linux/amd64")
    lock.compile_lock(tmp_path, inputs, theirs)

    def files(path: Path) -> dict[str, Any]:
        return {
            p.name: sorted((f.filename, f.sha256) for f in (*p.wheels, p.sdist) if f is not None)
            for p in pylock.read(path).packages
        }

    assert files(ours) == files(theirs)
