"""Requirements files as pip reads them: ``-r``/``-c`` includes followed, requirements parsed.

Kept apart from :mod:`wheeldock.compose.survey` (compose files, commands) because ``build`` and
``lock`` need only this, on every run: it imports neither ruamel.yaml nor, unless asked to
parse, packaging's requirement parser.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from wheeldock.deps import pdm, poetry
from wheeldock.edges.fsutil import decode, read_text
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
        data = tomllib.loads(read_text(path) if text is None else text)
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


@dataclass(frozen=True)
class ProjectLock:
    """A package manager's lock file, which is a service's whole requirements when it installs
    from one (``uv sync``, ``poetry install``, ``pipenv sync``): its runtime packages, pinned."""

    filename: str  # ``uv.lock``
    manifest: str  # the file the tool reads with it (``pyproject.toml``, ``Pipfile``)
    tool: str
    installs: str  # the install wheeldock stands in for
    relock: str  # how its user makes the lock again


LOCK_FILES = (
    ProjectLock("uv.lock", "pyproject.toml", "uv", "uv sync --frozen --no-dev", "uv lock"),
    ProjectLock(
        "poetry.lock", "pyproject.toml", "poetry", "poetry install --only main", "poetry lock"
    ),
    ProjectLock("Pipfile.lock", "Pipfile", "pipenv", "pipenv sync", "pipenv lock"),
    ProjectLock("pdm.lock", "pyproject.toml", "pdm", "pdm sync --prod", "pdm lock"),
)
#: The tools whose locks wheeldock reads groups from, and the group each installs by default.
DEFAULT_GROUP = {"poetry": "main", "pdm": pdm.DEFAULT}


def lock_of_tool(tool: str) -> ProjectLock:
    return next(kind for kind in LOCK_FILES if kind.tool == tool)


def project_lock(rel: str) -> ProjectLock | None:
    """The kind of lock file ``rel`` is (by its name), or None for a requirements file."""
    name = rel.rpartition("/")[2]
    return next((kind for kind in LOCK_FILES if kind.filename == name), None)


def locked_requirements(
    path: Path, groups: Sequence[str] = (), package: str | None = None
) -> tuple[str, ...]:
    """The packages a project's lock file installs, as pinned requirement lines
    (``name==version`` and the marker the lock gives it), the project itself left out (it runs
    from its source). What each tool installs without its development packages:

    - ``uv.lock``: ``uv export`` (uv's own reading, no network) of ``uv sync --no-dev``, or
      of ``uv sync --no-dev --package <package>`` for a workspace member (the workspace's
      members themselves left out: they run from their source);
    - ``poetry.lock``: the packages of the ``main`` group, or of ``groups`` when given (what
      ``poetry install --only <groups>`` installs; :mod:`wheeldock.deps.poetry`);
    - ``Pipfile.lock``: its ``default`` packages;
    - ``pdm.lock``: the packages of the ``default`` group, or of ``groups`` when given (what
      ``pdm sync --prod`` or ``pdm sync -G <group>`` installs; :mod:`wheeldock.deps.pdm`).
    """
    kind = project_lock(path.name)
    assert kind is not None, path
    manifest = path.parent / kind.manifest
    if not manifest.is_file():
        raise InvalidConfig(
            f"a {kind.filename} with no {kind.manifest} beside it",
            path=path,
            fix=f"keep the project's {kind.manifest} next to its {kind.filename} "
            f"({kind.tool} needs both)",
        )
    if groups and kind.tool not in DEFAULT_GROUP:
        raise InvalidConfig(
            f"groups ({', '.join(groups)}) are chosen for a {kind.filename}, and wheeldock "
            "selects groups in Poetry and PDM locks only",
            path=path,
            fix="remove `groups` from the service in wheeldock.toml",
        )
    if package is not None and kind.tool != "uv":
        raise InvalidConfig(
            f"a workspace member ({package}) is chosen for a {kind.filename}: only uv's "
            "workspaces are read",
            path=path,
            fix="remove `package` from the service in wheeldock.toml",
        )
    content = path.read_bytes() + b"\0" + manifest.read_bytes()
    lines = _exported(kind.tool, path, manifest, content, (tuple(groups), package))
    local = [
        line for line in lines if line.startswith(("-e ", ".", "/")) or " @ " in line.split(";")[0]
    ]
    if local:
        raise InvalidConfig(
            f"the lock installs packages from a path or URL ({', '.join(local)}): a "
            "workspace member, a path or a VCS dependency, which wheeldock cannot build "
            "into the dependency layers",
            path=path,
            fix="publish the package to an index, and depend on it by version",
        )
    return lines


def workspace_manifests(pyproject: Path) -> list[Path]:
    """The ``pyproject.toml`` of each member of the uv workspace whose root is ``pyproject``
    (``[tool.uv.workspace]``'s ``members`` globs less its ``exclude``), in path order: uv reads
    them all with the workspace's lock."""
    import tomllib

    try:
        data = tomllib.loads(read_text(pyproject))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise InvalidConfig(
            f"not valid TOML ({exc})", path=pyproject, fix="fix its syntax"
        ) from exc
    workspace = data.get("tool", {}).get("uv", {}).get("workspace") or {}
    root = pyproject.parent
    excluded = {p for pattern in workspace.get("exclude") or [] for p in root.glob(str(pattern))}
    found = {
        folder / "pyproject.toml"
        for pattern in workspace.get("members") or []
        for folder in root.glob(str(pattern))
        if folder not in excluded and (folder / "pyproject.toml").is_file()
    }
    return sorted(found)


@cache
def _exported(
    tool: str,
    path: Path,
    manifest: Path,
    content: bytes,
    selection: tuple[tuple[str, ...], str | None],
) -> tuple[str, ...]:
    """What ``tool``'s lock at ``path`` installs (``groups`` of a Poetry lock: main by
    default; of a PDM lock: default), its bytes (and its manifest's) being ``content``: a function of that content, so
    it is kept by it and cannot go stale (a lock or manifest edited since is another key). Not
    kept when the reader raises. ``selection``: the groups, and the uv workspace member."""
    groups, package = selection
    if tool == "uv":
        return _uv_export(path, package)
    if tool == "poetry":
        return poetry.locked_pins(path, manifest, groups or ("main",))
    if tool == "pdm":
        return pdm.locked_pins(path, groups or (pdm.DEFAULT,))
    return _pipfile_default(path)


def _uv_export(path: Path, package: str | None = None) -> tuple[str, ...]:
    from wheeldock.edges import process
    from wheeldock.errors import CommandFailed

    argv = [
        uv_bin(),
        "export",
        "--frozen",
        "--no-dev",
        *(["--package", package, "--no-emit-workspace"] if package else ["--no-emit-project"]),
        "--no-hashes",
        "--no-header",
        "--no-annotate",
        "--format",
        "requirements-txt",
    ]
    try:
        out = process.run(argv, cwd=path.parent).stdout
    except CommandFailed as exc:
        raise InvalidConfig(
            "uv could not read the lock: "
            + ((exc.stderr or exc.stdout).strip().splitlines() or ["no output"])[-1],
            path=path,
            fix="run `uv lock` in the project's folder, and keep uv.lock with its pyproject.toml",
        ) from exc
    return tuple(line.strip() for line in out.splitlines() if line.strip())


def _pipfile_default(path: Path) -> tuple[str, ...]:
    import json

    try:
        default = json.loads(read_text(path))["default"]
        assert isinstance(default, dict)
    except (ValueError, KeyError, TypeError, AssertionError, UnicodeDecodeError) as exc:
        raise InvalidConfig(
            f"not a Pipfile.lock ({exc!r})", path=path, fix="run `pipenv lock`"
        ) from exc
    lines = []
    for name, spec in sorted(default.items()):
        if not isinstance(spec, dict) or "version" not in spec:
            where = spec.get("path") or spec.get("git") or spec.get("file") or "?"
            lines.append(f"{name} @ {where}" if isinstance(spec, dict) else f"{name} @ ?")
            continue
        extras = spec.get("extras") or []
        line = f"{name}{'[' + ','.join(extras) + ']' if extras else ''}{spec['version']}"
        lines.append(f"{line} ; {spec['markers']}" if spec.get("markers") else line)
    return tuple(lines)


def uv_bin() -> str:
    """The uv wheeldock runs: its ``uv`` dependency's binary, else uv on PATH."""
    try:
        from uv import find_uv_bin
    except ImportError:
        from wheeldock.edges import process

        return process.which("uv")
    return find_uv_bin()


#: The byte order marks pip honours in a requirements file, longest first (UTF-32's starts
#: like UTF-16's), and the codec each announces.
_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)


def read_requirements_text(path: Path) -> str:
    """A requirements file's text as pip decodes it: in the encoding its byte order mark
    names (a file saved as UTF-16 by a Windows editor), else as UTF-8."""
    data = path.read_bytes()
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise InvalidConfig(
                    f"starts with a {codec} byte order mark, but byte {exc.start + len(bom)} "
                    f"is not {codec} ({exc.reason})",
                    path=path,
                    fix="save the file again in one encoding (UTF-8 is best)",
                ) from exc
    return decode(data, path)


def requirement_lines(root: Path, rel: str, text: str | None = None) -> list[str]:
    """The requirement lines a file holds as pip (or uv) reads it, for a tool given one list:
    a ``pyproject.toml``'s ``[project].dependencies``, a project lock's pinned packages, or
    the file's own lines (comments dropped; options and includes kept)."""
    path = root / rel
    if project_lock(rel) is not None:
        return list(locked_requirements(path))
    if path.suffix == ".toml":
        return project_dependencies(path, text)
    raw = read_requirements_text(path) if text is None else text
    lines = (line.split(" #", 1)[0].strip() for line in raw.replace("\\\n", " ").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def requirement_closure(
    root: Path,
    files: Iterable[str],
    *,
    parse: bool = True,
    overlay: Mapping[str, str] | None = None,
    groups: Sequence[str] = (),
    package: str | None = None,
) -> tuple[tuple[str, ...], tuple[Requirement, ...]]:
    """Every file the requirement ``files`` read (``-r``/``-c`` followed, relative to the file
    that names them) and every requirement in them. Paths relative to ``root``, in reading order.
    A ``pyproject.toml`` gives its ``[project].dependencies`` and includes nothing.

    A missing file raises :class:`InvalidConfig` naming the file and line that refers to it.
    ``parse=False`` collects only the files (no requirement is parsed, and packaging's parser,
    slow to import, is not loaded: a build checking its lock's freshness needs only the files).
    ``overlay`` holds the text of files not written yet (``init`` plans before it writes).
    ``groups``: the groups a Poetry or PDM lock among them installs (empty: its ``main`` or ``default`` group).
    ``package``: the member of a uv workspace whose dependencies its ``uv.lock`` installs.
    """
    closure = _Closure(root, parse, overlay or {}, tuple(groups), package)
    for f in files:
        closure.visit(f, None)
    return tuple(closure.seen), tuple(closure.reqs)


@dataclass
class _Closure:
    """The files and requirements :func:`requirement_closure` has met so far."""

    root: Path
    parse: bool
    pending: Mapping[str, str]  # the text of files not written yet
    groups: tuple[str, ...]  # a Poetry or PDM lock's groups (empty: its default)
    package: str | None  # a uv workspace member
    seen: list[str] = field(default_factory=list)
    reqs: list[Requirement] = field(default_factory=list)

    def add(self, line: str, path: Path, number: int) -> None:
        from packaging.requirements import InvalidRequirement, Requirement

        line = _HASH_OPTION.sub("", line).strip()  # pip's per-requirement option
        try:
            self.reqs.append(Requirement(line.split(";")[0].strip() if "@" not in line else line))
        except InvalidRequirement:
            log.debug("%s:%d: not a requirement: %r", path, number, line)

    def visit(self, rel: str, referrer: tuple[Path, int] | None) -> None:
        """Read ``rel`` (named at ``referrer``, a file and line; ``None`` for a top-level
        file) and what it includes, unless it was read already."""
        if rel in self.seen:
            return
        path = self.root / rel
        if rel not in self.pending and not path.is_file():
            raise _missing(rel, path, referrer)
        self.seen.append(rel)
        text = self.pending.get(rel)
        kind = project_lock(rel)
        if kind is not None:
            # the tool reads its manifest with the lock (groups, the project's name)
            beside = relative(path.parent / kind.manifest, self.root)
            members = workspace_manifests(path.parent / kind.manifest) if self.package else []
            for manifest in (beside, *(relative(m, self.root) for m in members)):
                if manifest not in self.seen:
                    self.seen.append(manifest)
            lines: Iterable[str] = (
                locked_requirements(path, self.groups, self.package) if self.parse else ()
            )
            for line in lines:
                self.add(line, path, 0)
        elif path.suffix == ".toml":
            deps: Iterable[str] = project_dependencies(path, text) if self.parse else ()
            for dep in deps:
                self.add(dep, path, 0)
        else:
            self._visit_lines(path, read_requirements_text(path) if text is None else text)

    def _visit_lines(self, path: Path, text: str) -> None:
        """A requirements file's lines: its includes followed, its requirements added."""
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            words = line.split()
            for short, long in (("-r", "--requirement"), ("-c", "--constraint")):
                for inc in option_values(words, short, long):
                    self.visit(relative(path.parent / inc, self.root), (path, number))
            if line.startswith("-") or not self.parse:
                continue
            self.add(line, path, number)


def _missing(rel: str, path: Path, referrer: tuple[Path, int] | None) -> InvalidConfig:
    """The error for a requirements file that does not exist, named where it was included."""
    if referrer is None:
        return InvalidConfig(
            f"the requirements file {rel} does not exist",
            path=path,
            fix="check the `pip install -r` path in the compose command (it is relative to "
            "the service's working_dir inside its code mount)",
        )
    return InvalidConfig(
        f"line {referrer[1]}: includes {rel}, which does not exist",
        path=referrer[0],
        fix="fix the include path (it is relative to the including file)",
    )


# -- hash pins ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HashPin:
    """The hashes a package's file must have, and where they were given (``file:line``)."""

    name: str  # PEP 503 normalised
    hashes: frozenset[str]  # ``sha256:<hex>``
    where: str


@dataclass(frozen=True)
class HashPins:
    """Hash pins as pip reads them: a package with pins installs only a file among its hashes;
    ``required`` (where hash-checking mode was turned on: a ``--hash`` or ``--require-hashes``
    in a requirements file) means every package, dependencies included, must have pins."""

    pins: Mapping[str, HashPin]
    required: str | None = None

    def __bool__(self) -> bool:
        return bool(self.pins) or self.required is not None


_HASH_OPTION = re.compile(r"--hash(?:=|\s+)(\S+)")
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def normalised_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def hash_pins(root: Path, files: Iterable[str]) -> HashPins:
    """The hash pins of requirement ``files`` (project-relative, includes already followed):
    ``--hash=sha256:…`` options on requirement lines (several allowed; a package pinned on two
    lines keeps the hashes both allow, as pip intersects them), ``--require-hashes``, and the
    hashes a project lock (``uv.lock``, ``poetry.lock``, ``Pipfile.lock``, ``pdm.lock``) records, which its
    own tool checks on install. Only sha256 is compared (what locks and indexes give):
    another algorithm is refused, naming the line."""
    pins: dict[str, HashPin] = {}
    required: str | None = None

    def add(name: str, hashes: set[str], where: str) -> None:
        key = normalised_name(name)
        old = pins.get(key)
        both = frozenset(hashes) if old is None else old.hashes & hashes
        pins[key] = HashPin(key, both, where if old is None else f"{old.where}, {where}")

    for rel in files:
        path = root / rel
        if project_lock(rel) is not None:
            for name, hashes in _lock_hashes(path).items():
                add(name, hashes, rel)
            continue
        if path.suffix == ".toml":
            continue
        for number, line in _logical_lines(path):
            where = f"{rel}:{number}"
            if line.split()[0] == "--require-hashes":
                required = required or where
                continue
            given = _HASH_OPTION.findall(line)
            if not given:
                continue
            required = required or where
            for value in given:
                if not _SHA256.fullmatch(value.lower()):
                    raise InvalidConfig(
                        f"line {number}: --hash={value} is not a sha256 hash",
                        path=path,
                        fix="pin sha256 hashes (`pip hash FILE` or `uv pip compile "
                        "--generate-hashes` writes them): locks record sha256 only",
                    )
            match = _NAME.match(line)
            if match is None or line.startswith("-"):
                raise InvalidConfig(
                    f"line {number}: --hash is given to no package: {line!r}",
                    path=path,
                    fix="write it after the requirement it pins: `name==1.0 --hash=sha256:…`",
                )
            add(match.group(0), {v.lower() for v in given}, where)
    return HashPins(pins, required)


def _logical_lines(path: Path) -> list[tuple[int, str]]:
    """A requirements file's lines as pip reads them (``\\`` continuations joined, comments
    dropped), each with the number of the line it starts on."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(read_requirements_text(path).splitlines(), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = (pending + raw).split(" #", 1)[0].strip()
        pending = ""
        if line and not line.startswith("#"):
            out.append((start, line))
    return out


def _lock_hashes(path: Path) -> dict[str, set[str]]:
    """The sha256 hashes a project lock records for each package it installs (read once per
    content: a build reads them on every run). Callers only read the result."""
    return _lock_hashes_of(str(path.resolve()), path.read_bytes())


@cache
def _lock_hashes_of(path: str, content: bytes) -> dict[str, set[str]]:
    try:
        return _read_lock_hashes(Path(path))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # TOML and JSON too
        kind = project_lock(Path(path).name)
        raise InvalidConfig(
            f"its hashes cannot be read ({exc!r})",
            path=Path(path),
            fix=f"run `{kind.relock if kind else 'the lock'}` again",
        ) from exc


def _read_lock_hashes(path: Path) -> dict[str, set[str]]:
    import json
    import tomllib

    kind = project_lock(path.name)
    assert kind is not None, path
    # every package's, development ones too (pins only hold the packages a lock has); reading
    # which ones the service installs would take `uv export`, a process, on every build
    out: dict[str, set[str]] = {}

    def add(name: str, value: object) -> None:
        if isinstance(value, str):
            out.setdefault(name, set()).add(value.lower())

    if kind.tool == "pipenv":
        for name, spec in json.loads(read_text(path))["default"].items():
            for value in spec.get("hashes", []) if isinstance(spec, dict) else []:
                add(name, value)
        return out
    data = tomllib.loads(read_text(path))
    for pkg in data.get("package", []):
        name = str(pkg.get("name", ""))
        if kind.tool in ("poetry", "pdm"):
            for entry in pkg.get("files", []):
                add(name, entry.get("hash"))
        else:
            for entry in [pkg.get("sdist") or {}, *pkg.get("wheels", [])]:
                add(name, entry.get("hash"))
    return out


# -- what only a build backend could tell ---------------------------------------------------------

_VCS = ("git+", "hg+", "svn+", "bzr+")
_SDIST = (".tar.gz", ".tgz", ".zip", ".tar.bz2")


def build_backend_needed(root: Path, files: Iterable[str], *, static: bool = True) -> str | None:
    """Why the dependencies of requirement ``files`` (project-relative, includes followed) can
    be known only by running a build backend (``file:line: reason``), or None when they are
    all static: index requirements, wheels, a local project whose ``pyproject.toml`` declares
    its ``[project].dependencies``, a local sdist whose ``PKG-INFO`` (metadata 2.2 or later)
    does not mark ``Requires-Dist`` dynamic. An editable install, a VCS checkout or a URL that
    is no wheel needs the backend. ``static=False`` reports a local project or sdist too, even
    with static metadata: pip (which reads no metadata statically) would build it. Nothing
    here runs code or writes a file."""
    for rel in files:
        path = root / rel
        if project_lock(rel) is not None or path.suffix == ".toml":
            continue
        for number, line in _logical_lines(path):
            why = _needs_backend(_HASH_OPTION.sub("", line).strip(), path.parent, static)
            if why is not None:
                return f"{rel}:{number}: {why}"
    return None


def _needs_backend(line: str, here: Path, static: bool) -> str | None:
    words = line.replace("--editable=", "--editable ").split()
    editable = words[0] in ("-e", "--editable") and len(words) > 1
    if line.startswith("-") and not editable:
        return None
    target = words[1] if editable else words[0]
    if " @ " in line:
        target = line.split(" @ ", 1)[1].split(";")[0].strip()
    if target.startswith(_VCS):
        return f"{target!r} is a VCS checkout, whose metadata its build backend makes"
    if target.split("#", 1)[0].endswith(".whl"):
        return None
    if "://" in target and not target.startswith("file://"):
        return f"{target!r} is a URL but not a wheel's: its metadata is known once it is built"
    if not (target.startswith((".", "/", "file://")) or target.endswith(_SDIST)):
        return None  # a requirement on an index
    if not static:
        return f"{target} is a local project, which pip builds to read its metadata"
    local = here / target.removeprefix("file://")
    if local.is_dir():
        try:
            project_dependencies(local / "pyproject.toml")
        except (InvalidConfig, OSError):
            return (
                f"the project {target} does not declare its dependencies in a [project] table "
                "of its pyproject.toml (setup.py or its build backend decides them)"
            )
        return None
    if local.name.endswith(_SDIST):
        return _sdist_dynamic(local, target)
    return None


def _sdist_dynamic(sdist: Path, target: str) -> str | None:
    """Why the sdist's dependencies are not in its ``PKG-INFO`` statically, or None."""
    import tarfile
    import zipfile
    from email.parser import HeaderParser

    text: str | None = None
    try:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as archive:
                name = next(
                    (
                        n
                        for n in archive.namelist()
                        if n.count("/") == 1 and n.endswith("/PKG-INFO")
                    ),
                    None,
                )
                text = archive.read(name).decode() if name else None
        else:
            with tarfile.open(sdist) as archive:
                member = next(
                    (
                        m
                        for m in archive.getmembers()
                        if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")
                    ),
                    None,
                )
                handle = archive.extractfile(member) if member is not None else None
                text = handle.read().decode() if handle is not None else None
    except (OSError, tarfile.TarError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        return f"the sdist {target} cannot be read ({exc})"
    if text is None:
        return f"the sdist {target} has no PKG-INFO"
    headers = HeaderParser().parsestr(text)
    version = tuple(int(p) for p in re.findall(r"\d+", headers.get("Metadata-Version", "0"))[:2])
    dynamic = {d.strip().lower() for d in headers.get_all("Dynamic") or []}
    if version < (2, 2) or "requires-dist" in dynamic:
        return (
            f"the sdist {target} does not state its dependencies in its PKG-INFO (metadata "
            f"{headers.get('Metadata-Version', '?')}"
            + (", Requires-Dist dynamic" if "requires-dist" in dynamic else ", before 2.2")
            + "): only running its setup.py or build backend tells them"
        )
    return None
