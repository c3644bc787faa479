"""The ELF scan: wheels → the Debian packages their native code needs on a base."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from support.libs import make_elf, make_wheel, write_tree

from wheeldock import cli
from wheeldock.debian import libs
from wheeldock.errors import InvalidArchive, InvalidConfig, InvalidElf, NotFound, WheeldockError

EXT = "pkg/_ext.cpython-311-x86_64-linux-gnu.so"
WHEEL = "pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any download would fail: proves a scan needed none."""
    monkeypatch.setenv("WHEELDOCK_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")


@pytest.fixture
def base_folder(tmp_path: Path) -> Path:
    """A tiny Debian-like rootfs: libssl3 installed, merged /usr, multiarch ld.so.conf."""
    return write_tree(
        tmp_path / "base",
        {
            "usr/lib/x86_64-linux-gnu/libssl.so.3": make_elf(soname="libssl.so.3"),
            "var/lib/dpkg/status": b"Package: libssl3\nStatus: install ok installed\n\n"
            b"Package: gone\nStatus: deinstall ok config-files\n",
            "etc/ld.so.conf": b"include /etc/ld.so.conf.d/*.conf\n",
            "etc/ld.so.conf.d/x86_64-linux-gnu.conf": b"/usr/lib/x86_64-linux-gnu\n",
            "etc/os-release": b"VERSION_CODENAME=bookworm\n",
            "lib": "usr/lib",
        },
    )


def test_libraries_an_auditwheel_wheel_vendors_need_no_package(
    tmp_path: Path, libs_cache: Path, offline: None
) -> None:
    wheel = make_wheel(
        tmp_path / WHEEL,
        {
            EXT: make_elf(
                needed=["libfoo-ab12cd34.so.1", "libc.so.6"], runpath="$ORIGIN/../pkg.libs"
            ),
            "pkg.libs/libfoo-ab12cd34.so.1": make_elf(
                soname="libfoo-ab12cd34.so.1", needed=["libm.so.6", "libpthread.so.0"]
            ),
        },
    )
    report = libs.scan(wheel, base="none")
    assert report.runtime_packages == ()
    assert report.build_packages == ()
    assert report.ok
    ext = next(e for e in report.elfs if e.file == EXT)
    assert ext.vendored == ("libfoo-ab12cd34.so.1",)
    assert ext.provided_by_base == ("libc.so.6",)
    assert (report.kind, report.arch, report.wheels) == ("wheel", "amd64", 1)


def test_an_elf_of_the_same_wheel_counts_by_soname(
    tmp_path: Path, libs_cache: Path, offline: None
) -> None:
    wheel = make_wheel(
        tmp_path / WHEEL,
        {
            EXT: make_elf(needed=["libbar.so.2"]),
            "pkg/lib/libbar.so.2.0.1": make_elf(soname="libbar.so.2"),
        },
    )
    assert libs.scan(wheel, base="none").elfs[0].vendored == ("libbar.so.2",)


def test_an_origin_rpath_into_another_wheel_counts_as_vendored(
    tmp_path: Path, libs_cache: Path, offline: None
) -> None:
    house = tmp_path / "house"
    house.mkdir()
    make_wheel(
        house / "torchish-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        {
            "torchish/lib/libtorch.so": make_elf(
                needed=["libcublas.so.12"], rpath="$ORIGIN/../../nvidia/cublas/lib"
            )
        },
    )
    make_wheel(
        house / "nvidia_cublas-12.0-py3-none-manylinux_2_17_x86_64.whl",
        {"nvidia/cublas/lib/libcublas.so.12": make_elf(soname="libcublas.so.12")},
    )
    report = libs.scan(house, base="none")
    assert report.kind == "wheelhouse" and report.wheels == 2
    assert report.runtime_packages == ()
    assert next(e for e in report.elfs if e.file.endswith("libtorch.so")).vendored == (
        "libcublas.so.12",
    )


def test_a_library_in_another_wheel_without_rpath_is_not_vendored(
    tmp_path: Path, fake_index: Path, offline: None
) -> None:
    house = tmp_path / "house"
    house.mkdir()
    make_wheel(house / WHEEL, {EXT: make_elf(needed=["libyaml-0.so.2"])})
    make_wheel(
        house / "other-1.0-py3-none-any.whl",
        {"other/libyaml-0.so.2": make_elf(soname="libyaml-0.so.2")},
    )
    report = libs.scan(house, base="none")
    assert report.runtime_packages == ("libyaml-0-2",)
    assert report.build_packages == ("libyaml-dev",)
    ext = next(e for e in report.elfs if e.file == EXT)
    assert ext.resolved == (("libyaml-0.so.2", "libyaml-0-2"),)


def test_what_the_base_provides_is_left_out(
    tmp_path: Path, fake_index: Path, base_folder: Path, offline: None
) -> None:
    wheel = make_wheel(
        tmp_path / WHEEL, {EXT: make_elf(needed=["libssl.so.3", "libpq.so.5", "libc.so.6"])}
    )
    report = libs.scan(wheel, base=str(base_folder))
    assert report.runtime_packages == ("libpq5",)
    # the builder stage still needs the headers of what the base provides at run time
    assert report.build_packages == ("libpq-dev",)
    assert report.elfs[0].provided_by_base == ("libc.so.6", "libssl.so.3")
    assert report.suite == "bookworm"
    without_base = libs.scan(wheel, base="none")
    assert without_base.runtime_packages == ("libpq5", "libssl3")


def test_a_program_that_embeds_python_needs_libpython_and_an_extension_does_not(
    tmp_path: Path, fake_index: Path, offline: None
) -> None:
    loader = "/lib64/ld-linux-x86-64.so.2"
    program = make_elf(needed=["libpython3.11.so.1.0", "libc.so.6"], interpreter=loader)
    extension = make_elf(needed=["libpython3.11.so.1.0", "libc.so.6"])
    uwsgi = make_wheel(
        tmp_path / "uwsgi-2.0-cp311-cp311-linux_x86_64.whl",
        {
            "uwsgi-2.0.data/scripts/uwsgi": program,
        },
    )
    assert libs.scan(uwsgi, base="none").runtime_packages == ("libpython3.11",)
    ext = make_wheel(tmp_path / WHEEL, {EXT: extension})
    report = libs.scan(ext, base="none")
    assert report.runtime_packages == ()
    assert report.elfs[0].provided_by_base == ("libpython3.11.so.1.0", "libc.so.6")


def test_runtime_packages_skip_the_index_when_the_base_has_every_library(
    tmp_path: Path, libs_cache: Path, base_folder: Path, offline: None
) -> None:
    # no fake index and no network: opening Debian's index would fail the scan
    wheel = make_wheel(tmp_path / WHEEL, {EXT: make_elf(needed=["libssl.so.3", "libc.so.6"])})
    assert libs.runtime_packages(wheel, base=str(base_folder)) == ()
    with pytest.raises(WheeldockError):
        libs.scan(wheel, base=str(base_folder))  # -dev packages wanted: the index is needed


def test_a_base_profile_reads_libraries_packages_and_suite(base_folder: Path) -> None:
    profile = libs.base_profile(str(base_folder), arch="amd64")
    assert "libssl.so.3" in profile.sonames
    assert profile.packages == frozenset({"libssl3"})  # "gone" is not installed
    assert profile.suite == "bookworm"


def test_a_soname_no_package_ships_is_reported_with_its_file(
    tmp_path: Path, fake_index: Path, offline: None, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = make_wheel(tmp_path / WHEEL, {EXT: make_elf(needed=["libnothing.so.9"])})
    report = libs.scan(wheel, base="none")
    assert not report.ok
    assert report.unresolved == (libs.Unresolved("libnothing.so.9", EXT, WHEEL),)
    assert report.elfs[0].unresolved == ("libnothing.so.9",)

    assert cli.main(["libs", str(wheel), "--base", "none"]) == 1
    err = capsys.readouterr().err
    assert "libnothing.so.9" in err and EXT in err and "Traceback" not in err


def test_a_corrupt_so_in_a_wheel_is_named(
    tmp_path: Path, libs_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = make_wheel(tmp_path / WHEEL, {EXT: make_elf()[:70]})
    with pytest.raises(InvalidElf) as caught:
        libs.scan(wheel, base="none")
    assert f"{WHEEL}!/{EXT}" in caught.value.message
    assert cli.main(["libs", str(wheel), "--base", "none"]) == 1
    err = capsys.readouterr().err
    assert EXT in err and "corrupt or truncated" in err and "Traceback" not in err


def test_a_non_elf_so_in_a_wheel_is_named(tmp_path: Path, libs_cache: Path) -> None:
    wheel = make_wheel(tmp_path / WHEEL, {EXT: b"#!/bin/sh\necho not a library\n"})
    with pytest.raises(InvalidElf, match="not an ELF file"):
        libs.scan(wheel, base="none")


def test_a_wheel_that_is_not_a_zip_is_refused(
    tmp_path: Path, libs_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = tmp_path / WHEEL
    wheel.write_bytes(b"<html>proxy error</html>")
    with pytest.raises(InvalidArchive, match="is not a wheel"):
        libs.scan(wheel, base="none")
    assert cli.main(["libs", str(wheel), "--base", "none", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "InvalidArchive" and WHEEL in out["path"]


def test_scripts_and_data_that_are_not_elf_are_skipped(
    tmp_path: Path, libs_cache: Path, offline: None
) -> None:
    wheel = make_wheel(
        tmp_path / WHEEL,
        {"pkg-1.0.data/scripts/tool": b"#!python\n", "pkg.libs/README": b"text"},
    )
    assert libs.scan(wheel, base="none").elfs == ()


def test_a_wheel_scanned_before_is_not_decompressed_again(
    tmp_path: Path, libs_cache: Path, offline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = make_wheel(tmp_path / WHEEL, {EXT: make_elf(needed=["libc.so.6"], soname="x.so")})
    first = libs.scan(wheel, base="none")

    def no_reading(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("a cached wheel was decompressed")

    monkeypatch.setattr(zipfile.ZipFile, "read", no_reading)
    assert libs.scan(wheel, base="none").elfs == first.elfs
    # a changed member changes its CRC-32 in the central directory: read again
    (tmp_path / "b").mkdir()
    changed = make_wheel(tmp_path / "b" / WHEEL, {EXT: make_elf(needed=["libm.so.6"])})
    with pytest.raises(AssertionError, match="decompressed"):
        libs.scan(changed, base="none")


def test_a_project_without_a_wheelhouse_is_explained(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("cffi\n")
    with pytest.raises(NotFound) as caught:
        libs.scan(tmp_path, base="none")
    assert "project folder without a wheelhouse" in caught.value.what
    assert caught.value.fix and "pip wheel" in caught.value.fix


def test_a_project_with_a_wheelhouse_scans_it(
    tmp_path: Path, libs_cache: Path, offline: None
) -> None:
    (tmp_path / "wheeldock.toml").write_text("")
    (tmp_path / "wheelhouse").mkdir()
    make_wheel(tmp_path / "wheelhouse" / WHEEL, {EXT: make_elf(needed=["libc.so.6"])})
    report = libs.scan(tmp_path, base="none")
    assert (report.kind, report.wheels, len(report.elfs)) == ("wheelhouse", 1, 1)


def test_an_installed_site_packages_folder_is_scanned(
    tmp_path: Path, fake_index: Path, offline: None
) -> None:
    site = write_tree(
        tmp_path / "venv/lib/python3.11/site-packages",
        {
            EXT: make_elf(
                needed=["libvendored.so.1", "libgomp.so.1"], runpath="$ORIGIN/../pkg.libs"
            ),
            "pkg.libs/libvendored.so.1": make_elf(soname="libvendored.so.1"),
            "pkg-1.0.dist-info/METADATA": b"Name: pkg\n",
        },
    )
    for path in (site, tmp_path / "venv"):
        report = libs.scan(path, base="none")
        assert report.kind == "site-packages"
        assert report.runtime_packages == ("libgomp1",)
        assert report.build_packages == ("libgcc-12-dev",)


def test_wheels_for_two_architectures_are_refused(tmp_path: Path) -> None:
    house = tmp_path / "house"
    house.mkdir()
    make_wheel(house / WHEEL, {EXT: make_elf()})
    make_wheel(
        house / "arm-1.0-cp311-cp311-manylinux_2_17_aarch64.whl",
        {"arm/x.so": make_elf(machine="aarch64")},
    )
    with pytest.raises(InvalidConfig, match="several architectures"):
        libs.scan(house, base="none")
    with pytest.raises(InvalidConfig, match="not arm64"):
        libs.scan(house / WHEEL, base="none", arch="arm64")


def test_cli_prints_packages_and_json(
    tmp_path: Path, fake_index: Path, offline: None, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = make_wheel(tmp_path / WHEEL, {EXT: make_elf(needed=["libyaml-0.so.2"])})
    assert cli.main(["libs", str(wheel), "--base", "none"]) == 0
    out = capsys.readouterr().out
    assert "libyaml-0-2" in out and "libyaml-dev" in out
    assert cli.main(["-C", str(tmp_path), "libs", WHEEL, "--base", "none", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runtime_packages"] == ["libyaml-0-2"]
    assert data["elfs"][0]["resolved"] == {"libyaml-0.so.2": "libyaml-0-2"}
