"""Both services started the way the compose file starts them (``python3 <file>.py``), answering
over real sockets on 127.0.0.1."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

APP_DIR = Path(__file__).resolve().parent.parent / "vcc-totem"


def wait_healthy(process: subprocess.Popen[bytes], url: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"service exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url}/health did not answer within {within}s")


def start(script: str, port: int, **env: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, script],
        cwd=APP_DIR,
        env={**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, url)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


@pytest.fixture
def calidda_api(upstream: Any, free_port: int) -> Iterator[str]:
    yield from start("api_wrapper.py", free_port, UPSTREAM_URL=upstream.url)


@pytest.fixture(scope="module")
def srv_img() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield from start("main.py", port)


def test_calidda_api_serves_lookups_through_the_upstream(calidda_api: str, upstream: Any) -> None:
    response = httpx.get(f"{calidda_api}/accounts/123456/balance", timeout=10)
    assert response.status_code == 200
    assert response.json()["reference"] == "123456-76"
    assert httpx.get(f"{calidda_api}/accounts/404404/balance", timeout=10).status_code == 404
    assert upstream.hits["/v1/accounts/123456"] == 1


def test_srv_img_serves_resized_images(srv_img: str) -> None:
    response = httpx.get(f"{srv_img}/img/promo.jpg?w=64", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"


def test_srv_img_refuses_raw_dot_dot_paths(srv_img: str) -> None:
    # http.client sends the path as written; httpx would normalise the dots away first.
    host, port = srv_img.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/img/../../etc/passwd")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 400, body
