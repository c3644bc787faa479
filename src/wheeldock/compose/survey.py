"""Finding the Python services in a compose project that install their dependencies at start.

A candidate is a service that runs a ``python:*`` image with a command like
``sh -c "pip install -r requirements.txt && python3 app.py"`` and its code bind-mounted.
For each, :func:`discover` infers a :class:`wheeldock.project.Service`: requirement files
(following ``-r``/``-c`` includes), the command to run in the image, working folder, source
folder, port, health check and the Debian packages the wheels need at run time. Every inference
is recorded in :attr:`Finding.notes` so ``init`` can say how it decided.
"""

from __future__ import annotations

import ast
import logging
import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from wheeldock.build.runtime import APP_UID, SCRIPT_SHELLS
from wheeldock.compose import datamounts, shell
from wheeldock.compose.files import (
    ComposeFile,
    env_files,
    environment,
    included_file_defining,
    interpolate,
    merged_services,
    own_keys,
    volume_matches,
)
from wheeldock.deps.requirements import build_backend_needed, lock_of_tool, locked_requirements
from wheeldock.deps.requirements import option_values as _option_values
from wheeldock.deps.requirements import project_dependencies as _project_dependencies
from wheeldock.deps.requirements import relative as _rel
from wheeldock.deps.requirements import requirement_closure as requirement_closure
from wheeldock.errors import InvalidConfig, NotFound
from wheeldock.project import CONFIG_NAME, Service

log = logging.getLogger(__name__)

#: Runner programs that start a Python service once its dependencies are installed.
RUNNERS = (
    "uvicorn",
    "gunicorn",
    "hypercorn",
    "daphne",
    "celery",
    "flask",
    "fastapi",
    "rq",
    "dramatiq",
    "waitress-serve",
)
#: Programs that start another one given after their own arguments (``wait-for-it.sh … --
#: python app.py``): the service is the Python program inside.
WRAPPERS = (
    "dockerize",
    "wait-for",
    "wait-for-it",
    "tini",
    "dumb-init",
    "gosu",
    "su-exec",
    "ddtrace-run",
    "newrelic-admin",
    "opentelemetry-instrument",
    "watchmedo",
    "nice",
    "timeout",
)
#: Health routes in order of preference.
HEALTH_ROUTES = (
    "/health",
    "/healthz",
    "/healthcheck",
    "/health-check",
    "/_health",
    "/livez",
    "/readyz",
    "/ready",
    "/ping",
    "/status",
)
_PYTHON = re.compile(r"^(?:/usr/(?:local/)?bin/)?python(?:3(?:\.\d+)?)?$")
_PIP = re.compile(r"^(?:/usr/(?:local/)?bin/)?pip(?:3(?:\.\d+)?)?$")
_PORT_ENV = ("PORT", "APP_PORT", "HTTP_PORT", "SERVER_PORT", "LISTEN_PORT")


@dataclass(frozen=True)
class Finding:
    """One Python service found in the compose files, and what ``init`` will change about it."""

    service: Service
    compose_file: Path  # the file that defines the service's image
    source_volume: str  # the bind mount's source as written (``./app``), dropped by the patch
    drop_keys: tuple[str, ...]  # compose keys the image makes unneeded (command, working_dir)
    requirement_files: tuple[str, ...]  # every file the requirements read, includes too
    constraints: tuple[str, ...]  # ``-c`` files given on the pip command line
    notes: tuple[str, ...]
    replace_healthcheck: bool = False  # the compose healthcheck needs curl/wget: replace its test
    #: requirement files init writes (path, text): the packages the command named inline
    generated: tuple[tuple[str, str], ...] = ()
    system_packages: tuple[str, ...] = ()  # Debian packages the command apt-get installed
    #: the code mount's data folders that stay mounted (short-syntax ``volumes:`` entries)
    data_volumes: tuple[str, ...] = ()
    keep_code_mount: bool = False  # the command writes at the code mount's top: it stays


@dataclass(frozen=True)
class Survey:
    """What :func:`survey` found: the candidates, and each other service with why it is not."""

    findings: tuple[Finding, ...]
    passed_over: tuple[str, ...]  # "name (why)"
    #: the services built from their own Dockerfile (``build:``), read by
    #: :mod:`wheeldock.compose.userdockerfile`
    built: tuple[str, ...] = ()


class _PassOver(Exception):
    """A service that starts like a candidate but cannot be turned into an image as written."""


@dataclass(frozen=True)
class _Mount:
    source: str  # as written
    host: Path  # resolved on the host
    target: str


@dataclass(frozen=True)
class _Start:
    """What the start command does: the pip step and the program it then runs."""

    requirements: tuple[str, ...]
    constraints: tuple[str, ...]
    no_binary: tuple[str, ...]
    argv: tuple[str, ...]
    packages: tuple[str, ...] = ()  # requirement specifiers on pip's command line
    projects: tuple[str, ...] = ()  # local project folders it installs (``pip install .``)
    system_packages: tuple[str, ...] = ()  # what ``apt-get install`` added at every start
    #: the rest of the script (migrations, ``cd``, variables) when more than the program runs,
    #: for ``sh -c``; empty when the program alone is the command
    script: str = ""
    dropped: tuple[str, ...] = ()  # steps left out of the image's command (``apk add …``)
    from_file: str | None = None  # the script file the steps were read from (``entrypoint.sh``)
    #: projects installed from their lock file, (tool, folder as written): ``uv sync`` (or a
    #: ``uv run`` syncing on its own), ``poetry install``, ``pipenv sync``/``install``
    locked: tuple[tuple[str, str], ...] = ()
    #: what such an install selects beyond the project's packages (``--extra web``): passed over
    selects: tuple[str, ...] = ()
    dev_left_out: bool = False  # the install also installed the development packages
    interpreter: str = "/bin/sh"  # what runs ``script``: the shell it was written for
    kept: tuple[shell.Command, ...] = ()  # the commands the image still runs at start
    groups: tuple[str, ...] = ()  # the groups a ``poetry install`` chose (empty: main)
    package: str | None = None  # the uv workspace member installed (``--package``)
    #: whether its one install is the sync a ``uv run`` does on its own (no ``uv sync``, no pip)
    run_syncs_only: bool = False
    run_takes_dev: bool = False  # whether that sync takes the development group too
    #: the words a start script read from a file is run with (a compose ``command`` after the
    #: ``entrypoint`` that runs it): its ``$@``
    args: tuple[str, ...] = ()


# --- the start command -------------------------------------------------------------------------

#: Options of ``uv``, ``poetry`` and ``pipenv`` commands that take a value (as the next word
#: when not given with ``=``), by tool.
_TOOL_VALUE_OPTIONS = {
    "uv": frozenset(
        {
            "--project", "--directory", "--extra", "--group", "--only-group", "--package",
            "--python", "-p", "--with", "--with-editable", "--with-requirements", "--env-file",
            "--index", "--default-index", "--index-url", "--extra-index-url", "--find-links",
            "-f", "--no-binary-package", "--no-build-package", "--cache-dir", "--config-file",
            "--no-group", "--link-mode", "--resolution", "--prerelease", "--python-platform",
        }
    ),
    "poetry": frozenset(
        {"-C", "--directory", "-P", "--project", "--with", "--without", "--only", "-E", "--extras",
         "-f", "--format", "-o", "--output"}
    ),
    "pipenv": frozenset({"--python", "--categories", "--pypi-mirror", "--extra-pip-args"}),
    "pdm": frozenset(
        {"-G", "--group", "--with", "--without", "-p", "--project", "-L", "--lockfile", "-k",
         "--skip", "--venv"}
    ),
}  # fmt: skip
#: Options that make the install take more than the project's runtime packages.
_TOOL_SELECTS = {
    "uv": frozenset(
        {
            "--extra", "--all-extras", "--group", "--only-group", "--all-groups", "--only-dev",
            "--no-default-groups", "--package", "--all-packages", "--with", "--with-editable",
            "--with-requirements",
        }
    ),
    "poetry": frozenset({"-E", "--extras", "--all-extras", "--all-groups"}),
    "pipenv": frozenset({"--dev", "-d", "--categories"}),
    "pdm": frozenset({"--without", "-L", "--lockfile"}),
}  # fmt: skip
#: The options naming a tool's project folder (the working dir without them).
_TOOL_FOLDER = {
    "uv": ("--project", "--directory"),
    "poetry": ("-C", "--directory", "-P", "--project"),
    "pipenv": (),
    "pdm": ("-p", "--project"),
}


def _tool_options(tool: str, args: Sequence[str]) -> tuple[dict[str, list[str]], list[str]]:
    """A tool's options (name → values; flags get an empty value) and what follows them (the
    command of ``uv run``, ``poetry run``, ``pipenv run``; the packages of ``pipenv install``)."""
    options: dict[str, list[str]] = {}
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        name, eq, value = args[i].partition("=")
        if not eq and name in _TOOL_VALUE_OPTIONS[tool] and i + 1 < len(args):
            value = args[i + 1]
            i += 1
        options.setdefault(name, []).append(value)
        i += 1
    rest = list(args[i:])
    return options, rest[1:] if rest[:1] == ["--"] else rest


def _tool_folder(tool: str, options: Mapping[str, list[str]]) -> str:
    named = [v for o in _TOOL_FOLDER[tool] for v in options.get(o, [])]
    return named[-1] if named else "."


@dataclass(frozen=True)
class ToolStep:
    """A step of a project tool: an install from the project's lock, or a ``run`` of a command."""

    tool: str
    folder: str | None  # the project it installs (None: ``run`` without a sync)
    selects: tuple[str, ...] = ()
    dev: bool = False  # it installs the development packages too
    run: tuple[str, ...] = ()  # the command ``run`` runs
    groups: tuple[str, ...] = ()  # a ``poetry install``'s groups, when not just ``main``
    package: str | None = None  # the uv workspace member it installs (``--package``)


def tool_step(seg: Sequence[str]) -> ToolStep | None:
    """``uv sync``, ``poetry install``, ``pipenv sync``/``install`` and their ``run``s."""
    tool, sub = PurePosixPath(seg[0]).name, seg[1] if len(seg) > 1 else ""
    if tool not in _TOOL_VALUE_OPTIONS:
        return None
    options, rest = _tool_options(tool, seg[2:])
    folder = _tool_folder(tool, options)
    selects = tuple(
        f"{o} {v}" if v else o
        for o, values in options.items()
        if o in _TOOL_SELECTS[tool]
        for v in values
    )
    package = _member(options) if tool == "uv" else None
    selects = tuple(s for s in selects if s != f"--package {package}")
    if sub == "run":
        if not rest:
            return None
        if tool == "uv" and ("-m" in options or "--module" in options):
            rest = ["python", "-m", *rest]
        # `uv run` syncs the project first, unless told not to; the others only run
        syncs = tool == "uv" and "--no-project" not in options and "--no-sync" not in options
        if not syncs:
            return ToolStep(tool, None, run=tuple(rest))
        dev = tool == "uv" and "--no-dev" not in options  # `uv run` syncs the dev group too
        return ToolStep(tool, folder, selects, dev=dev, run=tuple(rest), package=package)
    if (tool, sub) == ("uv", "sync"):
        return ToolStep(tool, folder, selects, dev="--no-dev" not in options, package=package)
    if (tool, sub) == ("poetry", "install"):
        return _poetry_install(folder, selects, options)
    if tool == "pipenv" and (sub == "sync" or (sub == "install" and not rest)):
        return ToolStep(tool, folder, selects)
    if tool == "pipenv" and sub == "install":
        return ToolStep(tool, folder, (*selects, "packages named: " + " ".join(rest)))
    if tool == "pdm" and sub in ("install", "sync"):
        return _pdm_install(folder, selects, options)
    return None


def _member(options: Mapping[str, list[str]]) -> str | None:
    """The one workspace member a uv step names with ``--package`` (its dependencies are the
    service's); several are a selection wheeldock does not take: each service is one member."""
    named = options.get("--package", [])
    return named[0] if len(named) == 1 else None


def _pdm_install(
    folder: str, selects: tuple[str, ...], options: Mapping[str, list[str]]
) -> ToolStep:
    """``pdm install``/``pdm sync``: the ``default`` group (unless ``--no-default``) and the
    groups ``-G`` names; without ``-G`` and without ``--prod``, PDM takes every development
    group too, which is noted as left out."""
    named = [
        g for o in ("-G", "--group", "--with") for v in options.get(o, []) for g in v.split(",")
    ]
    groups = tuple(dict.fromkeys([*([] if "--no-default" in options else ["default"]), *named]))
    prod = "--prod" in options or "--production" in options
    dev = not prod and not named
    return ToolStep(
        "pdm", folder, selects, dev=dev, groups=() if groups == ("default",) else groups
    )


def _poetry_install(
    folder: str, selects: tuple[str, ...], options: Mapping[str, list[str]]
) -> ToolStep:
    """``poetry install``: the ``main`` group, or what ``--only``/``--with``/``--without``
    choose; the development packages are noted as left out when a plain install took them."""

    def named(option: str) -> list[str]:
        return [g for v in options.get(option, []) for g in v.split(",") if g]

    only, added, without = named("--only"), named("--with"), named("--without")
    groups = tuple(g for g in dict.fromkeys(only or ["main", *added]) if g not in without)
    dev = not only and "dev" not in (*without, *added) and "--no-dev" not in options
    return ToolStep(
        "poetry", folder, selects, dev=dev, groups=() if groups == ("main",) else groups
    )


@dataclass(frozen=True)
class PoetryExport:
    """A ``poetry export`` to a requirements file: the project's folder, the file it writes
    (``None``: its standard output), the groups it takes (empty: ``main``) and what else it
    selects (``--extras``: not the project's runtime packages alone)."""

    folder: str
    output: str | None
    groups: tuple[str, ...]
    selects: tuple[str, ...]


def poetry_export(words: Sequence[str]) -> PoetryExport | None:
    """``poetry export [-f requirements.txt] [-o FILE] [--with G] [--only G] [--dev]``, read
    as ``poetry export`` takes groups (``main`` unless told); ``None`` for any other step."""
    if PurePosixPath(words[0]).name != "poetry" or list(words[1:2]) != ["export"]:
        return None
    options, _ = _tool_options("poetry", words[2:])
    if any(f != "requirements.txt" for f in (*options.get("-f", []), *options.get("--format", []))):
        return None
    step = _poetry_install(_tool_folder("poetry", options), (), options)
    groups = step.groups
    if "--dev" in options:  # Poetry 1.1's way of adding the development packages
        groups = tuple(dict.fromkeys((*(groups or ("main",)), "dev")))
    selects = tuple(
        f"{o} {v}" if v else o
        for o, values in options.items()
        if o in _TOOL_SELECTS["poetry"]
        for v in values
    )
    outputs = [*options.get("-o", []), *options.get("--output", [])]
    return PoetryExport(step.folder or ".", outputs[-1] if outputs else None, groups, selects)


class _ScriptText(NamedTuple):
    """The shell script a compose command runs, and the shell that runs it."""

    text: str
    shell: str  # ``/bin/bash`` for a ``bash -c`` script (it may use bash's syntax), else /bin/sh


def _script_of(command: Any) -> _ScriptText | None:
    """The shell script a compose ``command`` runs (``sh -c "…"`` unwrapped), or ``None``;
    :class:`_PassOver` when compose itself cannot split the command."""
    if command is None:
        return None
    try:
        argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    except ValueError as exc:
        raise _PassOver(f"its command cannot be split into words ({exc}): {command!r}") from exc
    shell = PurePosixPath(argv[0]).name if argv else ""
    if shell in ("sh", "bash", "ash", "dash", "zsh"):
        # the shell's own options first (``-c``, ``-ec``, ``-lc``, ``-e -c``, ``-o pipefail``)
        i, script_flag = 1, False
        while i < len(argv) and argv[i].startswith("-") and not argv[i].startswith("--"):
            if argv[i] in ("-o", "+o"):
                i += 1  # its option name
            elif "c" in argv[i][1:]:
                script_flag = True
            i += 1
        if script_flag and i < len(argv):
            return _ScriptText(argv[i], "/bin/bash" if shell == "bash" else "/bin/sh")
    return _ScriptText(shlex.join(argv), "/bin/sh")


#: A word of a start script that may install something (or run a script that may).
_MAY_INSTALL = re.compile(r"\b(pip[\d.]*|uv|poetry|pipenv|pdm|apt-get|apt|apk)\b|\.sh\b")


def _parsed(script: str) -> shell.Script | None:
    """``script`` parsed; ``None`` when the parser cannot read it but no word of it installs
    (a wait loop in bash's own syntax, ``while !</dev/tcp/db/5432``: the command installs
    nothing and runs as written); :class:`_PassOver` with where the parser stopped when one
    may install."""
    try:
        return shell.parse(script)
    except shell.InvalidScript as exc:
        if _MAY_INSTALL.search(script) is None:
            return None
        raise _PassOver(f"its start script is not shell syntax wheeldock can read: {exc}") from exc


def pip_args(argv: list[str]) -> list[str] | None:
    """The arguments after ``install`` when ``argv`` is a pip (or ``uv pip``) install, else
    ``None``."""
    i = 0
    if _PYTHON.match(argv[0]) and argv[1:3] == ["-m", "pip"]:
        i = 3
    elif _PYTHON.match(argv[0]) and argv[1:4] == ["-m", "uv", "pip"]:
        i = 4
    elif _PIP.match(argv[0]):
        i = 1
    elif PurePosixPath(argv[0]).name == "uv" and argv[1:2] == ["pip"]:
        i = 2
    else:
        return None
    rest = argv[i:]
    while rest and rest[0].startswith("-"):  # pip's global options before the subcommand
        rest = rest[1:]
    if not rest or rest[0] != "install":
        return None
    return rest[1:]


#: pip/uv install options that take a value (as the next word when not given with ``=``).
_PIP_VALUE_OPTIONS = frozenset(
    {
        "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
        "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root",
        "--no-binary", "--only-binary", "--platform", "--python-version", "--implementation",
        "--abi", "--upgrade-strategy", "--progress-bar", "--src", "--trusted-host", "--cache-dir",
        "--log", "--proxy", "--retries", "--timeout", "--exists-action", "--cert",
        "--client-cert", "--global-option", "--config-settings", "-C", "--report",
        "--root-user-action", "--python", "-p", "--index-strategy", "--resolution",
        "--prerelease", "--keyring-provider", "--link-mode", "--override", "--index",
        "--default-index", "--extra", "--group",
    }
)  # fmt: skip
#: What a pip step installs to install things, not to run the service (``pip install -U pip``).
_INSTALL_TOOLS = frozenset(
    {"pip", "uv", "setuptools", "wheel", "poetry", "pipenv", "pdm", "poetry-plugin-export"}
)


def pip_targets(args: list[str]) -> tuple[list[str], list[str]]:
    """The positional arguments of a pip install (requirement specifiers, paths, URLs) and the
    values of ``-e``/``--editable``."""
    targets: list[str] = []
    editables: list[str] = []
    it = iter(args)
    for arg in it:
        if arg.startswith("--") and "=" in arg:
            if arg.split("=", 1)[0] == "--editable":
                editables.append(arg.split("=", 1)[1])
            continue
        if arg in _PIP_VALUE_OPTIONS:
            value = next(it, None)
            if arg in ("-e", "--editable") and value is not None:
                editables.append(value)
            continue
        if arg.startswith("-e") and not arg.startswith("--") and len(arg) > 2:
            editables.append(arg[2:])
            continue
        if arg.startswith("-"):
            continue  # a flag (``-U``, ``--no-cache-dir``) or an attached value (``-rreqs.txt``)
        targets.append(arg)
    return targets, editables


def is_local_path(target: str) -> bool:
    return target.startswith((".", "/", "~")) or target.endswith((".whl", ".tar.gz", ".zip"))


def _interpolate_command(command: Any, env: Mapping[str, str]) -> Any:
    """Compose resolves ``${VAR}`` in a command before the shell sees it (``$$`` is a literal
    ``$``); the image's command is fixed at init time the same way."""
    if isinstance(command, str):
        return interpolate(command, env)
    if isinstance(command, list):
        return [interpolate(str(a), env) for a in command]
    return command


class _Step(NamedTuple):
    """One simple command of the start script: its words once ``exec``, ``env`` and variable
    assignments are left off, the words as written, and the command in the script."""

    words: list[str]
    original: list[str]
    command: shell.Command


@dataclass
class _Reading:
    """What the readers of a start script have found so far, step after step."""

    requirements: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    no_binary: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    system: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # steps the image has no use for
    cut: set[int] = field(default_factory=set)  # the commands (by index) the image does not run
    #: byte spans cut out of commands the image runs (``uv run `` before the program)
    trims: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: the command that starts the program, and its words before the program (``exec``)
    program: tuple[int, list[str]] | None = None
    locked: list[tuple[str, str]] = field(default_factory=list)
    selects: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    package: str | None = None  # a uv workspace member (``--package``)
    dev_left_out: bool = False
    implicit: tuple[str, str] | None = None  # the project a `uv run` syncs on its own
    implicit_dev: bool = False  # whether that sync takes the development group too
    here: str = ""  # where a ``cd`` moved the script, relative to the working dir (or absolute)
    run: list[str] | None = None

    def installs(self) -> bool:
        return bool(self.requirements or self.packages or self.projects or self.locked)

    def start(self, script: shell.Script, shell_path: str) -> _Start | None:
        """The start command read; ``None`` unless it installs something, then runs Python;
        :class:`_PassOver` when an install cannot be cut out of the script."""
        run_syncs_only = self.implicit is not None and not self.installs()
        if self.implicit is not None and not self.installs():
            self.locked.append(self.implicit)
        if not self.installs() or self.run is None or self.program is None:
            return None
        try:
            kept = script.without(self.cut, trims=self.trims, exec_at=self.program[0])
        except shell.UncuttableStep as exc:
            raise _PassOver(
                f"its install step {exc}, which wheeldock cannot take out without changing "
                "what the rest does: move the install to a step of its own (`… && `), or "
                f"write {CONFIG_NAME} by hand"
            ) from exc
        alone = kept.alone and all(word == "exec" for word in self.program[1])
        return _Start(
            tuple(self.requirements),
            tuple(self.constraints),
            tuple(self.no_binary),
            tuple(self.run),
            tuple(self.packages),
            tuple(self.projects),
            tuple(dict.fromkeys(self.system)),
            "" if alone else kept.text.strip(),
            tuple(self.dropped),
            locked=tuple(dict.fromkeys(self.locked)),
            selects=tuple(dict.fromkeys(self.selects)),
            dev_left_out=self.dev_left_out,
            interpreter=shell_path,
            kept=kept.commands,
            groups=tuple(dict.fromkeys(self.groups)),
            package=self.package,
            run_syncs_only=run_syncs_only,
            run_takes_dev=run_syncs_only and self.implicit_dev,
        )


def _read_other(state: _Reading, step: _Step) -> None:
    """A step the image keeps running at start (a migration, ``cd``, ``export``)."""


def _read_cut(state: _Reading, step: _Step) -> None:
    """A step the image does not run at start: done when it is built, or of no use in it."""
    state.cut.add(step.command.index)


def _found_program(state: _Reading, step: _Step, run: list[str]) -> None:
    state.run = run
    state.program = (step.command.index, step.original[: len(step.original) - len(run)])


def _read_cd(state: _Reading, step: _Step) -> None:
    if len(step.words) == 2:
        state.here = _under(state.here, step.words[1])
    _read_other(state, step)


def _read_program(state: _Reading, step: _Step) -> None:
    """The interpreter or a runner (``gunicorn``): the service itself."""
    _found_program(state, step, step.words)


def _read_wrapper(state: _Reading, step: _Step) -> None:
    """``wait-for-it.sh db:5432 -- python app.py``, ``ddtrace-run gunicorn …``: the service is
    the Python program inside (none: the step is kept, the service is not found in it)."""
    _read_other(state, step)
    words = step.words
    at = next(
        (
            i
            for i, t in enumerate(words[1:], 1)
            if _PYTHON.match(t) or PurePosixPath(t).name in RUNNERS
        ),
        None,
    )
    if at is not None:
        _found_program(state, step, words[at:])


def _read_apt(state: _Reading, step: _Step) -> None:
    """System packages at start: the image gets them at build time instead."""
    _read_cut(state, step)
    if step.words[1:2] == ["install"]:
        state.system += [a for a in step.words[2:] if not a.startswith("-") and "=" not in a]


#: The caches an install step leaves, which its clean-up step removes.
_INSTALL_CACHES = ("/var/lib/apt/lists", "/var/cache/apt", "/root/.cache/pip", "/root/.cache/uv")


def _read_rm(state: _Reading, step: _Step) -> None:
    """``rm -rf /var/lib/apt/lists/*`` after an ``apt-get install`` goes with it (the image's
    user could not remove root's files: the step would fail); other removals are kept."""
    paths = [w for w in step.words[1:] if not w.startswith("-")]
    if paths and all(p.startswith(_INSTALL_CACHES) for p in paths):
        _read_cut(state, step)


def _read_apk(state: _Reading, step: _Step) -> None:
    """An Alpine image's packages: the Debian image has its own (ELF scan)."""
    _read_cut(state, step)
    state.dropped.append(step.command.source)


def installs_tooling(targets: Sequence[str], editables: Sequence[str]) -> bool:
    """``pip install --upgrade pip``: tooling, not the service's dependencies."""
    return (
        bool(targets)
        and not editables
        and all(not is_local_path(t) and requirement_name(t) in _INSTALL_TOOLS for t in targets)
    )


def _read_pip(state: _Reading, step: _Step) -> None:
    """A pip (or ``uv pip``) install: its requirement files, constraints, packages, projects."""
    pip = pip_args(step.words)
    assert pip is not None  # looked up as "pip" only when it is a pip install
    _read_cut(state, step)
    targets, editables = pip_targets(pip)
    if installs_tooling(targets, editables):
        return
    here = state.here
    state.requirements += [_under(here, r) for r in _option_values(pip, "-r", "--requirement")]
    state.constraints += [_under(here, c) for c in _option_values(pip, "-c", "--constraint")]
    for value in _option_values(pip, "--no-binary", "--no-binary"):
        state.no_binary += [v for v in value.split(",") if v and v != ":none:"]
    for target in [*targets, *editables]:
        if "://" in target:
            state.projects.append(target)  # a URL: passed over, with the reason
        elif is_local_path(target) or target in editables:
            state.projects.append(_under(here, target))
        else:
            state.packages.append(target)


#: Sub-commands that only set up or describe the tool for the install that follows
#: (``poetry config virtualenvs.create false``): the image has no such tool, and needs none.
_TOOL_SETUP = {
    "poetry": frozenset({"config", "self", "about", "--version", "-V", "debug", "cache"}),
    "pipenv": frozenset({"--version", "--venv", "--where", "--py", "--support"}),
    "uv": frozenset({"--version", "-V", "version", "self", "cache"}),
    "pdm": frozenset({"config", "self", "--version", "-V", "info", "cache"}),
}


def _read_tool(state: _Reading, step: _Step) -> None:
    """``uv``, ``poetry``, ``pipenv``: an install from the project's lock, or a ``run`` whose
    command is then read as a step of its own (a ``uv run`` syncing the project first); a
    step that sets the tool up for the install (:data:`_TOOL_SETUP`) goes with it."""
    tool = PurePosixPath(step.words[0]).name
    if len(step.words) > 1 and step.words[1] in _TOOL_SETUP.get(tool, ()):
        _read_cut(state, step)
        return
    found = tool_step(step.words)
    if found is None or (found.folder is None and not found.run):
        _read_other(state, step)
        return
    if not found.run:
        assert found.folder is not None
        _read_cut(state, step)
        state.locked.append((found.tool, _under(state.here, found.folder)))
        state.selects += found.selects
        state.groups += found.groups
        state.package = found.package or state.package
        state.dev_left_out = state.dev_left_out or found.dev
        return
    if found.folder is not None:
        state.implicit = (found.tool, _under(state.here, found.folder))
        state.implicit_dev = found.dev
        state.package = found.package or state.package
        state.selects += found.selects
    # the image has no tool: its `run …` goes, the command it runs stays
    run = list(found.run)
    words = step.command.words
    tool_at = len(words) - len(step.words)
    state.trims[step.command.index] = (words[tool_at].start, words[len(words) - len(run)].start)
    original = step.original[:tool_at] + run
    _read_step(state, _Step(run, original, step.command), tools=False)
    if state.program is None or state.program[0] != step.command.index:
        # what a tool runs is in the project's environment: its Python program (`pytest`)
        _found_program(state, _Step(run, original, step.command), run)


_StepReader = Callable[[_Reading, _Step], None]
#: The reader of each step, by its tool word (see :func:`_tool_word`); other steps are kept.
_START_READERS: dict[str, _StepReader] = {
    **{wrapper: _read_wrapper for wrapper in WRAPPERS},
    ".sh": _read_wrapper,
    **{runner: _read_program for runner in RUNNERS},
    "python": _read_program,
    "pip": _read_pip,
    "uv": _read_tool,
    "poetry": _read_tool,
    "pipenv": _read_tool,
    "pdm": _read_tool,
    "apt-get": _read_apt,
    "apt": _read_apt,
    "apk": _read_apk,
    "rm": _read_rm,
    "cd": _read_cd,
}


def _tool_word(words: list[str]) -> str:
    """The word a step's reader is found by: ``pip`` for a pip install however spelled
    (``python3 -m pip``, ``uv pip``, ``pip3.11``), ``python`` for the image's interpreter,
    ``.sh`` for a script, else the program's name (``""`` for a ``pip`` or ``python`` at
    another path, which the image does not have)."""
    if pip_args(words) is not None:
        return "pip"
    if _PYTHON.match(words[0]):
        return "python"
    name = PurePosixPath(words[0]).name
    if name in ("pip", "python"):
        return ""
    if name not in _START_READERS and name.endswith(".sh"):
        return ".sh"
    return name


def _read_step(state: _Reading, step: _Step, *, tools: bool = True) -> None:
    """Read one step into ``state``; with ``tools=False`` (what a ``run`` runs) a tool's step
    is a program like any other."""
    reader = _START_READERS.get(_tool_word(step.words), _read_other)
    if reader is _read_tool and not tools:
        reader = _read_other
    reader(state, step)


def program_words(words: list[str]) -> list[str]:
    """``words`` without the leading ``exec``, ``env`` and variable assignments."""
    while words and (
        words[0] in ("exec", "env") or ("=" in words[0] and not words[0].startswith("-"))
    ):
        words = words[1:]
    return words


def _start_of(script: _ScriptText) -> _Start | None:
    """What a start script does, read step by step (one reader per tool); ``None`` unless it
    installs the service's requirements and then runs a Python program."""
    parsed = _parsed(script.text)
    if parsed is None:
        return None
    state = _Reading()
    for command in parsed.commands:
        original = [w.text for w in command.words]
        words = program_words(original)
        if words:
            _read_step(state, _Step(words, original, command))
    return state.start(parsed, script.shell)


def _parse_start(command: Any) -> _Start | None:
    """What a compose command does at start; ``None`` unless it installs the service's
    requirements and then runs a Python program; :class:`_PassOver` when its script cannot be
    read, or its installs cannot be cut out of it."""
    script = _script_of(command)
    return None if script is None else _start_of(script)


def _script_file_of(command: Any) -> str | None:
    """The script file a command runs (``./entrypoint.sh``, ``sh start.sh``), or ``None``."""
    script = _script_of(command)
    parsed = _parsed(script.text) if script else None
    commands = parsed.commands if parsed else ()
    if len(commands) != 1:
        return None
    words = [w.text for w in commands[0].words]
    if PurePosixPath(words[0]).name in ("sh", "bash", "dash", "ash") and len(words) > 1:
        words = words[1:]
    if len(words) != 1 or not words[0].endswith(".sh"):
        return None
    return words[0]


def _start_from_script_file(command: Any, svc: Mapping[str, Any], root: Path) -> _Start | None:
    """The start of a command that runs a shell script from the code (``./entrypoint.sh``,
    ``sh start.sh``): the script's own steps, read from the mounted file. The image runs them
    without the pip steps (the script itself would install again at every start).
    :class:`_PassOver` when the script is not in the code."""
    name = _script_file_of(command)
    if name is None:
        return None
    workdir = str(svc.get("working_dir") or "/")
    path = posixpath.normpath(str(PurePosixPath(workdir) / name))
    located = _to_host(path, _mounts(svc, root))
    if located is None:
        raise _PassOver(
            f"start script not found at {path}: no bind mount holds it; mount the folder that "
            "has it, or fix the path in the command"
        )
    if not located[1].is_file():
        raise _PassOver(
            f"start script not found at {path} ({_rel(located[1], root)} in the project): "
            "fix the path in the command, or add the script"
        )
    return _start_in_file(located[1], name)


def _start_in_file(path: Path, name: str, given: Sequence[str] = ()) -> _Start | None:
    """What the start script at ``path`` (run as ``name``) does, read as a compose command's
    script is (its shebang choosing the shell); ``None`` unless it installs, then runs Python.
    ``given``: words its ``"$@"`` is read as (they are then in the steps the image keeps)."""
    text = path.read_text(errors="replace")
    shebang, _, rest = text.partition("\n") if text.startswith("#!") else ("", "", text)
    if given:
        rest = rest.replace('"$@"', shlex.join(given))
    start = _start_of(_ScriptText(rest, "/bin/bash" if "bash" in shebang else "/bin/sh"))
    if start is None:
        return None
    return replace(start, from_file=posixpath.normpath(name))


def _under(here: str, path: str) -> str:
    """``path`` as seen from the working dir, given a script that ``cd``-ed to ``here``."""
    if not here or path.startswith("/"):
        return path
    return posixpath.normpath(posixpath.join(here, path))


def requirement_name(spec: str) -> str:
    """The distribution a specifier names (``flask[async]>=3`` → ``flask``), canonicalized."""
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return canonicalize_name(match.group(1)) if match else spec


# --- mounts and paths --------------------------------------------------------------------------


def _mounts(svc: Mapping[str, Any], root: Path) -> list[_Mount]:
    mounts: list[_Mount] = []
    for vol in svc.get("volumes") or []:
        if isinstance(vol, str):
            parts = vol.split(":")
            if len(parts) < 2 or not parts[0].startswith((".", "/", "~")):
                continue  # a named volume, not the code
            source, target = parts[0], parts[1]
        elif isinstance(vol, Mapping) and vol.get("type", "bind") == "bind" and vol.get("source"):
            source, target = str(vol["source"]), str(vol.get("target", ""))
        else:
            continue
        host = (root / Path(source).expanduser()).resolve()
        if host.is_dir():
            mounts.append(_Mount(source, host, target.rstrip("/") or "/"))
    return mounts


def _to_host(container_path: str, mounts: Sequence[_Mount]) -> tuple[_Mount, Path] | None:
    """Map an absolute container path to the host through the bind mounts (deepest first)."""
    path = PurePosixPath(container_path)
    for mount in sorted(mounts, key=lambda m: len(m.target), reverse=True):
        target = PurePosixPath(mount.target)
        if path == target or target in path.parents:
            return mount, mount.host / path.relative_to(target)
    return None


# --- requirement files -------------------------------------------------------------------------


# --- port and health ---------------------------------------------------------------------------


def _flag_value(argv: Sequence[str], *flags: str) -> str | None:
    for i, arg in enumerate(argv):
        for flag in flags:
            if arg == flag and i + 1 < len(argv):
                return argv[i + 1]
            if flag.startswith("--") and arg.startswith(flag + "="):
                return arg[len(flag) + 1 :]
    return None


def _port_from(value: str | None) -> int | None:
    if not value:
        return None
    match = re.search(r"(\d{2,5})$", value.strip())
    if match and 0 < int(match.group(1)) < 65536:
        return int(match.group(1))
    return None


def infer_port(
    svc: Mapping[str, Any], argv: Sequence[str], env: Mapping[str, str], root: Path | None = None
) -> tuple[int | None, str]:
    """The port the service listens on, and where that was read (for the notes). ``root``:
    the folder ``env_file:`` paths are relative to."""
    if len(argv) == 3 and argv[0] in SCRIPT_SHELLS and argv[1] == "-c":
        # a kept script (``migrate && exec gunicorn -b …``): the program is its last step
        try:
            commands = shell.parse(argv[2]).commands
        except shell.InvalidScript:
            commands = ()
        words = [w.text for w in commands[-1].words] if commands else []
        argv = [t for t in words if t not in ("exec", "env")]
    declared = environment(svc)
    service_env: dict[str, str | None] = {
        **(env_files(svc, root) if root is not None else {}),
        **declared,
    }
    for key in _PORT_ENV:
        raw = service_env.get(key)
        port = _port_from(interpolate(raw, env)) if raw is not None else None
        if port:
            return port, f"{'environment' if key in declared else 'env_file'} {key}"
    flag = _flag_value(argv, "--port", "-p", "--bind", "-b")
    port = _port_from(interpolate(flag, env) if flag else None)
    if port:
        return port, "command-line flag"
    # ``--port $${API_PORT}``: the shell expands it from the container's environment
    variable = re.search(r"\$\{?([A-Za-z_]\w*)\}?$", flag or "")
    if variable and service_env.get(variable.group(1)) is not None:
        port = _port_from(interpolate(str(service_env[variable.group(1)]), env))
        if port:
            return port, f"command-line flag (${variable.group(1)} from environment)"
    for entry in svc.get("ports") or []:
        if isinstance(entry, Mapping):
            port = _port_from(str(entry.get("target", "")))
        else:
            port = _port_from(interpolate(str(entry), env).split("/")[0])
        if port:
            return port, "ports:"
    for entry in svc.get("expose") or []:
        port = _port_from(str(entry))
        if port:
            return port, "expose:"
    return None, "none (no PORT, port flag or ports:)"


def _entry_files(argv: Sequence[str], workdir_host: Path) -> list[Path]:
    """The Python files the command starts from (a script, ``-m module`` or ``module:app``)."""
    candidates: list[str] = []
    args = list(argv[1:])
    if _PYTHON.match(argv[0]):
        if args[:1] == ["-m"] and len(args) > 1:
            candidates.append(args[1].replace(".", "/"))
        elif args:
            candidates.append(args[0])
    else:
        candidates += [
            a.split(":")[0].replace(".", "/") for a in args if re.match(r"^[\w.]+:[\w.()]+$", a)
        ]
        app = _flag_value(argv, "--app", "-A")
        if app:
            candidates.append(app.split(":")[0].replace(".", "/"))
    files: list[Path] = []
    for cand in candidates:
        for path in (
            workdir_host / cand,
            workdir_host / f"{cand}.py",
            workdir_host / cand / "__init__.py",
            workdir_host / cand / "__main__.py",
        ):
            if path.is_file() and path.suffix == ".py":
                files.append(path)
    return files


def _local_imports(tree: ast.AST, here: Path, top: Path) -> list[Path]:
    found: list[Path] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here if node.level else top
            for _ in range(max(node.level - 1, 0)):
                base = base.parent
            mod = (node.module or "").replace(".", "/")
            for alias in node.names:
                for cand in (base / mod / alias.name, base / mod):
                    for path in (cand.with_suffix(".py"), cand / "__init__.py"):
                        if path.is_file():
                            found.append(path)
            continue
        for name in names:
            cand = top / name.replace(".", "/")
            for path in (cand.with_suffix(".py"), cand / "__init__.py"):
                if path.is_file():
                    found.append(path)
    return found


def _routes(tree: ast.AST) -> list[str]:
    """GET routes declared in a module: ``@app.get("/x")``, ``@app.route("/x")``,
    ``app.add_api_route("/x", …)``, ``add_url_rule("/x", …)`` and ``Route("/x", …)``."""
    routes: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if not (
            isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and first.value.startswith("/")
        ):
            continue
        func = node.func
        name = (
            func.attr
            if isinstance(func, ast.Attribute)
            else func.id
            if isinstance(func, ast.Name)
            else ""
        )
        if name in ("get", "route", "api_route", "add_api_route", "add_url_rule", "Route", "head"):
            methods = next((kw.value for kw in node.keywords if kw.arg == "methods"), None)
            if isinstance(methods, ast.List | ast.Tuple | ast.Set):
                verbs = {
                    e.value.upper()
                    for e in methods.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                }
                if verbs and "GET" not in verbs:
                    continue
            routes.append(first.value)
    return routes


def find_health_route(
    entry_files: Sequence[Path], top: Path, *, limit: int = 300
) -> tuple[str | None, Path | None]:
    """The preferred health route declared in the entry files or the local modules they import
    (followed within ``top``, at most ``limit`` files), and the file that declares it."""
    queue = list(entry_files)
    seen: set[Path] = set()
    found: dict[str, Path] = {}
    while queue and len(seen) < limit:
        path = queue.pop(0).resolve()
        if path in seen:
            continue
        seen.add(path)
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError, OSError):
            continue
        for route in _routes(tree):
            found.setdefault(route.rstrip("/") or "/", path)
        queue += _local_imports(tree, path.parent, top)
    for route in HEALTH_ROUTES:
        if route in found:
            return route, found[route]
    return None, None


# --- runtime libraries -------------------------------------------------------------------------

#: Debian (bookworm) runtime packages for distributions whose compiled parts link system
#: libraries. ``from_source_only``: the manylinux wheel vendors the library, so it is needed only
#: when the package is built from source (``no_binary``).
RUNTIME_TABLE: dict[str, tuple[tuple[str, ...], bool]] = {
    "cffi": (("libffi8",), True),
    "pyyaml": (("libyaml-0-2",), True),
    "lxml": (("libxml2", "libxslt1.1"), True),
    "pillow": (
        (
            "libjpeg62-turbo",
            "zlib1g",
            "libtiff6",
            "libwebp7",
            "libfreetype6",
            "liblcms2-2",
            "libopenjp2-7",
        ),
        True,
    ),
    "psycopg2": (("libpq5",), False),
    "psycopg": (("libpq5",), False),
    "mysqlclient": (("libmariadb3",), False),
    "python-ldap": (("libldap-2.5-0", "libsasl2-2"), False),
    "pycurl": (("libcurl4",), False),
    "pyodbc": (("unixodbc",), True),
    "gssapi": (("libgssapi-krb5-2",), True),
    "cairocffi": (("libcairo2",), False),
    "weasyprint": (("libpango-1.0-0", "libpangoft2-1.0-0"), False),
    "python-magic": (("libmagic1",), False),
}


def table_runtime_packages(
    requirements: Iterable[Requirement], no_binary: Iterable[str]
) -> tuple[str, ...]:
    """Runtime Debian packages from :data:`RUNTIME_TABLE` (the fallback to an ELF scan)."""
    forced = {canonicalize_name(n) for n in no_binary}
    all_source = ":all:" in no_binary
    packages: list[str] = []
    for req in requirements:
        name = canonicalize_name(req.name)
        entry = RUNTIME_TABLE.get(name)
        if entry is None:
            continue
        libs, from_source_only = entry
        if from_source_only and name not in forced and not all_source:
            continue
        packages += [p for p in libs if p not in packages]
    return tuple(packages)


# --- the whole service -------------------------------------------------------------------------


def _is_python_image(image: Any) -> bool:
    if not isinstance(image, str):
        return False
    name = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image
    return name.split("/")[-1] == "python" and name in (
        "python",
        "library/python",
        "docker.io/library/python",
        "docker.io/python",
    )


def _python_version(image: str) -> str:
    tag = image.split("@")[0].rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
    match = re.match(r"^(3\.\d+)", tag)
    return match.group(1) if match else "3.11"


def _image_argv(run: Sequence[str]) -> tuple[str, ...]:
    """The command as it runs in the image: ``python3.11`` becomes ``python`` (the venv's)."""
    argv = list(run)
    if _PYTHON.match(argv[0]):
        argv[0] = "python"
    return tuple(argv)


def survey(
    root: Path,
    files: Sequence[ComposeFile],
    env: Mapping[str, str],
    services: Mapping[str, Mapping[str, Any]] | None = None,
) -> Survey:
    """Every service of ``files``: the Python services that install their requirements at start
    (as :class:`Finding`) and, for each other one, why it was passed over. ``env`` resolves
    ``${VAR}`` in the compose values. ``services``: the services as ``docker compose config``
    resolves ``files`` (:mod:`wheeldock.compose.config`); without them the files are merged
    here, ``include:`` and ``extends:`` not followed."""
    services = merged_services(files) if services is None else services
    findings: list[Finding] = []
    passed_over: list[str] = []
    built: list[str] = []
    for name, svc in services.items():
        image = svc.get("image")
        if "build" in svc and not _is_python_image(image):
            built.append(name)
            continue
        if not _is_python_image(image):
            passed_over.append(f"{name} (image {image!r} is not python:*)")
            continue
        raw = svc.get("command") if svc.get("command") is not None else svc.get("entrypoint")
        command = _interpolate_command(raw, env)
        try:
            start = _parse_start(command) or _start_from_script_file(command, svc, root)
            if start is None:
                passed_over.append(
                    f"{name} (its command does not `pip install` its requirements then start "
                    "Python)"
                )
                continue
            finding = _finding(root, files, name, svc, start, env, str(image))
            _require_patchable(finding, files)
        except _PassOver as exc:
            passed_over.append(f"{name} ({exc})")
            continue
        findings.append(finding)
    return Survey(tuple(findings), tuple(passed_over), tuple(built))


def _require_patchable(finding: Finding, files: Sequence[ComposeFile]) -> None:
    """:class:`_PassOver` when what the patch must change in the service is not in the compose
    files init patches: the service comes from an ``include:``d file, or the keys to drop come
    from the file its ``extends:`` names (other services may extend them too)."""
    name = finding.service.name
    nodes = [f.services[name] for f in files if isinstance(f.services.get(name), Mapping)]
    if not nodes:
        where = included_file_defining(files, name)
        raise _PassOver(
            f"it is defined in {where or 'a file'} that {files[0].path.name} includes "
            f"(`include:`), which init does not patch; move the service into "
            f"{files[0].path.name}, or describe it in {CONFIG_NAME}"
        )
    base = files[0].path.parent
    inherited = [k for k in finding.drop_keys if not any(k in own_keys(node) for node in nodes)]
    if not any(
        volume_matches(v, (finding.source_volume,), base)
        for node in nodes
        if "volumes" in own_keys(node)
        for v in node["volumes"] or []
    ):
        inherited.append("volumes")
    extends = next((node["extends"] for node in nodes if "extends" in node), None)
    if extends is None:
        # merged in from an anchor (``<<: *common``): the patch gives the service a volumes
        # list of its own; a working_dir left as merged is the image's own WORKDIR anyway
        inherited = [k for k in inherited if k not in ("volumes", "working_dir")]
    if not inherited:
        return
    source = _extends_source(extends, files[0].path.name)
    keys = ", ".join(inherited)
    raise _PassOver(
        f"its {keys} come from {source}: init would have to change them there, where other "
        f"services may use them; copy {keys} into the service in {files[0].path.name}"
    )


def _extends_source(extends: Any, here: str) -> str:
    if isinstance(extends, Mapping):
        file = extends.get("file") or here
        return f"{file} (`extends: {extends.get('service')}`)"
    if extends is not None:
        return f"{here} (`extends: {extends}`)"
    return f"a YAML anchor its `<<:` merges in {here}"


def discover(
    root: Path,
    files: Sequence[ComposeFile],
    env: Mapping[str, str],
    *,
    project_name: str | None = None,
) -> list[Finding]:
    """The Python services in ``files`` that install their requirements at start.

    ``env`` resolves ``${VAR}`` in the compose values. Raises :class:`NotFound` when no service
    qualifies, naming the services that were looked at and why each was passed over.
    """
    return list(require_findings(survey(root, files, env), files, root))


def require_findings(
    found: Survey,
    files: Sequence[ComposeFile],
    root: Path,
    left_alone: Sequence[str] = (),
    convertible: Sequence[str] = (),
    own_reasons: Sequence[str] = (),
    convert_anyway: Sequence[str] = (),
) -> tuple[Finding, ...]:
    """``found``'s findings; :class:`NotFound` naming what was passed over when there are none.
    ``left_alone``: the services whose Dockerfile already builds their dependencies apart
    from their code and that install nothing at start (the fix then says so, not another
    shape of stack); ``convertible``: those of them ``--convert`` converts. ``own_reasons``:
    the services built from their own Dockerfile passed over for a reason of their own (the
    fix then points at those reasons); ``convert_anyway``: those of them ``--convert``
    converts."""
    if not found.findings:
        where = ", ".join(str(f.path.name) for f in files)
        looked = "; ".join(found.passed_over) or "no services at all"
        raise NotFound(
            f"no Python service that installs its requirements at start was found in {where} "
            f"(looked at: {looked})",
            path=files[0].path if files else root,
            fix=_no_findings_fix(left_alone, convertible, own_reasons, convert_anyway),
        )
    return found.findings


def _no_findings_fix(
    left_alone: Sequence[str],
    convertible: Sequence[str],
    own_reasons: Sequence[str],
    convert_anyway: Sequence[str],
) -> str:
    """The fix when no service qualifies: what each Dockerfile-built service calls for, or
    else the shape of stack init converts."""
    parts: list[str] = []
    if left_alone:
        parts.append(
            f"nothing to do for {', '.join(left_alone)}: "
            f"{'its image' if len(left_alone) == 1 else 'each image'} already gets its "
            f"dependencies before its code{_convert_clause(convertible)}"
        )
    if own_reasons:
        one = len(own_reasons) == 1
        parts.append(
            f"{', '.join(own_reasons)} {'is' if one else 'are'} built from "
            f"{'its' if one else 'their'} own Dockerfile{'' if one else 's'} and "
            f"{'was' if one else 'were each'} passed over for the reason after its name above: "
            f"fix that, or describe {'it' if one else 'them'} in {CONFIG_NAME} by hand"
            f"{_convert_clause(convert_anyway)}"
        )
    if parts:
        return "; ".join(parts)
    return (
        "wheeldock init handles services running a python:* image with a command like "
        '`sh -c "pip install -r requirements.txt && python app.py"` (or `pip install PKG …`, '
        "or `pip install .` of a project with a pyproject.toml) and the code mounted as a "
        "volume; write wheeldock.toml by hand for others"
    )


def generated_requirements_name(service: str) -> str:
    """The requirements file init writes for packages a service's command names inline."""
    return f"requirements-{service}.txt"


def _generated_requirements(service: str, packages: Sequence[str]) -> str:
    lines = [
        f"# Written by `wheeldock init`: the packages the compose service {service} installed at",
        "# every start (`pip install " + " ".join(packages) + "`).",
        "# Its requirements from now on, as the image no longer installs anything at start:",
        "# edit them here. `wheeldock init --revert` deletes this file.",
        *packages,
    ]
    return "\n".join(lines) + "\n"


def _project_requirements(
    target: str, workdir: str, mounts: Sequence[_Mount], root: Path
) -> tuple[str, str]:
    """The ``pyproject.toml`` (project-relative) whose dependencies ``pip install TARGET``
    installs for a local project, and a note; :class:`_PassOver` when that cannot be read."""
    if "://" in target:
        raise _PassOver(
            f"it installs {target} from a URL: name it in a requirements file (`name @ URL`) "
            "and install that with `pip install -r`"
        )
    folder, extras = target, ""
    if "[" in target and target.endswith("]"):
        folder, extras = target[: target.index("[")], target[target.index("[") :]
    if folder.endswith((".whl", ".tar.gz", ".zip")):
        raise _PassOver(
            f"it installs the file {target}: put it on an index, or name it in a requirements "
            "file, and install that with `pip install -r`"
        )
    if extras:
        raise _PassOver(
            f"it installs the local project {target} with extras: list the dependencies in a "
            "requirements file and install that with `pip install -r`"
        )
    container = PurePosixPath(workdir) / folder.removeprefix("file://")
    located = _to_host(str(container), mounts)
    if located is None:
        raise _PassOver(f"the project it installs ({target}) is not in a bind-mounted folder")
    host = located[1]
    pyproject = host / "pyproject.toml"
    if not pyproject.is_file():
        raise _PassOver(
            f"the project it installs ({target}) has no pyproject.toml: its dependencies are "
            "known only by running setup.py"
        )
    rel = _readable(pyproject, _project_dependencies, root)
    return rel, (
        f"requirements: the dependencies of {rel} ([project].dependencies); the project runs "
        "from its source, it is not installed (its own console scripts are not made)"
    )


def _readable(path: Path, read: Callable[[Path], object], root: Path) -> str:
    """``path`` project-relative once ``read`` takes it; :class:`_PassOver` with its error."""
    try:
        read(path)
    except InvalidConfig as exc:
        raise _PassOver(f"{_rel(path, root)}: {exc.what}") from exc
    return _rel(path, root)


def _locked_requirements(
    tool: str, folder: str, code: _Code, member: str | None = None
) -> tuple[str, str]:
    """The lock file (project-relative) of the project a service installs with ``tool``, and a
    note; :class:`_PassOver` when there is none, or it cannot be read. A uv workspace
    ``member`` is found from any folder of the workspace, as uv finds it: the lock is the
    workspace root's, the nearest folder above with a ``uv.lock``."""
    workdir, mounts, root = code.workdir, code.mounts, code.root
    kind = lock_of_tool(tool)
    located = _to_host(str(PurePosixPath(workdir) / folder), mounts)
    if located is None:
        raise _PassOver(
            f"the {tool} project it installs ({folder}) is not in a bind-mounted folder"
        )
    lock = located[1] / kind.filename
    if member is not None and not lock.is_file():
        lock = next(
            (
                up / kind.filename
                for up in located[1].parents
                if up.is_relative_to(root) and (up / kind.filename).is_file()
            ),
            lock,
        )
    if not lock.is_file():
        raise _PassOver(
            f"the {tool} project it installs ({_rel(located[1], root)}) has no {kind.filename}: "
            f"run `{kind.relock}` there and keep the file with the code"
        )
    rel = _readable(lock, locked_requirements, root)
    return rel, (
        f"requirements: the packages locked in {rel} (what `{kind.installs}` installs); "
        "the project runs from its source, it is not installed"
    )


@dataclass(frozen=True)
class _Code:
    """Where a service's code is: the project, the bind mounts, the working dir in the
    container and on the host, and the compose file that defines the service."""

    root: Path
    mounts: tuple[_Mount, ...]
    workdir: str
    mount: _Mount  # the mount holding the working dir
    workdir_host: Path
    compose_file: Path


def _has_command(node: Any) -> bool:
    return isinstance(node, Mapping) and ("command" in node or "entrypoint" in node)


def _baked_variables_note(svc: Mapping[str, Any]) -> str | None:
    """A note naming the compose variables the command had, now resolved into the image."""
    raw = svc.get("command") if svc.get("command") is not None else svc.get("entrypoint")
    raw_text = (raw if isinstance(raw, str) else " ".join(map(str, raw or []))).replace("$$", "")
    baked = sorted(set(re.findall(r"\$\{?([A-Za-z_]\w*)", raw_text)))
    if not baked:
        return None
    return (
        f"command: compose variables {', '.join(baked)} resolved now (re-run init after "
        "changing them, or edit the command in wheeldock.toml)"
    )


def _code_of(
    name: str, svc: Mapping[str, Any], root: Path, compose_file: Path, notes: list[str]
) -> _Code:
    """Where the service's code is (appending a note when the working dir is inferred);
    :class:`_PassOver` when its working dir is in no bind mount of a project folder."""
    mounts = _mounts(svc, root)
    workdir = str(svc.get("working_dir") or "")
    if not workdir:
        # No working_dir: the python image's is "/"; the mount holding the script is the code.
        workdir = mounts[0].target if len(mounts) == 1 else "/"
        notes.append(f"working dir {workdir} (no working_dir: taken from the code mount)")
    located = _to_host(workdir, mounts)
    if located is None:
        raise _PassOver(_unmounted_workdir(workdir, mounts, root))
    mount, workdir_host = located
    return _Code(root, tuple(mounts), workdir, mount, workdir_host, compose_file)


def _unmounted_workdir(workdir: str, mounts: Sequence[_Mount], root: Path) -> str:
    """Why a service whose working dir is in none of its bind mounts is passed over, and the fix:
    its code is in the image, or in a folder wheeldock cannot see."""
    where = (
        "its code is not bind-mounted from the project (it is in the image, or in a named volume)"
        if not mounts
        else "its bind mounts ("
        + ", ".join(f"{_shown(m, root)} at {m.target}" for m in mounts)
        + ") do not hold it"
    )
    if workdir != "/":
        fix = f"mount the code's folder there (`volumes: [./<code folder>:{workdir}]`)"
    elif len(mounts) == 1:
        fix = f"set `working_dir: {mounts[0].target}`"
    elif mounts:
        fix = "set `working_dir:` to the folder of the mount that holds the code"
    else:
        fix = "mount the code's folder (`volumes: [./<code folder>:/app]`), set `working_dir: /app`"
    return (
        f"its working_dir {workdir} is not in a bind mount: {where}; {fix}, or describe the "
        f"service in {CONFIG_NAME}"
    )


def _shown(mount: _Mount, root: Path) -> str:
    """A mount's source as the user wrote it, relative to the project (compose's own reading
    makes it absolute)."""
    if not mount.source.startswith("/") or not mount.host.is_relative_to(root.resolve()):
        return mount.source
    return "./" + mount.host.relative_to(root.resolve()).as_posix()


def _pip_requirements(name: str, start: _Start, code: _Code, notes: list[str]) -> list[str]:
    """The project-relative requirement files of the pip steps (``-r`` files, then the local
    projects' pyproject.toml), appending a note per project."""
    requirements: list[str] = []
    for req in start.requirements:
        host = _to_host(str(PurePosixPath(code.workdir) / req), code.mounts)
        if host is None:
            raise InvalidConfig(
                f"service {name!r}: the requirements file {req} is not inside the code mount",
                path=code.compose_file,
                fix="keep requirement files in the mounted code folder",
            )
        requirements.append(_rel(host[1], code.root))
    for target in start.projects:
        rel, note = _project_requirements(target, code.workdir, code.mounts, code.root)
        if rel not in requirements:
            requirements.append(rel)
        notes.append(note)
    return requirements


def _inline_requirements(name: str, packages: Sequence[str]) -> tuple[str, str]:
    """The requirements file (name, text) init writes for the packages the command named;
    :class:`_PassOver` when one is not a requirement."""
    for spec in packages:
        try:
            Requirement(spec)
        except InvalidRequirement as exc:
            raise _PassOver(f"its pip command names {spec!r}, not a requirement: {exc}") from exc
    return generated_requirements_name(name), _generated_requirements(name, packages)


def _lock_requirements(start: _Start, others: Sequence[str], code: _Code, notes: list[str]) -> str:
    """The lock file of the one project the start installs from its lock, appending notes;
    :class:`_PassOver` when the install selects more, or ``others`` are installed besides."""
    (tool, folder), *more = start.locked
    if start.selects:
        dev = "; the development packages too" if start.dev_left_out else ""
        raise _PassOver(
            f"its {tool} install takes more than the project's runtime packages "
            f"({', '.join(start.selects)} selected{dev}): wheeldock installs what "
            f"`{lock_of_tool(tool).installs}` does; make those "
            "packages the project's own"
        )
    if others or more:
        raise _PassOver(
            f"it installs with {tool} and also with pip (or installs two projects): a lock "
            f"file is a service's whole requirements; add the other packages with {tool}"
        )
    rel, note = _locked_requirements(tool, folder, code, start.package)
    notes.append(note)
    if start.groups:
        notes.append(
            f"requirements: the lock's groups {', '.join(start.groups)}, as "
            f"`{group_install(tool, start.groups)}` installs them"
        )
    if start.package:
        notes.append(
            f"requirements: the dependencies of the workspace member {start.package} in {rel} "
            f"(as `uv sync --package {start.package} --no-dev` installs them; the member itself "
            "runs from its source)"
        )
    if start.dev_left_out:
        notes.append(
            f"requirements: the development packages are left out of the image (its {tool} "
            "install took them too); make what the service needs at run time the project's "
            "own packages"
        )
    return rel


def group_install(tool: str, groups: Sequence[str]) -> str:
    """The command of ``tool`` that installs the lock's ``groups`` alone."""
    if tool == "pdm":
        chosen = [g for g in groups if g != "default"]
        return shlex.join(
            ["pdm", "sync", *([] if "default" in groups else ["--no-default"]),
             *(w for g in chosen for w in ("-G", g))]
        )  # fmt: skip
    return f"poetry install --only {','.join(groups)}"


def _requirements_of(
    name: str, start: _Start, code: _Code, notes: list[str]
) -> tuple[list[str], tuple[tuple[str, str], ...]]:
    """The service's requirement files (project-relative) and the files init writes for them
    (name, text), appending a note for each inference."""
    requirements = _pip_requirements(name, start, code, notes)
    generated: tuple[tuple[str, str], ...] = ()
    if start.packages:
        rel, text = _inline_requirements(name, start.packages)
        generated = ((rel, text),)
        requirements.append(rel)
        notes.append(f"requirements: {' '.join(start.packages)} from the command, into {rel}")
    if start.locked:
        requirements.append(_lock_requirements(start, requirements, code, notes))
    return requirements, generated


#: Programs start scripts call that the slim Python image does not have, and the Debian package
#: that has each (``None``: none does).
_NOT_IN_SLIM: dict[str, str | None] = {
    "curl": "curl",
    "wget": "wget",
    "git": "git",
    "make": "make",
    "gcc": "gcc",
    "cc": "gcc",
    "node": "nodejs",
    "npm": "npm",
    "npx": "npm",
    "yarn": None,
    "pnpm": None,
    "nc": "netcat-openbsd",
    "netcat": "netcat-openbsd",
    "psql": "postgresql-client",
    "pg_isready": "postgresql-client",
    "mysql": "default-mysql-client",
    "mysqladmin": "default-mysql-client",
    "redis-cli": "redis-tools",
    "jq": "jq",
    "unzip": "unzip",
    "envsubst": "gettext-base",
    "dockerize": None,
}
#: Where the image's user may write: everything else belongs to root (the code too).
_WRITABLE = ("/tmp/", "/var/tmp/", "/dev/", "/proc/")


def _missing_tool_warning(command: shell.Command, installed: Sequence[str]) -> str | None:
    """A warning when the command runs a program the slim image lacks (and the start script's
    ``apt-get install``, now done when the image is built, does not add)."""
    words = program_words([w.text for w in command.words])
    tool = PurePosixPath(words[0]).name if words else ""
    if tool not in _NOT_IN_SLIM or tool in installed or _NOT_IN_SLIM[tool] in installed:
        return None
    package = _NOT_IN_SLIM[tool]
    fix = (
        f"add {package} to runtime_packages in {CONFIG_NAME}"
        if package
        else f"install {tool} in the image yourself"
    )
    return (
        f"warning: command: `{command.source}` runs {tool}, which the slim Python image does not "
        f"have: the step fails there, and an `&&` chain stops before the server starts; {fix}, "
        f"or take the step out of the command in {CONFIG_NAME}"
    )


def _written_paths(command: shell.Command) -> list[str]:
    """The files a command writes that its words or redirections name (``> app.log``,
    ``mkdir logs``); a path made of a variable is left out (its value is not known)."""
    words = program_words([w.text for w in command.words])
    named = (
        [w for w in words[1:] if not w.startswith("-")]
        if words[:1] in (["mkdir"], ["touch"])
        else []
    )
    return [p for p in (*command.writes, *named) if p and not p.startswith("$")]


#: Django management commands that write next to the code: the static files (STATIC_ROOT,
#: usually under BASE_DIR), the default SQLite database (BASE_DIR/db.sqlite3), compiled messages.
_CODE_WRITERS = ("collectstatic", "migrate", "compilemessages")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _writes_code(command: shell.Command, workdir: str, code: str) -> bool:
    """Whether a kept step writes into the code folder ``code``: a Django command that does,
    or a path it names there (``mkdir logs``, ``> out.txt`` run in the code's folder)."""
    words = [w.text for w in command.words]
    if any(w in _CODE_WRITERS for w in words) and any(
        w.endswith("manage.py") or w == "django-admin" for w in words
    ):
        return True
    return any(
        _inside(posixpath.normpath(posixpath.join(workdir, p)), code)
        for p in _written_paths(command)
    )


def _write_warnings(command: shell.Command, workdir: str, code: str) -> list[str]:
    """A warning for each write of a kept step into a folder the image's user cannot write
    (the code folder is the user's when a step writes there: see :func:`_writes_code`)."""
    warnings: list[str] = []
    for path in _written_paths(command):
        where = posixpath.normpath(posixpath.join(workdir, path))
        if not (where + "/").startswith(_WRITABLE) and not _inside(where, code):
            warnings.append(
                f"warning: command: `{command.source}` writes {where}, which the service (uid "
                f"{APP_UID}) cannot write: the image belongs to root; write under /tmp or to a "
                "volume instead"
            )
    return warnings


def _code_writers(start: _Start, workdir: str, code: str) -> list[str]:
    """The kept steps that write into the code folder, as written."""
    return [c.source for c in start.kept if _writes_code(c, workdir, code)]


def _kept_step_warnings(start: _Start, workdir: str, code: str) -> list[str]:
    """Warnings for the steps the image keeps that cannot work in it: a program the slim
    image lacks, a write into a folder its user cannot write; each with the fix."""
    warnings: list[str] = []
    for command in start.kept:
        missing = _missing_tool_warning(command, start.system_packages)
        warnings += [missing] if missing else []
        warnings += _write_warnings(command, workdir, code)
    return warnings


def _image_command(start: _Start, notes: list[str]) -> tuple[str, ...]:
    """The image's command: the program, or ``sh -c`` with the script's other steps; appends
    notes for a script read from a file and for the steps left out."""
    argv = _image_argv(start.argv)
    if start.from_file:
        notes.append(
            f"command: read from {start.from_file}; the image runs its steps but the installs "
            f"(edit the command in {CONFIG_NAME} if {start.from_file} changes)"
        )
    if start.script:
        argv = (start.interpreter, "-c", start.script)
        notes.append(f"command: the script's other steps kept, run by sh: {start.script}")
    for step in start.dropped:
        notes.append(
            f"command: `{step}` left out (Alpine packages: the image is Debian's; the libraries "
            "the wheels need are found by the ELF scan)"
        )
    return argv


def _health_check(port: int | None, start: _Start, code: _Code, notes: list[str]) -> str:
    """``process`` without a port, else a route the entry module declares, else ``tcp``."""
    entries = _entry_files(start.argv, code.workdir_host)
    route, route_file = find_health_route(entries, code.mount.host)
    if port is None:
        notes.append("health: process check (no port)")
        return "process"
    if route is not None and route_file is not None:
        notes.append(f"health: GET {route} (declared in {_rel(route_file, code.root)})")
        return route
    notes.append(
        "health: TCP connect (no /health-like route found in the entry module and its imports)"
    )
    return "tcp"


def _finding(
    root: Path,
    files: Sequence[ComposeFile],
    name: str,
    svc: Mapping[str, Any],
    start: _Start,
    env: Mapping[str, str],
    image: str,
) -> Finding:
    """What ``init`` makes of the service ``name`` that starts with ``start``; the notes say
    how each inference was made. :class:`_PassOver` when it cannot be made an image as written,
    :class:`InvalidConfig` when its code or requirement files are outside the code mount."""
    defining = next(
        (f for f in files if name in f.services and "image" in f.services[name]), files[0]
    )
    notes: list[str] = []
    # the command as written: compose's own reading has its variables substituted already
    written = next(
        (f.services[name] for f in reversed(files) if _has_command(f.services.get(name))), svc
    )
    baked = _baked_variables_note(written)
    if baked:
        notes.append(baked)
    code = _code_of(name, svc, root, defining.path, notes)
    requirements, generated = _requirements_of(name, start, code, notes)
    constraints = [_rel(code.workdir_host / c, root) for c in start.constraints]
    closure, reqs = requirement_closure(
        root,
        [*requirements, *constraints],
        overlay=dict(generated),
        groups=start.groups,
        package=start.package,
    )
    backend = build_backend_needed(root, (f for f in closure if f not in dict(generated)))
    if backend is not None:
        raise _PassOver(
            f"its dependencies are known only by running a build backend ({backend}), and init "
            "runs no project code on this host: build a wheel of it (or publish it to an index) "
            "and require that, or declare the dependencies in its pyproject.toml"
        )
    argv = _image_command(start, notes)
    notes += _kept_step_warnings(start, code.workdir, code.mount.target)
    writers = _code_writers(start, code.workdir, code.mount.target)
    if writers:
        notes.append(
            f"code: {code.mount.target} belongs to the service's user (uid {APP_UID}) in the "
            f"image, not root, as {'; '.join(f'`{w}`' for w in writers)} write(s) into it "
            f"(writable_code in {CONFIG_NAME})"
        )
    port, port_source = infer_port(svc, start.argv, env, defining.path.parent)
    notes.append(f"port {port} from {port_source}" if port else "no port: a worker")
    health = _health_check(port, start, code, notes)
    runtime = tuple(
        dict.fromkeys((*table_runtime_packages(reqs, start.no_binary), *start.system_packages))
    )
    if start.system_packages:
        notes.append(
            "runtime packages: " + ", ".join(start.system_packages) + " (the command's "
            "apt-get install, now done when the image is built)"
        )
    network_mode = svc.get("network_mode")
    service = Service(
        name=name,
        source=_rel(code.mount.host, root),
        requirements=tuple(requirements),
        command=argv,
        workdir=code.workdir,
        port=port,
        health=health,
        runtime_packages=runtime,
        runtime_packages_source="table",
        python=_python_version(image),
        network_mode=str(network_mode) if network_mode else None,
        source_target=code.mount.target,
        constraints=tuple(constraints),
        no_binary=start.no_binary,
        groups=start.groups,
        package=start.package,
        writable_code=bool(writers),
    )
    drop = tuple(k for k in ("command", "working_dir", "entrypoint") if k in svc)
    data = _data_mounts(svc, code, env, root)
    notes += data.notes
    replace_check = _healthcheck_needs_a_tool(svc.get("healthcheck"))
    if replace_check:
        notes.append(
            f"healthcheck: its test runs {replace_check}, which the slim image lacks; "
            "replaced by the image's Python check"
        )
    return Finding(
        service=service,
        compose_file=defining.path,
        source_volume=code.mount.source,
        drop_keys=drop,
        requirement_files=closure,
        constraints=tuple(constraints),
        notes=tuple(notes),
        replace_healthcheck=bool(replace_check),
        generated=generated,
        system_packages=start.system_packages,
        data_volumes=data.entries,
        keep_code_mount=data.whole,
    )


def _simple_commands(script: str) -> list[list[str]]:
    """Each simple command of ``script`` as its words, then ``>`` and each file its output is
    redirected to (nothing for a script the parser cannot read)."""
    try:
        parsed = shell.parse(script)
    except shell.InvalidScript:
        return []
    return [
        [w.text for w in c.words] + [t for path in c.writes for t in (">", path)]
        for c in parsed.commands
        if c.words
    ]


def _data_mounts(
    svc: Mapping[str, Any], code: _Code, env: Mapping[str, str], root: Path
) -> datamounts.Kept:
    """What of the code mount stays: the folders the command or the app writes to, their
    sources written as the user wrote the mount's (relative to the project)."""
    script = _script_of(_interpolate_command(svc.get("command"), env))
    steps = [
        words
        for words in (_simple_commands(script.text) if script else [])
        if pip_args(words) is None and PurePosixPath(words[0]).name != "cd"
    ]
    variables = {k: interpolate(v, env) if v else v for k, v in environment(svc).items()}
    mount = datamounts.Mount(
        _shown(code.mount, root),
        code.mount.host,
        code.mount.target,
        datamounts.writable(svc.get("volumes"), code.mount.source),
    )
    return datamounts.kept(mount, datamounts.written_paths(steps, variables, code.workdir))


def _healthcheck_needs_a_tool(check: Any) -> str | None:
    """``curl``/``wget`` when a compose healthcheck's test calls one (slim images have neither)."""
    if not isinstance(check, Mapping) or check.get("disable"):
        return None
    test = check.get("test")
    words = shlex.split(test) if isinstance(test, str) else [str(w) for w in test or []]
    for word in " ".join(words).split():
        if PurePosixPath(word).name in ("curl", "wget"):
            return PurePosixPath(word).name
    return None


def with_runtime_packages(finding: Finding, packages: tuple[str, ...], source: str) -> Finding:
    return replace(
        finding,
        service=replace(finding.service, runtime_packages=packages, runtime_packages_source=source),
    )


# --- for the services built from their own Dockerfile ------------------------------------------

#: What a compose command installs at start and runs (see :func:`read_start`).
Start = _Start
#: A start command that cannot be turned into an image as written (the message says why).
PassOver = _PassOver


def read_start(command: Any, env: Mapping[str, str]) -> Start | None:
    """What a compose ``command`` does at start (its ``${VAR}`` resolved with ``env``):
    ``None`` unless it installs something and then runs Python; :class:`PassOver` when its
    script cannot be read, or its installs cannot be cut out of it."""
    return _parse_start(_interpolate_command(command, env))


def _convert_clause(names: Sequence[str]) -> str:
    """``; `wheeldock init --convert A,B` converts them anyway``, or ``""`` for no names."""
    if not names:
        return ""
    them = "it" if len(names) == 1 else "them"
    return f"; `wheeldock init --convert {','.join(names)}` converts {them} anyway"


def compose_argv(value: Any, env: Mapping[str, str]) -> tuple[str, ...] | None:
    """A compose ``entrypoint`` or ``command`` as the words compose runs (``${VAR}`` resolved
    with ``env``, a string split as compose splits it); ``None`` when it is not given.
    :class:`PassOver` when compose itself cannot split it."""
    if value is None:
        return None
    value = _interpolate_command(value, env)
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise _PassOver(f"it cannot be split into words ({exc}): {value!r}") from exc
    return tuple(str(word) for word in value)


def read_start_script(
    command: Any,
    env: Mapping[str, str],
    workdir: str,
    locate: Callable[[str], Path | None],
    args: Sequence[str] = (),
) -> Start | None:
    """What a compose ``command`` (or ``entrypoint``) that runs a shell script does at start
    (``./entrypoint.sh``, ``sh docker-entrypoint.sh``), the script read from the file
    ``locate`` gives for its absolute path in the container (``workdir``: where a relative
    one is); ``args``: what it is run with. ``None`` when the command runs no script,
    ``locate`` finds none, or the script installs nothing. :class:`PassOver` when its
    installs cannot be cut out, or the steps the image keeps use ``args`` in a way the
    image's command cannot give them."""
    name = _script_file_of(_interpolate_command(command, env))
    if name is None:
        return None
    path = locate(posixpath.normpath(posixpath.join(workdir, name)))
    if path is None or not path.is_file():
        return None
    start = _start_in_file(path, name)
    if start is None and args:
        # `exec "$@"`: the program is the one the words name, run by the script
        return _start_in_file(path, name, args)
    if start is None or not args:
        return start
    if not start.script and "$@" in start.argv:
        # the program alone is the script: its "$@" becomes the words, as the shell makes it
        at = start.argv.index("$@")
        return replace(start, argv=(*start.argv[:at], *args, *start.argv[at + 1 :]))
    if not start.script and any("$" in word for word in start.argv):
        raise _PassOver(
            f"its start script {name} runs {shlex.join(start.argv)} with the words its "
            f"command gives it ({shlex.join(args)}), which wheeldock does not carry into the "
            "image's command: run the program in the script as written, or install in the "
            "Dockerfile"
        )
    return replace(start, args=tuple(args))


def image_command(start: Start) -> tuple[str, ...]:
    """The command an image runs for ``start``: its program, or its shell with the other
    steps of its script (and the words the script was run with, as its ``$@``)."""
    if not start.script:
        return tuple(start.argv)
    given = (start.from_file or start.interpreter, *start.args) if start.args else ()
    return (start.interpreter, "-c", start.script, *given)
