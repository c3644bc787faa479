"""The Docker engine, through the ``docker`` CLI (one gateway; argv built step by step).

Everything that needs a running engine goes through here, so a missing engine is reported once,
with how to start it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from wheeldock.edges import process
from wheeldock.errors import EngineUnavailable, ToolNotFound

START_HINT = (
    "start one with `scripts/dockerd.sh start` (runs `dockerd --bridge=none --iptables=false "
    "--ip-masq=false` in the background), or run `scripts/setup.sh` to install it first"
)


def docker(
    *args: str | os.PathLike[str],
    input: bytes | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    capture: bool = True,
    timeout: float | None = None,
    fix: str | None = None,
) -> process.Result:
    """Run ``docker ARGS…``."""
    return process.run(
        ["docker", *args],
        cwd=cwd,
        env=env,
        check=check,
        timeout=timeout,
        fix=fix,
        streams=process.Streams(input=input, capture=capture),
    )


def available() -> bool:
    try:
        return (
            docker("version", "--format", "{{.Server.Version}}", check=False, timeout=20).returncode
            == 0
        )
    except ToolNotFound:
        return False


def require() -> None:
    """Raise :class:`EngineUnavailable` (with how to start one) unless an engine answers."""
    process.which("docker")
    result = docker("version", "--format", "{{.Server.Version}}", check=False, timeout=20)
    if result.returncode != 0:
        raise EngineUnavailable(
            "no Docker engine answers (`docker version` failed: "
            + (result.stderr.strip().splitlines() or ["no output"])[-1]
            + ")",
            fix=START_HINT,
        )


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def image_inspect(ref: str) -> dict[str, Any]:
    out = docker("image", "inspect", ref).stdout
    data: list[dict[str, Any]] = json.loads(out)
    return data[0]


def image_size(ref: str) -> int:
    return int(image_inspect(ref)["Size"])


def load(archive: Path) -> list[str]:
    """``docker load`` a docker-archive tar; returns the names it loaded."""
    return _loaded_names(docker("load", "--input", archive).stdout)


def load_stream(feed: Callable[[IO[bytes]], None], *, timeout: float | None = None) -> list[str]:
    """``docker load`` from stdin, which ``feed`` writes the archive to; returns the names."""
    result = process.run(
        ["docker", "load"], timeout=timeout, fix=START_HINT, streams=process.Streams(feed=feed)
    )
    return _loaded_names(result.stdout)


def _loaded_names(out: str) -> list[str]:
    loaded = []
    for line in out.splitlines():
        for prefix in ("Loaded image: ", "Loaded image ID: "):
            if line.startswith(prefix):
                loaded.append(line[len(prefix) :].strip())
    return loaded


def tag(source: str, target: str) -> None:
    docker("tag", source, target)


def compose(
    project_dir: Path,
    *args: str,
    files: Sequence[Path] = (),
    project_name: str | None = None,
    check: bool = True,
    capture: bool = True,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
) -> process.Result:
    """Run ``docker compose`` for the project in ``project_dir`` (``input``: its stdin, the
    text of a file named ``-``)."""
    argv: list[str] = ["compose", "--project-directory", str(project_dir)]
    for f in files:
        argv += ["-f", str(f)]
    if project_name:
        argv += ["-p", project_name]
    argv += list(args)
    return docker(
        *argv,
        cwd=project_dir,
        check=check,
        capture=capture,
        timeout=timeout,
        env=env,
        input=input,
    )
