"""PDM's lock read without PDM: the packages of the groups an install selects, pinned with
their markers and hashes, as ``pdm export`` gives them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wheeldock.deps import pdm
from wheeldock.deps.requirements import hash_pins, locked_requirements
from wheeldock.errors import InvalidConfig

CASE = Path(__file__).parents[2] / "data" / "dockerfiles" / "pdm-install-prod"
ABOVE_311 = 'python_version >= "3.11"'
DEFAULT = {
    f"anyio==4.16.0 ; {ABOVE_311}",
    f"click==8.5.1 ; {ABOVE_311}",
    f"h11==0.16.0 ; {ABOVE_311}",
    f"idna==3.21 ; {ABOVE_311}",
    f"starlette==1.10.0 ; {ABOVE_311}",
    f'typing-extensions==4.16.0 ; {ABOVE_311} and python_version < "3.15"',
    f"uvicorn==0.55.0 ; {ABOVE_311}",
}
TEST = {
    f'colorama==0.4.6 ; {ABOVE_311} and sys_platform == "win32"',
    f"iniconfig==2.3.1 ; {ABOVE_311}",
    f"packaging==26.4 ; {ABOVE_311}",
    f"pluggy==1.7.0 ; {ABOVE_311}",
    f"pygments==2.21.0 ; {ABOVE_311}",
    f"pytest==9.2.0 ; {ABOVE_311}",
}


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ((), DEFAULT),  # pdm sync --prod
        (("default", "test"), DEFAULT | TEST),  # pdm sync -G test
        (("test",), TEST),  # pdm sync --no-default -G test
        ((":all",), DEFAULT | TEST),  # pdm sync -G :all
    ],
)
def test_a_pdm_lock_gives_the_packages_of_the_groups_selected(
    groups: tuple[str, ...], expected: set[str]
) -> None:
    assert set(locked_requirements(CASE / "pdm.lock", groups)) == expected


def test_a_group_the_lock_does_not_hold_is_named_with_the_fix() -> None:
    with pytest.raises(InvalidConfig, match="group web, which the lock does not hold") as caught:
        pdm.locked_pins(CASE / "pdm.lock", ("default", "web"))
    assert "pdm lock -G web" in caught.value.fix


def test_a_lock_without_groups_per_package_names_the_strategy(tmp_path: Path) -> None:
    lock = tmp_path / "pdm.lock"
    text = (CASE / "pdm.lock").read_text()
    lock.write_text(text.replace('strategy = ["inherit_metadata"]', 'strategy = ["cross_platform"]')
                    .replace('groups = ["default"]\n', ""))  # fmt: skip
    with pytest.raises(InvalidConfig, match="cross_platform") as caught:
        pdm.locked_pins(lock)
    assert "--strategy inherit_metadata" in caught.value.fix


def test_a_package_locked_with_extras_is_pinned_once_and_a_path_one_by_its_path(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "pdm.lock"
    lock.write_text(
        '[metadata]\ngroups = ["default"]\nstrategy = ["inherit_metadata"]\n\n'
        '[[package]]\nname = "uvicorn"\nversion = "0.55.0"\ngroups = ["default"]\n\n'
        '[[package]]\nname = "uvicorn"\nversion = "0.55.0"\nextras = ["standard"]\n'
        'groups = ["default"]\n\n'
        '[[package]]\nname = "lib"\nversion = "0.1.0"\npath = "./lib"\ngroups = ["default"]\n'
    )
    assert pdm.locked_pins(lock) == ("uvicorn==0.55.0", "lib @ ./lib")


def test_the_hashes_a_pdm_lock_records_pin_its_packages(tmp_path: Path) -> None:
    shutil.copytree(CASE, tmp_path / "p")
    pins = hash_pins(tmp_path / "p", ["pdm.lock"])
    assert pins.pins["starlette"].hashes == {
        "sha256:478c0ab3b4ced6e82719849c118fa406f0278a3499c1a898cd15cd31bdc38ce4",
        "sha256:b8399098d4c1e3522734f7235dc79b1fc967f96cf139c81e0fa30479e0685f9b",
    }
