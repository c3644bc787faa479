"""Compose files: finding, reading (round-trip), interpolating and patching them.

Reading keeps ruamel.yaml's round-trip document next to the text, so a patch changes only the
keys it names: comments, key order, quoting and indentation elsewhere stay byte for byte.
:func:`patch` is pure (text in, text out); writing is the caller's job.
"""

from __future__ import annotations

import io
import itertools
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.tokens import CommentToken
from ruamel.yaml.util import load_yaml_guess_indent

from wheeldock.compose.selection import Selection as Selection  # callers take one here
from wheeldock.edges.fsutil import read_text
from wheeldock.errors import InvalidConfig, NotFound

#: The names ``docker compose`` looks for, in its order of preference.
MAIN_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_NAMES = {
    "compose.yaml": ("compose.override.yaml", "compose.override.yml"),
    "compose.yml": ("compose.override.yml", "compose.override.yaml"),
    "docker-compose.yaml": ("docker-compose.override.yaml", "docker-compose.override.yml"),
    "docker-compose.yml": ("docker-compose.override.yml", "docker-compose.override.yaml"),
}


@dataclass(frozen=True, eq=False)
class ComposeFile:
    """One compose file: its text and its round-trip document (a ``CommentedMap``)."""

    path: Path
    text: str
    data: Any
    indent: int  # nested mappings
    sequence_indent: int  # a sequence item's content, relative to its key
    sequence_offset: int  # the dash, relative to its key

    @property
    def services(self) -> dict[str, Any]:
        services = self.data.get("services") or {}
        return dict(services)


def named_files(
    chosen: Sequence[str | Path] = (), environ: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The compose files named explicitly, as ``docker compose`` takes them: ``-f`` (``chosen``,
    in order), else ``COMPOSE_FILE`` (split on ``COMPOSE_PATH_SEPARATOR``, by default the
    system's path separator); empty when neither names one."""
    if chosen:
        return tuple(str(c) for c in chosen)
    env = os.environ if environ is None else environ
    separator = env.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
    return tuple(p for p in (env.get("COMPOSE_FILE") or "").split(separator) if p)


def default_files(root: Path) -> tuple[Path, ...]:
    """The main compose file in ``root`` and its override file, by compose's default names;
    empty when there is none."""
    for name in MAIN_NAMES:
        main = root / name
        if main.is_file():
            overrides = [root / o for o in OVERRIDE_NAMES[name] if (root / o).is_file()]
            return (main, *overrides[:1])
    return ()


def find_files(
    root: Path, chosen: Sequence[str | Path] = (), environ: Mapping[str, str] | None = None
) -> tuple[Path, ...]:
    """The compose files of the project in ``root``, as ``docker compose`` picks them: those
    named with ``-f`` (``chosen``) or ``COMPOSE_FILE``, relative to ``root``; else the main file
    in ``root`` and its override file."""
    named = named_files(chosen, environ)
    if named:
        paths = tuple(root / n for n in named)
        for path, name in zip(paths, named, strict=True):
            if not path.is_file():
                source = "-f" if chosen else "COMPOSE_FILE"
                raise NotFound(
                    f"the compose file {name} ({source}) does not exist in {root}",
                    path=path,
                    fix="check the name; it is relative to the project folder (-C)",
                )
        return paths
    found = default_files(root)
    if found:
        return found
    raise NotFound(
        f"no compose file in {root} (looked for {', '.join(MAIN_NAMES)})",
        fix="run wheeldock in the folder with your compose file, point -C at it, or name it "
        "with -f (or COMPOSE_FILE)",
    )


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    # Long commands must not be re-wrapped: that would change lines the patch never touched.
    yaml.width = 4096
    return yaml


def parse(text: str, path: Path) -> ComposeFile:
    """Parse compose ``text``; :class:`InvalidConfig` with file, line and column when it is not
    a compose mapping."""
    try:
        data, seq_indent, seq_offset = load_yaml_guess_indent(text, yaml=_yaml())
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise InvalidConfig(
            f"{where}{problem} (not valid YAML)",
            path=path,
            fix="fix the YAML at that spot; `docker compose config` shows the same error",
        ) from exc
    except YAMLError as exc:
        raise InvalidConfig(f"is not valid YAML ({exc})", path=path, fix="fix the YAML") from exc
    if data is None:
        data = CommentedMap()
    if not isinstance(data, dict):
        raise InvalidConfig(
            f"is not a compose file (its top level is a {type(data).__name__}, not a mapping)",
            path=path,
            fix="a compose file starts with `services:`",
        )
    services = data.get("services")
    if services is not None and not isinstance(services, dict):
        raise InvalidConfig(
            "`services:` is not a mapping of service names to settings",
            path=path,
            fix="write it as `services:` followed by indented `name:` blocks",
        )
    mapping_indent = _mapping_indent(text)
    return ComposeFile(
        path=path,
        text=text,
        data=data,
        indent=mapping_indent,
        sequence_indent=seq_indent or mapping_indent,
        sequence_offset=seq_offset or 0,
    )


def _mapping_indent(text: str) -> int:
    """How far a nested mapping is indented under its key (the first one found; default 2)."""
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    for prev, line in itertools.pairwise(lines):
        if prev.rstrip().endswith(":") and not line.lstrip().startswith("- "):
            step = (len(line) - len(line.lstrip())) - (len(prev) - len(prev.lstrip()))
            if step > 0:
                return step
    return 2


def load(path: Path) -> ComposeFile:
    try:
        text = read_text(path)
    except OSError as exc:
        raise NotFound(f"cannot read the compose file ({exc.strerror})", path=path) from exc
    return parse(text, path)


def dump(compose: ComposeFile, data: Any | None = None) -> str:
    """Serialise ``data`` (default: the file's own document) with the file's indentation."""
    yaml = _yaml()
    yaml.indent(
        mapping=compose.indent, sequence=compose.sequence_indent, offset=compose.sequence_offset
    )
    buf = io.StringIO()
    yaml.dump(compose.data if data is None else data, buf)
    out = buf.getvalue()
    if compose.text.startswith("---") and not out.startswith("---"):
        out = "---\n" + out
    return out


# --- plain views -------------------------------------------------------------------------------


def environment(service: Mapping[str, Any]) -> dict[str, str | None]:
    """A service's ``environment:`` as a mapping (compose allows a list of ``KEY=VALUE`` too)."""
    env = service.get("environment") or {}
    if isinstance(env, Mapping):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    result: dict[str, str | None] = {}
    for item in env:
        key, sep, value = str(item).partition("=")
        result[key] = value if sep else None
    return result


def env_files(service: Mapping[str, Any], root: Path) -> dict[str, str]:
    """The variables of a service's ``env_file:`` (a path, or a list of paths or of
    ``{path, required}``), later files winning, as compose reads them: ``KEY=VALUE`` lines,
    ``#`` comments, optional ``export`` and quotes. A missing optional file is skipped."""
    entries = service.get("env_file") or []
    if isinstance(entries, (str, Mapping)):
        entries = [entries]
    result: dict[str, str] = {}
    for entry in entries:
        rel = str(entry.get("path", "")) if isinstance(entry, Mapping) else str(entry)
        path = root / rel
        if not rel or not path.is_file():
            continue  # compose itself reports a required one that is missing
        for raw in path.read_text(errors="replace").splitlines():
            line = raw.strip().removeprefix("export ").strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            else:
                value = value.split(" #", 1)[0].strip()
            result[key.strip()] = value
    return result


def merged_services(files: Sequence[ComposeFile]) -> dict[str, dict[str, Any]]:
    """Services of the main file with the override files merged in, as compose merges them.

    Mappings merge key by key; ``environment`` merges per variable; ``ports``, ``volumes`` and
    ``expose`` concatenate; other values are replaced. Plain Python values, not round-trip nodes.
    """
    merged: dict[str, dict[str, Any]] = {}
    for compose in files:
        for name, svc in compose.services.items():
            if not isinstance(svc, Mapping):
                raise InvalidConfig(
                    f"service {name!r} is not a mapping of settings",
                    path=compose.path,
                    fix=f"write `{name}:` followed by indented settings such as `image:`",
                )
            target = merged.setdefault(str(name), {})
            for key, value in svc.items():
                plain = _plain(value)
                if key == "environment" and key in target:
                    target[key] = {**environment(target), **environment(svc)}
                elif key in ("ports", "volumes", "expose") and key in target:
                    target[key] = [*target[key], *plain]
                else:
                    target[str(key)] = plain
    return merged


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and ``$$`` the
    way compose does (``:?``/``?`` yield the empty string instead of failing)."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("named")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        if op in (":-", ":?"):
            return value if value else (arg if op == ":-" else "")
        if op in ("-", "?"):
            return value if value is not None else (arg if op == "-" else "")
        if op == ":+":
            return arg if value else ""
        if op == "+":
            return arg if value is not None else ""
        return value or ""

    return _VAR.sub(replace, text)


def dotenv(root: Path) -> dict[str, str]:
    """The project's ``.env`` (what compose reads for interpolation), as a mapping."""
    path = root / ".env"
    result: dict[str, str] = {}
    if not path.is_file():
        return result
    for line in read_text(path).splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        result[key.strip()] = value
    return result


def interpolation_env(root: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``.env`` overlaid by the process environment, as compose resolves variables."""
    return {**dotenv(root), **(os.environ if environ is None else environ)}


# --- patching ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServicePatch:
    """What to change in one service: add ``build``, set ``image``, drop keys and volumes."""

    name: str
    build: Mapping[str, Any]
    image: str | None  # None: the service's image (or none) is kept; its build: is replaced
    drop_keys: tuple[str, ...] = ()
    drop_volumes: tuple[str, ...] = ()  # volume entries as written (short) or their source
    #: short-syntax volume entries put where the first dropped one was (kept data folders)
    add_volumes: tuple[str, ...] = ()
    healthcheck: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Patch:
    services: tuple[ServicePatch, ...]
    secrets: Mapping[str, str] = field(default_factory=dict)  # secret name -> file


def patch(
    compose: ComposeFile, change: Patch, *, primary: bool, project_dir: Path | None = None
) -> str:
    """The text of ``compose`` with ``change`` applied; everything else as it was.

    ``build``/``image`` go into the file that sets the service's ``image`` (or the ``primary``
    file when none does); keys and volumes are dropped wherever they appear (a volume's
    relative source read against ``project_dir``, by default the file's folder). Top-level
    ``secrets`` go into the primary file. Returns the original text when nothing applies.
    """
    doc = parse(compose.text, compose.path)  # a fresh tree: the caller's stays untouched
    services = doc.data.get("services")
    base = project_dir or compose.path.parent
    touched = False
    for sp in change.services:
        svc = services.get(sp.name) if services is not None else None
        if svc is not None:
            touched = _patch_service(svc, sp, primary=primary, base=base) or touched
    if primary and change.secrets:
        touched = _add_secrets(doc.data, change.secrets) or touched
    if not touched:
        return compose.text
    try:
        return _Splice(compose).text(doc.data)
    except _Unspliceable:  # keys reordered: whole-file dump, still keeping comments and quotes
        return dump(doc)


class _Unspliceable(Exception):
    """The patched tree's keys are not in the original's order: lines cannot be spliced."""


class _Splice:
    """The patched document's text made of the original's lines: every key and sequence item
    whose value is unchanged keeps its lines byte for byte (indentation, quotes, comments,
    line endings, CRLF too); only changed ones are dumped afresh, at their key's column.
    Comment and blank lines that end a removed or replaced block introduce what follows: kept."""

    def __init__(self, compose: ComposeFile) -> None:
        self.compose = compose
        self.lines = compose.text.splitlines(keepends=True)
        self.newline = "\r\n" if "\r\n" in compose.text else "\n"

    def text(self, new: CommentedMap) -> str:
        out: list[str] = []
        self._mapping(self.compose.data, new, 0, len(self.lines), out, self.compose.indent)
        return "".join(out)

    def _mapping(
        self,
        orig: CommentedMap,
        new: CommentedMap,
        start: int,
        end: int,
        out: list[str],
        step: int,
    ) -> None:
        """Splice ``new`` over ``orig``'s lines ``start:end``; ``step``: how far this mapping
        is indented under its key, for new nested blocks."""
        keys = [k for k, _ in orig.non_merged_items()]
        lines = [orig.lc.key(k)[0] for k in keys]
        if lines != sorted(lines) or not keys:
            raise _Unspliceable
        column = orig.lc.key(keys[0])[1]
        bounds = {k: (lines[i], [*lines, end][i + 1]) for i, k in enumerate(keys)}
        out += self.lines[start : lines[0]]
        wanted = [k for k, _ in new.non_merged_items()]
        pending = list(keys)
        for key in wanted:
            if key not in bounds:
                if column == 0 and out and out[-1].strip():
                    out.append(self.newline)  # a new top-level block: a blank line before it
                out += self._fresh({key: new[key]}, column, out, step)
                continue
            if key not in pending:
                raise _Unspliceable
            while pending[0] != key:
                gone = pending.pop(0)
                if gone in wanted:
                    raise _Unspliceable
                out += self._carried(*bounds[gone], column)
            pending.pop(0)
            self._value(orig, new, (key, column, step), bounds[key], out)
        for gone in pending:
            out += self._carried(*bounds[gone], column)

    def _value(
        self,
        orig: CommentedMap,
        new: CommentedMap,
        where: tuple[Any, int, int],
        bounds: tuple[int, int],
        out: list[str],
    ) -> None:
        key, column, step = where
        before, after = orig[key], new[key]
        first, end = bounds
        if _plain(before) == _plain(after):
            out += self.lines[first:end]
        elif _block(before, first) and type(before) is type(after) and not after.fa.flow_style():
            inner = (
                before.lc.key(next(k for k, _ in before.non_merged_items()))[0]
                if isinstance(before, CommentedMap)
                else before.lc.item(0)[0]
            )
            out += self.lines[first:inner]
            if isinstance(before, CommentedMap):
                inner_column = before.lc.key(next(k for k, _ in before.non_merged_items()))[1]
                self._mapping(before, after, inner, end, out, inner_column - column)
            else:
                self._sequence(before, after, inner, end, out)
        else:
            out += self._fresh({key: after}, column, out, step)
            out += self._carried(first, end, column)

    def _sequence(
        self, orig: CommentedSeq, new: CommentedSeq, start: int, end: int, out: list[str]
    ) -> None:
        lines = [orig.lc.item(i)[0] for i in range(len(orig))]
        if lines != sorted(lines):
            raise _Unspliceable
        first = self.lines[lines[0]]
        dash = len(first) - len(first.lstrip())
        bounds = list(zip(lines, [*lines[1:], end], strict=True))
        out += self.lines[start : lines[0]]
        i = 0
        for item in new:
            match = next((j for j in range(i, len(orig)) if _plain(orig[j]) == _plain(item)), None)
            if match is None:
                out += self._fresh([item], dash, out, self.compose.indent)
                continue
            for gone in range(i, match):
                out += self._carried(*bounds[gone], dash)
            out += self.lines[bounds[match][0] : bounds[match][1]]
            i = match + 1
        for gone in range(i, len(orig)):
            out += self._carried(*bounds[gone], dash)

    def _carried(self, start: int, end: int, column: int) -> list[str]:
        """The blank and comment lines (at ``column`` or left of it) ending a block."""
        kept: list[str] = []
        for line in reversed(self.lines[start + 1 : end]):
            stripped = line.lstrip(" ")
            is_comment = stripped.startswith("#") and len(line) - len(stripped) <= column
            if not (is_comment or not line.strip()):
                break
            kept.insert(0, line)
        return kept

    def _fresh(self, value: Any, column: int, out: list[str], step: int) -> list[str]:
        """``value`` dumped with nested mappings ``step`` further in and the file's sequence
        indentation, its first line at ``column`` (and the line before it ended, when it was
        the file's last and had no line break)."""
        if out and not out[-1].endswith("\n"):
            out[-1] += self.newline
        c = self.compose
        yaml = _yaml()
        yaml.indent(mapping=step, sequence=c.sequence_indent, offset=c.sequence_offset)
        buf = io.StringIO()
        yaml.dump(_bare(value), buf)
        lines = buf.getvalue().splitlines()
        cut = len(lines[0]) - len(lines[0].lstrip(" ")) if lines else 0
        return [" " * column + line[cut:] + self.newline for line in lines]


def _block(value: Any, key_line: int) -> bool:
    """A block-style mapping or sequence whose content starts below its key's line."""
    if isinstance(value, CommentedMap) and len(value) and not value.fa.flow_style():
        own = [k for k, _ in value.non_merged_items()]
        return bool(own) and value.lc.key(own[0])[0] > key_line
    if isinstance(value, CommentedSeq) and len(value) and not value.fa.flow_style():
        return bool(value.lc.item(0)[0] > key_line)
    return False


def _bare(value: Any) -> Any:
    """``value`` without its comments (they stay in the original's lines); flow style kept."""
    if isinstance(value, Mapping):
        bare: Any = CommentedMap((k, _bare(v)) for k, v in value.items())
    elif isinstance(value, list | tuple):
        bare = CommentedSeq(_bare(v) for v in value)
    else:
        return value
    if getattr(value, "fa", None) is not None and value.fa.flow_style():
        bare.fa.set_flow_style()
    return bare


def _patch_service(svc: CommentedMap, sp: ServicePatch, *, primary: bool, base: Path) -> bool:
    """Apply ``sp`` to the service's node in place; whether anything changed."""
    touched = False
    if sp.image is None and "build" in svc:
        svc["build"] = _build_node(sp)
        touched = True
    elif sp.image is not None and ("image" in svc or (primary and "build" not in svc)):
        _set_build_and_image(svc, sp, sp.image)
        touched = True
    for key in sp.drop_keys:
        if key in svc and _own_key(svc, key):  # a merged-in key stays (the anchor is shared)
            _delete_key(svc, key)
            touched = True
    if sp.drop_volumes and "volumes" in svc:
        touched = _drop_volumes(svc, sp.drop_volumes, base, sp.add_volumes) or touched
    if sp.healthcheck is not None:
        if isinstance(svc.get("healthcheck"), dict):
            for key, value in sp.healthcheck.items():  # keeps the user's interval & co.
                svc["healthcheck"][key] = _node(value)
        else:
            svc["healthcheck"] = CommentedMap((k, _node(v)) for k, v in sp.healthcheck.items())
        touched = True
    return touched


def _drop_volumes(
    svc: CommentedMap, drop_volumes: tuple[str, ...], base: Path, add: tuple[str, ...] = ()
) -> bool:
    """Remove the service's volumes matching ``drop_volumes`` in place, ``add`` put where the
    first was; whether any was removed."""
    vols = svc["volumes"]
    drop = [i for i in range(len(vols)) if volume_matches(vols[i], drop_volumes, base)]
    if not drop:
        return False
    if not _own_key(svc, "volumes"):
        # merged in (``<<: *common``): the anchor is shared and a merged key cannot be
        # deleted, so the service gets a list of its own, which wins over the merge
        kept = [v for i, v in enumerate(vols) if i not in drop]
        kept[drop[0] : drop[0]] = add  # every entry before the first dropped one is kept
        svc["volumes"] = CommentedSeq(kept) if kept else _node([])
        return True
    for offset, entry in enumerate(add):
        vols.insert(drop[0] + offset, entry)
    drop = [i + len(add) for i in drop]
    if len(drop) == len(vols):
        _delete_key(svc, "volumes")  # as a whole, so what follows it keeps its comments
    else:
        for i in reversed(drop):
            _delete_item(vols, i)
    return True


def _add_secrets(data: CommentedMap, wanted: Mapping[str, str]) -> bool:
    """Add the top-level secrets (name -> file) the file lacks, in place; whether any was."""
    secrets = data.get("secrets")
    if secrets is None:
        secrets = CommentedMap()
        _append_top_level(data, "secrets", secrets)
    touched = False
    for name, file in wanted.items():
        if name not in secrets:
            secrets[name] = CommentedMap([("file", file)])
            touched = True
    return touched


def _own_key(mapping: CommentedMap, key: str) -> bool:
    """Whether ``key`` is written in ``mapping`` itself, not merged in by a ``<<`` key."""
    return any(k == key for k, _ in mapping.non_merged_items())


def _node(value: Any) -> Any:
    """A new value as a round-trip node; lists in flow style (``[CMD, …]``) like compose docs."""
    if isinstance(value, list | tuple):
        seq = CommentedSeq(value)
        seq.fa.set_flow_style()
        return seq
    return value


def _build_node(sp: ServicePatch) -> CommentedMap:
    build = CommentedMap()
    for key, value in sp.build.items():
        build[key] = CommentedSeq(value) if isinstance(value, list | tuple) else value
    return build


def _set_build_and_image(svc: CommentedMap, sp: ServicePatch, image: str) -> None:
    build = _build_node(sp)
    if "build" in svc:
        svc["build"] = build
    elif "image" in svc:
        keys = own_keys(svc)
        svc.insert(keys.index("image") if "image" in keys else len(keys), "build", build)
    else:
        svc.insert(0, "build", build)
    if "image" in svc:
        # The old image's end-of-line comment describes the old image: drop it, keep what follows.
        rest = _following_text(svc, "image")
        svc["image"] = image
        slot = svc.ca.items.get("image")
        if slot is not None and len(slot) > 2 and slot[2] is not None:
            slot[2] = CommentToken("\n" + rest, _Mark(0), None) if rest else None
    else:
        svc.insert(own_keys(svc).index("build") + 1, "image", image)


def volume_matches(entry: Any, wanted: Sequence[str], base: Path) -> bool:
    """Whether a service's volume ``entry`` (short or long syntax) is one of ``wanted``: an
    entry as written, or a bind source, as written or as the absolute folder it is against
    ``base`` (the project directory; ``docker compose config`` writes sources absolute)."""
    if isinstance(entry, str):
        source = entry.split(":", 1)[0]
        if entry in wanted:
            return True
    elif isinstance(entry, Mapping):
        source = str(entry.get("source", ""))
    else:
        return False
    if not source:
        return False
    if source in wanted:
        return True
    if not source.startswith((".", "/", "~")):
        return False  # a named volume
    host = str((base / Path(source).expanduser()).resolve())
    return any(w.startswith("/") and str(Path(w).resolve()) == host for w in wanted)


def included_file_defining(files: Sequence[ComposeFile], name: str) -> str | None:
    """The file an ``include:`` of ``files`` names that defines the service ``name`` (as
    written in the include), or None."""
    for compose in files:
        entries = compose.data.get("include") or []
        for entry in entries if isinstance(entries, list) else []:
            paths = entry.get("path", []) if isinstance(entry, Mapping) else entry
            for rel in [paths] if isinstance(paths, str) else list(paths):
                path = compose.path.parent / str(rel)
                try:
                    if name in (load(path).services or {}):
                        return str(rel)
                except (NotFound, InvalidConfig):
                    continue
    return None


def _append_top_level(data: CommentedMap, key: str, value: Any) -> None:
    """Add a top-level block at the end, separated by a blank line like its neighbours."""
    last = list(data.keys())[-1] if len(data) else None
    data[key] = value
    if last is not None:
        tail = _trailing_comment(data, last)
        if tail is None or not tail.value.endswith("\n\n"):
            _set_trailing_comment(data, last, (tail.value if tail else "\n") + "\n")


def own_keys(mapping: Mapping[str, Any]) -> list[str]:
    """The keys written in ``mapping`` itself, in order, without those a YAML merge key
    (``<<: *anchor``) brings in: changing one of those would change the anchor, and every
    service that merges it."""
    own = getattr(mapping, "_ok", None)  # ruamel's own keys of a map that has merge keys
    return [k for k in mapping if own is None or k in own]


# ruamel keeps a comment (and blank lines) that follow a node on the *last* scalar of that node:
# deleting a key would silently delete the comment that introduces the next key. These helpers
# move that trailing text to the node that now precedes it.


def _last_leaf(node: Any, key: Any) -> tuple[Any, Any]:
    """The (container, key) whose comment slot holds the text after ``node[key]``."""
    value = node[key]
    if isinstance(value, CommentedMap) and own_keys(value):
        return _last_leaf(value, own_keys(value)[-1])
    if isinstance(value, CommentedSeq) and len(value):
        return _last_leaf(value, len(value) - 1)
    return node, key


def _trailing_comment(node: Any, key: Any) -> CommentToken | None:
    container, leaf = _last_leaf(node, key)
    slot = container.ca.items.get(leaf)
    if not slot:
        return None
    index = 2 if isinstance(container, CommentedMap) else 0
    token = slot[index] if len(slot) > index else None
    return token if isinstance(token, CommentToken) else None


def _set_trailing_comment(node: Any, key: Any, text: str) -> None:
    container, leaf = _last_leaf(node, key)
    index = 2 if isinstance(container, CommentedMap) else 0
    slot = container.ca.items.setdefault(leaf, [None, None, None, None])
    while len(slot) < 4:
        slot.append(None)
    slot[index] = CommentToken(text, _Mark(0), None)


@dataclass(frozen=True)
class _Mark:
    column: int


def _following_text(node: Any, key: Any) -> str:
    """Blank lines and comments after ``node[key]`` that belong to what comes next."""
    token = _trailing_comment(node, key)
    if token is None:
        return ""
    _own_line_comment, _, rest = token.value.partition("\n")
    return rest


def _carry_over(node: Any, keys: list[Any], index: int) -> None:
    rest = _following_text(node, keys[index])
    if not rest or index == 0:
        return
    prev = keys[index - 1]
    token = _trailing_comment(node, prev)
    _set_trailing_comment(node, prev, (token.value if token else "\n") + rest)


def _delete_key(mapping: CommentedMap, key: str) -> None:
    keys = own_keys(mapping)
    _carry_over(mapping, keys, keys.index(key))
    del mapping[key]


def _delete_item(seq: CommentedSeq, index: int) -> None:
    _carry_over(seq, list(range(len(seq))), index)
    del seq[index]  # CommentedSeq shifts the comments of the items after it


def iter_services(files: Sequence[ComposeFile]) -> Iterator[tuple[ComposeFile, str, Any]]:
    for compose in files:
        for name, svc in compose.services.items():
            yield compose, str(name), svc
