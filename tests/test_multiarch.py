"""Multi-platform builds: wheel availability per platform, the index, SBOMs, foreign images.

The integration tests build cb-totem for linux/amd64 and linux/arm64 on this x86 machine (the
arm64 base comes from mmdebstrap under qemu; nothing of the image is compiled or run emulated),
push the index to a local registry, and then run the arm64 image under qemu to see it answer.
For linux/arm/v7, cb-totem is refused (five of its packages have no armv7l wheel), so a tiny
FastAPI service is built for arm/v7 instead, pushed, and its image run under qemu-arm.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest_base import armhf_sources
from conftest_build import cache_at, make_cbt_project
from conftest_oci import tool
from conftest_registry import Registry

from wheeldock import platforms
from wheeldock.build import multiarch, sbom
from wheeldock.build.builder import BuildOptions
from wheeldock.debian import libs
from wheeldock.deps import lock as locks
from wheeldock.deps import pylock
from wheeldock.deps.pylock import Lock, LockedFile, LockedPackage
from wheeldock.edges import engine
from wheeldock.errors import ToolNotFound, UsageError
from wheeldock.oci.image import Platform
from wheeldock.project import Project

AMD64 = platforms.parse("linux/amd64")
ARM64 = platforms.parse("linux/arm64")
ARMV7 = platforms.parse("linux/arm/v7")


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
        project: object, svc: object, *, platform: str, relock: bool, session: object
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


# -- integration: cb-totem for amd64 + arm64 ----------------------------------------------------


@dataclass(frozen=True)
class MultiCbt:
    root: Path
    layout: Path
    results: dict[str, multiarch.MultiBuild]
    ref: str  # docker://…/{service}:multi


@pytest.fixture(scope="module")
def cbt_multi(
    build_cache: Path,
    base_slim_arm64: Any,
    registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> MultiCbt:
    """cb-totem built for linux/amd64 and linux/arm64, to an OCI layout and the registry."""
    work = tmp_path_factory.mktemp("cbt-multi")
    ref = f"docker://{registry.host}/cbt-multi/{{service}}:multi"
    with cache_at(build_cache):
        proj = make_cbt_project(work / "p")
        layout = work / "oci"
        results = multiarch.build(
            proj,
            proj.services,
            [AMD64, ARM64],
            multiarch.MultiOptions(outputs=(f"oci:{layout}", ref)),
            BuildOptions(),
        )
    return MultiCbt(proj.root, layout, {r.service: r for r in results}, ref)


def _skopeo_raw(registry: Registry, ref: str) -> dict[str, Any]:
    out = subprocess.run(
        [tool("skopeo"), "inspect", "--raw", *registry.skopeo_args(), ref],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    data: dict[str, Any] = json.loads(out)
    return data


@pytest.mark.integration
def test_cbt_index_in_the_registry_has_amd64_and_arm64(
    cbt_multi: MultiCbt, registry: Registry
) -> None:
    for service in ("calidda-api", "srv-img"):
        raw = _skopeo_raw(registry, cbt_multi.ref.replace("{service}", service))
        assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
        got = {(m["platform"]["os"], m["platform"]["architecture"]) for m in raw["manifests"]}
        assert got == {("linux", "amd64"), ("linux", "arm64")}
        assert cbt_multi.results[service].digest in {
            o.digest for o in cbt_multi.results[service].outputs
        }


@pytest.mark.integration
def test_arm64_lock_pins_aarch64_wheels_and_the_image_is_arm64(cbt_multi: MultiCbt) -> None:
    arm = cbt_multi.results["srv-img"].images[1]
    assert arm.target == ARM64 and arm.image.platform == Platform("linux", "arm64")
    lock = pylock.read(arm.lock)
    assert arm.lock.name.endswith("-aarch64.toml")
    compiled = [p for p in lock.packages if p.name in ("pyyaml", "cffi", "pydantic-core")]
    assert compiled and all("aarch64" in w.filename for p in compiled for w in p.wheels)


@pytest.mark.integration
def test_check_finds_every_library_of_the_arm64_image(cbt_multi: MultiCbt) -> None:
    with multiarch.platform_image(f"oci:{cbt_multi.layout}:srv-img", ARM64) as ref:
        report = libs.check(ref)
    assert report.arch == "arm64"
    assert report.ok, report.missing
    assert len(report.checked) > 10


@pytest.mark.integration
def test_each_image_has_an_sbom_beside_the_layout_and_attached_in_the_registry(
    cbt_multi: MultiCbt, registry: Registry
) -> None:
    build = cbt_multi.results["srv-img"]
    for p in build.images:
        files = [f for f in build.sbom_files if f.name == f"srv-img-{p.target.suffix}.cdx.json"]
        assert len(files) == 1
        doc = json.loads(files[0].read_bytes())
        purls = {c["purl"] for c in doc["components"]}
        assert "pkg:pypi/pyyaml@6.0.4" in purls
        arch = p.target.debian_arch
        assert any(u.startswith("pkg:deb/debian/libc6@") and f"arch={arch}" in u for u in purls)
        assert any(u.startswith("pkg:deb/debian/python3.11-minimal@") for u in purls)
        assert doc["metadata"]["component"]["version"] == str(p.image.digest)
        # the same bytes are attached to the image in the layout and in the registry
        assert sbom.read_attached(cbt_multi.layout, p.image.digest) == files[0].read_bytes()
        tag = sbom.referrers_tag(p.image.digest)
        repo = cbt_multi.ref.replace("{service}", "srv-img").rsplit(":", 1)[0]
        referrers = _skopeo_raw(registry, f"{repo}:{tag}")
        (desc,) = referrers["manifests"]
        assert desc["artifactType"] == sbom.MEDIA_TYPE
        artifact = _skopeo_raw(registry, f"{repo}@{desc['digest']}")
        assert artifact["subject"]["digest"] == str(p.image.digest)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"wheeldock-h-{uuid.uuid4().hex[:8]}"
    yield name
    engine.docker("rm", "-f", name, check=False)


@pytest.mark.integration
def test_arm64_image_runs_under_qemu_and_answers_health(
    cbt_multi: MultiCbt, container_name: str
) -> None:
    from wheeldock.oci.publish import publish

    arm = cbt_multi.results["srv-img"].images[1]
    tag = f"wheeldock-h-cbt-srv-img:{container_name}"
    publish(arm.image, f"docker-daemon:{tag}")
    try:
        assert engine.image_inspect(tag)["Architecture"] == "arm64"
        port = _free_port()
        argv = multiarch.run_argv(tag, ARM64, name=container_name, env={"PORT": str(port)})
        engine.docker(*argv)
        answer = _health(port)
        logs = engine.docker("logs", container_name, check=False)
        assert answer is not None and answer[0] == 200, logs.stdout[-2000:] + logs.stderr[-2000:]
        machine = engine.docker("exec", container_name, "uname", "-m").stdout.strip()
        assert machine == "aarch64"
    finally:
        engine.docker("rm", "-f", container_name, check=False)
        engine.docker("image", "rm", tag, check=False)


# -- integration: linux/arm/v7 ------------------------------------------------------------------

#: cb-totem's packages that publish no armv7l wheel (only an sdist): an armv7 board compiles them.
CBT_ARMV7_SDISTS = ["cffi", "httptools", "pillow", "pyyaml", "uvloop"]


@pytest.mark.integration
def test_cbt_for_arm_v7_is_locked_universally_and_refused_naming_its_five_sdists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    built: list[object] = []
    monkeypatch.setattr(multiarch.Builder, "image", lambda self, svc: built.append(svc))
    proj = make_cbt_project(tmp_path / "p")
    with pytest.raises(multiarch.NoWheel) as err:
        multiarch.build(
            proj,
            proj.services,
            [ARMV7],
            multiarch.MultiOptions(outputs=(f"oci:{tmp_path / 'oci'}",)),
        )
    assert built == []
    assert [a.name for a in err.value.artifacts] == CBT_ARMV7_SDISTS
    for artifact in err.value.artifacts:
        assert f"{artifact.name} {artifact.version} has no wheel for linux/arm/v7" in err.value.what
    assert err.value.fix is not None and "--emulate-sdists" in err.value.fix
    lock = pylock.read(proj.root / "wheeldock.lock" / "pylock.srv-img-armv7l.toml")
    (core,) = [p for p in lock.packages if p.name == "pydantic-core"]
    assert core.wheels and all(w.filename.endswith("armv7l.whl") for w in core.wheels)


TINY_APP = """\
import os
import platform

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "machine": platform.machine()}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
"""
#: pydantic-core publishes manylinux armv7l wheels; uvicorn without [standard] needs no
#: compiled package, so the whole service installs from wheels on every platform.
TINY_REQUIREMENTS = "fastapi==0.115.6\nuvicorn==0.34.0\npydantic==2.10.4\n"


def make_tiny_project(dest: Path) -> Project:
    """A one-file FastAPI service answering ``/health`` on ``$PORT``."""
    from wheeldock import project

    (dest / "app").mkdir(parents=True)
    (dest / "app" / "app.py").write_text(TINY_APP)
    (dest / "app" / "requirements.txt").write_text(TINY_REQUIREMENTS)
    svc = project.Service(
        "tiny",
        "app",
        ("app/requirements.txt",),
        ("python3", "app.py"),
        port=8000,
        health="/health",
    )
    proj = project.Project(dest, None, (svc,))
    project.save(proj)
    return proj


@dataclass(frozen=True)
class TinyMulti:
    layout: Path
    build: multiarch.MultiBuild
    ref: str  # docker://…/tiny:multi


@pytest.fixture(scope="module")
def tiny_multi(
    build_cache: Path,
    base_slim_armhf: Any,
    registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> TinyMulti:
    """The tiny service built for linux/arm/v7, to an OCI layout and the registry (the armhf base
    from ``base_slim_armhf``'s cache, under the same APT sources). cb-totem's amd64 + arm64
    build above covers an index of several platforms; this one is arm/v7's own."""
    work = tmp_path_factory.mktemp("tiny-multi")
    ref = f"docker://{registry.host}/tiny-multi/tiny:multi"
    with cache_at(build_cache), armhf_sources():
        proj = make_tiny_project(work / "p")
        layout = work / "oci"
        (result,) = multiarch.build(
            proj,
            proj.services,
            [ARMV7],
            multiarch.MultiOptions(outputs=(f"oci:{layout}", ref)),
            BuildOptions(),
        )
    return TinyMulti(layout, result, ref)


@pytest.mark.integration
def test_arm_v7_image_is_in_the_registry_index_as_arm_variant_v7(
    tiny_multi: TinyMulti, registry: Registry
) -> None:
    raw = _skopeo_raw(registry, tiny_multi.ref)
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    got = {
        (m["platform"]["architecture"], m["platform"].get("variant")): m["digest"]
        for m in raw["manifests"]
    }
    assert set(got) == {("arm", "v7")}
    (armv7,) = tiny_multi.build.images
    assert armv7.target == ARMV7 and got[("arm", "v7")] == str(armv7.image.digest)
    repo = tiny_multi.ref.rsplit(":", 1)[0]
    config = json.loads(
        subprocess.run(
            [
                tool("skopeo"),
                "inspect",
                "--config",
                "--raw",
                *registry.skopeo_args(),
                f"{repo}@{got[('arm', 'v7')]}",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    )
    assert (config["architecture"], config.get("variant")) == ("arm", "v7")


@pytest.mark.integration
def test_arm_v7_lock_pins_armv7l_wheels_and_its_files_are_32_bit_arm(
    tiny_multi: TinyMulti,
) -> None:
    (armv7,) = tiny_multi.build.images
    assert armv7.lock.name == "pylock.tiny-armv7l.toml"
    lock = pylock.read(armv7.lock)
    (core,) = [p for p in lock.packages if p.name == "pydantic-core"]
    assert [w.filename for w in core.wheels] == [
        "pydantic_core-2.27.2-cp311-cp311-manylinux_2_17_armv7l.manylinux2014_armv7l.whl"
    ]
    with multiarch.platform_image(f"oci:{tiny_multi.layout}:tiny", ARMV7) as ref:
        report = libs.check(ref)
    assert report.arch == "armhf"
    assert report.ok, report.missing
    assert len(report.checked) > 5
    doc = json.loads(armv7.sbom or b"{}")
    purls = {c["purl"] for c in doc["components"]}
    assert "pkg:pypi/pydantic-core@2.27.2" in purls
    assert any(u.startswith("pkg:deb/debian/libc6@") and "arch=armhf" in u for u in purls)


@pytest.mark.integration
def test_arm_v7_image_runs_under_qemu_and_answers_health(
    tiny_multi: TinyMulti, container_name: str
) -> None:
    from wheeldock.oci.publish import publish

    (armv7,) = tiny_multi.build.images
    tag = f"wheeldock-h-tiny:{container_name}"
    publish(armv7.image, f"docker-daemon:{tag}")
    try:
        inspected = engine.image_inspect(tag)
        assert (inspected["Architecture"], inspected.get("Variant")) == ("arm", "v7")
        port = _free_port()
        argv = multiarch.run_argv(tag, ARMV7, name=container_name, env={"PORT": str(port)})
        engine.docker(*argv)
        answer = _health(port)
        body = (answer[0], json.loads(answer[1])) if answer is not None else None
        logs = engine.docker("logs", container_name, check=False)
        assert body == (200, {"status": "ok", "machine": "armv7l"}), (
            logs.stdout[-2000:] + logs.stderr[-2000:]
        )
    finally:
        engine.docker("rm", "-f", container_name, check=False)
        engine.docker("image", "rm", tag, check=False)


def _health(port: int, *, within: float = 150) -> tuple[int, bytes] | None:
    """Status and body of ``/health`` on 127.0.0.1:``port``, asked until it answers (an
    emulated interpreter starts slowly); None if it never does."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                return r.status, r.read()
        except OSError:
            time.sleep(1)
    return None


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
