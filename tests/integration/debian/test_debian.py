"""Debian's archive data: Contents → packages, Packages → depends, .deb files."""

from __future__ import annotations

from pathlib import Path

import pytest

from wheeldock.debian import archive as debian

# --------------------------------------------------------------------------- the real archive


@pytest.fixture(scope="session")
def real_index(libs_shared_cache: Path) -> Path:
    import os

    previous = os.environ.get("WHEELDOCK_CACHE")
    os.environ["WHEELDOCK_CACHE"] = str(libs_shared_cache)
    try:
        debian.open_index("bookworm", "amd64").close()
        return debian.index_path("bookworm", "amd64")
    finally:
        if previous is None:
            os.environ.pop("WHEELDOCK_CACHE", None)
        else:
            os.environ["WHEELDOCK_CACHE"] = previous


@pytest.mark.integration
@pytest.mark.parametrize(
    ("soname", "package", "dev"),
    [
        ("libffi.so.8", "libffi8", "libffi-dev"),
        ("libpq.so.5", "libpq5", "libpq-dev"),
        ("libyaml-0.so.2", "libyaml-0-2", "libyaml-dev"),
        ("libgomp.so.1", "libgomp1", "libgcc-12-dev"),
        ("libgeos_c.so.1", "libgeos-c1v5", "libgeos-dev"),
        ("libxslt.so.1", "libxslt1.1", "libxslt1-dev"),
        ("libz.so.1", "zlib1g", "zlib1g-dev"),  # not lib32z1-dev, whose libz.so is in lib32
        ("libstdc++.so.6", "libstdc++6", "libstdc++-12-dev"),  # the link is in gcc's folder
    ],
)
def test_real_bookworm_index_maps_sonames_to_packages(
    real_index: Path, soname: str, package: str, dev: str
) -> None:
    with debian.Index(real_index, suite="bookworm", arch="amd64") as index:
        assert index.package_for(soname) == package
        assert index.dev_package(package) == dev


@pytest.mark.integration
def test_real_debs_are_downloaded_and_unpacked(
    real_index: Path, shared_cache: Path, tmp_path: Path
) -> None:
    debs = debian.download_debs(["libyaml-0-2"], dest=tmp_path, installed=["libc6", "libgcc-s1"])
    assert [d.name.split("_")[0] for d in debs] == ["libyaml-0-2"]
    paths = {m.path for m in debian.deb_data_members(debs[0])}
    assert "usr/lib/x86_64-linux-gnu/libyaml-0.so.2" in paths
