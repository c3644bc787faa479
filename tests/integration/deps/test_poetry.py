"""Poetry's locks read without Poetry: the main group's packages pinned, as ``poetry export``
gives them, for the locks Poetry 1.0-1.2 (lock-version 1.1), 1.3-1.4 (2.0 with categories),
1.5-1.8 (2.0 without) and 2 (2.1 with groups) write."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from wheeldock.deps import poetry
from wheeldock.deps.requirements import uv_bin
from wheeldock.edges import process

DATA = Path(__file__).parents[2] / "data" / "poetry"


def _environments() -> list[dict[str, str]]:
    return [
        {
            "python_version": minor,
            "python_full_version": f"{minor}.0",
            "sys_platform": sys_platform,
            "platform_system": system,
        }
        for minor in ("3.9", "3.10", "3.11", "3.13")
        for sys_platform, system in (("linux", "Linux"), ("win32", "Windows"))
    ]


def _installed_where(lines: Iterable[str]) -> dict[str, tuple[bool, ...]]:
    """Each pin (``name==version``, extras dropped) and the environments it installs in."""
    from packaging.markers import Marker

    result = {}
    for line in lines:
        pin, _, marker = line.partition(";")
        name, _, version = pin.strip().partition("==")
        where = tuple(
            not marker.strip() or Marker(marker.strip()).evaluate(env) for env in _environments()
        )
        result[f"{name.split('[')[0]}=={version}"] = where
    return result


@pytest.mark.integration
@pytest.mark.parametrize("version", ["1.1", "1.4", "1.8"])
@pytest.mark.parametrize("selection", [("--only", "main"), ("--with", "dev")])
def test_the_pins_of_a_poetry_1_lock_install_where_poetry_export_installs_them(
    version: str, selection: tuple[str, str]
) -> None:
    folder = DATA / f"poetry-{version}"
    argv = [uv_bin(), "tool", "run", "--from", "poetry", "--with", "poetry-plugin-export"]
    argv += ["poetry", "export", *selection, "--without-hashes", "--format", "requirements.txt"]
    out = process.run(argv, cwd=folder).stdout
    exported = [line for line in out.splitlines() if "==" in line]
    groups = ("main",) if selection[1] == "main" else ("main", "dev")
    ours = poetry.locked_pins(folder / "poetry.lock", folder / "pyproject.toml", groups)
    assert _installed_where(ours) == _installed_where(exported)
