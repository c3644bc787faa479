"""wheeldock release against the real registry: every service pushed, compose.release.yaml
pinned by digest (what skopeo reads back), the bytes a kiosk pulls printed."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from support.build import CbtBuild, cache_at, make_cbt_project
from support.oci import tool
from support.registry import Registry

from wheeldock import project
from wheeldock.cli.app import main

pytestmark = pytest.mark.integration

COMPOSE = """\
services:
  calidda-api:
    build: {context: ., dockerfile: Dockerfile.calidda-api}
    image: cbt-calidda-api:wheeldock
    network_mode: host
    restart: unless-stopped
  srv-img:
    build: {context: ., dockerfile: Dockerfile.srv-img}
    image: cbt-srv-img:wheeldock
    network_mode: host
"""


def test_release_pushes_every_service_and_pins_it_by_digest_in_compose_release_yaml(
    cbt_built: CbtBuild,
    build_cache: Path,
    registry: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proj = make_cbt_project(tmp_path / "project", lock_from=cbt_built.root)
    (proj.root / "compose.yaml").write_text(COMPOSE)
    project.save(project.Project(proj.root, "compose.yaml", proj.services))
    output = registry.ref("kiosk/{service}", "v1")
    with cache_at(build_cache):
        code = main(["-C", str(proj.root), "release", "--output", output, "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    released = {s["service"]: s for s in report["services"]}
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
