"""A project: its folder, its compose file and the Python services wheeldock builds.

``wheeldock.toml`` records what ``init`` decided for each service and is what ``build`` reads;
the user may edit it. Only this module reads and writes that file.
"""

from __future__ import annotations

import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from wheeldock.edges.fsutil import atomic_write_text, read_text
from wheeldock.errors import InvalidConfig, NotFound, UnsupportedDockerfile

CONFIG_NAME = "wheeldock.toml"


@dataclass(frozen=True)
class Service:
    """One Python service, as found in the compose file (or written by hand).

    Paths are relative to the project folder. ``command`` is the exec-form argv run in
    ``workdir`` inside the image. ``health`` is an HTTP path (``/health``), ``"tcp"`` (a port
    check) or ``"process"`` (no port: the main process is alive).
    """

    name: str
    source: str  # the folder with the service's code, relative to the project
    requirements: tuple[str, ...]  # requirement files, relative to the project
    command: tuple[str, ...]
    workdir: str = "/app"
    port: int | None = None
    health: str = "tcp"
    env: dict[str, str] = field(default_factory=dict)
    runtime_packages: tuple[str, ...] = ()
    runtime_packages_source: str = "table"  # "table" | "elf-scan" | "user"
    base: str = "slim"
    python: str = "3.11"
    network_mode: str | None = None
    source_target: str | None = None  # where ``source`` goes in the image (None: ``workdir``)
    constraints: tuple[str, ...] = ()  # ``-c`` files for the requirements, relative to the project
    no_binary: tuple[str, ...] = ()  # distributions built from source (pip's ``--no-binary``)
    #: the groups of a Poetry lock installed (empty: its ``main`` group), as ``--only``/``--with``
    groups: tuple[str, ...] = ()
    #: the member of a uv workspace whose dependencies are installed from the workspace's
    #: ``uv.lock`` (``uv sync --package``; None: the project of the lock's folder)
    package: str | None = None
    #: the code folder belongs to the image's user, not root: a kept step or the app writes
    #: into it (``collectstatic``, a SQLite file ``migrate`` makes next to the code)
    writable_code: bool = False

    def to_toml(self) -> dict[str, Any]:
        data = asdict(self)
        del data["name"]
        for key in ("requirements", "command", "runtime_packages", "constraints", "no_binary"):
            data[key] = list(data[key])
        data["groups"] = list(data["groups"])
        if not data["groups"]:
            del data["groups"]  # the tool's default: not written
        if not data["writable_code"]:
            del data["writable_code"]  # the default: not written
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_toml(cls, name: str, data: dict[str, Any], path: Path) -> Service:
        try:
            return cls(
                name=name,
                source=str(data["source"]),
                requirements=_strings(data, "requirements", name, path),
                command=_command(data["command"], name, path),
                workdir=str(data.get("workdir", "/app")),
                port=int(data["port"]) if data.get("port") is not None else None,
                health=str(data.get("health", "tcp")),
                env={str(k): str(v) for k, v in dict(data.get("env", {})).items()},
                runtime_packages=_strings(data, "runtime_packages", name, path),
                runtime_packages_source=str(data.get("runtime_packages_source", "user")),
                base=str(data.get("base", "slim")),
                python=str(data.get("python", "3.11")),
                network_mode=data.get("network_mode"),
                source_target=data.get("source_target"),
                constraints=_strings(data, "constraints", name, path),
                no_binary=_strings(data, "no_binary", name, path),
                groups=_strings(data, "groups", name, path),
                package=str(data["package"]) if data.get("package") else None,
                writable_code=_flag(data, "writable_code", name, path),
            )
        except KeyError as exc:
            raise InvalidConfig(
                f"[services.{name}] lacks the key {exc.args[0]!r}",
                path=path,
                fix=f"add `{exc.args[0]} = …` to [services.{name}], or re-run `wheeldock init`",
            ) from exc
        except (TypeError, ValueError) as exc:
            raise InvalidConfig(
                f"[services.{name}] has a value of the wrong type ({exc})",
                path=path,
                fix="compare it with the file `wheeldock init` writes",
            ) from exc


def _flag(data: dict[str, Any], key: str, name: str, path: Path) -> bool:
    """A true/false key of a service (absent: false); a string such as ``"yes"`` is refused."""
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise InvalidConfig(
            f"[services.{name}] {key} = {value!r} is not true or false",
            path=path,
            fix=f"write `{key} = true` or `{key} = false`",
        )
    return value


def _strings(data: dict[str, Any], key: str, name: str, path: Path) -> tuple[str, ...]:
    """A list-of-strings key of a service; a bare string is refused (read as a list, it would
    be its characters)."""
    value = data.get(key, [])
    if not isinstance(value, list):
        raise InvalidConfig(
            f"[services.{name}] {key} is {value!r}, not a list",
            path=path,
            fix=f"write it as a list: `{key} = [{value!r}]`".replace("'", '"'),
        )
    return tuple(str(v) for v in value)


def _command(value: object, name: str, path: Path) -> tuple[str, ...]:
    """A service's command: a list is its argv; a string is split as a shell splits words
    (no shell runs it), as compose reads ``command: python app.py``."""
    if isinstance(value, str):
        try:
            argv = tuple(shlex.split(value))
        except ValueError as exc:
            raise InvalidConfig(
                f"[services.{name}] command {value!r} cannot be split into words ({exc})",
                path=path,
                fix='close the quote, or write it as a list: `command = ["python", "app.py"]`',
            ) from exc
    elif isinstance(value, list):
        argv = tuple(str(v) for v in value)
    else:
        raise InvalidConfig(
            f"[services.{name}] command is {value!r}, neither a list nor a string",
            path=path,
            fix='write it as a list: `command = ["python", "app.py"]`',
        )
    if not argv:
        raise InvalidConfig(
            f"[services.{name}] command is empty",
            path=path,
            fix='name the program it runs: `command = ["python", "app.py"]`',
        )
    return argv


def _inside(root: Path, svc: Service, path: Path) -> None:
    """Refuse a source folder outside the project (``..``, an absolute path, or a symlink that
    leads out): the project is the build context, and BuildKit copies nothing from outside it."""
    resolved = (root / svc.source).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise InvalidConfig(
            f"[services.{svc.name}] source {svc.source!r} is outside the project folder {root}"
            + (f" (it leads to {resolved})" if resolved != (root / svc.source).absolute() else ""),
            path=path,
            fix="keep the code inside the folder with the compose file (it is the build "
            "context); move it there rather than link to it",
        )


@dataclass(frozen=True)
class Project:
    root: Path
    compose_file: str | None
    services: tuple[Service, ...]
    #: the files merged over ``compose_file`` when they were named (``-f``, ``COMPOSE_FILE``)
    compose_overrides: tuple[str, ...] = ()
    #: services built from their own Dockerfile that the native builder cannot carry out, and
    #: why (each instruction with its file and line); docker compose builds them
    docker_only: Mapping[str, str] = field(default_factory=dict)

    @property
    def compose_files(self) -> tuple[str, ...]:
        """The compose files recorded, in merge order (empty: ``docker compose``'s defaults)."""
        return (self.compose_file, *self.compose_overrides) if self.compose_file else ()

    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        if name in self.docker_only:
            raise UnsupportedDockerfile(
                f"service {name!r} is built from its own Dockerfile, which the native builder "
                f"cannot carry out: {self.docker_only[name]}",
                path=self.root / CONFIG_NAME,
                fix=f"build it with `docker compose build {name}` (from the Dockerfile.{name} "
                "init wrote), or change those instructions and run `wheeldock init` again",
            )
        known = ", ".join(s.name for s in self.services) or "none"
        raise NotFound(
            f"no service named {name!r} in {self.root / CONFIG_NAME}",
            fix=f"use one of: {known}",
        )

    def select(self, names: list[str] | tuple[str, ...]) -> tuple[Service, ...]:
        return tuple(self.service(n) for n in names) if names else self.services

    def buildable(self, names: list[str] | tuple[str, ...]) -> tuple[Service, ...]:
        """The services of ``names`` (default: all) the native builder builds (what ``lock``,
        ``build`` and ``release`` take); :class:`UnsupportedDockerfile` naming the services
        docker compose builds when there is none."""
        services = self.select(names)
        if services or not self.docker_only:
            return services
        raise _none_buildable(self, sorted(self.docker_only))


def _none_buildable(project: Project, names: list[str]) -> UnsupportedDockerfile:
    one = len(names) == 1
    return UnsupportedDockerfile(
        f"no service here is built by the native builder: {', '.join(names)} "
        f"{'is built from its own Dockerfile' if one else 'are built from their own Dockerfiles'}"
        ", which it cannot carry out ([docker_only] says why)",
        path=project.root / CONFIG_NAME,
        fix="build them with `docker compose build` (or `wheeldock up`), from the "
        "Dockerfile.<service> init wrote: they need no lock of wheeldock's",
    )


def config_path(root: Path) -> Path:
    return root / CONFIG_NAME


def dumps(project: Project) -> str:
    doc: dict[str, Any] = {"project": {}}
    if project.compose_overrides:
        doc["project"]["compose"] = list(project.compose_files)
    elif project.compose_file:
        doc["project"]["compose"] = project.compose_file
    doc["services"] = {svc.name: svc.to_toml() for svc in project.services}
    if project.docker_only:
        doc["docker_only"] = dict(sorted(project.docker_only.items()))
    header = (
        "# wheeldock.toml: what `wheeldock init` decided for each service. Edit freely;\n"
        "# `init` and `build` read it back. runtime_packages_source says where the Debian\n"
        "# runtime packages came from (elf-scan, table, or user).\n"
    )
    return header + tomli_w.dumps(doc)


def loads(text: str, root: Path) -> Project:
    path = config_path(root)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfig(f"is not valid TOML ({exc})", path=path, fix="fix the syntax") from exc
    services_doc = doc.get("services", {})
    if not isinstance(services_doc, dict):
        raise InvalidConfig("[services] must be a table", path=path)
    services = tuple(Service.from_toml(name, data, path) for name, data in services_doc.items())
    for svc in services:
        _inside(root, svc, path)
    docker_only = doc.get("docker_only", {})
    if not isinstance(docker_only, dict) or not all(
        isinstance(v, str) for v in docker_only.values()
    ):
        raise InvalidConfig(
            "[docker_only] must map service names to why (text)",
            path=path,
            fix="compare it with the file `wheeldock init` writes",
        )
    compose = doc.get("project", {}).get("compose")
    if isinstance(compose, list) and compose and all(isinstance(c, str) for c in compose):
        return Project(
            root, compose[0], services, tuple(compose[1:]), docker_only=dict(docker_only)
        )
    if compose is not None and not isinstance(compose, str):
        raise InvalidConfig(
            "[project] compose is neither a file name nor a list of them",
            path=path,
            fix='write `compose = "compose.yaml"` or `compose = ["compose.yaml", "dev.yml"]`',
        )
    return Project(
        root=root, compose_file=compose, services=services, docker_only=dict(docker_only)
    )


def load(root: Path) -> Project:
    """Read ``wheeldock.toml`` in ``root``; :class:`NotFound` with the fix when it is absent."""
    path = config_path(root)
    if not path.is_file():
        raise NotFound(
            f"no {CONFIG_NAME} in {root}",
            fix="run `wheeldock init` there first (it finds the services in the compose file)",
        )
    return loads(read_text(path), root)


def save(project: Project) -> Path:
    path = config_path(project.root)
    atomic_write_text(path, dumps(project))
    return path
