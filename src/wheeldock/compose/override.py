"""wheeldock's own compose override, ``.wheeldock/compose.override.yaml``: what this machine needs.

What differs from one machine to the next never goes into the compose file people commit: the
proxy CA handed to builds (a host path), builds on host networking where the engine has no
default ``bridge`` network (``dockerd --bridge=none``), and the user a kept data mount is written
as (the owner of the host folder). ``up`` writes the file from :func:`engine_facts` and the
environment; ``up``, ``down``, ``status`` and ``logs`` pass it to compose after the user's files.

:func:`override` is pure (compose config and facts in, data out); :func:`engine_facts` asks the
engine and :func:`write` writes the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from wheeldock.edges import ca as ca_mod
from wheeldock.edges import engine
from wheeldock.edges.fsutil import atomic_write_text
from wheeldock.project import Service

#: Relative to the project folder; the folder is wheeldock's state, never committed.
PATH = ".wheeldock/compose.override.yaml"
_LOCAL_HOSTS = ("", "localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class EngineFacts:
    """What the engine offers that the stack depends on."""

    bridge: bool = True  # the default ``bridge`` network exists (builds use it by default)
    rootless: bool = False
    remote_host: str | None = None  # DOCKER_HOST names another machine: its address

    @property
    def probe_host(self) -> str | None:
        """Where published ports are probed from here (``None``: their own host address)."""
        return self.remote_host


def remote_host(docker_host: str) -> str | None:
    """The machine ``DOCKER_HOST`` names when it is not this one (``tcp://``, ``ssh://``)."""
    parts = urlsplit(docker_host)
    if parts.scheme not in ("tcp", "ssh", "http", "https"):
        return None  # unix://, npipe://, fd://: this machine
    host = parts.hostname or ""
    return None if host in _LOCAL_HOSTS else host


def engine_facts(environ: Mapping[str, str] | None = None) -> EngineFacts:
    """Ask the engine: its networks, its security options (rootless) and ``DOCKER_HOST``."""
    env = os.environ if environ is None else environ
    networks = engine.docker("network", "ls", "--format", "{{.Name}}", check=False, timeout=30)
    info = engine.docker("info", "--format", "{{json .SecurityOptions}}", check=False, timeout=30)
    return EngineFacts(
        bridge="bridge" in networks.stdout.split() or networks.returncode != 0,
        rootless="rootless" in info.stdout,
        remote_host=remote_host(env.get("DOCKER_HOST", "")),
    )


def data_mounts(svc: Mapping[str, Any], service: Service) -> list[str]:
    """Host folders of ``svc``'s writable bind mounts inside its code folder (the data mounts
    init kept), from ``docker compose config`` (long syntax, absolute sources)."""
    code = PurePosixPath(service.source_target or service.workdir)
    found: list[str] = []
    for vol in svc.get("volumes") or ():
        if not isinstance(vol, Mapping) or vol.get("type") != "bind" or vol.get("read_only"):
            continue
        target = PurePosixPath(str(vol.get("target", "")))
        if target == code or code in target.parents:
            found.append(str(vol.get("source", "")))
    return found


def override(
    config: Mapping[str, Any],
    services: Sequence[Service],
    facts: EngineFacts,
    *,
    ca: Path | None = None,
    owners: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The override for ``services`` (those with a ``build`` in ``config``, the merged compose
    configuration). ``owners``: host folder -> ``uid:gid``, for the data mounts' user."""
    configured = config.get("services") or {}
    result: dict[str, Any] = {}
    for service in services:
        svc = configured.get(service.name)
        if svc is None or "build" not in svc:
            continue
        entry: dict[str, Any] = {}
        build: dict[str, Any] = {}
        if not facts.bridge and not (svc.get("build") or {}).get("network"):
            build["network"] = "host"  # no default bridge: the only network a build can use
        if ca is not None:
            build["secrets"] = [ca_mod.SECRET_ID]
        if build:
            entry["build"] = build
        folders = [f for f in data_mounts(svc, service) if f in (owners or {})]
        if folders and "user" not in svc:
            entry["user"] = (owners or {})[folders[0]]  # the image's user could not write there
        if entry:
            result[service.name] = entry
    data: dict[str, Any] = {"services": result} if result else {}
    if ca is not None and result:
        data["secrets"] = {ca_mod.SECRET_ID: {"file": str(ca)}}
    return data


def owners(config: Mapping[str, Any], services: Sequence[Service]) -> dict[str, str]:
    """``uid:gid`` of each data mount's host folder that exists."""
    found: dict[str, str] = {}
    for service in services:
        svc = (config.get("services") or {}).get(service.name) or {}
        for folder in data_mounts(svc, service):
            # not made yet (the engine makes it at start): its nearest folder that exists
            existing = next((p for p in (Path(folder), *Path(folder).parents) if p.is_dir()), None)
            if existing is not None:
                st = existing.stat()
                found[folder] = f"{st.st_uid}:{st.st_gid}"
    return found


def write(root: Path, data: Mapping[str, Any]) -> Path | None:
    """Write ``data`` to :data:`PATH` (JSON is YAML: compose reads it); with nothing to
    override, remove an earlier file instead. Returns the path written, if any."""
    path = root / PATH
    if not data:
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path
