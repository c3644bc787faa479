"""Fixtures for init/up: stack copies with unique names and free ports, base images, the CLI.

Integration stacks are copied to unique folders (the folder name is the compose project name and
part of the image names), their ``container_name``s prefixed, and their ports chosen free, so
several test runs and other developers' stacks can share the engine.
"""

from __future__ import annotations

import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.env import environ
from wheeldock import cli
from wheeldock.edges import engine

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "init"
EXAMPLE = REPO / "examples" / "cb-totem"
#: The stacks tests write, by name -> (source folder, port variables).
STACKS: dict[str, tuple[Path, tuple[str, ...]]] = {
    "cb-totem": (EXAMPLE, ("CALIDDA_API_PORT", "SRV_IMG_PORT")),
    "flask": (DATA / "flask", ("WEB_PORT",)),
    "worker": (DATA / "worker", ()),
    "nested": (DATA / "nested", ("NESTED_PORT",)),
    "adhoc": (DATA / "adhoc", ("API_PORT", "SHOP_PORT", "CART_PORT", "DESK_PORT")),
    "ports": (DATA / "ports", ()),  # published ports written into its compose file by the test
    "real": (DATA / "real", ()),  # the same
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class StackCopy:
    name: str
    root: Path
    env: dict[str, str]  # the port variables, set while init/up/down run
    original_compose: dict[str, bytes]  # compose file name -> bytes before init

    def run(self, *argv: str) -> int:
        with environ(self.env):
            return cli.main(["-C", str(self.root), *argv])

    def port(self, var: str) -> int:
        return int(self.env[var])


def copy_stack(name: str, dest_parent: Path) -> StackCopy:
    """A copy of stack ``name`` in a uniquely named folder, with unique container names."""
    source, port_vars = STACKS[name]
    root = dest_parent / f"wdinit-{uuid.uuid4().hex[:8]}-{name}"
    shutil.copytree(
        source, root, ignore=shutil.ignore_patterns("__pycache__", ".benchmarks", ".pytest_cache")
    )
    originals: dict[str, bytes] = {}
    for compose_file in sorted(root.glob("*compose*.y*ml")):
        text = compose_file.read_text()
        text = re.sub(
            r"(container_name:\s*)(\S+)", lambda m: f"{m.group(1)}{root.name}_{m.group(2)}", text
        )
        compose_file.write_text(text)
        originals[compose_file.name] = compose_file.read_bytes()
    env = {var: str(free_port()) for var in port_vars}
    return StackCopy(name, root, env, originals)


@pytest.fixture
def stack_copy(tmp_path: Path) -> Iterator[object]:
    """A factory: ``stack_copy("flask")`` copies that stack into this test's tmp folder."""

    def make(name: str) -> StackCopy:
        return copy_stack(name, tmp_path)

    yield make


@pytest.fixture(scope="session")
def init_cache(base_cache: Path) -> Iterator[Path]:
    """WHEELDOCK_CACHE for init/up tests: the base images' session cache, so init's ELF scan
    finds the base rootfs already built and its host wheelhouses are made once per run."""
    with environ({"WHEELDOCK_CACHE": str(base_cache)}):
        yield base_cache


def remove_stack(stack: StackCopy) -> None:
    """``down`` and remove the images this stack built (never anything else)."""
    stack.run("down")
    project = stack.root.name
    out = engine.docker(
        "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={project}-*"
    ).stdout.split()
    for ref in out:
        engine.docker("rmi", "--force", ref, check=False)
