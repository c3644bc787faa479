"""Stacks in the shapes of public ones come up with ``init && up`` alone, on this machine's
engine (no default ``bridge``) and on one with it.

The ``real`` stack (tests/data/init/real): Flask on ``python:3.13-slim`` (kept on 3.13, a
Debian trixie base), a Django site whose command migrates and collects its static files before
gunicorn starts, a Poetry 1.8 project installed with ``virtualenvs.create false``. Published
host ports are rewritten to free ones; every service must answer on its own.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.engines import bridged_engine
from support.env import environ
from support.stacks import StackCopy, copy_stack, free_port, remove_stack

from wheeldock import project
from wheeldock.compose import up
from wheeldock.edges import engine

__all__ = ["bridged_engine"]

_PUBLISHED = {"web": '"5000:5000"', "site": '"8002:8000"', "cart": '"8003:8000"'}


@pytest.fixture(params=["this engine", "an engine with the default bridge"])
def docker_host(request: pytest.FixtureRequest, base_images: object) -> Iterator[dict[str, str]]:
    """The environment naming the engine the test runs against."""
    if request.param == "this engine":
        yield {}
    else:
        yield {"DOCKER_HOST": request.getfixturevalue("bridged_engine")}


def _published(stack: StackCopy) -> dict[str, int]:
    compose_file = stack.root / "compose.yaml"
    text = compose_file.read_text()
    ports: dict[str, int] = {}
    for name, binding in _PUBLISHED.items():
        ports[name] = free_port()
        container = binding.strip('"').split(":")[1]
        text = text.replace(binding, f'"{ports[name]}:{container}"')
    compose_file.write_text(text)
    return ports


def _health(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
        found: dict[str, object] = json.loads(answer.read())
        return found


@pytest.mark.integration
def test_flask_on_3_13_django_and_poetry_1_8_come_up_unaided(
    docker_host: dict[str, str],
    init_cache: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with environ(docker_host):
        stack = copy_stack("real", tmp_path)
        try:
            ports = _published(stack)
            assert stack.run("init") == 0
            services = {s.name: s for s in project.load(stack.root).services}
            assert services["web"].python == "3.13"  # the user's Python, kept
            assert services["site"].writable_code  # migrate and collectstatic write there
            assert "poetry" not in " ".join(services["cart"].command)
            with environ(stack.env):
                report = up.up(stack.root, timeouts=up.Timeouts(health=180))
            assert {s.name for s in report.services} == set(_PUBLISHED)
            assert _health(ports["web"]) == {"service": "web", "python": "3.13"}
            assert _health(ports["site"]) == {"service": "site", "users": 0}
            assert _health(ports["cart"]) == {"service": "cart"}

            capsys.readouterr()
            assert stack.run("status", "--json") == 0
            rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["services"]}
            for name, port in ports.items():
                assert rows[name]["port"] == port and f"127.0.0.1:{port}" in rows[name]["probe"]
        finally:
            remove_stack(stack)


@pytest.mark.integration
def test_a_python_3_13_service_builds_natively_with_bytecode_from_its_bases_python(
    base_images: object, init_cache: Path, tmp_path: Path
) -> None:
    stack = copy_stack("real", tmp_path)
    tag = f"{stack.root.name}-web:native"
    try:
        assert stack.run("init") == 0
        assert stack.run("lock", "web") == 0
        assert stack.run("build", "web", "--output", f"docker-daemon:{tag}") == 0
        ran = engine.docker(
            "run",
            "--rm",
            "--entrypoint",
            "python",
            tag,
            "-c",
            "import sys, os, flask; print('%d.%d' % sys.version_info[:2], "
            "os.path.isfile(flask.__spec__.cached))",
        )
        # Python 3.13 from the trixie base, and flask's bytecode made for it at build time
        assert ran.stdout.split() == ["3.13", "True"]
    finally:
        engine.docker("rmi", "--force", tag, check=False)
