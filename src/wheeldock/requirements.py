"""Requirements files as pip reads them: ``-r``/``-c`` includes followed, requirements parsed.

Kept apart from :mod:`wheeldock.discover` (compose files, commands) because ``build`` and
``lock`` need only this, on every run: it imports neither ruamel.yaml nor, unless asked to
parse, packaging's requirement parser.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from wheeldock.errors import InvalidConfig

if TYPE_CHECKING:
    from packaging.requirements import Requirement

log = logging.getLogger(__name__)


def option_values(args: list[str], short: str, long: str) -> list[str]:
    """The values of an option given as ``-r X``, ``-rX``, ``--requirement X`` or
    ``--requirement=X``."""
    values: list[str] = []
    it = iter(range(len(args)))
    for i in it:
        arg = args[i]
        if arg in (short, long) and i + 1 < len(args):
            values.append(args[i + 1])
            next(it, None)
        elif arg.startswith(long + "="):
            values.append(arg[len(long) + 1 :])
        elif arg.startswith(short) and len(arg) > len(short) and not arg.startswith("--"):
            values.append(arg[len(short) :])
    return values


def relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError as exc:
        raise InvalidConfig(
            f"{path} is outside the project folder {root}",
            path=path,
            fix="keep the code and requirement files inside the folder with the compose file "
            "(it is the build context)",
        ) from exc


def project_dependencies(path: Path, text: str | None = None) -> list[str]:
    """``[project].dependencies`` of a ``pyproject.toml`` (PEP 621), as uv reads them for
    ``-r pyproject.toml``. Refused, naming the fix, when they are not declared there statically
    (``dynamic``, or no ``[project]`` table: setup.py decides them)."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text() if text is None else text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidConfig(f"not valid TOML ({exc})", path=path, fix="fix its syntax") from exc
    project = data.get("project")
    if not isinstance(project, dict) or "dependencies" in (project.get("dynamic") or []):
        raise InvalidConfig(
            "the project's dependencies are not declared in its [project] table (setup.py or a "
            "build backend decides them), so they cannot be read without building it",
            path=path,
            fix="declare them as `dependencies = [...]` under [project], or list them in a "
            "requirements file and install that with `pip install -r`",
        )
    deps = project.get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise InvalidConfig(
            "[project].dependencies is not a list of strings",
            path=path,
            fix='write it as `dependencies = ["package>=1.0", ...]`',
        )
    return list(deps)


#: The lock file of a uv project (``uv sync``): a service's whole requirements when it is one.
UV_LOCK = "uv.lock"


def is_uv_lock(rel: str) -> bool:
    return rel == UV_LOCK or rel.endswith("/" + UV_LOCK)


_exported: dict[tuple[str, bytes], tuple[str, ...]] = {}


def uv_lock_requirements(path: Path) -> tuple[str, ...]:
    """The packages a uv project's ``uv.lock`` installs with ``uv sync --frozen --no-dev``, as
    pinned requirement lines (``name==version`` with their markers; the project itself left
    out: it runs from its source). ``uv export`` reads the lock, so its rules (markers, groups,
    extras) are uv's own; it needs the ``pyproject.toml`` beside the lock, and no network."""
    from wheeldock import process
    from wheeldock.errors import CommandFailed

    pyproject = path.parent / "pyproject.toml"
    if not pyproject.is_file():
        raise InvalidConfig(
            "a uv.lock with no pyproject.toml beside it",
            path=path,
            fix="keep the project's pyproject.toml next to its uv.lock (uv needs both)",
        )
    key = (str(path.resolve()), path.read_bytes() + b"\0" + pyproject.read_bytes())
    if key in _exported:
        return _exported[key]
    argv = [
        uv_bin(), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes",
        "--no-header", "--no-annotate", "--format", "requirements-txt",
    ]  # fmt: skip
    try:
        out = process.run(argv, cwd=path.parent).stdout
    except CommandFailed as exc:
        raise InvalidConfig(
            "uv could not read the lock: "
            + ((exc.stderr or exc.stdout).strip().splitlines() or ["no output"])[-1],
            path=path,
            fix="run `uv lock` in the project's folder, and keep uv.lock with its pyproject.toml",
        ) from exc
    lines = tuple(line.strip() for line in out.splitlines() if line.strip())
    local = [line for line in lines if line.startswith(("-e ", ".", "/")) or " @ file:" in line]
    if local:
        raise InvalidConfig(
            f"the lock installs local packages ({', '.join(local)}): a workspace member or a "
            "path dependency, which wheeldock cannot build into the dependency layers",
            path=path,
            fix="publish the package to an index, or depend on it by version",
        )
    _exported[key] = lines
    return lines


def uv_bin() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        from wheeldock import process

        return process.which("uv")
    return find_uv_bin()


def requirement_lines(root: Path, rel: str, text: str | None = None) -> list[str]:
    """The requirement lines a file holds as pip (or uv) reads it, for a tool given one list:
    a ``pyproject.toml``'s ``[project].dependencies``, a ``uv.lock``'s pinned packages, or the
    file's own lines (comments dropped; options and includes kept)."""
    path = root / rel
    if is_uv_lock(rel):
        return list(uv_lock_requirements(path))
    if path.suffix == ".toml":
        return project_dependencies(path, text)
    raw = path.read_text() if text is None else text
    lines = (line.split(" #", 1)[0].strip() for line in raw.replace("\\\n", " ").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def requirement_closure(
    root: Path,
    files: Iterable[str],
    *,
    parse: bool = True,
    overlay: Mapping[str, str] | None = None,
) -> tuple[tuple[str, ...], tuple[Requirement, ...]]:
    """Every file the requirement ``files`` read (``-r``/``-c`` followed, relative to the file
    that names them) and every requirement in them. Paths relative to ``root``, in reading order.
    A ``pyproject.toml`` gives its ``[project].dependencies`` and includes nothing.

    A missing file raises :class:`InvalidConfig` naming the file and line that refers to it.
    ``parse=False`` collects only the files (no requirement is parsed, and packaging's parser,
    slow to import, is not loaded: a build checking its lock's freshness needs only the files).
    ``overlay`` holds the text of files not written yet (``init`` plans before it writes).
    """
    seen: list[str] = []
    reqs: list[Requirement] = []
    pending = overlay or {}

    def add(line: str, path: Path, number: int) -> None:
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            reqs.append(Requirement(line.split(";")[0].strip() if "@" not in line else line))
        except InvalidRequirement:
            log.debug("%s:%d: not a requirement: %r", path, number, line)

    def visit(rel: str, referrer: tuple[Path, int] | None) -> None:
        if rel in seen:
            return
        path = root / rel
        if rel not in pending and not path.is_file():
            if referrer is None:
                raise InvalidConfig(
                    f"the requirements file {rel} does not exist",
                    path=path,
                    fix="check the `pip install -r` path in the compose command (it is relative to "
                    "the service's working_dir inside its code mount)",
                )
            raise InvalidConfig(
                f"line {referrer[1]}: includes {rel}, which does not exist",
                path=referrer[0],
                fix="fix the include path (it is relative to the including file)",
            )
        seen.append(rel)
        text = pending.get(rel)
        if is_uv_lock(rel):
            # uv reads the project's pyproject.toml with the lock (groups, the project's name)
            beside = relative(path.parent / "pyproject.toml", root)
            if beside not in seen:
                seen.append(beside)
            if parse:
                for line in uv_lock_requirements(path):
                    add(line, path, 0)
            return
        if path.suffix == ".toml":
            if parse:
                for dep in project_dependencies(path, text):
                    add(dep, path, 0)
            return
        for number, raw in enumerate((path.read_text() if text is None else text).splitlines(), 1):
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            words = line.split()
            for short, long in (("-r", "--requirement"), ("-c", "--constraint")):
                included = option_values(words, short, long)
                for inc in included:
                    visit(relative(path.parent / inc, root), (path, number))
            if line.startswith("-") or not parse:
                continue
            add(line, path, number)

    for f in files:
        visit(f, None)
    return tuple(seen), tuple(reqs)
