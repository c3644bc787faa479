"""``pdm.lock`` read without PDM: the packages a group selection installs, pinned, as
``pdm export`` gives them.

PDM 2 (lock_version 4) with the ``inherit_metadata`` strategy (its default since 2.11) writes
each package's ``groups`` and the ``marker`` it is installed under, so a selection is read from
the lock alone. A lock without them (an older strategy) is refused with the command that
writes them. A package locked with extras appears once per extra set beside its plain entry;
the plain one is the pin (the extras' own dependencies are packages of the lock in turn).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from wheeldock.errors import InvalidConfig

#: The group of a project's ``[project].dependencies``.
DEFAULT = "default"
#: Every group the lock holds (``pdm install -G :all``).
ALL = ":all"
_RELOCK = "run `pdm lock --strategy inherit_metadata` (PDM 2.11 or later)"


def locked_pins(lock: Path, groups: Collection[str] = (DEFAULT,)) -> tuple[str, ...]:
    """The packages ``pdm install`` of ``groups`` installs from ``lock``, as
    ``name==version ; marker`` lines in the lock's order; a package from a path, VCS or URL
    as ``name @ url``. :class:`InvalidConfig` naming the group when the lock has not locked it."""
    data = _toml(lock)
    packages = data.get("package", [])
    metadata = data.get("metadata") or {}
    if not isinstance(packages, list) or not all(isinstance(p, dict) for p in packages):
        raise InvalidConfig(
            "a pdm.lock without a [[package]] list", path=lock, fix="run `pdm lock`"
        )
    locked = [str(g) for g in metadata.get("groups") or [DEFAULT]]
    chosen = set(locked) if ALL in groups else set(groups)
    missing = sorted(chosen - set(locked))
    if missing:
        raise InvalidConfig(
            f"the install selects the group {', '.join(missing)}, which the lock does not hold "
            f"(its groups: {', '.join(locked)})",
            path=lock,
            fix=f"run `pdm lock -G {','.join(missing)}`, or drop the group from the install",
        )
    if packages and not all("groups" in p for p in packages):
        raise InvalidConfig(
            "the lock does not record each package's groups (it was made with another "
            f"strategy than inherit_metadata: {', '.join(metadata.get('strategy') or ['none'])})",
            path=lock,
            fix=_RELOCK,
        )
    plain = {_canonical(str(p.get("name", ""))) for p in packages if not p.get("extras")}
    lines: list[str] = []
    for pkg in packages:
        name = _canonical(str(pkg.get("name", "")))
        if pkg.get("extras") and name in plain:
            continue
        if set(pkg["groups"]) & chosen:
            lines.append(_line(pkg))
    return tuple(dict.fromkeys(lines))


def _toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidConfig(f"not valid TOML ({exc})", path=path, fix="run `pdm lock`") from exc


def _line(pkg: Mapping[str, Any]) -> str:
    for key in ("path", "url", "git"):
        if pkg.get(key):
            return f"{pkg['name']} @ {pkg[key]}"
    line = f"{pkg['name']}=={pkg['version']}"
    marker = pkg.get("marker")
    return f"{line} ; {marker}" if isinstance(marker, str) and marker else line


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
