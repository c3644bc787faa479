"""The compose file and requirements keep the seed's BEFORE shape, which ``wheeldock init`` and
``wheeldock bench`` start from: stock ``python:3.11-slim``, the code bind-mounted at ``/src``, and
``pip install -r requirements.txt`` at every container start."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLE = Path(__file__).resolve().parent.parent
APP_DIR = EXAMPLE / "vcc-totem"
SERVICES = {
    "calidda-api": ("api_wrapper.py", "CALIDDA_API_PORT", 8000),
    "srv-img": ("main.py", "SRV_IMG_PORT", 8001),
}
REQUIRED_PINS = {
    "fastapi",
    "uvicorn",
    "uvloop",
    "httptools",
    "watchfiles",
    "websockets",
    "python-dotenv",
    "httpx",
    "pydantic",
    "pydantic-core",
    "pillow",
    "cffi",
    "pycparser",
    "pyyaml",
}
PIN = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]*)==(?P<version>[0-9][A-Za-z0-9.+!-]*)$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((EXAMPLE / "docker-compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_declares_exactly_the_two_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == set(SERVICES)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_installs_requirements_at_start_on_stock_python(
    compose: dict[str, Any], service: str
) -> None:
    script, _, _ = SERVICES[service]
    spec = compose["services"][service]
    assert spec["image"] == "python:3.11-slim"
    assert spec["working_dir"] == "/src"
    assert spec["volumes"] == ["./vcc-totem:/src"]
    assert "build" not in spec
    argv = shlex.split(spec["command"])
    assert argv[:2] == ["sh", "-c"]
    assert len(argv) == 3
    assert re.fullmatch(
        rf"pip install (-q )?-r requirements\.txt && python3 {re.escape(script)}", argv[2]
    )
    assert (APP_DIR / script).is_file()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_uses_host_network_and_port_from_env(compose: dict[str, Any], service: str) -> None:
    _, variable, default = SERVICES[service]
    spec = compose["services"][service]
    assert spec["network_mode"] == "host"
    assert "ports" not in spec
    assert spec["environment"]["PORT"] == f"${{{variable}:-{default}}}"
    assert spec["restart"] == "unless-stopped"


def test_calidda_api_gets_the_upstream_url_from_env(compose: dict[str, Any]) -> None:
    environment = compose["services"]["calidda-api"]["environment"]
    assert environment["UPSTREAM_URL"] == "${UPSTREAM_URL:-http://127.0.0.1:9000}"


def read_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, line in enumerate((APP_DIR / "requirements.txt").read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = PIN.fullmatch(text)
        assert match, f"requirements.txt:{number}: not an exact pin: {line!r}"
        assert match["name"] not in pins, f"requirements.txt:{number}: {match['name']} twice"
        pins[match["name"]] = match["version"]
    return pins


def test_requirements_pin_every_package_exactly() -> None:
    pins = read_pins()
    assert set(pins) >= REQUIRED_PINS, REQUIRED_PINS - set(pins)
    assert "--hash" not in (APP_DIR / "requirements.txt").read_text()


def test_requirements_cover_every_direct_dependency_in_requirements_in() -> None:
    pins = read_pins()
    for line in (APP_DIR / "requirements.in").read_text().splitlines():
        name = re.split(r"[\[<>=~! ]", line.strip(), maxsplit=1)[0].lower()
        if name and not name.startswith("#"):
            assert name in pins, f"{name} from requirements.in is not pinned"
