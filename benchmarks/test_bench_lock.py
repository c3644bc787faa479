"""Reading cb-totem's lock: every ``build`` parses it, checks it is fresh, and picks wheels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wheeldock.deps import lock, pylock
from wheeldock.deps.wheelhouse import select

Benchmark = Any

REQUIREMENTS = (
    Path(__file__).resolve().parent.parent / "examples/cb-totem/vcc-totem/requirements.txt"
)
#: One locked package per pin of cb-totem's requirements.txt (26 when this was written).
CBT_PACKAGES = sum("==" in line for line in REQUIREMENTS.read_text().splitlines())


#: ``pylock.parse`` may be memoised (services sharing a lock parse it once per process); the
#: function underneath is what a first read costs.
_parse_uncached = getattr(pylock.parse, "__wrapped__", pylock.parse)


@pytest.mark.benchmark(group="lock")
def test_parse_cbt_lock(benchmark: Benchmark, cbt_lock_path: Path) -> None:
    """TOML → Lock, every time (no memo)."""
    text = cbt_lock_path.read_text()
    parsed = benchmark(_parse_uncached, text, cbt_lock_path)
    benchmark.extra_info.update({"bytes": len(text.encode()), "packages": len(parsed.packages)})
    assert len(parsed.packages) == CBT_PACKAGES


@pytest.mark.benchmark(group="lock")
def test_parse_cbt_lock_again(benchmark: Benchmark, cbt_lock_path: Path) -> None:
    """``pylock.parse`` as callers see it, on the same text again (memoised when it is)."""
    text = cbt_lock_path.read_text()
    parsed = benchmark(pylock.parse, text, cbt_lock_path)
    assert len(parsed.packages) == CBT_PACKAGES


@pytest.mark.benchmark(group="lock")
def test_read_cbt_lock(benchmark: Benchmark, cbt_lock_path: Path) -> None:
    parsed = benchmark(pylock.read, cbt_lock_path)
    assert len(parsed.packages) == CBT_PACKAGES


@pytest.mark.benchmark(group="lock")
def test_cbt_lock_status(benchmark: Benchmark, cbt_lock_path: Path) -> None:
    """Freshness: hash the requirement files (and includes), compare with the lock's record."""
    from conftest import CB_TOTEM, cbt_inputs

    def run() -> lock.Status:
        return lock.status(cbt_lock_path, cbt_inputs(CB_TOTEM))

    assert benchmark(run) == "fresh"


@pytest.mark.benchmark(group="lock")
def test_select_cbt_wheels(benchmark: Benchmark, cbt_lock_path: Path) -> None:
    """Choosing each package's best wheel for linux/amd64 cp311 among the locked files."""
    parsed = pylock.read(cbt_lock_path)
    artifacts = benchmark(select, parsed)
    assert len(artifacts) == CBT_PACKAGES
    assert all(a.kind == "wheel" for a in artifacts)
