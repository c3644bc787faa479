from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from wheeldock import project
from wheeldock.errors import InvalidConfig, NotFound
from wheeldock.project import Project, Service


def _service(name: str = "api") -> Service:
    return Service(
        name=name,
        source="app",
        requirements=("app/requirements.txt",),
        command=("python3", "main.py"),
        workdir="/app",
        port=8000,
        health="/health",
        env={"PORT": "8000"},
        runtime_packages=("libffi8",),
        runtime_packages_source="elf-scan",
    )


def test_save_then_load_gives_the_same_project(tmp_path: Path) -> None:
    original = Project(
        root=tmp_path, compose_file="compose.yaml", services=(_service(), _service("b"))
    )
    project.save(original)
    assert project.load(tmp_path) == original


def test_saved_file_starts_with_a_comment_explaining_it(tmp_path: Path) -> None:
    project.save(Project(root=tmp_path, compose_file=None, services=(_service(),)))
    assert (tmp_path / "wheeldock.toml").read_text().startswith("# wheeldock.toml")


def test_load_without_config_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as err:
        project.load(tmp_path)
    assert "wheeldock init" in (err.value.fix or "")


def test_missing_key_names_the_service_and_key(tmp_path: Path) -> None:
    (tmp_path / "wheeldock.toml").write_text('[services.api]\nsource = "app"\n')
    with pytest.raises(InvalidConfig) as err:
        project.load(tmp_path)
    assert "[services.api]" in err.value.what and "command" in err.value.what


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "wheeldock.toml").write_text("[services\n")
    with pytest.raises(InvalidConfig) as err:
        project.load(tmp_path)
    assert err.value.path == tmp_path / "wheeldock.toml"


def test_unknown_service_lists_the_known_ones(tmp_path: Path) -> None:
    proj = Project(root=tmp_path, compose_file=None, services=(_service("api"), _service("img")))
    with pytest.raises(NotFound) as err:
        proj.service("nope")
    assert "api, img" in (err.value.fix or "")


def test_select_with_no_names_means_all_services(tmp_path: Path) -> None:
    proj = Project(root=tmp_path, compose_file=None, services=(_service("api"), _service("img")))
    assert proj.select([]) == proj.services
    assert [s.name for s in proj.select(["img"])] == ["img"]


def test_groups_are_written_only_when_chosen_and_read_back(tmp_path: Path) -> None:
    plain, grouped = _service("a"), replace(_service("b"), groups=("main", "dev"))
    project.save(Project(root=tmp_path, compose_file=None, services=(plain, grouped)))
    text = (tmp_path / "wheeldock.toml").read_text()
    assert text.count("groups") == 1
    assert project.load(tmp_path).services == (plain, grouped)
