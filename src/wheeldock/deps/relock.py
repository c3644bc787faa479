"""Incremental re-lock, the pure part: whether a lock can be updated in place when the inputs
differ from those it was made from only by versions moving.

The inputs' top-level requirements are recorded in the lock (``[tool.wheeldock]
requirements``). When the new ones name the same packages with the same extras and markers,
and only their version specifiers changed, :func:`version_moves` says which packages move and
to what version (a requirement the locked version still meets moves nothing; one it does not
meet must be an exact ``==`` pin, else only a resolver can choose). :func:`closure` then checks
the lock with those versions against every package's ``Requires-Dist`` (markers evaluated for
the target, extras followed), from the top-level requirements down: each dependency must be a
locked package whose version meets it. It returns the packages still needed, so a dependency
that no package needs any more is dropped, as a resolution would drop it.

Everything here is pure: the metadata and index answers are fetched by
:mod:`wheeldock.deps.lock`, which writes the lock (or lets uv resolve, with the old lock as
its preferences, when :class:`NotIncremental` says why not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name


class NotIncremental(Exception):
    """The lock cannot be updated in place; ``str()`` says why (logged, then uv resolves)."""


class InputsChanged(NotIncremental):
    """The inputs differ from those the lock was made from by more than versions moving (a
    requirement added or removed, extras or markers changed, another platform)."""


@dataclass(frozen=True)
class TopRequirement:
    """The top-level requirements of one package that apply to the target, merged."""

    name: str  # canonical
    extras: frozenset[str]
    specifier: SpecifierSet
    markers: frozenset[str]  # the markers as written (true for the target)


@lru_cache(maxsize=4096)
def parse_requirement(line: str) -> Requirement:
    """A requirement line parsed; :class:`NotIncremental` when it cannot be read."""
    try:
        return Requirement(line)
    except InvalidRequirement as exc:
        raise NotIncremental(f"{line!r} cannot be read ({exc})") from None


def top_requirements(lines: Sequence[str], env: Mapping[str, str]) -> dict[str, TopRequirement]:
    """The requirement ``lines`` whose marker holds in ``env``, by canonical name, several lines
    of one package merged (specifiers intersected, extras joined); :class:`NotIncremental` for a
    URL requirement (no version to move)."""
    found: dict[str, TopRequirement] = {}
    for line in lines:
        req = parse_requirement(line)
        if req.marker is not None and not req.marker.evaluate(dict(env)):
            continue
        if req.url:
            raise NotIncremental(f"{req.name} is required by URL")
        name: str = canonicalize_name(req.name)
        markers = frozenset([str(req.marker)] if req.marker is not None else [])
        old = found.get(name)
        if old is not None:
            found[name] = TopRequirement(
                name,
                old.extras | frozenset(req.extras),
                old.specifier & req.specifier,
                old.markers | markers,
            )
        else:
            found[name] = TopRequirement(name, frozenset(req.extras), req.specifier, markers)
    return found


@dataclass(frozen=True)
class Moves:
    """The new top-level requirements, and the version each package that moves moves to."""

    top: Mapping[str, TopRequirement]
    versions: Mapping[str, str]  # canonical name → the version it is pinned to now


def version_moves(
    old: Mapping[str, TopRequirement],
    new: Mapping[str, TopRequirement],
    locked: Mapping[str, str],
) -> Moves:
    """The packages whose locked version no longer meets ``new``, each with the version it moves
    to (its ``==`` pin). :class:`InputsChanged` unless ``new`` differs from ``old`` only by
    specifiers (same packages, extras and markers) and every package is locked;
    :class:`NotIncremental` when one that moves is not pinned to one exact version (only a
    resolver can choose in a range). ``locked``: canonical name → version in the lock."""
    if set(old) != set(new):
        added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
        raise InputsChanged(f"requirements added {added} or removed {removed}")
    moves: dict[str, str] = {}
    for name, req in sorted(new.items()):
        was = old[name]
        if (req.extras, req.markers) != (was.extras, was.markers):
            raise InputsChanged(f"{name}: its extras or markers changed")
        version = locked.get(name)
        if version is None:
            raise InputsChanged(f"{name} is required but not in the lock")
        if req.specifier.contains(version, prereleases=True):
            continue
        pinned = exact_pin(req.specifier)
        if pinned is None:
            raise NotIncremental(f"{name}: {req.specifier} excludes {version} and is no == pin")
        moves[name] = pinned
    return Moves(new, moves)


def exact_pin(specifier: SpecifierSet) -> str | None:
    """The version of a specifier set that is one ``==`` pin (no wildcard), else None."""
    specs = list(specifier)
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
        return None
    return specs[0].version


def closure(
    top: Mapping[str, TopRequirement],
    versions: Mapping[str, str],
    requires: Mapping[str, Sequence[str]],
    env: Mapping[str, str],
) -> frozenset[str]:
    """The locked packages the top-level requirements need, following every dependency from
    them (markers evaluated in ``env`` with each extra asked of a package). ``versions``:
    canonical name → version of each locked package; ``requires``: its ``Requires-Dist``.

    :class:`NotIncremental` when a needed dependency is not locked, its locked version does not
    meet what anything asks of it (a top-level requirement or another package's dependency),
    or a needed package's ``Requires-Dist`` is unknown."""
    extras: dict[str, set[str]] = {}
    todo: list[str] = []

    def need(name: str, wanted: SpecifierSet, asked: frozenset[str], by: str) -> None:
        version = versions.get(name)
        if version is None:
            raise NotIncremental(f"{by} needs {name}, which is not in the lock")
        if not wanted.contains(version, prereleases=True):
            raise NotIncremental(f"{by} needs {name}{wanted}, but the lock has {name}=={version}")
        first = name not in extras
        have = extras.setdefault(name, set())
        if first or not asked <= have:  # seen again with more extras: their dependencies too
            have |= asked
            todo.append(name)

    for req in top.values():
        need(req.name, req.specifier, req.extras, "the requirements")
    while todo:
        name = todo.pop()
        lines = requires.get(name)
        if lines is None:
            raise NotIncremental(f"the dependencies of {name} are unknown")
        for dep, wanted, asked in _dependencies(lines, extras[name], env):
            need(dep, wanted, asked, f"{name} {versions[name]}")
    return frozenset(extras)


def _dependencies(
    lines: Sequence[str], extras: set[str], env: Mapping[str, str]
) -> list[tuple[str, SpecifierSet, frozenset[str]]]:
    """(canonical name, specifier, extras) of each ``Requires-Dist`` line that applies in
    ``env`` to a package installed with ``extras``."""
    wanted = ["", *sorted(extras)]
    found: list[tuple[str, SpecifierSet, frozenset[str]]] = []
    for line in lines:
        req = parse_requirement(line)
        if req.marker is not None and not _holds(req.marker, env, wanted):
            continue
        found.append((canonicalize_name(req.name), req.specifier, frozenset(req.extras)))
    return found


def _holds(marker: Marker, env: Mapping[str, str], extras: Sequence[str]) -> bool:
    return any(marker.evaluate({**env, "extra": extra}) for extra in extras)
