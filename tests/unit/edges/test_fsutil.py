from __future__ import annotations

from pathlib import Path

import pytest

from wheeldock.edges.fsutil import atomic_write_text
from wheeldock.errors import WheeldockError


def test_atomic_write_replaces_content_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    target.chmod(0o600)
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o600


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "f.txt", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_unwritable_destination_gives_a_clear_error(tmp_path: Path) -> None:
    # A path below a regular file cannot be created, even by root.
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(WheeldockError) as err:
        atomic_write_text(blocker / "sub" / "f.txt", "x")
    assert "writable" in (err.value.fix or "")


def _can_lock(path: Path) -> bool:
    """Whether an exclusive flock on ``path`` is free right now (asked without waiting)."""
    import fcntl
    import os

    fd = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_a_file_lock_excludes_others_until_its_block_ends(tmp_path: Path) -> None:
    from wheeldock.edges.fsutil import file_lock

    path = tmp_path / "deep" / "cache.lock"
    with file_lock(path):
        assert not _can_lock(path)
    assert _can_lock(path)


def test_a_file_lock_dies_with_a_killed_holder(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    path = tmp_path / "cache.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom wheeldock.edges.fsutil import file_lock\n"
            f"with file_lock({str(path)!r}):\n    print('held', flush=True)\n    time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    assert not _can_lock(path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert _can_lock(path)


def test_a_folder_lock_excludes_others_and_leaves_no_file_in_the_folder(tmp_path: Path) -> None:
    from wheeldock.edges.fsutil import folder_lock

    folder = tmp_path / "wheeldock.lock"
    with folder_lock(folder):
        assert not _can_lock(folder)
    assert _can_lock(folder)
    assert list(folder.iterdir()) == []  # nothing the user would have to ignore or commit
