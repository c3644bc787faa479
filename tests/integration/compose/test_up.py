"""``wheeldock up`` / ``status`` / ``logs`` / ``down`` on the real engine, after ``init``.

Each stack is copied to a uniquely named folder with free ports and its own container names;
BuildKit's cache (pip downloads, built wheels) is shared between the stacks and the runs.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.env import environ
from support.stacks import StackCopy, copy_stack, free_port, remove_stack

from wheeldock import cli, project
from wheeldock.compose import health, up
from wheeldock.edges import engine
from wheeldock.project import Service


@pytest.fixture
def stacks(base_images: object, init_cache: Path, tmp_path: Path) -> Iterator[list[StackCopy]]:
    """Stacks a test makes with ``stacks.append(copy_stack(...))``, taken down afterwards."""
    made: list[StackCopy] = []
    yield made
    for stack in made:
        remove_stack(stack)


def _new(stacks: list[StackCopy], name: str, tmp_path: Path) -> StackCopy:
    stack = copy_stack(name, tmp_path)
    stacks.append(stack)
    return stack


def _up(stack: StackCopy, *names: str) -> up.UpReport:
    with environ(stack.env):
        return up.up(stack.root, names, timeouts=up.Timeouts(health=120))


def _assert_reverts(stack: StackCopy) -> None:
    generated = [p.name for p in stack.root.glob("Dockerfile.*")]
    assert generated
    assert stack.run("init", "--revert") == 0
    for name, data in stack.original_compose.items():
        assert (stack.root / name).read_bytes() == data
    assert not list(stack.root.glob("Dockerfile.*"))
    assert not (stack.root / "wheeldock.toml").exists()
    assert not (stack.root / ".wheeldock").exists()


@pytest.mark.integration
def test_cb_totem_answers_200_is_docker_healthy_and_reverts(
    stacks: list[StackCopy], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = _new(stacks, "cb-totem", tmp_path)
    assert stack.run("init") == 0
    report = _up(stack)
    by_name = {s.name: s for s in report.services}
    assert set(by_name) == {"calidda-api", "srv-img"}
    for name, var in (("calidda-api", "CALIDDA_API_PORT"), ("srv-img", "SRV_IMG_PORT")):
        svc = by_name[name]
        assert svc.port == stack.port(var)
        assert svc.docker_health == "healthy"
        assert svc.answer_s is not None and svc.healthy_s is not None
        assert svc.build_s is not None
        assert health.probe(health.Probe("http", svc.port, "/health")).ok
    image = engine.image_inspect(by_name["calidda-api"].image or "")
    assert image["Config"]["User"] == "10001:10001"
    assert image["Config"]["Healthcheck"]["StartInterval"] == 1_000_000_000

    capsys.readouterr()
    assert stack.run("status", "--json") == 0
    states = {s["name"]: s for s in json.loads(capsys.readouterr().out)["services"]}
    assert states["srv-img"]["state"] == "running" and states["srv-img"]["probe_ok"]
    assert stack.run("logs", "--tail", "5", "calidda-api") == 0

    assert stack.run("down") == 0
    assert stack.run("status") != 0  # nothing runs any more
    _assert_reverts(stack)


@pytest.mark.integration
def test_flask_under_gunicorn_answers_on_its_health_route(
    stacks: list[StackCopy], tmp_path: Path
) -> None:
    stack = _new(stacks, "flask", tmp_path)
    assert stack.run("init") == 0
    (web,) = _up(stack, "web").services  # only the Python service: the db is never started
    assert web.port == stack.port("WEB_PORT")
    assert web.probe.endswith("/healthz") and web.docker_health == "healthy"
    assert stack.run("down") == 0
    _assert_reverts(stack)


@pytest.mark.integration
def test_inline_packages_local_projects_and_project_locks_run_built_both_ways(
    stacks: list[StackCopy], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """`pip install fastapi 'uvicorn>=0.30'` then a preparing step; `apt-get install` then
    `pip install -e .` (a pyproject.toml project); uv, Poetry and Pipenv projects installed
    from their locks: init makes images of each that keep the steps, the system library and
    the lock's pins (no development packages), through BuildKit and the native builder."""
    stack = _new(stacks, "adhoc", tmp_path)
    before = {p: p.read_bytes() for p in stack.root.rglob("*") if p.is_file()}
    assert stack.run("init") == 0
    for how in ("buildkit", "native"):
        if how == "native":
            assert stack.run("down") == 0
            with environ(stack.env):
                assert cli.main(["-C", str(stack.root), "build", "--relock"]) == 0
                report = up.up(stack.root, (), build=False, timeouts=up.Timeouts(health=120))
        else:
            report = _up(stack)
        by_name = {s.name: s for s in report.services}
        # legacy (setup.py only) was passed over
        assert set(by_name) == {"api", "jobs", "shop", "cart", "desk"}, how
        api, jobs = by_name["api"], by_name["jobs"]
        assert api.port == stack.port("API_PORT") and api.docker_health == "healthy", how
        assert jobs.docker_health == "healthy", how
        with urllib.request.urlopen(f"http://127.0.0.1:{api.port}/health", timeout=5) as resp:
            assert json.load(resp) == {"status": "ok", "prepared": "yes"}, how  # its step ran
        for name in ("shop", "cart", "desk"):  # uv, Poetry and Pipenv projects, from their locks
            project = by_name[name]
            assert project.port == stack.port(f"{name.upper()}_PORT"), (how, name)
            assert project.docker_health == "healthy", (how, name)
            url = f"http://127.0.0.1:{project.port}/health"
            with urllib.request.urlopen(url, timeout=5) as resp:
                assert json.load(resp) == {"status": "ok", "pytest": False}, (how, name)  # no dev
        capfd.readouterr()
        assert stack.run("logs", "jobs") == 0
        assert "jobs ready {'cffi':" in capfd.readouterr().out, how  # libyaml loaded before it
    assert stack.run("down") == 0
    assert stack.run("init", "--revert") == 0
    after = {p: p.read_bytes() for p in stack.root.rglob("*") if p.is_file()}
    assert {p: d for p, d in after.items() if "wheeldock.lock" not in p.parts} == before


def _layer_blobs(image: str) -> Iterator[tuple[str, bytes]]:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "image.tar"
        engine.docker("save", "--output", str(archive), image)
        with tarfile.open(archive) as outer:
            manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
            for layer in manifest[0]["Layers"]:
                data = outer.extractfile(layer).read()  # type: ignore[union-attr]
                with tarfile.open(fileobj=io.BytesIO(data)) as inner:
                    for member in inner.getmembers():
                        if member.isfile():
                            yield layer, inner.extractfile(member).read()  # type: ignore[union-attr]


@pytest.mark.integration
def test_ca_bundle_never_lands_in_a_layer_and_a_tcp_service_starts(
    stacks: list[StackCopy], tmp_path: Path
) -> None:
    stack = _new(stacks, "nested", tmp_path)
    host_ca = Path("/etc/ssl/certs/ca-certificates.crt")
    marker = f"# wheeldock-test-marker {stack.root.name}\n".encode()
    ca = tmp_path / "marked-ca.pem"  # the host's bundle (so builds still reach PyPI) + a marker
    ca.write_bytes((host_ca.read_bytes() if host_ca.is_file() else b"") + marker)
    assert stack.run("init", "--ca-cert", str(ca)) == 0
    assert str(ca) not in (stack.root / "compose.yaml").read_text()
    with environ(stack.env):
        (api,) = up.up(stack.root, ca_cert=ca, timeouts=up.Timeouts(health=120)).services
    assert str(ca) in (stack.root / ".wheeldock" / "compose.override.yaml").read_text()
    assert api.probe.startswith("TCP") and api.docker_health == "healthy"
    assert api.image is not None
    layers = 0
    for layer, content in _layer_blobs(api.image):
        layers += 1
        assert marker not in content, f"the CA file is in layer {layer}"
    assert layers > 3


@pytest.mark.integration
def test_worker_built_from_source_needs_libffi8_and_runs(
    stacks: list[StackCopy], tmp_path: Path
) -> None:
    stack = _new(stacks, "worker", tmp_path)
    assert stack.run("init", "--no-binary", "cffi,pyyaml") == 0
    svc = project.load(stack.root).service("worker")
    dockerfile = (stack.root / "Dockerfile.worker").read_text()
    assert "--no-binary cffi --no-binary pyyaml" in dockerfile
    if svc.runtime_packages_source == "elf-scan":
        # pyyaml built against libyaml needs libyaml-0-2, which slim lacks; libffi8, which the
        # source-built cffi needs, is one the slim base already has, so it is not reinstalled.
        assert "libyaml-0-2" in svc.runtime_packages
    else:
        assert {"libffi8", "libyaml-0-2"} <= set(svc.runtime_packages)
    runtime_stage = dockerfile.split("FROM wheeldock/python:3.11-slim")[1]
    for package in svc.runtime_packages:
        assert package in runtime_stage
    (worker,) = _up(stack).services
    assert worker.port is None and worker.probe == "keeps running (a worker)"
    assert worker.docker_health == "healthy"
    with environ(stack.env):
        logs = up.Stack.load(stack.root).logs("worker")
    assert "worker ready: abs(-7) = 7 yaml=CLoader" in logs
    image = worker.image or ""
    site = "/opt/venv/lib/python3.11/site-packages"
    listing = engine.docker("run", "--rm", "--network", "host", "--entrypoint", "ls", image, site)
    names = listing.stdout.split()
    assert "cffi" in names and "cffi.libs" not in names  # built here: no vendored libffi
    linked = engine.docker(
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "sh",
        image,
        "-c",
        f"dpkg-query -W -f '${{Package}} ${{Status}}\\n' libffi8 libyaml-0-2; "
        f"ldd {site}/_cffi_backend*.so",
    ).stdout
    assert "libffi8 install ok installed" in linked
    assert "libyaml-0-2 install ok installed" in linked
    assert "libffi.so.8 => /" in linked and "not found" not in linked


@pytest.mark.integration
def test_published_ports_and_a_one_shot_job_come_up_unaided_without_a_bridge(
    stacks: list[StackCopy], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = _new(stacks, "ports", tmp_path)
    compose_file = stack.root / "compose.yaml"
    api_port, admin_port = free_port(), free_port()
    text = compose_file.read_text()
    text = text.replace('"8000:8000"', f'"{api_port}:8000"').replace(
        '"8001:8000"', f'"{admin_port}:8000"'
    )
    compose_file.write_text(text)
    assert stack.run("init") == 0
    patched = compose_file.read_text()
    # nothing of this machine in the file people commit; the untouched parts byte for byte
    assert "network" not in patched and str(stack.root) not in patched and "secrets" not in patched
    assert "      - ./job/events:/app/events\n" in patched
    assert f'      - "{admin_port}:8000"   # the same container port as api\'s\n' in patched

    report = _up(stack)
    by_name = {s.name: s for s in report.services}
    assert by_name["api"].probe == f"GET http://127.0.0.1:{api_port}/health"
    assert by_name["admin"].probe == f"GET http://127.0.0.1:{admin_port}/health"
    assert by_name["job"].probe == "exits 0 (a one-shot job)"
    for name, port in (("api", api_port), ("admin", admin_port)):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
            assert json.loads(answer.read()) == {"service": name}
    events = stack.root / "job" / "events"
    assert not (events / "stale.txt").exists()
    assert json.loads((events / "done.json").read_text())["stale"] == []
    if "bridge" not in engine.docker("network", "ls", "--format", "{{.Name}}").stdout.split():
        own = (stack.root / ".wheeldock" / "compose.override.yaml").read_text()
        assert json.loads(own)["services"]["api"]["build"]["network"] == "host"

    capsys.readouterr()
    assert stack.run("status", "--json") == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["services"]}
    assert rows["api"]["port"] == api_port and str(api_port) in rows["api"]["probe"]
    assert rows["admin"]["port"] == admin_port and str(admin_port) in rows["admin"]["probe"]
    assert rows["job"]["probe_detail"] == "done (exit code 0)"


@pytest.mark.integration
def test_a_crashing_app_fails_at_the_start_step_with_its_logs(
    stacks: list[StackCopy], tmp_path: Path
) -> None:
    stack = _new(stacks, "nested", tmp_path)
    main = stack.root / "svc" / "app" / "main.py"
    main.write_text('raise RuntimeError("boom at import")\n')
    assert stack.run("init") == 0
    with pytest.raises(up.UpFailed) as info:
        _up(stack)
    assert info.value.step == "start"
    assert info.value.service == "api"
    assert "boom at import" in info.value.logs


# -- --platform ---------------------------------------------------------------------------------


ARCH_APP = """\
import os, platform
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUILT_ON = open("/built-on").read().strip()  # what `uname -m` said in the image's RUN step


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{platform.machine()} built-on={BUILT_ON}".encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""

ARCH_DOCKERFILE = """\
FROM wheeldock/python:3.11-slim
RUN uname -m > /built-on
COPY app.py /app/app.py
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --start-interval=1s \\
    CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ['PORT'], timeout=5)"]
CMD ["python3", "/app/app.py"]
"""


@pytest.fixture
def arch_stack(tmp_path: Path, base_images: object, base_slim_arm64: object) -> Iterator[Path]:
    """A one-service stack FROM wheeldock's slim base that reports the machine it runs on (and
    the one its RUN step ran on); taken down and its images removed afterwards."""
    root = tmp_path / f"wdarch-{uuid.uuid4().hex[:8]}"
    root.mkdir()
    (root / "app.py").write_text(ARCH_APP)
    (root / "Dockerfile").write_text(ARCH_DOCKERFILE)
    port = free_port()
    (root / "compose.yaml").write_text(
        "services:\n"
        "  arch:\n"
        "    build: {context: ., dockerfile: Dockerfile, network: host}\n"
        f"    image: {root.name}-arch:wheeldock\n"
        "    network_mode: host\n"
        f"    environment: {{PORT: '{port}'}}\n"
    )
    svc = Service("arch", ".", (), ("python3", "/app/app.py"), port=port, health="/health")
    project.save(project.Project(root, None, (svc,)))
    yield root
    up.down(root)
    images = engine.docker(
        "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={root.name}-*"
    ).stdout.split()
    for ref in images:
        engine.docker("rmi", "--force", ref, check=False)


@pytest.mark.integration
def test_up_platform_arm64_builds_and_runs_under_qemu_and_answers_health(
    arch_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compose_before = (arch_stack / "compose.yaml").read_bytes()
    capsys.readouterr()
    assert cli.main(["-C", str(arch_stack), "up", "--platform", "linux/arm64", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["platform"] == "linux/arm64" and report["emulated"]
    (svc,) = report["services"]
    # its own tag: the host's image under the compose file's tag is not overwritten
    assert svc["image"] == f"{arch_stack.name}-arch:wheeldock-arm64"
    assert not engine.image_exists(f"{arch_stack.name}-arch:wheeldock")
    assert engine.image_inspect(svc["image"])["Architecture"] == "arm64"
    assert svc["docker_health"] == "healthy" and svc["answer_s"] is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{svc['port']}/health", timeout=10) as resp:
        assert resp.status == 200
        assert resp.read().decode() == "aarch64 built-on=aarch64"
    assert (arch_stack / "compose.yaml").read_bytes() == compose_before
    override = json.loads((arch_stack / ".wheeldock" / "compose.arm64.yaml").read_text())
    contexts = override["services"]["arch"]["build"]["additional_contexts"]
    assert contexts == {
        "wheeldock/python:3.11-slim": "docker-image://wheeldock/python:3.11-slim-arm64"
    }
