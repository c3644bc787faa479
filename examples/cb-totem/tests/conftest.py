"""Fixtures for the cb-totem example's tests.

The services are loaded by file path under unique module names: ``main`` (srv-img's file name) is
far too generic to put on ``sys.path`` next to other projects' tests.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent
APP_DIR = EXAMPLE / "vcc-totem"


def load_module(name: str, path: Path) -> ModuleType:
    """Import ``path`` as module ``name`` once; later calls return the same module."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec: dataclasses and pydantic look the module up
    # No __pycache__ in vcc-totem/: it is the services' build context, and stray files there would
    # change the app layer the bench builds.
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def api() -> ModuleType:
    return load_module("cb_totem_api_wrapper", APP_DIR / "api_wrapper.py")


@pytest.fixture(scope="session")
def srv_img() -> ModuleType:
    return load_module("cb_totem_srv_img", APP_DIR / "main.py")


@pytest.fixture(scope="session")
def fake_upstream_module() -> ModuleType:
    return load_module("cb_totem_fake_upstream", EXAMPLE / "fake_upstream.py")


@pytest.fixture(scope="session")
def _upstream_server(fake_upstream_module: ModuleType) -> Iterator[Any]:
    server = fake_upstream_module.FakeUpstream(("127.0.0.1", 0), slow_seconds=1.0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, name="cb-totem-fake-upstream")
    thread.daemon = True
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def upstream(_upstream_server: Any) -> Any:
    """The fake upstream on 127.0.0.1 (one per session), with its request counters cleared."""
    _upstream_server.reset()
    return _upstream_server
