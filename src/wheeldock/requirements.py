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
