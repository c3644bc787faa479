from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from wheeldock.deps import lock, pylock
from wheeldock.deps.wheelhouse import Wheelhouse, select

# -- network: PyPI and uv build -------------------------------------------------------------------


@pytest.mark.integration
def test_wheels_download_in_parallel_and_are_hash_checked(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("idna==3.10\nsix==1.16.0\n")
    inputs = lock.collect_inputs(
        tmp_path, ["requirements.txt"], platform="linux/amd64", python="3.11"
    )
    locked = lock.compile_lock(tmp_path, inputs, pylock.lock_path(tmp_path, "x"))
    house = Wheelhouse(tmp_path / "cache")
    paths = house.fetch(select(locked), platform="linux/amd64", python="3.11")
    assert [p.name for p in paths] == [
        "idna-3.10-py3-none-any.whl",
        "six-1.16.0-py2.py3-none-any.whl",
    ]
    assert all(hashlib.sha256(p.read_bytes()).hexdigest() == p.parent.name for p in paths)
