"""wheeldock's own compose override: what this machine's engine needs, out of the user's files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wheeldock.compose import override
from wheeldock.compose.override import EngineFacts
from wheeldock.project import Service

API = Service("api", "app", ("requirements.txt",), ("python", "main.py"), port=8000)
JOB = Service("job", "app", ("requirements.txt",), ("python", "/app/main.py"), workdir="/app")


def _config(**services: dict[str, Any]) -> dict[str, Any]:
    return {"services": services}


BUILT = {"build": {"context": ".", "dockerfile": "Dockerfile.api"}, "image": "x-api:wheeldock"}


def test_no_bridge_network_builds_on_host_networking() -> None:
    data = override.override(_config(api=BUILT), [API], EngineFacts(bridge=False))
    assert data == {"services": {"api": {"build": {"network": "host"}}}}


def test_an_engine_with_its_bridge_needs_no_override() -> None:
    assert override.override(_config(api=BUILT), [API], EngineFacts()) == {}


def test_a_build_network_the_user_chose_is_kept() -> None:
    svc = {**BUILT, "build": {**BUILT["build"], "network": "custom"}}
    assert override.override(_config(api=svc), [API], EngineFacts(bridge=False)) == {}


def test_services_without_a_build_are_left_alone() -> None:
    data = override.override(_config(api={"image": "redis:7"}), [API], EngineFacts(bridge=False))
    assert data == {}


def test_the_ca_goes_in_as_a_build_secret_with_its_host_path(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    data = override.override(_config(api=BUILT), [API], EngineFacts(), ca=ca)
    assert data == {
        "services": {"api": {"build": {"secrets": ["ca"]}}},
        "secrets": {"ca": {"file": str(ca)}},
    }


def test_a_kept_data_mount_is_written_as_the_host_folders_owner() -> None:
    job = {
        **BUILT,
        "volumes": [
            {"type": "bind", "source": "/p/app/events", "target": "/app/events"},
            {"type": "bind", "source": "/p/conf", "target": "/conf"},
            {"type": "bind", "source": "/p/app/ro", "target": "/app/ro", "read_only": True},
        ],
    }
    owners = {"/p/app/events": "1000:1000", "/p/conf": "0:0", "/p/app/ro": "0:0"}
    data = override.override(_config(job=job), [JOB], EngineFacts(), owners=owners)
    assert data == {"services": {"job": {"user": "1000:1000"}}}
    mine = {**job, "user": "5:5"}
    assert override.override(_config(job=mine), [JOB], EngineFacts(), owners=owners) == {}


def test_owners_reads_the_data_mounts_folders(tmp_path: Path) -> None:
    (tmp_path / "events").mkdir()
    st = (tmp_path / "events").stat()
    vols = [{"type": "bind", "source": str(tmp_path / "events"), "target": "/app/events"}]
    found = override.owners(_config(job={"volumes": vols}), [JOB])
    assert found == {str(tmp_path / "events"): f"{st.st_uid}:{st.st_gid}"}


@pytest.mark.parametrize(
    ("docker_host", "remote"),
    [
        ("", None),
        ("unix:///var/run/docker.sock", None),
        ("tcp://127.0.0.1:2375", None),
        ("tcp://build-box:2376", "build-box"),
        ("ssh://me@10.0.0.5", "10.0.0.5"),
    ],
)
def test_a_remote_docker_host_is_where_ports_are_probed(
    docker_host: str, remote: str | None
) -> None:
    assert override.remote_host(docker_host) == remote
    assert EngineFacts(remote_host=override.remote_host(docker_host)).probe_host == remote


def test_write_puts_it_in_wheeldocks_folder_and_removes_a_stale_one(tmp_path: Path) -> None:
    path = override.write(tmp_path, {"services": {"api": {"build": {"network": "host"}}}})
    assert path == tmp_path / ".wheeldock" / "compose.override.yaml"
    assert json.loads(path.read_text())["services"]["api"]["build"]["network"] == "host"
    assert override.write(tmp_path, {}) is None
    assert not path.exists()
