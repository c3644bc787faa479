"""The stack keeps its BEFORE shape (stock python:3.11-slim, the code bind-mounted at /src,
dependencies installed at every start), and its requirements pin only the top level: the
packages the service imports, none of their dependencies."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLE = Path(__file__).resolve().parent.parent
APP = EXAMPLE / "catalog" / "app.py"
REQUIREMENTS = EXAMPLE / "catalog" / "requirements.txt"
PIN = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]*)(\[[a-z,]+\])?==(?P<version>[0-9][0-9.]*)$")
#: requirement name → the module the service imports for it (uvicorn[standard]'s extras are
#: its server's speed-ups; python-multipart is what FastAPI's UploadFile parses with)
MODULES = {
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "httpx": "httpx",
    "pydantic-settings": "pydantic_settings",
    "cryptography": "cryptography",
    "pillow": "PIL",
    "lxml": "lxml",
    "pyodbc": "pyodbc",
    "orjson": "orjson",
    "jinja2": "jinja2",
    "python-multipart": None,
}


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    compose = yaml.safe_load((EXAMPLE / "docker-compose.yaml").read_text())
    assert set(compose["services"]) == {"catalog-api"}
    spec: dict[str, Any] = compose["services"]["catalog-api"]
    return spec


def _pins() -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines()]
    found = {}
    for line in filter(None, lines):
        match = PIN.match(line)
        assert match, f"not a plain top-level pin: {line!r}"
        found[match["name"]] = match["version"]
    return found


def test_the_service_installs_at_every_start_on_stock_python(service: dict[str, Any]) -> None:
    assert service["image"] == "python:3.11-slim"
    assert service["volumes"] == ["./catalog:/src"] and service["working_dir"] == "/src"
    assert "build" not in service
    script = shlex.split(service["command"])[2]
    steps = [step.strip() for step in script.split("&&")]
    # pyodbc's wheel links libodbc.so.2 (unixODBC), which the slim image lacks
    assert "apt-get install -y -qq libodbc2 >/dev/null" in steps
    assert steps[-2:] == ["pip install -q -r requirements.txt", "python3 app.py"]


def test_the_requirements_pin_exactly_what_the_service_imports() -> None:
    assert set(_pins()) == set(MODULES)
    imported = set()
    for node in ast.walk(ast.parse(APP.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert {m for m in MODULES.values() if m} <= imported


def test_the_port_comes_from_the_environment(service: dict[str, Any]) -> None:
    assert service["environment"] == {"PORT": "${CATALOG_API_PORT:-8010}"}
    assert service["network_mode"] == "host"
