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
from support.bases import armhf_sources
from support.build import AMD64, ARM64, ARMV7, cache_at, make_cbt_project
from support.oci import tool
from support.registry import Registry

from wheeldock.build import multiarch, sbom
from wheeldock.build.builder import BuildOptions
from wheeldock.debian import libs
from wheeldock.deps import pylock
from wheeldock.edges import engine
from wheeldock.oci.image import Platform
from wheeldock.project import Project

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
