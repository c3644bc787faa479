"""The stack as wheeldock makes it: locked from top-level pins (dozens of packages), built
natively into the engine with the Debian library pyodbc's wheel needs, answering as a service;
then one top-level pin bumped and re-locked in place."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from wheeldock import cli, project

EXAMPLE = Path(__file__).resolve().parent.parent
FEED = (
    b'<feed><item sku="mug-1" colour="#c03020"><name>Red mug</name><price>4.50</price></item>'
    b'<item sku="cup-2" colour="#2040c0"><name>Blue cup</name><price>3</price></item></feed>'
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wheeldock(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> str:
    capsys.readouterr()
    code = cli.main(["-C", str(root), *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toplevel") / "stack"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    return root


@pytest.fixture
def running(stack: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[str]:
    _wheeldock(capsys, stack, "init")
    tag = f"wheeldock-toplevel-test-{stack.parent.name}:latest"
    _wheeldock(capsys, stack, "build", "--output", f"docker-daemon:{tag}")
    port = _free_port()
    container = subprocess.run(
        ["docker", "run", "-d", "--rm", "--network", "host", "-e", f"PORT={port}", tag],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, subprocess.run(
                ["docker", "logs", container], capture_output=True, text=True
            ).stderr
            time.sleep(0.2)
        yield url
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
        subprocess.run(["docker", "rmi", tag], capture_output=True)


@pytest.mark.integration
def test_the_image_runs_the_catalog_with_the_odbc_library_it_needs(
    stack: Path, running: str
) -> None:
    service = project.load(stack).service("catalog-api")
    assert "libodbc2" in service.runtime_packages
    locked = (stack / "wheeldock.lock" / "pylock.catalog-api.toml").read_text()
    assert locked.count("[[packages]]") >= 30
    health = httpx.get(f"{running}/health").json()
    assert health["status"] == "ok" and isinstance(health["odbc_drivers"], list)
    assert httpx.post(f"{running}/catalog", content=FEED).json() == {"items": 2}
    items = httpx.get(f"{running}/items").json()
    assert [(i["sku"], i["price_cents"]) for i in items] == [("mug-1", 450), ("cup-2", 300)]
    png = httpx.get(f"{running}/items/mug-1/thumbnail", params={"w": 16}).content
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "?sig=" in httpx.get(f"{running}/items/cup-2/link").json()["url"]
    one = b'<feed><item sku="pen-3"><name>Pen</name><price>1.20</price></item></feed>'
    files = {"feed": ("feed.xml", one)}
    assert httpx.post(f"{running}/catalog/upload", files=files).json() == {"items": 1}
    assert httpx.post(f"{running}/catalog", content=b"<feed><item/>").status_code == 422


@pytest.mark.integration
def test_one_top_level_pin_bumped_is_relocked_in_place(
    stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (stack / "wheeldock.toml").is_file():
        _wheeldock(capsys, stack, "init")
    _wheeldock(capsys, stack, "lock")
    requirements = stack / "catalog" / "requirements.txt"
    requirements.write_text(
        requirements.read_text().replace("fastapi==0.115.6", "fastapi==0.115.5")
    )
    (result,) = json.loads(_wheeldock(capsys, stack, "lock", "--json"))["locks"]
    assert (result["status"], result["action"]) == ("stale", "updated")
    assert result["packages"] >= 30
