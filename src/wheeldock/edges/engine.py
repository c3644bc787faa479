"""The Docker engine, through the ``docker`` CLI (one gateway; argv built step by step).

Everything that needs a running engine goes through here, so a missing engine is reported once,
with how to start it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Loaded:
    """What a ``docker load`` reported: the names loaded, and the IDs of the images those names
    were taken from (now untagged, unless another name holds them)."""

    names: list[str]
    untagged: list[str]


def load(archive: Path) -> list[str]:
    """``docker load`` a docker-archive tar; returns the names it loaded."""
    return _loaded_names(docker("load", "--input", archive).stdout)


def load_stream(feed: Callable[[IO[bytes]], None], *, timeout: float | None = None) -> Loaded:
    """``docker load`` from stdin, which ``feed`` writes the archive to."""
    result = process.run(
        ["docker", "load"], timeout=timeout, fix=START_HINT, streams=process.Streams(feed=feed)
    )
    return Loaded(_loaded_names(result.stdout), _RENAMED.findall(result.stdout))


#: moby's loader, when a name it loads was another image's (``setLoadedTag``).
_RENAMED = re.compile(r"renaming the old one with ID (sha256:[0-9a-f]{64}) to empty string")


@dataclass(frozen=True)
class EngineImage:
    id: str
    size: int
    created: str


def dangling_images(label: str) -> list[EngineImage]:
    """The untagged images (``dangling=true``) carrying ``label`` (a key, or ``key=value``)."""
    out = docker("image", "ls", "--no-trunc", "--filter", "dangling=true", "--filter",
                 f"label={label}", "--format", "{{json .}}", timeout=60).stdout  # fmt: skip
    found = []
    for line in out.splitlines():
        row = json.loads(line)
        found.append(EngineImage(row["ID"], _bytes(row.get("Size", "0")), row.get("CreatedAt", "")))
    return found


def remove_images(ids: Sequence[str]) -> dict[str, str]:
    """``docker image rm`` each untagged image that no container uses. An image still named
    is not touched (``docker image rm ID`` would take its last name with it), and there is no
    ``--force``. Returns the IDs not removed, with why."""
    if not ids:
        return {}
    names = docker("image", "inspect", "--format", "{{.Id}} {{len .RepoTags}}", *ids,
                   check=False, timeout=60).stdout  # fmt: skip
    tagged = {line.split()[0] for line in names.splitlines() if not line.endswith(" 0")}
    kept = {image_id: "it has a name again" for image_id in ids if image_id in tagged}
    free = [image_id for image_id in ids if image_id not in tagged]
    if not free:
        return kept
    result = docker("image", "rm", *free, check=False, timeout=120)
    deleted = set(re.findall(r"Deleted: (sha256:[0-9a-f]{64})", result.stdout))
    reasons = result.stderr.strip().splitlines()
    for image_id in free:
        if image_id not in deleted:
            short = image_id.removeprefix("sha256:")[:12]
            why = next((r for r in reasons if short in r or image_id in r), "in use")
            kept[image_id] = why.removeprefix("Error response from daemon: ")
    return kept


_UNITS = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}


def _bytes(text: str) -> int:
    """``docker image ls``'s human size (``12.3MB``) in bytes."""
    match = re.fullmatch(r"([\d.]+)\s*([KMGT]?B)", text.strip())
    return int(float(match[1]) * _UNITS[match[2]]) if match else 0


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
