"""A service's own Dockerfile (``build:`` in compose): read with BuildKit's parser, its
dependency installs found, and the shape it has.

:func:`build_source` resolves a compose ``build:`` as compose and BuildKit do: the context,
the Dockerfile in it (``Dockerfile``, else a lowercase ``dockerfile``), the target stage and
the build arguments. :func:`parse` reads the file with the ``dockerfile`` package (BuildKit's
own Go parser: continuations, heredocs, flags); every instruction keeps its lines as written,
so what is not changed can be written back byte for byte. :func:`stage_installs` finds the
``RUN``s of a stage that install the dependencies: pip (``-r``, ``-c``, packages, ``.``), ``uv pip``,
``uv sync``, ``poetry install``, ``pipenv install --system --deploy``/``pipenv sync`` and
``pdm install``/``sync``, in shell or exec form, in ``&&`` chains and heredocs; the shell
text is read with :mod:`wheeldock.compose.shell`, so the steps that are not installs are kept
byte for byte. :func:`context_path` follows a file of the image back to the build context
through the stage's ``COPY``/``ADD`` and a ``RUN``'s bind mounts.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import Any

import dockerfile as buildkit

from wheeldock.compose import shell
from wheeldock.compose.survey import (
    PoetryExport,
    installs_tooling,
    is_local_path,
    pip_args,
    pip_targets,
    poetry_export,
    program_words,
    tool_step,
)
from wheeldock.deps.requirements import option_values
from wheeldock.edges.fsutil import decode
from wheeldock.errors import InvalidDockerfile

#: The stage init adds before the one that installs the dependencies.
WHEEL_STAGE = "wheeldock-deps"
#: Programs a ``RUN`` step may run to add system packages (build dependencies), which the
#: wheel stage repeats before it builds the wheels.
PACKAGE_MANAGERS = frozenset({"apt-get", "apt", "apk", "yum", "dnf", "microdnf", "rm"})


class NotConvertible(Exception):
    """A Dockerfile init cannot turn into a prebuilt-wheel build as it is: why, and where."""

    def __init__(self, why: str, line: int | None = None) -> None:
        super().__init__(why)
        self.why, self.line = why, line


# --- the build: section -------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildSource:
    """A compose ``build:`` resolved: absolute paths, the target stage and the build args."""

    context: Path
    dockerfile: Path
    target: str | None
    args: Mapping[str, str]
    shown: str = "Dockerfile"  # the Dockerfile as the project names it (``app/Dockerfile``)

    @property
    def key(self) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
        """What makes two services' builds the same build."""
        return (
            str(self.context),
            str(self.dockerfile),
            self.target or "",
            tuple(sorted(self.args.items())),
        )


def build_source(build: Any, project_dir: Path, env: Mapping[str, str]) -> BuildSource:
    """``build`` (a compose service's ``build:``, a path or a mapping) against ``project_dir``;
    a build argument without a value takes it from ``env`` (left out when not there), as
    compose does. :class:`NotConvertible` for a remote context or an inline Dockerfile."""
    spec: Mapping[str, Any] = {"context": build} if isinstance(build, str) else build or {}
    context = str(spec.get("context") or ".")
    if "://" in context or context.startswith("git@"):
        raise NotConvertible(f"its build context is remote ({context}): init reads local files")
    if spec.get("dockerfile_inline"):
        raise NotConvertible("its Dockerfile is inline (dockerfile_inline): give it a file")
    root = (project_dir / context).resolve()
    named = str(spec.get("dockerfile") or "Dockerfile")
    path = (root / named).resolve()
    if named == "Dockerfile" and not path.is_file() and (root / "dockerfile").is_file():
        path = root / "dockerfile"  # BuildKit's fallback
    target = spec.get("target")
    shown = os.path.relpath(path, project_dir.resolve())
    return BuildSource(root, path, str(target) if target else None, _build_args(spec, env), shown)


def _build_args(spec: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    raw = spec.get("args") or {}
    pairs: list[tuple[str, Any]] = (
        list(raw.items())
        if isinstance(raw, Mapping)
        else [(str(a).partition("=")[0], str(a).partition("=")[2] if "=" in str(a) else None)
              for a in raw]
    )  # fmt: skip
    args: dict[str, str] = {}
    for name, value in pairs:
        if value is None:
            if name in env:
                args[str(name)] = env[name]
        else:
            args[str(name)] = str(value)
    return args


# --- the Dockerfile -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One instruction: as the parser reads it, and its lines as written (``text``)."""

    cmd: str  # upper case
    flags: tuple[str, ...]
    value: tuple[str, ...]
    json: bool
    start_line: int  # 1-based, inclusive
    end_line: int
    text: str
    heredocs: tuple[tuple[str, str], ...] = ()  # (name, content)
    escape: str = "\\"  # the file's escape character (``# escape=`` directive)


@dataclass(frozen=True)
class Stage:
    """A ``FROM`` and the instructions up to the next one."""

    index: int
    name: str | None
    base: str  # as written (``python:${PY}-slim``, an earlier stage's name)
    image: str  # the build arguments expanded
    start: Instruction  # the FROM
    body: tuple[Instruction, ...]


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    text: str
    preamble: tuple[Instruction, ...]  # the ARGs before the first FROM
    stages: tuple[Stage, ...]
    args: Mapping[str, str]  # the global ARGs' values (defaults, then the build args)
    build_args: Mapping[str, str] = field(default_factory=dict)

    def declared(self, ins: Instruction, values: Mapping[str, str]) -> dict[str, str]:
        """The values an ``ARG`` inside a stage gives: the build arg's, else the global ARG's
        of that name when it has no default, else its default."""
        known = {**self.args, **values}
        out: dict[str, str] = {}
        for item in ins.value:
            name, eq, default = item.partition("=")
            if name in self.build_args:
                out[name] = self.build_args[name]
            elif eq:
                out[name] = expand(default.strip("\"'"), {**known, **out})
            elif name in self.args:
                out[name] = self.args[name]
        return out

    def stage(self, ref: str) -> Stage | None:
        """The stage named ``ref`` (or of index ``ref``), as ``FROM``/``COPY --from`` read it."""
        for stage in self.stages:
            if stage.name is not None and stage.name == ref.lower():
                return stage
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None

    def target(self, name: str | None) -> Stage:
        """The stage the build ends with: ``name``, else the last one."""
        if not self.stages:
            raise InvalidDockerfile("has no FROM", path=self.path, fix="start it with `FROM …`")
        if name is None:
            return self.stages[-1]
        found = self.stage(name)
        if found is None:
            names = ", ".join(s.name for s in self.stages if s.name) or "none"
            raise InvalidDockerfile(
                f"has no stage {name!r} (build.target; its stages: {names})",
                path=self.path,
                fix="set build.target to one of its stages",
            )
        return found

    def chain(self, stage: Stage) -> list[Stage]:
        """``stage`` and the stages it is built ``FROM``, itself first."""
        out = [stage]
        while (parent := self.stage(out[-1].image)) is not None and parent not in out:
            out.append(parent)
        return out


_VARIABLE = re.compile(r"\$(?:\{(\w+)(?:(:?[-+])([^}]*))?\}|(\w+))")


def expand(text: str, values: Mapping[str, str]) -> str:
    """``$NAME``, ``${NAME}``, ``${NAME:-word}``, ``${NAME-word}``, ``${NAME:+word}`` and
    ``${NAME+word}`` in ``text``, as BuildKit expands them (an unknown name is empty)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        operator, word = match.group(2), match.group(3) or ""
        value = values.get(name)
        if operator == ":-":
            return value if value else word
        if operator == "-":
            return value if value is not None else word
        if operator == ":+":
            return word if value else ""
        if operator == "+":
            return word if value is not None else ""
        return value or ""

    return _VARIABLE.sub(one, text)


def read(source: BuildSource) -> Dockerfile:
    """The Dockerfile of ``source``; :class:`InvalidDockerfile` when it is not there or
    BuildKit's parser refuses it."""
    if not source.dockerfile.is_file():
        raise InvalidDockerfile(
            "does not exist",
            path=source.dockerfile,
            fix="fix build.dockerfile (relative to build.context) in the compose file",
        )
    text = decode(source.dockerfile.read_bytes(), source.dockerfile)
    return parse(text, source.dockerfile, source.args)


def parse(text: str, path: Path, build_args: Mapping[str, str]) -> Dockerfile:
    """``text`` (the Dockerfile at ``path``) read with BuildKit's parser, the global ARGs
    given their defaults and then ``build_args``."""
    try:
        commands = buildkit.parse_string(text)
    except buildkit.GoParseError as exc:
        raise InvalidDockerfile(
            f"BuildKit's parser cannot read it: {exc}", path=path, fix="fix its syntax"
        ) from exc
    lines = text.splitlines(keepends=True)
    escape = _escape(lines)
    instructions = [_instruction(c, lines, escape) for c in commands]
    preamble: list[Instruction] = []
    args: dict[str, str] = {}
    stages: list[Stage] = []
    body: list[Instruction] = []
    for ins in instructions:
        if ins.cmd == "FROM":
            if stages:
                stages[-1] = _with_body(stages[-1], body)
            stages.append(_stage(len(stages), ins, args))
            body = []
        elif stages:
            body.append(ins)
        else:
            preamble.append(ins)
            if ins.cmd == "ARG":
                args.update(_declared(ins, args, build_args))
    if stages:
        stages[-1] = _with_body(stages[-1], body)
    return Dockerfile(path, text, tuple(preamble), tuple(stages), args, dict(build_args))


_ESCAPE = re.compile(r"^#\s*escape\s*=\s*(\S)\s*$", re.IGNORECASE)


def _escape(lines: Sequence[str]) -> str:
    """The escape character the parser directives at the top of the file set."""
    for line in lines:
        if not line.startswith("#"):
            break
        match = _ESCAPE.match(line.strip())
        if match:
            return match.group(1)
    return "\\"


def _instruction(command: Any, lines: Sequence[str], escape: str) -> Instruction:
    return Instruction(
        cmd=command.cmd.upper(),
        flags=tuple(command.flags),
        value=tuple(command.value),
        json=bool(command.json),
        start_line=command.start_line,
        end_line=command.end_line,
        text="".join(lines[command.start_line - 1 : command.end_line]),
        heredocs=tuple((h.name, h.content) for h in command.heredocs),
        escape=escape,
    )


def _with_body(stage: Stage, body: list[Instruction]) -> Stage:
    return Stage(stage.index, stage.name, stage.base, stage.image, stage.start, tuple(body))


def _stage(index: int, ins: Instruction, args: Mapping[str, str]) -> Stage:
    value = list(ins.value)
    name = value[2].lower() if len(value) == 3 and value[1].upper() == "AS" else None
    return Stage(index, name, value[0], expand(value[0], args), ins, ())


def _declared(
    ins: Instruction, known: Mapping[str, str], build_args: Mapping[str, str]
) -> dict[str, str]:
    """The values an ``ARG`` gives: the build arg's when one is given, else its default."""
    out: dict[str, str] = {}
    for item in ins.value:
        name, eq, default = item.partition("=")
        if name in build_args:
            out[name] = build_args[name]
        elif eq:
            out[name] = expand(default.strip("\"'"), {**known, **out})
    return out


# --- the installs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Install:
    """A ``RUN`` that installs the dependencies: what it installs, in the container's paths
    (relative to ``folder``, where its steps run), and what of it is kept (``kept``: the
    ``RUN`` less its install steps, as written; ``""`` when nothing is left)."""

    stage: Stage
    instruction: Instruction
    folder: str
    requirements: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    no_binary: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    locked: tuple[tuple[str, str], ...] = ()  # (tool, folder)
    selects: tuple[str, ...] = ()  # what a lock install selects beyond the runtime packages
    groups: tuple[str, ...] = ()
    kept: str = ""
    #: the system-package steps the ``RUN`` takes before its first install (build
    #: dependencies, and the ``set`` and variables they use), which the wheel stage repeats;
    #: not those after it (a purge of the same packages)
    build_steps: str = ""
    dev: bool = False  # a lock install that took the development packages too
    #: where pip was told to take the packages from (``-i``, ``--extra-index-url``,
    #: ``--find-links``, ``--trusted-host``), as uv's options
    index: tuple[str, ...] = ()
    package: str | None = None  # the uv workspace member installed (``--package``)
    #: wheel files it installs (``/wheels/*``, ``dist/app-1.0-py3-none-any.whl``): built
    #: elsewhere, by another stage's ``pip wheel`` or before the build
    wheels: tuple[str, ...] = ()
    #: pip was told ``--no-index``: it takes every package from the ``--find-links``
    #: folders (kept in ``wheels``), wheels built apart
    no_index: bool = False

    @property
    def cached(self) -> bool:
        """Whether the install keeps its downloads in a BuildKit cache mount."""
        return any(f.startswith("--mount=") and "type=cache" in f for f in self.instruction.flags)


@dataclass
class _Found:
    """What the readers of one ``RUN`` have found so far."""

    here: str
    values: Mapping[str, str]  # the ARG and ENV values the shell sees
    line: int = 0  # where the RUN starts
    assigned: frozenset[str] = frozenset()  # the variables the RUN's script sets itself
    requirements: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    no_binary: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    locked: list[tuple[str, str]] = field(default_factory=list)
    selects: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    package: str | None = None
    dev: bool = False
    index: list[str] = field(default_factory=list)  # where from, as uv's options
    wheels: list[str] = field(default_factory=list)
    no_index: bool = False
    cut: set[int] = field(default_factory=set)
    others: list[str] = field(default_factory=list)  # the programs of the steps kept

    def path(self, written: str) -> str:
        """A path a step names, its variables expanded, in the container."""
        return under(self.here, expand(written, self.values))


_PIP_OR_PYTHON = re.compile(r"^(pip|python)(3(\.\d+)?)?$")


def under(here: str, path: str) -> str:
    """``path`` as seen from the folder ``here`` (itself when absolute)."""
    return path if path.startswith("/") else posixpath.normpath(posixpath.join(here, path))


#: pip's options naming where packages come from, and uv's for the same.
_INDEX_OPTIONS = {
    ("-i", "--index-url"): "--index-url",
    ("--extra-index-url", "--extra-index-url"): "--extra-index-url",
    ("-f", "--find-links"): "--find-links",
    ("--trusted-host", "--trusted-host"): "--allow-insecure-host",
}


def _read_pip(found: _Found, index: int, args: list[str]) -> None:
    targets, editables = pip_targets(args)
    if installs_tooling(targets, editables):
        found.others.append("pip")
        return
    found.cut.add(index)
    found.requirements += [found.path(r) for r in option_values(args, "-r", "--requirement")]
    found.constraints += [found.path(c) for c in option_values(args, "-c", "--constraint")]
    for value in option_values(args, "--no-binary", "--no-binary"):
        found.no_binary += [v for v in value.split(",") if v and v != ":none:"]
    for (short, long), uv in _INDEX_OPTIONS.items():
        found.index += [
            f"{uv} {shlex.quote(expand(v, found.values))}" for v in option_values(args, short, long)
        ]
    if "--no-index" in args:
        found.no_index = True
        found.wheels += [found.path(v) for v in option_values(args, "-f", "--find-links")]
    for target in [*targets, *editables]:
        if "://" not in target and _is_wheel_file(target) and target not in editables:
            found.wheels.append(found.path(target))
        elif "://" not in target and (is_local_path(target) or target in editables):
            found.projects.append(found.path(target))
        else:
            found.packages.append(target)


def _is_wheel_file(target: str) -> bool:
    """A wheel file, or a glob of them (``/wheels/*``: the shell expands it to files)."""
    return target.endswith(".whl") or (is_local_path(target) and any(c in target for c in "*?["))


def _read_step(found: _Found, index: int, words: list[str]) -> None:
    """One simple command of a ``RUN``: an install is recorded and cut, ``cd`` followed."""
    program = PurePosixPath(words[0]).name
    if _installs(program, words):
        words = _install_words(found, words)
    # a venv's own pip or python (``/venv/bin/pip``) installs as well as the image's
    args = pip_args([program, *words[1:]] if _PIP_OR_PYTHON.match(program) else words)
    if args is not None:
        _read_pip(found, index, args)
        return
    step = tool_step(words)
    if step is not None and step.folder is not None and not step.run:
        found.cut.add(index)
        found.locked.append((step.tool, under(found.here, step.folder)))
        found.selects += step.selects
        found.groups += step.groups
        found.package = expand(step.package, found.values) if step.package else found.package
        found.dev = found.dev or (step.dev and not _told_no_dev(step.tool, found.values))
        return
    if program == "cd" and len(words) == 2:
        found.here = under(found.here, words[1])
    found.others.append(program)


def _installs(program: str, words: list[str]) -> bool:
    if pip_args([program, *words[1:]] if _PIP_OR_PYTHON.match(program) else words) is not None:
        return True
    step = tool_step(words)
    return step is not None and step.folder is not None and not step.run


def _install_words(found: _Found, words: list[str]) -> list[str]:
    """An install step's words with the ARG and ENV values the shell sees, a word that is a
    variable alone split as the shell splits it (``uv sync $UV_OPTIONS``);
    :class:`NotConvertible` when one is a variable the script sets as it runs (what the
    install takes is then known only in the build)."""
    named = [m.group(1) or m.group(4) for w in words for m in _VARIABLE.finditer(w)]
    made = [n for n in dict.fromkeys(named) if n in found.assigned]
    if made:
        raise NotConvertible(
            f"its install `{' '.join(words)}` takes "
            f"{', '.join('$' + n for n in made)}, which the RUN sets as it runs: wheeldock "
            "cannot tell what it installs; write the options (or files) out in the install",
            found.line,
        )
    out: list[str] = []
    for word in words:
        value = expand(word, found.values)
        out += value.split() if _VARIABLE.fullmatch(word) else [value]
    return out


#: A shell variable a script sets: ``NAME=…``, ``for NAME in``, ``read … NAME``.
_ASSIGNED = re.compile(r"(?:^|[\s;&|(])(\w+)\+?=|\bfor\s+(\w+)\s+in\b|\bread\s+(?:-\w+\s+)*(\w+)")


def _assigned(script: str) -> frozenset[str]:
    return frozenset(n for m in _ASSIGNED.finditer(script) for n in m.groups() if n)


def _told_no_dev(tool: str, values: Mapping[str, str]) -> bool:
    """Whether the stage's ``ENV``/``ARG`` tell ``uv sync`` to leave the development packages
    out (``UV_NO_DEV=1``, as uv's own Docker example does), as ``--no-dev`` would."""
    return tool == "uv" and values.get("UV_NO_DEV", "").strip().lower() in _TRUE


#: The values uv reads as true in a boolean environment variable.
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})


def run_script(ins: Instruction) -> str:
    """The shell text a ``RUN`` runs: its heredoc, its exec form's ``sh -c`` script (or its
    argv joined), else its text after ``RUN`` and the flags, as written but for the comment
    lines inside its continuation (BuildKit drops them before the shell sees the text)."""
    if ins.heredocs and ins.value[:1] and ins.value[0].startswith("<<"):
        return ins.heredocs[0][1]
    if ins.json:
        argv = list(ins.value)
        if len(argv) == 3 and PurePosixPath(argv[0]).name in ("sh", "bash") and argv[1] == "-c":
            return argv[2]
        return shlex.join(argv)
    if ins.escape != "\\":
        return ins.value[0] if ins.value else ""  # the parser's joined text: not the shell's
    lines = ins.text.splitlines(keepends=True)
    text = "".join([*lines[:1], *(line for line in lines[1:] if not line.lstrip().startswith("#"))])
    rest = re.sub(r"^\s*RUN\b", "", text, count=1, flags=re.IGNORECASE)
    for flag in ins.flags:
        stripped = re.sub(r"^(?:\s|\\\n)*", "", rest)
        if not stripped.startswith(flag):
            return ins.value[0] if ins.value else ""
        rest = stripped[len(flag) :]
    return re.sub(r"^(?:\s|\\\n)*", "", rest).rstrip()


def _read_run(
    ins: Instruction, stage: Stage, here: str, values: Mapping[str, str]
) -> Install | None:
    """The install ``ins`` does, or ``None``; :class:`NotConvertible` when its installs cannot
    be cut out of it."""
    script = run_script(ins)
    try:
        parsed = shell.parse(script)
    except shell.InvalidScript as exc:
        if re.search(r"\b(pip|uv|poetry|pipenv|pdm)\b", script):
            raise NotConvertible(
                f"its RUN is not shell syntax wheeldock reads: {exc}", ins.start_line
            ) from exc
        return None
    found = _Found(here, values, ins.start_line, _assigned(script))
    for command in parsed.commands:
        words = program_words([w.text for w in command.words])
        if words:
            _refuse_nested(words, ins, found)
            _read_step(found, command.index, words)
    if not found.cut:
        return None
    try:
        kept = parsed.without(found.cut).text.strip()
        if set(found.others) <= {"cd", "set"}:
            kept = ""  # what is left only moved or set the shell up for the install
    except shell.UncuttableStep as exc:
        raise NotConvertible(
            f"its install step {exc}, which wheeldock cannot take out without changing what "
            "the rest does: give the install a RUN (or an `&&` step) of its own",
            ins.start_line,
        ) from exc
    return Install(
        stage,
        ins,
        here,
        tuple(found.requirements),
        tuple(found.constraints),
        tuple(found.no_binary),
        tuple(found.packages),
        tuple(found.projects),
        tuple(dict.fromkeys(found.locked)),
        tuple(dict.fromkeys(found.selects)),
        tuple(dict.fromkeys(found.groups)),
        kept,
        build_steps=_build_steps(parsed, min(found.cut)),
        package=found.package,
        dev=found.dev,
        index=tuple(dict.fromkeys(found.index)),
        wheels=tuple(found.wheels),
        no_index=found.no_index,
    )


def _build_steps(parsed: shell.Script, first_install: int) -> str:
    """The system-package steps of a ``RUN`` before its first install (``set -ex``, the
    variables they read and the ``if`` blocks that cannot be cut stay with them), or ``""``
    when there are none."""
    setup = {
        c.index
        for c in parsed.commands
        if c.index < first_install and _program(c) in (*PACKAGE_MANAGERS, "set")
    }
    if not any(_program(c) in PACKAGE_MANAGERS for c in parsed.commands if c.index in setup):
        return ""
    cut = {c.index for c in parsed.commands if c.index not in setup and not c.holder}
    try:
        return parsed.without(
            cut | {c.index for c in parsed.commands if c.index >= first_install}
        ).text.strip()
    except shell.UncuttableStep:
        return ""


def _program(command: shell.Command) -> str:
    words = program_words([w.text for w in command.words])
    return PurePosixPath(words[0]).name if words else ""


#: An install step, as a word in a script that wheeldock does not read step by step.
_INSTALL_STEP = re.compile(r"\b(pip[\d.]*|uv( pip)?|poetry|pipenv|pdm)\s+(install|sync)\b")


def _refuse_nested(words: Sequence[str], ins: Instruction, found: _Found) -> None:
    """:class:`NotConvertible` for an install in a script a step hands to another shell
    (``bash -c "if …; then poetry install; fi"``): it would be read as installing nothing.
    The script is read as a RUN's own steps are (``pip install --upgrade pip`` is no install)."""
    if PurePosixPath(words[0]).name not in ("sh", "bash", "ash", "dash", "zsh"):
        return
    for script in (w for flag, w in pairwise(words) if re.match(r"^-\w*c", flag)):
        match = _INSTALL_STEP.search(script)
        if match is None or not _script_installs(script, found):
            continue
        raise NotConvertible(
            f"its install (`{match.group(0)} …`) is in a script run by `{words[0]} -c`, which "
            f"wheeldock does not take apart: make it a step of the RUN itself "
            f"(`RUN {match.group(0)} …`), not of a `{words[0]} -c` script",
            ins.start_line,
        )


def _script_installs(script: str, found: _Found) -> bool:
    """Whether a script (in a RUN where ``found`` was read so far) installs dependencies;
    true when it cannot be read."""
    try:
        commands = shell.parse(script).commands
    except shell.InvalidScript:
        return True
    probe = _Found(found.here, found.values)
    for command in commands:
        words = program_words([w.text for w in command.words])
        if words:
            _read_step(probe, command.index, words)
    return bool(probe.cut)


def _start_workdir(stage: Stage, df: Dockerfile) -> str:
    parent = df.stage(stage.image)
    if parent is None or parent.index >= stage.index:
        return "/"
    return workdir_at(parent, parent.body[-1].end_line + 1 if parent.body else 0, df)


def stage_installs(stage: Stage, df: Dockerfile) -> list[Install]:
    """The dependency installs of ``stage``, in order."""
    here = _start_workdir(stage, df)
    values: dict[str, str] = {}
    installs: list[Install] = []
    for ins in stage.body:
        if ins.cmd == "ARG":
            values.update(df.declared(ins, values))
        elif ins.cmd == "ENV":
            values.update(_env_values(ins, values))
        elif ins.cmd == "WORKDIR" and ins.value:
            here = under(here, expand(ins.value[0], values))
        elif ins.cmd == "RUN":
            install = _read_run(ins, stage, here, dict(values))
            if install is not None:
                installs.append(install)
    return installs


def env_pairs(ins: Instruction) -> list[tuple[str, str]]:
    """An ``ENV``'s names and values as written (BuildKit's parser gives them in turn, for
    ``ENV A=1 B=2`` and the old ``ENV A 1`` alike), quotes left off."""
    items = list(ins.value)
    return [
        (name, value.strip("\"'")) for name, value in zip(items[::2], items[1::2], strict=False)
    ]


def _env_values(ins: Instruction, values: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in env_pairs(ins):
        out[name] = expand(value, {**values, **out})
    return out


def workdir_at(stage: Stage, line: int, df: Dockerfile) -> str:
    """The working folder at ``line`` of ``stage`` (before any WORKDIR: the one of the stage
    it is built from, else ``/``)."""
    here = _start_workdir(stage, df)
    values: dict[str, str] = {}
    for ins in stage.body:
        if ins.start_line >= line:
            break
        if ins.cmd in ("ARG", "ENV"):
            values.update(
                df.declared(ins, values) if ins.cmd == "ARG" else _env_values(ins, values)
            )
        if ins.cmd == "WORKDIR" and ins.value:
            here = under(here, expand(ins.value[0], values))
    return here


# --- the context ----------------------------------------------------------------------------------


def _bind_targets(ins: Instruction) -> dict[str, str]:
    """The files a ``RUN --mount=type=bind`` puts in the container: target → source."""
    out: dict[str, str] = {}
    for flag in ins.flags:
        if not flag.startswith("--mount="):
            continue
        options = dict(o.partition("=")[::2] for o in flag.removeprefix("--mount=").split(","))
        if options.get("type") == "bind" and "from" not in options:
            source = options.get("source") or options.get("src") or "."
            target = options.get("target") or options.get("dst") or options.get("destination")
            if target:
                out[target] = source
    return out


def context_path(
    path: str, stage: Stage, before: Instruction | None, source: BuildSource, df: Dockerfile
) -> str | None:
    """The context file a container ``path`` is at ``before`` (``None``: once the stage is
    built): through that RUN's bind mounts, else the last ``COPY``/``ADD`` from the context
    that put it there."""
    line = before.start_line if before is not None else stage.start.start_line + 10**9
    for target, src in (_bind_targets(before) if before is not None else {}).items():
        target = under(workdir_at(stage, line, df), target)
        found = _copied(path, [src], target, source.context, single_file=True)
        if found is not None:
            return found
    copies = [
        ins
        for ins in stage.body
        if ins.cmd in ("COPY", "ADD")
        and ins.start_line < line
        and not ins.heredocs
        and not any(f.startswith("--from=") for f in ins.flags)
        and len(ins.value) >= 2
    ]
    for ins in reversed(copies):
        *sources, dest = ins.value
        at = under(workdir_at(stage, ins.start_line, df), dest)
        dir_dest = dest.endswith("/") or len(sources) > 1 or dest in (".", "./")
        found = _copied(path, sources, at, source.context, single_file=not dir_dest)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class ExportedLock:
    """A requirements file made in the build: the ``poetry export`` (its ``RUN``, in another
    stage) that wrote it from ``lock``, a ``poetry.lock`` of the context (relative)."""

    lock: str
    export: PoetryExport
    run: Instruction


def exported_lock(
    path: str, stage: Stage, before: Instruction, source: BuildSource, df: Dockerfile
) -> ExportedLock | None:
    """What made the container file ``path`` at ``before`` when the last ``COPY`` that put it
    there copies it ``--from`` a stage whose ``poetry export`` wrote it from a ``poetry.lock``
    copied from the context (FastAPI's recipe for Poetry); ``None`` otherwise."""
    copies = [
        ins
        for ins in stage.body
        if ins.cmd in ("COPY", "ADD") and ins.start_line < before.start_line and len(ins.value) >= 2
    ]
    for ins in reversed(copies):
        *sources, dest = ins.value
        at = under(workdir_at(stage, ins.start_line, df), dest)
        into_folder = dest.endswith("/") or len(sources) > 1 or dest in (".", "./")
        put = [
            s for s in sources if (under(at, posixpath.basename(s)) if into_folder else at) == path
        ]
        if not put:
            continue
        ref = next((f.split("=", 1)[1] for f in ins.flags if f.startswith("--from=")), None)
        other = df.stage(ref) if ref else None
        return None if other is None else _export_of(other, under("/", put[-1]), source, df)
    return None


def _export_of(stage: Stage, path: str, source: BuildSource, df: Dockerfile) -> ExportedLock | None:
    """The ``poetry export`` of ``stage`` that writes ``path`` (``-o`` or ``>``), and the
    context's ``poetry.lock`` it read."""
    for ins in reversed([i for i in stage.body if i.cmd == "RUN"]):
        try:
            commands = shell.parse(run_script(ins)).commands
        except shell.InvalidScript:
            continue
        here = workdir_at(stage, ins.start_line, df)
        for command in commands:
            words = program_words([w.text for w in command.words])
            export = poetry_export(words) if words else None
            if export is None:
                continue
            written = [export.output] if export.output else list(command.writes)
            if path in (under(here, w) for w in written):
                folder = under(here, export.folder)
                lock = context_path(under(folder, "poetry.lock"), stage, ins, source, df)
                return None if lock is None else ExportedLock(lock, export, ins)
    return None


def _copied(
    path: str, sources: Sequence[str], dest: str, context: Path, *, single_file: bool
) -> str | None:
    """The context file (relative) that copying ``sources`` to ``dest`` puts at ``path``
    (a source may be a folder, whose contents are copied, or a glob)."""
    for src in sources:
        rel = posixpath.normpath(src.lstrip("/")) if src.strip("/") else "."
        if (context / rel).is_dir():
            if path == dest or path.startswith(dest.rstrip("/") + "/"):
                inner = path[len(dest.rstrip("/")) :].lstrip("/")
                return posixpath.normpath(posixpath.join(rel, inner))
            continue
        if single_file and not _GLOB.search(rel) and path == dest:
            return rel
        folder, name = posixpath.split(path)
        if folder == dest.rstrip("/") and fnmatch.fnmatchcase(name, posixpath.basename(rel)):
            return posixpath.join(posixpath.dirname(rel), name)
    return None


_GLOB = re.compile(r"[*?\[]")
