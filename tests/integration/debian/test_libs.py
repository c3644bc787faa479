"""The ELF scan: wheels → the Debian packages their native code needs on a base."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.libs import make_elf, make_wheel

from wheeldock.debian import archive as debian
from wheeldock.debian import libs

# --------------------------------------------------------------------------- real wheels


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "base", "runtime", "build"),
    [
        ("cffi", "slim", (), ("libffi-dev",)),  # Debian's python3 already needs libffi8
        ("cffi", "none", ("libffi8",), ("libffi-dev",)),
        ("psycopg2", "slim", ("libpq5",), ("libpq-dev",)),
        ("pyyaml", "slim", ("libyaml-0-2",), ("libyaml-dev",)),
        ("pyyaml", "minimal", ("libyaml-0-2",), ("libyaml-dev",)),
    ],
)
def test_source_built_wheels_need_exactly_their_library(
    source_wheels: dict[str, Path],
    shared_cache: Path,
    name: str,
    base: str,
    runtime: tuple[str, ...],
    build: tuple[str, ...],
) -> None:
    report = libs.scan(source_wheels[name], base=base)
    assert report.runtime_packages == runtime
    assert report.build_packages == build
    assert report.ok


@pytest.mark.integration
def test_manylinux_wheels_vendor_everything(manylinux_wheels: Path, shared_cache: Path) -> None:
    report = libs.scan(manylinux_wheels, base="slim")
    assert report.wheels == 3
    assert report.runtime_packages == ()
    assert report.ok
    pillow = [e for e in report.elfs if e.file.startswith("PIL/")]
    assert pillow and any(e.vendored for e in pillow)
    assert all(not e.resolved for e in report.elfs)
    assert libs.runtime_packages(manylinux_wheels, base="slim") == ()


@pytest.mark.integration
def test_aarch64_wheels_are_scanned_without_emulation(
    arm64_site_packages: Path, shared_cache: Path, tmp_path: Path
) -> None:
    report = libs.scan(arm64_site_packages, base="slim")
    assert report.arch == "arm64"
    assert report.elfs and all(e.arch == "arm64" for e in report.elfs)
    assert report.runtime_packages == () and report.ok
    # a library only Debian ships is looked up in bookworm's arm64 Contents index
    wheel = make_wheel(
        tmp_path / "y-1.0-cp311-cp311-linux_aarch64.whl",
        {"y/_y.so": make_elf(needed=["libyaml-0.so.2", "libc.so.6"], machine="aarch64")},
    )
    foreign = libs.scan(wheel, base="slim")
    assert (foreign.arch, foreign.runtime_packages) == ("arm64", ("libyaml-0-2",))
    with debian.open_index("bookworm", "arm64") as index:
        assert any("aarch64-linux-gnu" in c.path for c in index.candidates("libyaml-0.so.2"))


@pytest.mark.integration
def test_a_scan_with_the_index_cached_works_offline(
    source_wheels: dict[str, Path],
    shared_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    house = tmp_path / "house"
    house.mkdir()
    for wheel in source_wheels.values():
        (house / wheel.name).symlink_to(wheel)
    libs.scan(house, base="slim")  # warms the index and the base profile
    # nothing answers there: the scan must not need the mirror once its index is cached (how
    # fast it then is belongs to the benchmarks, not here)
    monkeypatch.setenv("WHEELDOCK_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    report = libs.scan(house, base="slim")
    assert report.runtime_packages == ("libpq5", "libyaml-0-2")
