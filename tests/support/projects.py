"""A project as the tests of discovery and locking write it: its text files, and a service."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from wheeldock import cli
from wheeldock import project as projects
from wheeldock.project import Project, Service

LOCKS = Path(__file__).resolve().parents[1] / "data" / "lock"


def service(name: str = "api", reqs: tuple[str, ...] = ("svc/requirements.txt",)) -> Service:
    """A service ``name`` built from ``svc`` with ``reqs`` that runs ``python3 app.py``."""
    return Service(name, "svc", reqs, ("python3", "app.py"))


def write_files(root: Path, files: Mapping[str, str]) -> Path:
    """Text files under ``root`` (their folders made); ``root`` back."""
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def lock_cli(root: Path, requirements: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``wheeldock lock`` run on a one-service project with ``requirements``: exit code, stderr."""
    write_files(root, {"svc/requirements.txt": requirements})
    projects.save(Project(root, None, (service("api"),)))
    capsys.readouterr()
    code = cli.main(["-C", str(root), "lock"])
    return code, capsys.readouterr().err


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder whose ``wheeldock.lock`` holds one x86_64 lock, ``pylock.api.toml``."""
    root = tmp_path / "project"
    (root / "wheeldock.lock").mkdir(parents=True)
    shutil.copy(LOCKS / "pylock.x86_64.toml", root / "wheeldock.lock" / "pylock.api.toml")
    return root
