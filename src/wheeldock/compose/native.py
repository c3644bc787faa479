"""Whether the native builder can carry out a service's own Dockerfile (pure).

The native builder runs no container: it builds on wheeldock's bases (Debian's Python 3.11 or 3.13),
puts the dependencies from the lock into a venv layer, the code folder into a layer of its own,
and writes the image's config. A Dockerfile is carried out natively when every instruction of
the stage the image is built from is one it can do that way: ``FROM`` a Python image of the
Debian release wheeldock's bases carry (``python:3.11``, ``-slim``, ``-bookworm``; ``python:3.13``,
``-slim``, ``-trixie``), ``ARG``, ``ENV``, ``WORKDIR``,
``EXPOSE``, ``CMD``, ``ENTRYPOINT``, ``SHELL``, ``COPY`` of the dependency files and of one
code folder, the dependency installs, and ``apt-get install`` of runtime packages.
:func:`verdict` gives the :class:`~wheeldock.project.Service` for such a file, or names every
other instruction with its line and why.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wheeldock.compose import shell
from wheeldock.compose.builds import Built, is_dependency_file
from wheeldock.compose.survey import installs_tooling, pip_args, pip_targets, program_words
from wheeldock.compose.userdockerfile import Install, Instruction, env_pairs, expand, run_script
from wheeldock.project import Service

#: The images whose Python and Debian the native builder's bases carry: bookworm's 3.11 and
#: trixie's 3.13 (group ``python``).
_USABLE = re.compile(
    r"^(?:docker\.io/)?(?:library/)?python:(?:(?P<python>3\.11)(?:\.\d+)?(?:-slim)?(?:-bookworm)?"
    r"|(?P<trixie>3\.13)(?:\.\d+)?(?:-slim)?(?:-trixie)?)$"
)
_NO_CONTAINER = "the native builder runs no container"
#: apt-get's subcommands a runtime-package step may run, and the caches it may remove.
_APT_STEPS = frozenset({"update", "install", "clean", "autoremove"})
_APT_CACHES = ("/var/lib/apt/lists", "/var/cache/apt")
#: Packages a Dockerfile installs to build wheels, not to run them: the native builder builds
#: in its own builder base, and the runtime libraries the wheels link are found by the scan.
_BUILD_ONLY = re.compile(
    r"^(?:.*-dev|gcc(?:-\d+)?|g\+\+(?:-\d+)?|build-essential|make|cmake|pkg-config|clang|"
    r"cargo|rustc)$"
)


@dataclass
class _Final:
    """What the native image gets from the stage, instruction after instruction."""

    where: Callable[[Instruction], str]
    installs: dict[int, Install]
    values: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    port: int | None = None
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    shell: tuple[str, ...] = ("/bin/sh", "-c")
    code: tuple[str, str] | None = None  # (context folder, where it goes)
    packages: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)

    def block(self, ins: Instruction, why: str) -> None:
        text = " ".join(ins.text.split())
        shown = text if len(text) <= 60 else text[:57] + "..."
        self.blockers.append(f"{self.where(ins)}: `{shown}` ({why})")


def _argv(ins: Instruction, final: _Final) -> tuple[str, ...]:
    return tuple(ins.value) if ins.json else (*final.shell, " ".join(ins.value))


def _arg(final: _Final, ins: Instruction) -> None:
    for item in ins.value:
        name, eq, default = item.partition("=")
        if eq:
            final.values[name] = expand(default.strip("\"'"), final.values)


def _env(final: _Final, ins: Instruction) -> None:
    for name, value in env_pairs(ins):
        final.env[name] = expand(value, {**final.values, **final.env})


def _workdir(final: _Final, ins: Instruction) -> None:
    path = expand(ins.value[0], {**final.values, **final.env})
    final.workdir = posixpath.normpath(posixpath.join(final.workdir, path))


def _expose(final: _Final, ins: Instruction) -> None:
    port = ins.value[0].split("/")[0] if ins.value else ""
    if final.port is None and port.isdigit():
        final.port = int(port)


def _cmd(final: _Final, ins: Instruction) -> None:
    final.cmd = _argv(ins, final)


def _entrypoint(final: _Final, ins: Instruction) -> None:
    final.entrypoint = _argv(ins, final)
    final.cmd = None  # an ENTRYPOINT resets the CMD set before it


def _shell(final: _Final, ins: Instruction) -> None:
    final.shell = tuple(ins.value)


def _copy(final: _Final, ins: Instruction) -> None:
    if any(f.startswith(("--from=", "--chown=", "--chmod=", "--link")) for f in ins.flags):
        final.block(ins, "the native builder copies from the context, as root, without flags")
        return
    *sources, dest = ins.value
    if ins.cmd == "ADD" and any("://" in s or ".tar" in s for s in sources):
        final.block(ins, "an ADD that downloads or unpacks")
        return
    if all(is_dependency_file(s) for s in sources):
        return  # the dependency files: the native builder reads them from the project
    if final.code is not None or len(sources) != 1:
        final.block(ins, "the native builder copies one code folder")
        return
    target = posixpath.normpath(posixpath.join(final.workdir, dest))
    final.code = (posixpath.normpath(sources[0].lstrip("/") or "."), target)


def _run(final: _Final, ins: Instruction) -> None:
    install = final.installs.get(ins.start_line)
    if install is not None and not install.kept:
        return
    script = install.kept if install is not None else run_script(ins)
    packages = _apt_packages(script)
    if packages is None:
        final.block(ins, f"it runs a program: {_NO_CONTAINER}")
    else:
        final.packages += packages


def _apt_packages(script: str) -> list[str] | None:
    """The packages a step of ``apt-get update``/``install``/``rm -rf /var/lib/apt/lists``
    adds, or ``None`` when it runs anything else than those and the tools of the installs
    (``pip install poetry``, ``poetry config …``), which the native build has no use for."""
    try:
        commands = shell.parse(script).commands
    except shell.InvalidScript:
        return None
    packages: list[str] = []
    for command in commands:
        words = program_words([w.text for w in command.words])
        program = posixpath.basename(words[0]) if words else ""
        if program in ("apt-get", "apt") and len(words) > 1 and words[1] in _APT_STEPS:
            if words[1] == "install":
                packages += [
                    w for w in words[2:] if not w.startswith("-") and not _BUILD_ONLY.match(w)
                ]
        elif not (_removes_caches(program, words) or _tooling(words)):
            return None
    return packages


def _removes_caches(program: str, words: list[str]) -> bool:
    return program == "rm" and all(w.startswith(("-", *_APT_CACHES)) for w in words[1:])


def _tooling(words: list[str]) -> bool:
    """``pip install poetry``, ``pip install -U pip``, ``poetry config …``, ``pdm config …``."""
    args = pip_args(words)
    if args is not None:
        return installs_tooling(*pip_targets(args))
    return posixpath.basename(words[0]) in ("poetry", "pdm") and words[1:2] == ["config"]


def _unsupported(why: str) -> Callable[[_Final, Instruction], None]:
    def block(final: _Final, ins: Instruction) -> None:
        final.block(ins, why)

    return block


_HANDLERS: dict[str, Callable[[_Final, Instruction], None]] = {
    "ARG": _arg,
    "ENV": _env,
    "WORKDIR": _workdir,
    "EXPOSE": _expose,
    "CMD": _cmd,
    "ENTRYPOINT": _entrypoint,
    "SHELL": _shell,
    "COPY": _copy,
    "ADD": _copy,
    "RUN": _run,
    "USER": _unsupported("the native image runs as wheeldock's app user, uid 10001"),
    "HEALTHCHECK": _unsupported("the native image's health check is wheeldock's own"),
    "LABEL": _unsupported("the native builder writes no labels of yours"),
}


@dataclass(frozen=True)
class Verdict:
    """A Dockerfile service's native build: its settings, or what stands in the way."""

    service: Service | None
    blockers: tuple[str, ...]

    @property
    def why(self) -> str:
        return "; ".join(self.blockers)


def verdict(built: Built, root: Path) -> Verdict:
    """Whether the native builder can carry out ``built``'s Dockerfile (``root``: the project
    folder, which the service's paths are relative to)."""
    reading = built.reading
    df = reading.dockerfile
    target = df.target(reading.source.target)
    final = _Final(
        reading.where,
        {i.instruction.start_line: i for i in reading.installs if i.stage is target},
    )
    if df.stage(target.image) is not None:
        final.block(target.start, "it is built from another stage of the file")
    elif not _USABLE.match(target.image):
        final.block(
            target.start,
            "the native builder builds on wheeldock's bases: Debian's Python 3.11 (bookworm) "
            "or 3.13 (trixie)",
        )
    if reading.stage is not target:
        final.block(reading.installs[0].instruction, "an install in another stage")
    if reading.packages:
        final.block(reading.installs[0].instruction, "packages named inline: the lock reads files")
    for ins in target.body:
        _HANDLERS.get(ins.cmd, _unsupported(f"{ins.cmd} is not one the native builder does"))(
            final, ins
        )
    # compose's entrypoint and command override the stage's, as docker compose does
    command = reading.runs(final.entrypoint, final.cmd)
    if not command:
        final.block(
            target.start,
            "no CMD or ENTRYPOINT, nor a compose command or entrypoint: the image's command "
            "is its base's",
        )
    if final.code is None:
        final.block(target.start, "no COPY of the code")
    if final.blockers or final.code is None:
        return Verdict(None, tuple(final.blockers))
    return Verdict(_service(built, root, final, command), ())


def _python_of(image: str) -> str:
    """The Python of a usable base image (:data:`_USABLE`)."""
    match = _USABLE.match(image)
    assert match is not None
    return match["python"] or match["trixie"]


def _service(built: Built, root: Path, final: _Final, command: tuple[str, ...]) -> Service:
    reading = built.reading
    context = reading.source.context
    assert final.code is not None

    def rel(path: str) -> str:
        return os.path.relpath(context / path, root.resolve()).replace(os.sep, "/")

    source, target = final.code
    return Service(
        name=built.name,
        source=rel(source),
        requirements=tuple(rel(r) for r in reading.requirements),
        command=command,
        workdir=final.workdir,
        port=final.port,
        health="tcp" if final.port is not None else "process",
        env=dict(final.env),
        runtime_packages=tuple(dict.fromkeys(final.packages)),
        runtime_packages_source="table",
        python=_python_of(reading.dockerfile.target(reading.source.target).image),
        source_target=target,
        constraints=tuple(rel(c) for c in reading.constraints),
        no_binary=reading.no_binary,
        groups=reading.groups,
        package=reading.package,
    )
