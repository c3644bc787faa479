"""Poetry's locks read without Poetry: the main group's packages pinned, as ``poetry export``
gives them, for the locks Poetry 1.0-1.2 (lock-version 1.1), 1.3-1.4 (2.0 with categories),
1.5-1.8 (2.0 without) and 2 (2.1 with groups) write."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wheeldock.deps import poetry
from wheeldock.deps.requirements import locked_requirements
from wheeldock.errors import InvalidConfig

DATA = Path(__file__).parents[2] / "data" / "poetry"
ADHOC_CART = Path(__file__).parents[2] / "data" / "init" / "adhoc" / "cart"
BELOW_311 = 'python_version < "3.11"'

MAIN = {
    "anyio==4.4.0",
    "certifi==2024.7.4",
    "click==8.1.7",
    'colorama==0.4.6 ; platform_system == "Windows"',
    f"exceptiongroup==1.2.2 ; {BELOW_311}",
    "h11==0.14.0",
    "h2==4.1.0",  # httpx's http2 extra, asked for in [tool.poetry.dependencies]
    "hpack==4.0.0",
    "httpcore==1.0.5",
    "httpx==0.27.0",
    "hyperframe==6.0.1",
    "idna==3.7",
    "sniffio==1.3.1",
    f"typing-extensions==4.12.2 ; {BELOW_311}",
    "uvicorn==0.30.1",
}


@pytest.mark.parametrize("version", ["1.1", "1.4", "1.8"])
def test_a_poetry_1_lock_gives_its_main_group_pinned_with_the_markers_of_its_paths(
    version: str,
) -> None:
    folder = DATA / f"poetry-{version}"
    assert set(locked_requirements(folder / "poetry.lock")) == MAIN


@pytest.mark.parametrize("version", ["1.1", "1.4", "1.8"])
def test_the_dev_group_of_a_poetry_1_lock_adds_its_packages_and_their_markers(
    version: str,
) -> None:
    folder = DATA / f"poetry-{version}"
    pins = set(
        poetry.locked_pins(folder / "poetry.lock", folder / "pyproject.toml", ("main", "dev"))
    )
    added = pins - MAIN
    assert {p.split(" ;")[0] for p in added} == {
        "colorama==0.4.6",  # now also pytest's, on another platform
        "iniconfig==2.0.0",
        "packaging==24.1",
        "pluggy==1.5.0",
        "pytest==8.2.2",
        "tomli==2.0.1",
    }
    assert 'colorama==0.4.6 ; platform_system == "Windows" or sys_platform == "win32"' in pins
    assert f"tomli==2.0.1 ; {BELOW_311}" in pins


def test_only_the_dev_group_leaves_the_main_packages_out() -> None:
    folder = DATA / "poetry-1.8"
    pins = poetry.locked_pins(folder / "poetry.lock", folder / "pyproject.toml", ("dev",))
    assert {p.split(" ;")[0].split("==")[0] for p in pins} == {
        "colorama", "exceptiongroup", "iniconfig", "packaging", "pluggy", "pytest", "tomli"
    }  # fmt: skip


def test_a_poetry_1_4_lock_takes_its_main_packages_from_their_category(tmp_path: Path) -> None:
    shutil.copytree(DATA / "poetry-1.4", tmp_path / "svc")
    lock = tmp_path / "svc" / "poetry.lock"
    # a lock whose pyproject no longer names uvicorn: Poetry 1.4 installs by category
    manifest = tmp_path / "svc" / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace('uvicorn = "^0.30.1"\n', ""))
    assert "uvicorn==0.30.1" in poetry.locked_pins(lock, manifest)


def test_a_poetry_1_8_lock_follows_the_pyproject_groups(tmp_path: Path) -> None:
    shutil.copytree(DATA / "poetry-1.8", tmp_path / "svc")
    manifest = tmp_path / "svc" / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace('uvicorn = "^0.30.1"\n', ""))
    pins = set(poetry.locked_pins(tmp_path / "svc" / "poetry.lock", manifest))
    assert pins == MAIN - {
        "uvicorn==0.30.1",
        "click==8.1.7",
        'colorama==0.4.6 ; platform_system == "Windows"',
    }


def test_a_poetry_1_lock_with_a_package_locked_per_python_pins_each_under_its_marker(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.poetry]\nname = "calc"\nversion = "1.0"\ndescription = ""\nauthors = []\n\n'
        '[tool.poetry.dependencies]\npython = "^3.8"\nnumpy = [\n'
        '    {version = "^1.24", python = "<3.9"},\n'
        '    {version = "^1.26", python = ">=3.9"},\n]\n'
    )
    (tmp_path / "poetry.lock").write_text(
        "".join(
            f'[[package]]\nname = "numpy"\nversion = "{v}"\ndescription = "Fundamental package '
            f'for array computing in Python"\noptional = false\npython-versions = "{p}"\n'
            f'files = [\n    {{file = "numpy-{v}.tar.gz", hash = "sha256:{"0" * 64}"}},\n]\n\n'
            for v, p in (("1.24.4", ">=3.8"), ("1.26.4", ">=3.9"))
        )
        + '[metadata]\nlock-version = "2.0"\npython-versions = "^3.8"\ncontent-hash = "'
        + "1" * 64
        + '"\n'
    )
    assert locked_requirements(tmp_path / "poetry.lock") == (
        'numpy==1.24.4 ; python_version < "3.9"',
        'numpy==1.26.4 ; python_version >= "3.9"',
    )


def test_a_poetry_2_lock_gives_its_main_group_as_before() -> None:
    pins = poetry.locked_pins(ADHOC_CART / "poetry.lock", ADHOC_CART / "pyproject.toml")
    names = {p.split("==")[0] for p in pins}
    assert "uvicorn" in names and "pytest" not in names and "colorama" not in names


def test_a_poetry_2_lock_with_the_dev_group_adds_it_under_its_group_marker() -> None:
    pins = poetry.locked_pins(
        ADHOC_CART / "poetry.lock", ADHOC_CART / "pyproject.toml", ("main", "dev")
    )
    assert 'colorama==0.4.6 ; sys_platform == "win32"' in pins
    assert any(p.startswith("pytest==") for p in pins)


def test_a_lock_that_is_not_toml_is_refused_naming_poetry_lock(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.poetry]\n")
    (tmp_path / "poetry.lock").write_text("[[package]\nname =")
    with pytest.raises(InvalidConfig, match="not valid TOML") as err:
        locked_requirements(tmp_path / "poetry.lock")
    assert err.value.fix == "run `poetry lock`"


@pytest.mark.parametrize(
    ("constraint", "specifiers"),
    [
        ("^1.2.3", [[">=1.2.3", "<2"]]),
        ("^0.27.0", [[">=0.27.0", "<0.28"]]),
        ("~1.2", [[">=1.2", "<1.3"]]),
        ("1.2.*", [["==1.2.*"]]),
        ("*", [[]]),
        (">=1,<2", [[">=1", "<2"]]),
        (">=1 <2", [[">=1", "<2"]]),
        ("<3.9 || >=3.11", [["<3.9"], [">=3.11"]]),
    ],
)
def test_poetry_version_constraints_read_as_pep_440(
    constraint: str, specifiers: list[list[str]]
) -> None:
    assert poetry.pep440(constraint) == specifiers


@pytest.mark.parametrize(
    ("constraint", "marker"),
    [
        ("<3.11", 'python_version < "3.11"'),
        (">=3.8.1,<4.0", 'python_full_version >= "3.8.1" and python_version < "4.0"'),
        ("<3.9 || >=3.11", 'python_version < "3.9" or python_version >= "3.11"'),
    ],
)
def test_a_python_constraint_becomes_a_python_version_marker(constraint: str, marker: str) -> None:
    assert poetry.python_marker(constraint) == marker


def test_a_poetry_1_lock_beside_a_pyproject_without_tool_poetry_is_refused(
    tmp_path: Path,
) -> None:
    shutil.copytree(DATA / "poetry-1.8", tmp_path / "svc")
    (tmp_path / "svc" / "pyproject.toml").write_text('[project]\nname = "shop"\n')
    with pytest.raises(InvalidConfig, match=r"without a \[tool.poetry\] table") as err:
        locked_requirements(tmp_path / "svc" / "poetry.lock")
    assert err.value.fix is not None and "`poetry lock`" in err.value.fix


def test_an_extra_asked_of_a_package_settles_the_extra_term_of_its_dependencies(
    tmp_path: Path,
) -> None:
    # chaidosk/fastapi_async_celery (Poetry 1.5): celery[sqs] needs pycurl under
    # `sys_platform != "win32" and … and extra == "sqs"`; the extra term stayed in the pin's
    # marker, which no target satisfies, and pycurl was left out of the lock
    (tmp_path / "pyproject.toml").write_text(
        '[tool.poetry]\nname = "tasks"\nversion = "1.0"\ndescription = ""\nauthors = []\n\n'
        '[tool.poetry.dependencies]\npython = "^3.11"\n'
        'celery = { version = "^5.3.4", extras = ["sqs"] }\n'
    )
    package = (
        '[[package]]\nname = "{name}"\nversion = "{version}"\ndescription = ""\n'
        'optional = {optional}\npython-versions = ">=3.8"\nfiles = []\n{more}\n'
    )
    celery = (
        "\n[package.dependencies]\n"
        'boto3 = {version = ">=1.26", optional = true, markers = "extra == \\"sqs\\""}\n'
        'pycurl = {version = ">=7.43", optional = true, markers = "sys_platform != \\"win32\\" '
        'and platform_python_implementation == \\"CPython\\" and extra == \\"sqs\\""}\n'
        'redis = {version = ">=4.5", optional = true, markers = "extra == \\"redis\\" or '
        'extra == \\"sqs\\""}\n'
        'pymongo = {version = ">=4", optional = true, markers = "extra == \\"mongodb\\""}\n'
        "\n[package.extras]\n"
        'sqs = ["boto3 (>=1.26)", "pycurl (>=7.43)", "redis (>=4.5)"]\n'
        'redis = ["redis (>=4.5)"]\nmongodb = ["pymongo (>=4)"]\n'
    )
    (tmp_path / "poetry.lock").write_text(
        package.format(name="celery", version="5.3.4", optional="false", more=celery)
        + "".join(
            package.format(name=n, version=v, optional="true", more="")
            for n, v in (
                ("boto3", "1.28.0"),
                ("pycurl", "7.45.2"),
                ("redis", "5.0.1"),
                ("pymongo", "4.6.0"),
            )
        )
        + '[metadata]\nlock-version = "2.0"\npython-versions = "^3.11"\ncontent-hash = "'
        + "1" * 64
        + '"\n'
    )
    assert set(locked_requirements(tmp_path / "poetry.lock")) == {
        "celery==5.3.4",
        "boto3==1.28.0",
        'pycurl==7.45.2 ; platform_python_implementation == "CPython" and sys_platform != "win32"',
        "redis==5.0.1",
    }
