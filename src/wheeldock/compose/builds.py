"""What ``init`` makes of the services built from their own Dockerfile (``build:``).

:func:`read_service` reads a service's Dockerfile (:mod:`wheeldock.compose.userdockerfile`)
into a :class:`Reading`: the stage that installs the dependencies, its installs, and the files
they read, found in the build context through the stage's ``COPY``s; or says why it cannot be
converted (:class:`~wheeldock.compose.userdockerfile.NotConvertible`, with the line), or that
it already builds its dependencies apart from its code. :func:`with_start` moves what the
compose ``entrypoint``/``command`` install at every start (a script of the context they run
too) into the same build. :func:`survey_builds` does it
for every such service of a stack, the services sharing one build together.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wheeldock.compose.survey import (
    PassOver,
    Start,
    compose_argv,
    image_command,
    read_start,
    read_start_script,
)
from wheeldock.compose.userdockerfile import (
    BuildSource,
    Dockerfile,
    Install,
    Instruction,
    NotConvertible,
    Stage,
    build_source,
    context_path,
    exported_lock,
    read,
    stage_installs,
    under,
    workdir_at,
)
from wheeldock.deps.requirements import lock_of_tool, requirement_closure
from wheeldock.errors import InvalidConfig

#: Files a ``COPY`` before the install may bring without bringing the code.
DEPENDENCY_FILES = re.compile(
    r"^(requirements[\w.-]*\.(txt|in)|constraints[\w.-]*\.txt|pyproject\.toml|setup\.cfg|"
    r"uv\.lock|poetry\.lock|poetry\.toml|Pipfile|Pipfile\.lock|pdm\.lock|README[\w.]*)$"
)


def is_dependency_file(source: str) -> bool:
    """Whether a ``COPY`` source names dependency files only (a glob too: ``poetry.lock*``)."""
    return bool(DEPENDENCY_FILES.match(re.sub(r"[*?]", "", posixpath.basename(source.rstrip("/")))))


@dataclass(frozen=True)
class Reading:
    """A service's Dockerfile as init reads it: the stage that installs, its installs, and
    the files they read (relative to the build context). ``command``: the image's command when
    the compose ``command`` installed at start too (its installs then join the stage's)."""

    source: BuildSource
    dockerfile: Dockerfile
    stage: Stage  # the stage whose RUNs install the dependencies
    installs: tuple[Install, ...]
    requirements: tuple[str, ...]  # ``-r`` files, a lock or a pyproject.toml
    constraints: tuple[str, ...]
    packages: tuple[str, ...]  # named inline (``pip install flask``)
    no_binary: tuple[str, ...]
    groups: tuple[str, ...]
    notes: tuple[str, ...]
    prebuilt: str | None = None  # why it already builds its dependencies apart from its code
    command: tuple[str, ...] = ()
    package: str | None = None  # the uv workspace member the install installs
    #: the compose service's ``entrypoint`` and ``command`` as the words compose runs
    #: (``None``: not given), which override the Dockerfile's ENTRYPOINT and CMD
    entrypoint: tuple[str, ...] | None = None
    compose_command: tuple[str, ...] | None = None
    #: the compose keys ``command`` was read from (``command``, or ``entrypoint`` and the
    #: ``command`` compose runs it with): the patch drops them
    start_keys: tuple[str, ...] = ()

    @property
    def index(self) -> tuple[str, ...]:
        """Where the installs take the packages from, as uv's options."""
        return tuple(dict.fromkeys(o for i in self.installs for o in i.index))

    def where(self, ins: Instruction) -> str:
        """Where ``ins`` is, as the project names the file (``app/Dockerfile:7``)."""
        return f"{self.source.shown}:{ins.start_line}"

    def runs(
        self, entrypoint: tuple[str, ...] | None, cmd: tuple[str, ...] | None
    ) -> tuple[str, ...]:
        """What a container of the converted image runs under compose, given the target
        stage's ENTRYPOINT and CMD, as docker compose makes it: a compose ``entrypoint``
        replaces the ENTRYPOINT and drops the CMD, a compose ``command`` replaces the CMD; the
        command left once its installs moved into the image replaces what it was read from."""
        if self.command:
            return (
                self.command
                if "entrypoint" in self.start_keys
                else (*(entrypoint or ()), *self.command)
            )
        if self.entrypoint is not None:
            return (*self.entrypoint, *(self.compose_command or ()))
        given = self.compose_command if self.compose_command is not None else cmd
        return (*(entrypoint or ()), *(given or ()))

    @property
    def start_key(self) -> str:
        """The compose key the start was read from, to name it (``command``)."""
        return self.start_keys[0] if self.start_keys else "command"


def read_service(source: BuildSource, *, none: bool = False, convert: bool = False) -> Reading:
    """What init makes of the Dockerfile of ``source``; :class:`NotConvertible` (with the
    line) when it cannot be turned into a prebuilt-wheel build, :class:`InvalidDockerfile`
    when it cannot be read. With ``none``, a Dockerfile that installs nothing is read as its
    target stage with no installs (its compose command may install at start). A Dockerfile
    that already builds its dependencies apart is read as ``prebuilt`` (why); with ``convert``
    :class:`NotConvertible` when it could not be converted either."""
    df = read(source)
    target = df.target(source.target)
    if target.start.escape != "\\":
        raise NotConvertible(
            f"its escape directive (`# escape={target.start.escape}`) is not the backslash "
            "wheeldock writes its own steps with",
            1,
        )
    chain = df.chain(target)
    for stage in chain:
        installs = stage_installs(stage, df)
        if installs and all(_wheels_only(i) for i in installs):
            return _installs_wheels(source, df, stage, installs, convert)
        if installs:
            return _reading(source, df, stage, installs)
    copied = _copied_stage_with_installs(df, chain)
    if copied is not None:
        stage, ins = copied
        why = (
            f"installs its dependencies in the stage {stage.name or stage.index} and copies "
            f"them into the image ({source.shown}:{ins.start_line})"
        )
        installs = stage_installs(stage, df)
        try:
            return replace(_reading(source, df, stage, installs), prebuilt=why)
        except NotConvertible:
            if convert:
                raise
            return Reading(source, df, stage, tuple(installs), (), (), (), (), (), (), why)
    if none:
        return Reading(source, df, target, (), (), (), (), (), (), ())
    raise _installs_nothing(target)


def _wheels_only(install: Install) -> bool:
    """Whether ``install`` takes wheels built apart alone: wheel files, or (``--no-index``)
    whatever its requirements name from its ``--find-links`` folders."""
    named = install.packages or install.projects or install.locked
    return bool(install.wheels) and not named and (install.no_index or not install.requirements)


def _installs_wheels(
    source: BuildSource, df: Dockerfile, stage: Stage, installs: list[Install], convert: bool
) -> Reading:
    """A stage whose installs take wheel files alone (``pip install /wheels/*`` of the wheels a
    builder stage's ``pip wheel`` made): its dependencies are already built apart."""
    first = installs[0]
    where = f"{source.shown}:{first.instruction.start_line}"
    if convert:
        raise NotConvertible(
            f"it installs wheel files alone ({', '.join(first.wheels)}), built apart from its "
            "code: there is nothing for init to build",
            first.instruction.start_line,
        )
    why = f"installs wheels built apart from its code ({where}: {', '.join(first.wheels)})"
    return Reading(source, df, stage, tuple(installs), (), (), (), (), (), (), why)


def _installs_nothing(target: Stage) -> NotConvertible:
    return NotConvertible(
        f"its stage {target.name or f'#{target.index}'} (`FROM {target.image}`) installs no "
        "dependencies with pip, uv, "
        "poetry, pipenv or pdm, and its compose command installs none at start",
        target.start.start_line,
    )


def _copied_stage_with_installs(
    df: Dockerfile, chain: Sequence[Stage]
) -> tuple[Stage, Instruction] | None:
    """A stage with installs whose result the built stages ``COPY --from``, and that COPY."""
    for stage in chain:
        for ins in stage.body:
            ref = next((f.split("=", 1)[1] for f in ins.flags if f.startswith("--from=")), None)
            other = df.stage(ref) if ins.cmd == "COPY" and ref else None
            if other is not None and stage_installs(other, df):
                return other, ins
    return None


def _reading(source: BuildSource, df: Dockerfile, stage: Stage, installs: list[Install]) -> Reading:
    notes: list[str] = []
    requirements: list[str] = []
    constraints: list[str] = []
    installs = [_exported(install, df, source, requirements, notes) for install in installs]
    for install in installs:
        _refuse(install, df)
        requirements += _context_files(install, install.requirements, df, source)
        constraints += _context_files(install, install.constraints, df, source)
        requirements += _project_files(install, df, source, notes)
        requirements += _lock_files(install, df, source)
    packages = tuple(p for i in installs for p in i.packages)
    dev = [i for i in installs if i.dev]
    if dev:
        notes.append(
            f"requirements: the development packages are left out of the image (its install "
            f"at {source.shown}:{dev[0].instruction.start_line} took them too); make what the "
            "service needs at run time the project's own packages"
        )
    no_dev = next((i for i in installs if not i.dev and any(t == "uv" for t, _ in i.locked)), None)
    if no_dev is not None:
        notes.append(
            "command: a `uv run` in the image (its CMD, a script it runs) runs in the venv as "
            "it is, without syncing at start: the development group the install at "
            f"{source.shown}:{no_dev.instruction.start_line} leaves out is not added then"
        )
    if packages:
        notes.append(f"requirements: {' '.join(packages)} (named in the RUN), installed as named")
    member = next((i for i in installs if i.package), None)
    if member is not None:
        notes.append(
            f"requirements: the dependencies of the workspace member {member.package} "
            f"({source.shown}:{member.instruction.start_line}: `uv sync --package "
            f"{member.package}`); the workspace's members run from their source"
        )
    reading = Reading(
        source,
        df,
        stage,
        tuple(installs),
        tuple(dict.fromkeys(requirements)),
        tuple(dict.fromkeys(constraints)),
        packages,
        tuple(dict.fromkeys(n for i in installs for n in i.no_binary)),
        tuple(dict.fromkeys(g for i in installs for g in i.groups)),
        tuple(notes),
        package=next((i.package for i in installs if i.package), None),
    )
    why = _already_prebuilt(reading)
    return reading if why is None else replace(reading, prebuilt=why)


def _exported(
    install: Install, df: Dockerfile, source: BuildSource, requirements: list[str], notes: list[str]
) -> Install:
    """``install`` as a ``poetry install`` of the groups a ``poetry export`` in another stage
    took, when its one requirements file is that export's (the lock joins ``requirements``,
    with a note); as it is otherwise. :class:`NotConvertible` for an export of extras."""
    if len(install.requirements) != 1 or install.packages or install.projects or install.locked:
        return install
    container = under(install.folder, install.requirements[0])
    if context_path(container, install.stage, install.instruction, source, df) is not None:
        return install
    found = exported_lock(container, install.stage, install.instruction, source, df)
    if found is None:
        return install
    export = f"{source.shown}:{found.run.start_line}"
    if found.export.selects:
        raise NotConvertible(
            f"its requirements file {container} is a `poetry export` ({export}) that takes "
            f"{', '.join(found.export.selects)}: make those packages the project's own",
            install.instruction.start_line,
        )
    if not (source.context / found.lock).is_file():
        raise NotConvertible(
            f"its requirements file {container} is a `poetry export` ({export}) of "
            f"{found.lock}, which is not in the build context: lock the project (`poetry "
            "lock`) and keep the lock with it",
            install.instruction.start_line,
        )
    requirements.append(found.lock)
    notes.append(
        f"requirements: {found.lock}, which the `poetry export` at {export} turns into the "
        f"{container} this install reads ({', '.join(found.export.groups or ('main',))})"
    )
    return replace(install, requirements=(), groups=found.export.groups)


def _refuse(install: Install, df: Dockerfile) -> None:
    """:class:`NotConvertible` for an install init does not stand in for."""
    line = install.instruction.start_line
    if install.selects:
        raise NotConvertible(
            f"its install takes more than the project's runtime packages "
            f"({', '.join(install.selects)}): make those packages the project's own",
            line,
        )
    if len(install.locked) > 1 or (
        install.locked and (install.requirements or install.packages or install.projects)
    ):
        raise NotConvertible(
            "it installs from a lock file and also with pip (or two projects): a lock file is "
            "the whole of a service's requirements",
            line,
        )
    urls = [p for p in install.packages if "://" in p]
    if urls:
        raise NotConvertible(
            f"it installs {urls[0]} from a URL: name it in a requirements file (`name @ URL`)",
            line,
        )


def _located(install: Install, path: str, df: Dockerfile, source: BuildSource, what: str) -> str:
    """The context file (relative) of the container ``path`` an install reads;
    :class:`NotConvertible` when it is not from the context."""
    container = under(install.folder, path)
    rel = context_path(container, install.stage, install.instruction, source, df)
    if rel is None or rel.startswith(".."):
        raise NotConvertible(
            f"its {what} {container} is not copied from the build context before the install",
            install.instruction.start_line,
        )
    if not (source.context / rel).exists():
        raise NotConvertible(
            f"its {what} {rel} is not in the build context ({source.context})",
            install.instruction.start_line,
        )
    return rel


def _context_files(
    install: Install, paths: Sequence[str], df: Dockerfile, source: BuildSource
) -> list[str]:
    return [_located(install, p, df, source, "requirements file") for p in paths]


def _project_files(
    install: Install, df: Dockerfile, source: BuildSource, notes: list[str]
) -> list[str]:
    """The pyproject.toml of each local project the install installs (``pip install .``)."""
    out: list[str] = []
    for project in install.projects:
        pyproject = _located(
            install,
            posixpath.join(project, "pyproject.toml"),
            df,
            source,
            "project's pyproject.toml",
        )
        out.append(pyproject)
        notes.append(
            f"requirements: the dependencies of {pyproject}; the project itself runs from its "
            "source (it is not installed: its console scripts are not made)"
        )
    return out


def _lock_files(install: Install, df: Dockerfile, source: BuildSource) -> list[str]:
    out: list[str] = []
    for tool, folder in install.locked:
        kind = lock_of_tool(tool)
        lock = _located(
            install, posixpath.join(folder, kind.filename), df, source, f"{tool} lock file"
        )
        out.append(lock)
    return out


def _already_prebuilt(reading: Reading) -> str | None:
    """Why the Dockerfile already installs its dependencies apart from its code, worded to
    follow "its Dockerfile already": every install keeps its downloads in a cache mount and
    only dependency files are copied in before it. ``None`` when it does not."""
    if not all(i.cached for i in reading.installs):
        return None
    first = reading.installs[0].instruction.start_line
    for ins in reading.stage.body:
        if ins.start_line >= first:
            break
        from_context = not any(f.startswith("--from=") for f in ins.flags)
        if (
            ins.cmd in ("COPY", "ADD")
            and from_context
            and not all(is_dependency_file(s) for s in ins.value[:-1])
        ):
            return None
    # read after "its Dockerfile already", as the other reason is
    return (
        f"keeps the downloads of its install ({reading.where(reading.installs[0].instruction)}) "
        "in a cache mount and copies in only the dependency files before it"
    )


# --- every service built from a Dockerfile -------------------------------------------------------


@dataclass(frozen=True)
class Built:
    """A service built from its own Dockerfile that init converts: what it read, every file
    the install reads (includes too, relative to the context), and the services that share
    its build (the same context, Dockerfile, target and args: one generated Dockerfile)."""

    name: str
    reading: Reading
    requirement_files: tuple[str, ...]
    shared_with: tuple[str, ...] = ()

    @property
    def shape(self) -> str:
        return "own Dockerfile + install at start" if self.reading.command else "own Dockerfile"


@dataclass(frozen=True)
class BuildSurvey:
    built: tuple[Built, ...]
    left_alone: tuple[str, ...]  # "name (why)": already prebuilt
    passed_over: tuple[str, ...]  # "name (file:line: why)"
    #: the services left alone that have nothing to gain from init (no install at start)
    prebuilt: tuple[str, ...] = ()
    #: those of them ``--convert`` converts (not those installing wheel files alone)
    convertible: tuple[str, ...] = ()
    #: the services passed over, or left alone though they install at start, for a reason of
    #: their own (given in ``passed_over``/``left_alone``)
    own_reasons: tuple[str, ...] = ()
    #: those of them ``--convert`` converts (left alone, installing at start)
    convert_anyway: tuple[str, ...] = ()


def survey_builds(
    services: Mapping[str, Mapping[str, Any]],
    names: Sequence[str],
    project_dir: Path,
    env: Mapping[str, str],
    convert: Collection[str] = (),
) -> BuildSurvey:
    """What init makes of each service of ``names`` (those with a ``build:`` section); one
    whose Dockerfile already builds its dependencies apart from its code is left alone unless
    ``convert`` names it."""
    built: dict[tuple[Any, ...], Built] = {}
    left_alone: list[str] = []
    passed_over: list[str] = []
    prebuilt: list[str] = []
    own_reasons: list[str] = []
    convert_anyway: list[str] = []
    wheels_only: set[str] = set()
    for name in names:
        svc = services[name]
        try:
            source = build_source(svc.get("build"), project_dir, env)
            reading = with_start(read_service(source, none=True, convert=name in convert), svc, env)
            # a service whose image runs another command has an image of its own; others share
            key = (*source.key, name) if reading.command else source.key
            if key in built:
                first = built[key]
                built[key] = Built(
                    first.name, first.reading, first.requirement_files, (*first.shared_with, name)
                )
                continue
            if not reading.installs and not reading.command:
                raise _installs_nothing(reading.stage)
            if reading.prebuilt is not None and name not in convert:
                left_alone.append(_left_alone(name, reading))
                if all(_wheels_only(i) for i in reading.installs):
                    wheels_only.add(name)
                if reading.command:
                    own_reasons.append(name)
                    convert_anyway += [] if name in wheels_only else [name]
                else:
                    prebuilt.append(name)
                continue
            built[key] = Built(name, reading, _closure(reading))
        except NotConvertible as exc:
            passed_over.append(f"{name} ({_where(exc, svc, project_dir, env)}{exc.why})")
            own_reasons.append(name)
        except InvalidConfig as exc:
            passed_over.append(f"{name} ({exc.path.name + ': ' if exc.path else ''}{exc.what})")
            own_reasons.append(name)
    return BuildSurvey(
        tuple(built.values()),
        tuple(left_alone),
        tuple(passed_over),
        tuple(prebuilt),
        tuple(n for n in prebuilt if n not in wheels_only),
        tuple(own_reasons),
        tuple(convert_anyway),
    )


def _left_alone(name: str, reading: Reading) -> str:
    if reading.command:
        return (
            f"{name} (its Dockerfile already {reading.prebuilt}, but its compose "
            f"{reading.start_key} installs at every start: install that in the Dockerfile too)"
        )
    if all(_wheels_only(i) for i in reading.installs):
        return f"{name} (its Dockerfile already {reading.prebuilt}: left as it is)"
    return (
        f"{name} (its Dockerfile already {reading.prebuilt}: left as it is; "
        f"`wheeldock init --convert {name}` converts it anyway)"
    )


def _where(
    exc: NotConvertible, svc: Mapping[str, Any], project_dir: Path, env: Mapping[str, str]
) -> str:
    if exc.line is None:
        return ""
    source = build_source(svc.get("build"), project_dir, env)
    return f"{source.shown}:{exc.line}: "


def _closure(reading: Reading) -> tuple[str, ...]:
    """Every file the install reads (``-r``/``-c`` includes, a lock's manifest), relative to
    the context; :class:`InvalidConfig` naming a missing include."""
    files, _ = requirement_closure(
        reading.source.context,
        (*reading.requirements, *reading.constraints),
        groups=reading.groups,
        package=reading.package,
    )
    return files


def with_start(reading: Reading, svc: Mapping[str, Any], env: Mapping[str, str]) -> Reading:
    """``reading`` with the service's compose ``entrypoint`` and ``command``, and what they
    install at every start moved into the build (its files found in the context through the
    target stage's ``COPY``s), and the command the image then runs; a script they run from the
    context (``./entrypoint.sh``) is read as theirs. As it is but for the compose values when
    they install nothing. :class:`NotConvertible` when that install cannot be moved."""
    df = reading.dockerfile
    target = df.target(reading.source.target)
    workdir = str(svc.get("working_dir") or workdir_at(target, 10**9, df))
    keys = tuple(k for k in ("entrypoint", "command") if svc.get(k) is not None)
    key = keys[0] if keys else "command"
    try:
        entrypoint = compose_argv(svc.get("entrypoint"), env)
        command = compose_argv(svc.get("command"), env)
        reading = replace(reading, entrypoint=entrypoint, compose_command=command)
        start = _compose_start(reading, entrypoint, command, env, workdir)
    except PassOver as exc:
        raise NotConvertible(f"its compose {key}: {exc}") from exc
    if start is None:
        return reading
    synced = _synced_already(reading, start, workdir)
    if synced is not None:
        # the image's venv holds that project's dependencies, and `uv run` is told to run in
        # it without syncing (converted.UV_RUN_LINES): the command stays as it is
        return replace(
            reading,
            notes=(
                *reading.notes,
                f"command: its `uv run` syncs the project its Dockerfile installs ({synced}); "
                "it runs in the venv of prebuilt wheels as it is, without syncing at start",
            ),
        )
    if start.locked or start.projects:
        raise NotConvertible(
            f"its compose {key} installs a project at start (uv sync, poetry install, pip "
            "install .) on top of its Dockerfile: install it in the Dockerfile instead"
        )
    requirements = [_in_image(r, workdir, df, target, reading.source) for r in start.requirements]
    constraints = [_in_image(c, workdir, df, target, reading.source) for c in start.constraints]
    command_run = image_command(start)
    read_from = f", read from {start.from_file}" if start.from_file else ""
    notes = (
        *reading.notes,
        f"command: its compose {key}'s installs at start "
        f"({', '.join(start.requirements + start.packages)}{read_from}) are done when the image "
        f"is built; the image runs {shlex.join(command_run)}",
    )
    return replace(
        reading,
        requirements=tuple(dict.fromkeys((*reading.requirements, *requirements))),
        constraints=tuple(dict.fromkeys((*reading.constraints, *constraints))),
        packages=tuple(dict.fromkeys((*reading.packages, *start.packages))),
        no_binary=tuple(dict.fromkeys((*reading.no_binary, *start.no_binary))),
        notes=notes,
        command=command_run,
        start_keys=keys if "entrypoint" in keys else ("command",),
    )


def _compose_start(
    reading: Reading,
    entrypoint: tuple[str, ...] | None,
    command: tuple[str, ...] | None,
    env: Mapping[str, str],
    workdir: str,
) -> Start | None:
    """What the compose service runs at start, as compose makes it (its ``entrypoint`` and
    the ``command`` given to it, else its ``command``): read as a script, else the script
    file it runs from the context (its ``command`` then that script's words)."""
    runs = entrypoint if entrypoint is not None else command
    if not runs:
        return None
    whole = [*runs, *(command or ())] if entrypoint is not None else list(runs)
    args = (command or ()) if entrypoint is not None else ()
    return read_start(whole, env) or read_start_script(
        list(runs), env, workdir, lambda path: _context_file(path, reading), args
    )


def _context_file(container: str, reading: Reading) -> Path | None:
    """The context file the image has at the path ``container``, through the ``COPY``s of the
    target stage and those it is built on; ``None`` when none copies it from the context."""
    df = reading.dockerfile
    for stage in df.chain(df.target(reading.source.target)):
        rel = context_path(container, stage, None, reading.source, df)
        if rel is not None and not rel.startswith(".."):
            path = reading.source.context / rel
            if path.is_file():
                return path
    return None


def _synced_already(reading: Reading, start: Start, workdir: str) -> str | None:
    """Where the Dockerfile installs the one project a start command's ``uv run`` syncs on its
    own (``uv sync`` of the same folder: the sync at start finds it done); ``None`` when the
    command installs anything else, or another project. :class:`NotConvertible` when the
    ``uv run`` would add the development group the build left out."""
    if not start.run_syncs_only or start.selects or len(start.locked) != 1:
        return None
    tool, folder = start.locked[0]
    wanted = (tool, posixpath.normpath(under(workdir, folder)))
    install = next(
        (
            i
            for i in reading.installs
            for done_tool, done_folder in i.locked
            if (done_tool, posixpath.normpath(under(i.folder, done_folder))) == wanted
        ),
        None,
    )
    if install is None:
        return None
    if start.run_takes_dev and not install.dev:
        raise NotConvertible(
            "its compose command's `uv run` installs the development group at every start, "
            f"which its Dockerfile's `uv sync` ({reading.where(install.instruction)}) leaves "
            "out: give the `uv run` `--no-dev`, or install the group in the Dockerfile"
        )
    return reading.where(install.instruction)


def _in_image(path: str, workdir: str, df: Dockerfile, target: Stage, source: BuildSource) -> str:
    """The context file a requirements file the start command names is copied from."""
    container = under(workdir, path)
    for stage in df.chain(target):
        rel = context_path(container, stage, None, source, df)
        if rel is not None and not rel.startswith("..") and (source.context / rel).is_file():
            return rel
    raise NotConvertible(
        f"its compose command installs {container} at start, which its Dockerfile does not "
        "copy from the build context"
    )
