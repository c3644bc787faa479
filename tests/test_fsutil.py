from __future__ import annotations

from pathlib import Path

import pytest

from wheeldock.errors import WheeldockError
from wheeldock.fsutil import atomic_write_text


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
