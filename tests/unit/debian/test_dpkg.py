"""``debian.dpkg``: the one reader of dpkg's status, wherever the file is."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from wheeldock.debian import dpkg
from wheeldock.debian.rootfs import DirTree
from wheeldock.errors import NotFound

STATUS = """\
Package: libc6
Status: install ok installed
Version: 2.36-9
Description: GNU C Library
 shared libraries

Package: gone
Status: deinstall ok config-files
Version: 1.0
"""


def test_installed_versions_skip_packages_that_are_not_installed() -> None:
    assert dpkg.installed_versions(STATUS) == {"libc6": "2.36-9"}
    assert dpkg.parse_status(STATUS)[0].fields["Description"] == "GNU C Library\nshared libraries"


def test_a_tree_counts_its_status_and_a_distroless_status_folder(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dpkg/status.d").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(STATUS)
    (tmp_path / "var/lib/dpkg/status.d/tzdata").write_text("Package: tzdata\nVersion: 2024a\n")
    assert dpkg.packages_in_tree(DirTree(tmp_path)) == {"libc6", "tzdata"}


def test_the_status_of_a_rootfs_tar_is_found_by_its_normalised_name(tmp_path: Path) -> None:
    tar_path = tmp_path / "rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:
        info = tarfile.TarInfo("./var/lib/dpkg/status")
        info.size = len(STATUS)
        tar.addfile(info, io.BytesIO(STATUS.encode()))
    assert dpkg.status_in_tar(tar_path).decode() == STATUS
    with pytest.raises(NotFound, match="etc/os-release is not in the rootfs tar"):
        dpkg.status_in_tar(tar_path, "etc/os-release")
