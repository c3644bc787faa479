"""``poetry.lock`` read without Poetry: the packages a group selection installs, pinned, as
``poetry export`` gives them.

Three shapes of lock are in use:

- Poetry 2 (lock-version 2.1) writes each package's ``groups`` and the marker it is installed
  under: the selection is read from the lock alone;
- Poetry 1.3-1.4 (2.0) and Poetry 1.0-1.2 (1.1, with ``[metadata.files]``) write each
  package's ``category`` (``main`` or ``dev``, every non-main group being ``dev``);
- Poetry 1.5-1.8 (2.0) write neither: a group's packages are those its dependencies in
  ``pyproject.toml`` (``[tool.poetry.dependencies]``, ``[tool.poetry.group.<name>.dependencies]``,
  the older ``[tool.poetry.dev-dependencies]``) lead to through the lock's dependency tables.

For Poetry 1 locks the markers are those of the paths that reach a package (the ``markers``
and ``python`` of each dependency on the way), as ``poetry export`` derives them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wheeldock.errors import InvalidConfig

#: A marker as a disjunction of conjunctions of marker expressions; ``ALWAYS`` is no marker.
Conjunction = frozenset[str]
Marker = frozenset[Conjunction]
ALWAYS: Marker = frozenset({frozenset()})
#: Past this many alternatives a marker is dropped (the package installed everywhere): a
#: longer one is no use to a reader, and pip installs a superset harmlessly.
_MAX_ALTERNATIVES = 8

_SOURCE_TYPES = ("directory", "file", "git", "url")


def locked_pins(lock: Path, manifest: Path, groups: Collection[str] = ("main",)) -> tuple[str, ...]:
    """The packages ``poetry install --only <groups>`` installs from ``lock`` (``manifest`` is
    the project's ``pyproject.toml``), as ``name==version ; marker`` lines, in the lock's order;
    a package from a path, VCS or URL as ``name @ url``."""
    data = _toml(lock, fix="run `poetry lock`")
    packages = data.get("package")
    if not isinstance(packages, list) or not all(isinstance(p, dict) for p in packages):
        raise InvalidConfig(
            "a Poetry lock without a [[package]] list", path=lock, fix="run `poetry lock`"
        )
    if packages and all("groups" in p for p in packages):
        chosen = [
            (p, _poetry2_marker(p, groups)) for p in packages if set(p["groups"]) & set(groups)
        ]
    else:
        chosen = _poetry1_selection(packages, _manifest_groups(manifest), groups)
    return tuple(_line(pkg, marker) for pkg, marker in chosen)


def _toml(path: Path, *, fix: str) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidConfig(f"not valid TOML ({exc})", path=path, fix=fix) from exc


def _line(pkg: Mapping[str, Any], marker: Marker) -> str:
    source = pkg.get("source") or {}
    if source.get("type") in _SOURCE_TYPES:
        return f"{pkg['name']} @ {source.get('url', '?')}"
    text = render(marker)
    line = f"{pkg['name']}=={pkg['version']}"
    return f"{line} ; {text}" if text else line


def render(marker: Marker) -> str:
    """The PEP 508 text of ``marker`` (empty for ``ALWAYS``)."""
    if frozenset() in marker:
        return ""
    alternatives = sorted(" and ".join(_wrap(t) for t in sorted(c)) for c in marker)
    if len(alternatives) == 1:
        return alternatives[0]
    return " or ".join(f"({a})" if " and " in a else a for a in alternatives)


def _wrap(term: str) -> str:
    return f"({term})" if " or " in term else term


def _poetry2_marker(pkg: Mapping[str, Any], groups: Collection[str]) -> Marker:
    markers = pkg.get("markers")
    if isinstance(markers, str):
        return frozenset({frozenset({markers})})
    if not isinstance(markers, dict):
        return ALWAYS
    alternatives: set[Conjunction] = set()
    for group in set(pkg["groups"]) & set(groups):
        text = markers.get(group)
        alternatives.add(frozenset({text}) if text else frozenset())
    return _simplify(alternatives)


# --- Poetry 1 ----------------------------------------------------------------------------------


def _manifest_groups(manifest: Path) -> dict[str, dict[str, Any]]:
    """The dependencies of each group of a Poetry 1 ``pyproject.toml`` (``python`` left out)."""
    tool = _toml(manifest, fix="fix its syntax").get("tool", {}).get("poetry")
    if not isinstance(tool, dict):
        raise InvalidConfig(
            "a Poetry 1 lock beside a pyproject.toml without a [tool.poetry] table: the "
            "groups its packages belong to cannot be told",
            path=manifest,
            fix="keep the pyproject.toml the lock was made from next to it, or run `poetry lock`",
        )
    groups: dict[str, dict[str, Any]] = {
        "main": {k: v for k, v in (tool.get("dependencies") or {}).items() if k != "python"}
    }
    if tool.get("dev-dependencies"):
        groups["dev"] = dict(tool["dev-dependencies"])
    for name, group in (tool.get("group") or {}).items():
        groups.setdefault(str(name), {}).update(group.get("dependencies") or {})
    return groups


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _poetry1_selection(
    packages: list[dict[str, Any]],
    manifest_groups: Mapping[str, Mapping[str, Any]],
    groups: Collection[str],
) -> list[tuple[dict[str, Any], Marker]]:
    """The packages the ``groups`` of a Poetry 1 project lead to, with their markers. In a lock
    that has categories, the main group alone is its ``main`` packages (as Poetry 1.4 and
    older install it); the graph still gives their markers."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for pkg in packages:
        by_name.setdefault(canonical(str(pkg["name"])), []).append(pkg)
    walk = _Walk(by_name)
    for group in groups:
        for name, spec in (manifest_groups.get(group) or {}).items():
            for constraint in _constraints(spec):
                if not (group == "main" and constraint.get("optional")):
                    walk.reach(str(name), constraint, ALWAYS)
    walk.run()
    has_category = all("category" in p for p in packages)
    chosen: list[tuple[dict[str, Any], Marker]] = []
    for pkg in packages:
        if has_category and set(groups) == {"main"}:
            if pkg["category"] == "main":
                chosen.append((pkg, walk.markers.get(id(pkg), ALWAYS)))
        elif id(pkg) in walk.markers:
            chosen.append((pkg, walk.markers[id(pkg)]))
    return chosen


def _constraints(spec: Any) -> list[dict[str, Any]]:
    """A dependency's constraints: a version string, a table, or a list of tables (one per
    Python or platform)."""
    if isinstance(spec, str):
        return [{"version": spec}]
    if isinstance(spec, dict):
        return [spec]
    if isinstance(spec, list):
        return [c for c in spec if isinstance(c, dict)]
    return []


@dataclass
class _Walk:
    """The lock's packages (by canonical name) reached so far, with their markers and the
    extras asked of them."""

    by_name: dict[str, list[dict[str, Any]]]
    markers: dict[int, Marker] = field(default_factory=dict)  # by the package's id()
    extras: dict[int, frozenset[str]] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)

    def reach(
        self,
        name: str,
        constraint: Mapping[str, Any],
        parent: Marker,
        asked: Collection[str] = (),
    ) -> None:
        """``name`` reached through ``constraint`` from a package installed under ``parent``
        with the extras ``asked`` of it."""
        marker = _and(parent, _edge_marker(constraint, asked))
        wanted = frozenset(constraint.get("extras") or ())
        for pkg in self._matching(name, constraint):
            key = id(pkg)
            before = (self.markers.get(key), self.extras.get(key))
            self.markers[key] = _simplify({*self.markers.get(key, frozenset()), *marker})
            self.extras[key] = self.extras.get(key, frozenset()) | wanted
            if (self.markers[key], self.extras[key]) != before:
                self.pending.append(pkg)

    def _matching(self, name: str, constraint: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """The locked package(s) a dependency resolves to: when a name is locked at several
        versions (one per Python, say), those its version constraint allows."""
        candidates = self.by_name.get(canonical(name), [])
        if len(candidates) <= 1:
            yield from candidates
            return
        specifier = _specifier(str(constraint.get("version", "*")))
        python = str(constraint.get("python", "*"))
        for pkg in candidates:
            if specifier is not None and not specifier.contains(
                str(pkg["version"]), prereleases=True
            ):
                continue
            if _pythons_overlap(python, str(pkg.get("python-versions", "*"))):
                yield pkg

    def run(self) -> None:
        while self.pending:
            pkg = self.pending.pop()
            key = id(pkg)
            optional = _extra_members(pkg, self.extras[key])
            for name, spec in (pkg.get("dependencies") or {}).items():
                for constraint in _constraints(spec):
                    if constraint.get("optional") and canonical(str(name)) not in optional:
                        continue
                    self.reach(str(name), constraint, self.markers[key], self.extras[key])


def _extra_members(pkg: Mapping[str, Any], extras: Collection[str]) -> set[str]:
    """The names of the optional dependencies the ``extras`` of ``pkg`` turn on."""
    table = pkg.get("extras") or {}
    members: set[str] = set()
    for extra in extras:
        for entry in table.get(extra) or []:
            members.add(canonical(re.split(r"[\s(\[<>=!~;]", str(entry).strip(), maxsplit=1)[0]))
    return members


def _edge_marker(constraint: Mapping[str, Any], asked: Collection[str] = ()) -> Marker:
    """The marker a dependency adds on the way: its ``markers`` (their ``extra == …`` terms
    settled by the extras ``asked`` of the package that depends on it) and its ``python``."""
    python = constraint.get("python")
    extra = {python_marker(str(python))} if python else set()
    text = str(constraint.get("markers") or "")
    return _simplify(c | extra for c in _settle_extras(text, asked))


#: A marker term naming an extra of the package that depends (``extra == "sqs"``).
_EXTRA_TERM = re.compile(r"""^extra\s*==\s*(["'])([^"']+)\1$""")


def _settle_extras(text: str, asked: Collection[str]) -> Marker:
    """``text`` as alternatives of terms, each ``extra == "x"`` term settled: true when
    ``x`` was asked (the term goes), false otherwise (its alternative goes), as ``poetry
    export`` does: an extra is a choice made at install time, not a property of the target. A
    marker with parentheses is kept whole (its extra terms are not read apart)."""
    if not text:
        return ALWAYS
    if "(" in text or "extra" not in text:
        return frozenset({frozenset({text})})
    wanted = {canonical(a) for a in asked}
    alternatives: set[Conjunction] = set()
    for alternative in re.split(r"\s+or\s+", text):
        terms = [t.strip() for t in re.split(r"\s+and\s+", alternative)]
        extras = [m.group(2) for t in terms if (m := _EXTRA_TERM.match(t))]
        if all(canonical(e) in wanted for e in extras):
            alternatives.add(frozenset(t for t in terms if not _EXTRA_TERM.match(t)))
    return frozenset(alternatives)


def _and(left: Marker, right: Marker) -> Marker:
    return _simplify({a | b for a in left for b in right})


def _simplify(alternatives: Iterable[Conjunction]) -> Marker:
    """Alternatives implied by a shorter one dropped; ``ALWAYS`` past ``_MAX_ALTERNATIVES``."""
    alts = set(alternatives)
    kept = frozenset(a for a in alts if not any(b < a for b in alts))
    return ALWAYS if len(kept) > _MAX_ALTERNATIVES else kept


# --- Poetry's version constraints --------------------------------------------------------------


def pep440(constraint: str) -> list[list[str]]:
    """A Poetry version constraint as alternatives (``||``) of PEP 440 specifier lists:
    ``^1.2`` → ``>=1.2,<2.0``, ``~1.2`` → ``>=1.2,<1.3``, ``1.2.*`` → ``==1.2.*``, ``*`` → ``[]``."""
    alternatives = []
    for alternative in re.split(r"\s*\|\|?\s*", constraint.strip()):
        specs: list[str] = []
        for part in re.split(r"\s*,\s*|\s+(?=[<>=!~^])", alternative.strip()):
            specs += _one_spec(part.strip())
        alternatives.append(specs)
    return alternatives


def _one_spec(part: str) -> list[str]:
    if part in ("", "*"):
        return []
    if part.startswith("^"):
        version = part[1:]
        numbers = [int(n) for n in re.findall(r"\d+", version)[:3]]
        first = next((i for i, n in enumerate(numbers) if n), len(numbers) - 1)
        upper = [*numbers[:first], numbers[first] + 1]
        return [f">={version}", f"<{'.'.join(map(str, upper))}"]
    if part.startswith("~") and not part.startswith("~="):
        version = part[1:]
        numbers = [int(n) for n in re.findall(r"\d+", version)[:3]]
        upper = [numbers[0] + 1] if len(numbers) == 1 else [numbers[0], numbers[1] + 1]
        return [f">={version}", f"<{'.'.join(map(str, upper))}"]
    if part[0].isdigit():
        return [f"=={part}"]
    return [part.replace(" ", "")]


def _specifier(constraint: str) -> Any:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        sets = [SpecifierSet(",".join(specs)) for specs in pep440(constraint)]
    except InvalidSpecifier:
        return None
    return _AnyOf(sets)


@dataclass(frozen=True)
class _AnyOf:
    sets: list[Any]

    def contains(self, version: str, *, prereleases: bool) -> bool:
        return any(s.contains(version, prereleases=prereleases) for s in self.sets)


#: The Pythons two constraints are compared on: every minor release and a late patch of it.
_PYTHONS = [
    f"{major}.{minor}{patch}"
    for major, top in ((2, 7), (3, 20))
    for minor in range(top + 1)
    for patch in ("", ".99")
]


def _pythons_overlap(left: str, right: str) -> bool:
    """Whether some Python satisfies both Poetry constraints (a package locked for Python
    3.9 and later is not the one a dependency for Python below 3.9 resolved to)."""
    a, b = _specifier(left), _specifier(right)
    if a is None or b is None:
        return True
    return any(
        a.contains(v, prereleases=True) and b.contains(v, prereleases=True) for v in _PYTHONS
    )


def python_marker(constraint: str) -> str:
    """A Poetry ``python`` constraint as a marker: ``<3.11`` → ``python_version < "3.11"``."""
    alternatives = []
    for specs in pep440(constraint):
        terms = []
        for spec in specs:
            op, version = re.match(r"([<>=!~]+)\s*(.*)", spec).groups()  # type: ignore[union-attr]
            variable = "python_full_version" if version.count(".") >= 2 else "python_version"
            terms.append(f'{variable} {op} "{version}"')
        alternatives.append(" and ".join(terms))
    return " or ".join(a for a in alternatives if a)
