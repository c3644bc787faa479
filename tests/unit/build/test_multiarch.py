"""Multi-platform builds without an engine: which packages have a wheel for each platform, the
nearest versions that do, the errors that say so, and the publishing choices (destinations, SBOM
folder, run argv, the CLI's platform list). The builds themselves are in the integration tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.build import AMD64, ARM64, ARMV7

from wheeldock import platforms
from wheeldock.build import multiarch
from wheeldock.build.builder import BuildOptions
from wheeldock.deps import lock as locks
from wheeldock.deps.pylock import Lock, LockedFile, LockedPackage
from wheeldock.errors import ToolNotFound, UsageError


def _lock(platform: str, *packages: LockedPackage) -> Lock:
    return Lock(Path("/p/pylock.toml"), tuple(packages), None, platform, "3.11", "")


def _sdist_only(name: str, version: str) -> LockedPackage:
    return LockedPackage(name, version, (), LockedFile(f"{name}-{version}.tar.gz", "aa" * 32))


def _with_wheel(name: str, version: str, tag: str) -> LockedPackage:
    wheel = LockedFile(f"{name.replace('-', '_')}-{version}-{tag}.whl", "bb" * 32)
    return LockedPackage(name, version, (wheel,), LockedFile(f"{name}-{version}.tar.gz", "cc" * 32))


# -- which packages need emulation --------------------------------------------------------------


def test_sdist_only_package_needs_emulation_on_a_foreign_platform_only() -> None:
    lock = _lock(
        "linux/arm64",
        _sdist_only("legacy", "1.0"),
        _with_wheel("pyyaml", "6.0.4", "cp311-cp311-manylinux_2_17_aarch64"),
        _with_wheel("idna", "3.20", "py3-none-any"),
    )
    assert [a.name for a in multiarch.emulation_needed(lock, ARM64, host=AMD64)] == ["legacy"]
    assert multiarch.emulation_needed(lock, ARM64, host=ARM64) == []


def test_a_wheel_for_another_arch_does_not_count() -> None:
    lock = _lock("linux/arm64", _with_wheel("pyyaml", "6.0.4", "cp311-cp311-manylinux_2_17_x86_64"))
    assert [a.name for a in multiarch.emulation_needed(lock, ARM64, host=AMD64)] == ["pyyaml"]


def test_on_arm_v7_only_armv7l_wheels_count() -> None:
    lock = _lock(
        "linux/arm/v7",
        _with_wheel("pydantic-core", "2.27.2", "cp311-cp311-manylinux_2_17_armv7l"),
        _with_wheel("pyyaml", "6.0.4", "cp311-cp311-manylinux_2_17_aarch64"),
        _with_wheel("uvloop", "0.21.0", "cp311-cp311-musllinux_1_1_armv7l"),  # musl, not glibc
        _with_wheel("idna", "3.20", "py3-none-any"),
    )
    needed = multiarch.emulation_needed(lock, ARMV7, host=AMD64)
    assert [a.name for a in needed] == ["pyyaml", "uvloop"]
    assert multiarch.emulation_needed(lock, ARMV7, host=ARM64) == []  # arm64 runs armhf itself


def _files(*names: str, yanked: bool = False) -> list[dict[str, Any]]:
    return [{"filename": n, "yanked": yanked} for n in names]


RELEASES = {
    "1.0": _files("legacy-1.0.tar.gz"),
    "1.1": _files("legacy-1.1-cp311-cp311-manylinux_2_17_aarch64.whl"),
    "1.2": _files("legacy-1.2-cp311-cp311-manylinux_2_17_x86_64.whl"),  # not for arm64
    "1.3": _files("legacy-1.3-py3-none-any.whl"),
    "1.4": _files("legacy-1.4-cp311-cp311-manylinux_2_28_aarch64.whl", yanked=True),
    "2.0rc1": _files("legacy-2.0rc1-py3-none-any.whl"),
    "0.9": _files("legacy-0.9-cp311-cp311-manylinux2014_aarch64.whl"),
    "0.8": _files("legacy-0.8-cp310-cp310-manylinux2014_aarch64.whl"),  # other Python
    "0.7": _files("legacy-0.7-cp311-abi3-manylinux_2_17_aarch64.whl"),
    "bogus": _files("legacy-bogus-py3-none-any.whl"),
}


def test_nearest_versions_with_wheels_are_newer_then_older_closest_first() -> None:
    got = multiarch.nearest_with_wheels(
        RELEASES, "1.0", platform="linux/arm64", python="3.11", limit=2
    )
    assert got == ["1.1", "1.3", "0.9", "0.7"]


def test_nearest_versions_for_arm_v7_are_those_with_a_glibc_armv7l_wheel() -> None:
    releases = {
        "6.0.1": _files("pyyaml-6.0.1-cp311-cp311-manylinux_2_17_armv7l.whl"),
        "6.0.2": _files("pyyaml-6.0.2-cp311-cp311-musllinux_1_1_armv7l.whl"),
        "6.0.3": _files("pyyaml-6.0.3-cp311-cp311-linux_armv7l.whl"),  # as piwheels names them
        "6.0.5": _files("pyyaml-6.0.5-cp311-cp311-manylinux_2_17_aarch64.whl"),
    }
    got = multiarch.nearest_with_wheels(releases, "6.0.4", platform="linux/arm/v7", python="3.11")
    assert got == ["6.0.3", "6.0.1"]


def test_nearest_versions_are_empty_when_no_release_has_a_wheel() -> None:
    releases = {"1.0": _files("x-1.0.tar.gz"), "1.1": _files("x-1.1-cp311-cp311-win_amd64.whl")}
    assert (
        multiarch.nearest_with_wheels(releases, "1.0", platform="linux/arm64", python="3.11") == []
    )


def test_no_wheel_error_names_package_version_platform_and_both_ways_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(multiarch, "pypi_releases", lambda name, **_: RELEASES)
    lock = _lock("linux/arm64", _sdist_only("legacy", "1.0"), _sdist_only("other", "2.0"))
    missing = multiarch.emulation_needed(lock, ARM64, host=AMD64)
    err = multiarch.no_wheel_error(lock, ARM64, missing)
    assert "legacy 1.0 has no wheel for linux/arm64" in err.what
    assert "other 2.0 has no wheel for linux/arm64" in err.what
    assert "1.1, 1.3, 0.9" in err.what
    assert err.fix is not None
    assert "--emulate-sdists" in err.fix and "legacy==1.1" in err.fix


def test_build_refuses_a_platform_without_wheels_before_building_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(multiarch, "pypi_releases", lambda name, **_: RELEASES)
    monkeypatch.setattr(platforms, "host", lambda: AMD64)
    lock = _lock("linux/arm64", _sdist_only("legacy", "1.0"))
    monkeypatch.setattr(locks, "ensure", lambda *a, **k: lock)
    built: list[object] = []
    monkeypatch.setattr(multiarch.Builder, "image", lambda self, svc: built.append(svc))
    from wheeldock import project

    svc = project.Service("api", ".", ("requirements.txt",), ("python3", "app.py"))
    proj = project.Project(tmp_path, None, (svc,))
    with pytest.raises(multiarch.NoWheel, match=r"legacy 1\.0"):
        multiarch.build(
            proj,
            [svc],
            [ARM64],
            multiarch.MultiOptions(outputs=(f"oci:{tmp_path / 'oci'}",)),
            BuildOptions(),
        )
    assert built == []


def test_emulated_sdist_build_without_binfmt_handler_says_how_to_get_one(tmp_path: Path) -> None:
    house = multiarch.EmulatingWheelhouse(tmp_path / "wheels", binfmt_dir=tmp_path, host=AMD64)
    art = multiarch.select(_lock("linux/arm64", _sdist_only("legacy", "1.0")))[0]
    with pytest.raises(ToolNotFound) as exc:
        house.build_sdist(
            art, tmp_path / "legacy-1.0.tar.gz", platform="linux/arm64", python="3.11"
        )
    assert exc.value.fix is not None and "qemu-user-static" in exc.value.fix


def test_build_takes_arm_v7_and_names_its_packages_without_an_armv7l_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(multiarch, "pypi_releases", lambda name, **_: {})
    monkeypatch.setattr(platforms, "host", lambda: AMD64)
    lock = _lock(
        "linux/arm/v7",
        _with_wheel("pydantic-core", "2.27.2", "cp311-cp311-manylinux_2_17_armv7l"),
        _sdist_only("pyyaml", "6.0.4"),
    )
    platforms_locked: list[str] = []

    def ensure(
        project: object, svc: object, *, platform: str, policy: str, session: object
    ) -> Lock:
        platforms_locked.append(platform)
        return lock

    monkeypatch.setattr(locks, "ensure", ensure)
    built: list[object] = []
    monkeypatch.setattr(multiarch.Builder, "image", lambda self, svc: built.append(svc))
    from wheeldock import project

    svc = project.Service("api", ".", ("requirements.txt",), ("python3", "app.py"))
    proj = project.Project(tmp_path, None, (svc,))
    with pytest.raises(multiarch.NoWheel) as err:
        multiarch.build(
            proj,
            [svc],
            [platforms.parse("armv7")],
            multiarch.MultiOptions(outputs=(f"oci:{tmp_path / 'oci'}",)),
        )
    assert platforms_locked == ["linux/arm/v7"] and built == []
    assert err.value.what.startswith("pyyaml 6.0.4 has no wheel for linux/arm/v7 (only an sdist)")
    assert "pydantic-core" not in err.value.what
    assert err.value.fix is not None and "--emulate-sdists" in err.value.fix


# -- publishing choices -------------------------------------------------------------------------


def _pb(target: platforms.Target) -> multiarch.PlatformBuild:
    from wheeldock.oci.image import Image

    return multiarch.PlatformBuild(target, Image(platform=target.platform), (), Path("l"))


def test_single_image_destinations_get_the_host_platform_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(platforms, "host", lambda: AMD64)
    images = [_pb(ARM64), _pb(AMD64)]
    assert multiarch.choose_single(images, None).target == AMD64
    assert multiarch.choose_single(images, ARM64).target == ARM64
    assert multiarch.choose_single([_pb(ARM64)], None).target == ARM64
    with pytest.raises(UsageError, match="linux/arm/v7 was not built"):
        multiarch.choose_single(images, platforms.parse("linux/arm/v7"))


def test_sbom_folder_is_explicit_else_beside_the_layout(tmp_path: Path) -> None:
    assert multiarch.sbom_folder([f"oci:{tmp_path}/oci:app"], tmp_path / "s") == tmp_path / "s"
    assert multiarch.sbom_folder(["docker://h/r:t", f"oci:{tmp_path}/oci:app"], None) == (
        tmp_path / "oci.sbom"
    )
    assert multiarch.sbom_folder(["docker://127.0.0.1:5000/r:t"], None) is None


def test_run_argv_asks_for_the_platform_and_the_host_network() -> None:
    argv = multiarch.run_argv("img:arm64", ARM64, name="n", env={"PORT": "1"})
    assert argv[argv.index("--platform") + 1] == "linux/arm64"
    assert argv[argv.index("--network") + 1] == "host"
    assert argv[-1] == "img:arm64" and "PORT=1" in argv


@pytest.mark.parametrize("command", ["build", "lock", "check"])
def test_cli_refuses_an_unknown_platform_with_the_accepted_list(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wheeldock import cli

    argv = ["-C", str(tmp_path), command, "--platform", "linux/sparc"]
    if command == "check":
        argv.append(str(tmp_path))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown platform 'linux/sparc'" in err
    assert "linux/amd64, linux/arm64, linux/arm/v7" in err


def test_cli_lock_takes_arm_v7_and_names_its_armv7l_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wheeldock import cli, project

    (tmp_path / "requirements.txt").write_text("idna==3.10\n")
    svc = project.Service("api", ".", ("requirements.txt",), ("python3", "app.py"))
    project.save(project.Project(tmp_path, None, (svc,)))
    argv = ["-C", str(tmp_path), "lock", "--check", "--json", "--platform", "linux/arm/v7"]
    assert cli.main(argv) == 1  # checked (and missing), not refused as a usage error (2)
    (result,) = json.loads(capsys.readouterr().out)["locks"]
    assert Path(result["path"]).name == "pylock.api-armv7l.toml"
    assert result["status"] == "missing"


def test_each_platform_builder_closes_its_registry_cache_and_the_index_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wheeldock import project
    from wheeldock.oci import image as oci_image

    monkeypatch.setattr(platforms, "host", lambda: AMD64)
    lock = _lock("linux/amd64", _with_wheel("idna", "3.20", "py3-none-any"))
    monkeypatch.setattr(locks, "ensure", lambda *a, **k: lock)
    monkeypatch.setattr(multiarch.Builder, "image", lambda self, svc: (oci_image.empty(), [], lock))
    events: list[str] = []
    monkeypatch.setattr(multiarch.Builder, "flush_cache", lambda self: events.append("flush"))
    monkeypatch.setattr(multiarch.Builder, "close_cache", lambda self: events.append("close"))
    svc = project.Service("api", ".", ("requirements.txt",), ("python3", "app.py"))
    proj = project.Project(tmp_path, None, (svc,))
    (result,) = multiarch.build(
        proj,
        [svc],
        [AMD64],
        multiarch.MultiOptions(outputs=(f"oci:{tmp_path / 'oci'}",), make_sbom=False),
        BuildOptions(cache="docker://127.0.0.1:5999/cache", cache_mode="read"),
    )
    assert [o.ref for o in result.outputs] == [f"oci:{tmp_path / 'oci'}:api"]
    assert events == ["flush", "close"]  # flushed before the index is pushed, closed at the end
