"""The ELF scan of cb-totem's wheelhouse: which Debian packages its wheels need at run time.

The Debian index and the ``slim`` base's profile are made on the first call (a download and
an mmdebstrap run, once per benchmark cache); the benchmarks time the calls after it. The
scan also caches each wheel's ELF headers (``cache_dir("libs", "wheels")``): the warm
benchmarks measure a re-scan of known wheels, the cold one a scan of wheels never seen.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from wheeldock.debian import libs
from wheeldock.edges.paths import cache_dir

Benchmark = Any


@pytest.fixture(scope="session")
def warm_scan(cbt_wheelhouse: Path) -> libs.LibsReport:
    """One untimed scan: downloads the Debian index and profiles the base if they are missing."""
    return libs.scan(cbt_wheelhouse, base="slim")


@pytest.mark.benchmark(group="libs: ELF scan")
@pytest.mark.parametrize("base", ["slim", "none"])
def test_scan_cbt_wheelhouse(
    benchmark: Benchmark, cbt_wheelhouse: Path, warm_scan: libs.LibsReport, base: str
) -> None:
    """``slim``: what the builder asks; ``none``: the same without the base's profile."""
    report = benchmark(libs.scan, cbt_wheelhouse, base=base)
    benchmark.extra_info.update(
        {
            "wheels": report.wheels,
            "elf_files": len(report.elfs),
            "packages": list(report.runtime_packages),
        }
    )
    assert report.wheels == len(list(cbt_wheelhouse.glob("*.whl")))
    assert report.ok, report.unresolved
    assert report.elfs  # pillow, cffi, pydantic-core, uvloop, … ship extension modules
    if base == "slim":
        assert report.runtime_packages == warm_scan.runtime_packages


@pytest.mark.benchmark(group="libs: ELF scan")
def test_scan_cbt_wheelhouse_unknown_wheels(
    benchmark: Benchmark, cbt_wheelhouse: Path, warm_scan: libs.LibsReport
) -> None:
    """Every wheel's ELF files read again (the per-wheel cache emptied before each round):
    what a lock full of new wheels costs; the Debian index stays cached."""

    def forget_wheels() -> None:
        shutil.rmtree(cache_dir("libs", "wheels"), ignore_errors=True)

    report = benchmark.pedantic(
        libs.scan,
        args=(cbt_wheelhouse,),
        kwargs={"base": "slim"},
        setup=forget_wheels,
        rounds=5,
        warmup_rounds=1,
    )
    benchmark.extra_info.update(
        {
            "wheels": report.wheels,
            "elf_files": len(report.elfs),
            "packages": list(report.runtime_packages),
        }
    )
    assert report.runtime_packages == warm_scan.runtime_packages
