"""Where wheeldock keeps its caches and a build's short-lived files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wheeldock.edges import paths


def test_the_cache_is_wheeldock_cache_when_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "c"))
    assert paths.cache_dir("wheels") == tmp_path / "c" / "wheels"
    assert (tmp_path / "c" / "wheels").is_dir()


def test_each_staging_folder_is_new_and_private_to_its_process(tmp_path: Path) -> None:
    one = paths.staging_dir(tmp_path)
    two = paths.staging_dir(tmp_path)
    assert one != two
    assert one.parent == two.parent == tmp_path
    assert str(os.getpid()) in one.name
    assert one.stat().st_mode & 0o077 == 0


def test_staging_left_by_a_killed_build_is_swept_and_a_live_ones_is_kept(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = tmp_path / f"wheeldock-staging-{gone.stdout.strip()}-abc"
    (dead / "tree").mkdir(parents=True)
    mine = paths.staging_dir(tmp_path)
    (mine / "tree").mkdir()
    paths.staging_dir(tmp_path)
    assert not dead.exists()
    assert (mine / "tree").is_dir()


def test_wheeldock_staging_picks_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_STAGING", str(tmp_path / "fast"))
    assert paths.staging_dir().parent == tmp_path / "fast"


def test_without_room_in_ram_staging_goes_to_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WHEELDOCK_STAGING", raising=False)
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "_tmpfs", lambda: None)
    assert paths.staging_dir().parent == tmp_path / "cache" / "staging"
