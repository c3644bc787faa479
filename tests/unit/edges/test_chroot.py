from __future__ import annotations

from pathlib import Path

from wheeldock.edges import chroot


def test_a_tmpfs_scratch_is_mounted_before_the_overlay_is_made_in_it() -> None:
    text = chroot.script(
        Path("/r"), Path("/s"), ["python3"], env={}, binds={}, writable={}, scratch_tmpfs=True
    )
    lines = text.splitlines()
    tmpfs = next(i for i, line in enumerate(lines) if line.startswith("mount -t tmpfs"))
    overlay = next(i for i, line in enumerate(lines) if line.startswith("mount -t overlay"))
    assert lines[tmpfs].endswith(" /s") and tmpfs < overlay


def test_without_a_tmpfs_the_scratch_folder_holds_the_overlay() -> None:
    text = chroot.script(Path("/r"), Path("/s"), ["true"], env={}, binds={}, writable={})
    assert "tmpfs" not in text and "upperdir=/s/upper" in text
