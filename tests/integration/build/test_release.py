"""wheeldock release against the real registry: every service pushed, compose.release.yaml
pinned by digest (what skopeo reads back), the bytes a kiosk pulls printed; the release file
alone, in an empty folder, pulls the stack from the registry and starts it on a second engine
(one that never built or loaded it: :func:`support.engines.bridged_engine`)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from support.build import CbtBuild, cache_at, make_cbt_project
from support.engines import bridged_engine
from support.oci import tool
from support.registry import Registry
from support.stacks import free_port

from wheeldock import project
from wheeldock.cli.app import main

pytestmark = pytest.mark.integration
__all__ = ["bridged_engine"]

COMPOSE = """\
services:
  calidda-api:
    build: {{context: ., dockerfile: Dockerfile.calidda-api}}
    image: cbt-calidda-api:wheeldock
    network_mode: host
    environment:
      PORT: "{api}"
    restart: unless-stopped
  srv-img:
    build: {{context: ., dockerfile: Dockerfile.srv-img}}
    image: cbt-srv-img:wheeldock
    network_mode: host
    environment:
      PORT: "{img}"
"""


def compose(folder: Path, name: str, host: str, *argv: str) -> None:
    argv = ("docker", "compose", "-p", name, "-f", "compose.release.yaml", *argv)
    env = {**os.environ, "DOCKER_HOST": host}
    subprocess.run(argv, cwd=folder, check=True, capture_output=True, timeout=300, env=env)


def test_release_pins_every_service_by_digest_and_the_release_file_alone_brings_them_up(
    cbt_built: CbtBuild,
    build_cache: Path,
    registry: Registry,
    bridged_engine: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proj = make_cbt_project(tmp_path / "project", lock_from=cbt_built.root)
    ports = {"calidda-api": free_port(), "srv-img": free_port()}
    (proj.root / "compose.yaml").write_text(
        COMPOSE.format(api=ports["calidda-api"], img=ports["srv-img"])
    )
    project.save(project.Project(proj.root, "compose.yaml", proj.services))
    output = registry.ref("kiosk/{service}", "v1")
    mark = len(registry.requests())
    with cache_at(build_cache):
        code = main(["-C", str(proj.root), "release", "--output", output, "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    released = {s["service"]: s for s in report["services"]}
    # the layers both services have (the base's, the shared dependencies') were sent once: the
    # second service's push mounted them from the first's repository
    sent = [
        r.path.replace("%3A", ":").split("digest=")[1][:71]
        for r in registry.requests()[mark:]
        if r.method == "PUT" and "/blobs/uploads/" in r.path
    ]
    shared = {str(lay.digest) for lay in cbt_built.results["calidda-api"].image.layers} & {
        str(lay.digest) for lay in cbt_built.results["srv-img"].image.layers
    }
    assert shared and all(sent.count(d) == 1 for d in shared)
    data = YAML(typ="safe").load((proj.root / "compose.release.yaml").read_text())
    for name, svc in data["services"].items():
        digest = str(cbt_built.results[name].digest)
        assert svc["image"] == f"{registry.host}/kiosk/{name}@{digest}"
        assert "build" not in svc and svc["network_mode"] == "host"
        assert list(released[name]["pull_bytes"].values()) == [cbt_built.results[name].image.size]
        # what the registry serves under that pinned name is that very image
        argv = [tool("skopeo"), "inspect", "--raw", *registry.skopeo_args()]
        raw = subprocess.run(
            [*argv, f"docker://{svc['image']}"], check=True, capture_output=True
        ).stdout
        assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == digest

    # a kiosk: the release file alone, in an empty folder, pulled from the registry and started
    # on an engine that has never seen the images
    kiosk = tmp_path / "kiosk"
    kiosk.mkdir()
    shutil.copy(proj.root / "compose.release.yaml", kiosk)
    name = f"wd-release-{uuid.uuid4().hex[:8]}"
    try:
        compose(kiosk, name, bridged_engine, "pull")
        compose(kiosk, name, bridged_engine, "up", "-d", "--wait", "--wait-timeout", "120")
        for service, port in ports.items():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
                assert resp.status == 200, service
    finally:
        compose(kiosk, name, bridged_engine, "down", "--volumes", "--rmi", "all", "--timeout", "5")
