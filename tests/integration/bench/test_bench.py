"""bench on a real engine: it measures every event and leaves the user's stack as it found it,
also when interrupted with Ctrl-C."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.projects import write_files

from wheeldock.edges import engine

pytestmark = pytest.mark.integration

APP = '''\
"""A tiny service: a stdlib HTTP server with a FastAPI-style route table."""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import six  # the one requirement, installed at start


class App:
    def __init__(self):
        self.routes = {}

    def get(self, path):
        def register(func):
            self.routes[path] = func
            return func
        return register


app = App()


@app.get("/health")
def health():
    return b"ok " + six.__version__.encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        route = app.routes.get(self.path)
        self.send_response(200 if route else 404)
        self.end_headers()
        self.wfile.write(route() if route else b"")


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _write_tiny(root: Path, app: str, environment: dict[str, str]) -> Path:
    compose = (
        "# a stack that installs at start\n"
        "services:\n"
        "  tiny:\n"
        "    image: python:3.11-slim\n"
        "    working_dir: /src\n"
        '    command: sh -c "pip install -q -r requirements.txt && python3 app.py"\n'
        "    volumes:\n"
        "      - ./app:/src\n"
        "    network_mode: host\n"
        "    environment:\n" + "".join(f"      {k}: {v}\n" for k, v in environment.items())
    )
    files = {"app/app.py": app, "app/requirements.txt": "six==1.17.0\n", "compose.yaml": compose}
    return write_files(root, files)


@pytest.fixture
def tiny_stack(tmp_path: Path, base_images: object) -> Path:
    return _write_tiny(tmp_path / "tiny", APP, {"PORT": str(_free_port())})


ARCH_APP = '''\
"""The tiny service, healthy only on the machine it is told to expect: a scenario whose image or
container is not really that platform's never answers 200, and the bench fails."""
import os
import platform
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import six  # the one requirement

ROUTES = {}


def get(path):  # declared the FastAPI way, so wheeldock finds the health route
    def register(func):
        ROUTES[path] = func
        return func
    return register


@get("/health")
def health():
    return platform.machine() == os.environ["EXPECT_MACHINE"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        route = ROUTES.get(self.path)
        self.send_response(200 if route and route() else 503)
        self.end_headers()
        self.wfile.write(f"{platform.machine()} six {six.__version__}".encode())


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
'''


@pytest.fixture
def tiny_arm64_stack(tmp_path: Path, base_images: object, base_slim_arm64: object) -> Path:
    env = {"PORT": str(_free_port()), "EXPECT_MACHINE": "aarch64"}
    return _write_tiny(tmp_path / "tiny-arm64", ARCH_APP, env)


def _leftovers(scenario: str, pid: int) -> list[str]:
    """Containers and images of one bench process's scenario (projects are per process)."""
    project = f"wdbench{pid}-{scenario}"
    out = engine.docker(
        "ps",
        "--all",
        "--filter",
        f"label=com.docker.compose.project={project}",
        "--format",
        "{{.Names}}",
    ).stdout.split()
    images = engine.docker("images", "--format", "{{.Repository}}").stdout.split()
    return out + [i for i in images if i.startswith(f"{project}-")]


def test_bench_times_every_event_and_leaves_the_stack_untouched(
    tiny_stack: Path, tmp_path: Path
) -> None:
    before = _tree_digest(tiny_stack)
    dangling = set(engine.docker("images", "-q", "-f", "dangling=true").stdout.split())
    out = tmp_path / "bench.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wheeldock.cli",
            "-C",
            str(tiny_stack),
            "bench",
            "--runs",
            "1",
            "--scenarios",
            "before,uvguide,native-oci",
            "--json",
            str(out),
            "--markdown",
            str(tmp_path / "b.md"),
            "--timeout",
            "300",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, stderr = proc.communicate(timeout=1200)
    assert proc.returncode == 0, stderr[-3000:]
    data = json.loads(out.read_text())
    events = {(m["scenario"], m["event"]) for m in data["measurements"]}
    assert events == {
        (s, e) for s in ("before", "uvguide") for e in ("cold", "restart", "code", "bump")
    } | {("native-oci", e) for e in ("cold", "code", "bump")}  # nothing to time on a restart
    for m in data["measurements"]:
        if m["scenario"] == "native-oci":  # a layout is built, and nothing is started from it
            assert m["build_s"] > 0 and m["answer_s"] is None and m["healthy_s"] is None
    assert data["bumped"].startswith("six 1.17.0 -> ")
    uv_cold = next(
        m for m in data["measurements"] if m["scenario"] == "uvguide" and m["event"] == "cold"
    )
    assert uv_cold["build_s"] > 0 and uv_cold["healthy_s"] >= uv_cold["build_s"]
    assert data["summary"]["uvguide"]["code"]["new_layer_bytes"] > 0
    assert "| First build + start |" in (tmp_path / "b.md").read_text()
    assert "native-oci vs uvguide" in (tmp_path / "b.md").read_text()
    assert _tree_digest(tiny_stack) == before
    assert _leftovers("uvguide", proc.pid) == [] and _leftovers("before", proc.pid) == []
    # nor the images the code change and the bump left untagged
    assert set(engine.docker("images", "-q", "-f", "dangling=true").stdout.split()) <= dangling


def test_bench_interrupted_with_ctrl_c_cleans_up_and_leaves_the_stack_untouched(
    tiny_stack: Path,
) -> None:
    before = _tree_digest(tiny_stack)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wheeldock.cli",
            "-C",
            str(tiny_stack),
            "bench",
            "--runs",
            "1",
            "--scenarios",
            "before",
            "--timeout",
            "300",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while (
        not _leftovers("before", proc.pid) and time.monotonic() < deadline and proc.poll() is None
    ):
        time.sleep(0.5)
    assert _leftovers("before", proc.pid), "the bench never started a container"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert _tree_digest(tiny_stack) == before
    assert _leftovers("before", proc.pid) == []


def test_bench_for_arm64_builds_and_runs_every_scenario_under_qemu(
    tiny_arm64_stack: Path, base_cache: Path, tmp_path: Path
) -> None:
    from wheeldock.bench import lifecycle as bench

    # every scenario waits for 200 from /health (not merely a running container)
    assert [s.health for s in bench.Stack.load(tiny_arm64_stack).services] == ["/health"]
    out = tmp_path / "bench.json"
    markdown = tmp_path / "b.md"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wheeldock.cli",
            "-C",
            str(tiny_arm64_stack),
            "bench",
            "--platform",
            "linux/arm64",
            "--runs",
            "1",
            "--scenarios",
            "uvguide,native",
            "--json",
            str(out),
            "--markdown",
            str(markdown),
            "--timeout",
            "300",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "WHEELDOCK_CACHE": str(base_cache)},  # where the arm64 base is
    )
    _, stderr = proc.communicate(timeout=1800)
    assert proc.returncode == 0, stderr[-3000:]
    data = json.loads(out.read_text())
    assert (data["platform"], data["emulated"]) == ("linux/arm64", True)
    assert data["failures"] == []
    # every event answered 200, which the app does only on an aarch64 machine
    events = {(m["scenario"], m["event"]) for m in data["measurements"]}
    assert events == {
        (s, e) for s in ("uvguide", "native") for e in ("cold", "restart", "code", "bump")
    }
    assert markdown.read_text().startswith("# wheeldock bench: tiny-arm64 (linux/arm64)")
    assert _leftovers("uvguide", proc.pid) == [] and _leftovers("native", proc.pid) == []
