"""Services built from their own Dockerfile, converted by ``init``, built by BuildKit through
``docker compose build`` and started with ``docker compose up``: the container answers, and
``init --revert`` puts every file back.

The engine here has no default bridge network, so the corpus' compose files build on host
networking (as wheeldock's own override does for image services), and the proxy CA, when the
host has one, is handed to the build as the secret the generated Dockerfile mounts.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.env import environ
from support.stacks import REPO, free_port

from wheeldock import cli
from wheeldock.edges import ca as ca_mod
from wheeldock.edges import engine

CORPUS = REPO / "tests" / "data" / "dockerfiles"
#: corpus case -> (service, the variable its published port is read from)
CASES = {
    "flask-gunicorn": ("web", "WEB_PORT"),
    "fastapi-uvicorn": ("api", "API_PORT"),
    "build-args": ("site", "SITE_PORT"),
}


class _Stack:
    def __init__(self, root: Path, port_var: str) -> None:
        self.root = root
        self.name = root.name
        self.env = {port_var: str(free_port()), "COMPOSE_PROJECT_NAME": root.name}
        self.port = int(self.env[port_var])
        self.files: list[Path] = [root / "compose.yaml"]

    def compose(self, *args: str, check: bool = True) -> str:
        with environ(self.env):
            result = engine.compose(
                self.root,
                *args,
                files=self.files,
                project_name=self.name,
                check=check,
                timeout=900,
                env=self.env,
            )
        return result.stdout

    def init(self, *args: str) -> int:
        with environ(self.env):
            return cli.main(["-C", str(self.root), "init", *args])


@pytest.fixture
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Stack]:
    name = request.param
    root = tmp_path / f"wdfile-{uuid.uuid4().hex[:8]}-{name}"
    shutil.copytree(CORPUS / name, root)
    made = _Stack(root, CASES.get(name, ("app", "APP_PORT"))[1])
    yield made
    made.compose("down", "--volumes", check=False)
    # the images this stack built, and nothing else (compose names them <project>-<service>)
    built = engine.docker(
        "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={made.name}-*"
    ).stdout.split()
    for ref in built:
        engine.docker("rmi", "--force", ref, check=False)


def _with_ca(stack: _Stack, service: str) -> None:
    """The build gets the host's CA as the secret the generated Dockerfile mounts."""
    ca = ca_mod.find()
    if ca is None:
        return
    override = stack.root / "ca.override.json"
    override.write_text(
        json.dumps(
            {
                "services": {service: {"build": {"secrets": [ca_mod.SECRET_ID]}}},
                "secrets": {ca_mod.SECRET_ID: {"file": str(ca)}},
            }
        )
    )
    stack.files.append(override)


def _files(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _answers(port: int, deadline_s: float = 90) -> int:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                return int(r.status)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > end:
                raise
            time.sleep(1)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("stack", sorted(CASES), indirect=True)
def test_a_converted_dockerfile_builds_with_buildkit_and_the_container_answers(
    stack: _Stack,
) -> None:
    service = CASES[stack.root.name.split("-", 2)[2]][0]
    original = _files(stack.root)
    assert stack.init() == 0
    assert (stack.root / "Dockerfile").read_bytes() == original[Path("Dockerfile")]
    _with_ca(stack, service)
    stack.compose("build", service)
    stack.compose("up", "--detach", service)
    assert _answers(stack.port) == 200
    # the image's dependencies came from the wheel stage's venv
    image = json.loads(stack.compose("images", "--format", "json", service))[0]
    ref = f"{image['Repository']}:{image['Tag']}"
    path = engine.docker("run", "--rm", "--network", "none", ref, "sh", "-c", "echo $PATH")
    assert path.stdout.startswith("/opt/venv/bin:")
    stack.compose("down", "--volumes")
    (stack.root / "ca.override.json").unlink(missing_ok=True)
    assert stack.init("--revert") == 0
    assert _files(stack.root) == original


def _steps(log: str, stage: str) -> dict[str, list[str]]:
    """BuildKit's plain progress, by step: the lines of each step of ``stage``."""
    ids = {
        line.split()[0]
        for line in log.splitlines()
        if line.startswith("#") and f" {stage} " in line and " RUN " in line
    }
    return {i: [line for line in log.splitlines() if line.startswith(i + " ")] for i in ids}


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("stack", ["flask-gunicorn"], indirect=True)
def test_a_code_change_reuses_the_wheels_and_a_bump_fetches_one(stack: _Stack) -> None:
    assert stack.init() == 0
    _with_ca(stack, "web")
    stack.compose("build", "web")
    with (stack.root / "app.py").open("a") as app:
        app.write("# a code change\n")
    with environ(stack.env):
        code = engine.compose(
            stack.root, "--progress", "plain", "build", "web",
            files=stack.files, project_name=stack.name, timeout=900, env=stack.env,
        )  # fmt: skip
    steps = _steps(code.stdout + code.stderr, "wheeldock-deps")
    assert steps and all(any(line.endswith("CACHED") for line in s) for s in steps.values()), (
        code.stdout + code.stderr
    )
    # a comment of this run's own, so BuildKit's cache of an earlier run cannot answer
    requirements = stack.root / "requirements.txt"
    bumped = requirements.read_text().replace("flask==3.0.3", "flask==3.0.2")
    requirements.write_text(f"# {stack.name}\n{bumped}")
    with environ(stack.env):
        bump = engine.compose(
            stack.root, "--progress", "plain", "build", "web",
            files=stack.files, project_name=stack.name, timeout=900, env=stack.env,
        )  # fmt: skip
    # BuildKit's progress reaches compose's stdout or stderr, depending on its version
    # BuildKit's progress reaches compose's stdout or stderr, depending on its version
    log = bump.stdout + bump.stderr
    install = [s for s in _steps(log, "wheeldock-deps").values() if "uv pip install" in s[0]]
    assert install and not any(line.endswith("CACHED") for line in install[0]), log
    # uv fetches the bumped wheel at most; the others come from its cache mount
    prepared = [int(n) for n in re.findall(r"Prepared (\d+) package", log)]
    assert all(n <= 1 for n in prepared), log
    assert "flask==3.0.2" in log


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("stack", ["exec-form-run"], indirect=True)
def test_a_dockerfile_the_native_builder_carries_out_builds_natively_and_runs_the_same(
    stack: _Stack, base_images: object, init_cache: Path
) -> None:
    assert stack.init() == 0
    assert "[services.app]" in (stack.root / "wheeldock.toml").read_text()
    with environ(stack.env):
        assert cli.main(["-C", str(stack.root), "lock"]) == 0
        assert cli.main(["-C", str(stack.root), "build"]) == 0
    image = f"{stack.name}-app:wheeldock"
    try:
        run = engine.docker("run", "--rm", "--network", "none", image)
        # what the Dockerfile's ENTRYPOINT python and CMD app.py print: the pinned click
        assert run.stdout.strip() == "8.1.7"
        config = json.loads(engine.docker("image", "inspect", image).stdout)[0]["Config"]
        assert (config["WorkingDir"], config["Cmd"]) == ("/app", ["python", "app.py"])
    finally:
        engine.docker("rmi", "--force", image, check=False)
