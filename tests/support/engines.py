"""A second Docker engine, for the tests that must pass on an engine unlike this machine's.

This machine's engine runs without the default ``bridge`` network (``scripts/dockerd.sh``);
most users' engines have it, and with it NAT for builds and published ports through
``docker-proxy``. :func:`bridged_engine` gives the ``DOCKER_HOST`` of an engine that has it: the
usual one when it already has a ``bridge`` network, else a second ``dockerd`` with its own
socket, data root and exec root, stopped (and its files removed) at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wheeldock.edges import engine


def _answers(host: str) -> bool:
    result = subprocess.run(
        ["docker", "-H", host, "info", "--format", "{{.ID}}"],
        capture_output=True,
        check=False,
        timeout=30,
    )
    return result.returncode == 0


def _start(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    host = f"unix://{folder}/docker.sock"
    log = (folder / "dockerd.log").open("wb")
    proc = subprocess.Popen(
        [
            "dockerd",
            "--host",
            host,
            "--data-root",
            str(folder / "data"),
            "--exec-root",
            str(folder / "exec"),
            "--pidfile",
            str(folder / "dockerd.pid"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not _answers(host):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = (folder / "dockerd.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"the second dockerd did not start:\n{tail}")
        time.sleep(0.5)
    return proc, host


def _stop(proc: subprocess.Popen[bytes], folder: Path) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # its default bridge stays behind otherwise (the usual engine here has none)
    subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True, check=False)
    subprocess.run(["umount", "-R", str(folder)], capture_output=True, check=False)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def bridged_engine() -> Iterator[str]:
    """``DOCKER_HOST`` of an engine with the default ``bridge`` network."""
    networks = engine.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    if "bridge" in networks:
        yield os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.fail("a second engine needs root and dockerd (scripts/setup.sh installs it)")
    folder = Path(tempfile.mkdtemp(prefix="wheeldock-engine-", dir="/var/tmp"))
    proc, host = _start(folder)
    try:
        yield host
    finally:
        _stop(proc, folder)
