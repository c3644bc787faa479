from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from wheeldock import project
from wheeldock.errors import InvalidConfig, NotFound, UnsupportedDockerfile
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


def _toml(root: Path, service: str) -> Path:
    (root / "app").mkdir(exist_ok=True)
    path = root / "wheeldock.toml"
    path.write_text(f'[services.api]\nsource = "app"\nrequirements = ["r.txt"]\n{service}')
    return path


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ('"python app.py"', ("python", "app.py")),
        ("\"gunicorn -b '0.0.0.0:80' app:main\"", ("gunicorn", "-b", "0.0.0.0:80", "app:main")),
        ('["python", "app.py"]', ("python", "app.py")),
    ],
)
def test_a_command_string_is_split_into_words_as_compose_splits_it(
    tmp_path: Path, command: str, argv: tuple[str, ...]
) -> None:
    from wheeldock.build import builder

    _toml(tmp_path, f"command = {command}\n")
    (svc,) = project.load(tmp_path).services
    assert svc.command == argv
    assert builder.image_config(svc, ())["cmd"] == argv


def _check(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from wheeldock import cli

    capsys.readouterr()
    code = cli.main(["-C", str(root), "lock", "--check"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ('command = "python \'app.py"\n', 'command "python \'app.py" cannot be split into words'),
        ("command = []\n", "[services.api] command is empty"),
        ("command = 3\n", "[services.api] command is 3, neither a list nor a string"),
        ('command = ["python"]\nruntime_packages = "libpq5"\n', "runtime_packages is 'libpq5'"),
    ],
)
def test_a_command_or_list_of_the_wrong_shape_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], service: str, message: str
) -> None:
    _toml(tmp_path, service)
    code, err = _check(tmp_path, capsys)
    assert code == 1 and message in err and "wheeldock.toml" in err


@pytest.mark.parametrize("how", ["dotdot", "symlink", "absolute"])
def test_a_source_folder_outside_the_project_is_refused_however_it_gets_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    root, outside = tmp_path / "proj", tmp_path / "elsewhere"
    root.mkdir()
    (outside / "app").mkdir(parents=True)
    source = {"dotdot": "../elsewhere/app", "absolute": str(outside / "app"), "symlink": "code"}
    if how == "symlink":
        (root / "code").symlink_to(outside / "app")
    (root / "wheeldock.toml").write_text(
        f'[services.api]\nsource = "{source[how]}"\nrequirements = ["r.txt"]\n'
        'command = ["python", "app.py"]\n'
    )
    code, err = _check(root, capsys)
    assert code == 1
    assert f"[services.api] source {source[how]!r} is outside the project folder" in err
    assert "keep the code inside the folder with the compose file" in err


def test_a_byte_that_is_not_utf8_is_named_by_line_column_and_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _toml(tmp_path, 'command = ["python"]\n')
    path = tmp_path / "wheeldock.toml"
    path.write_bytes(path.read_bytes() + b'env = { A = "caf\xe9" }\n')
    code, err = _check(tmp_path, capsys)
    offset = len(path.read_bytes()) - len(b'" }\n') - 1
    assert code == 1
    assert (
        f"wheeldock.toml: line 5, column 17 (byte offset {offset}): byte b'\\xe9' is not UTF-8"
        in err
    )
    assert "save the file as UTF-8" in err and "Traceback" not in err


def test_groups_are_written_only_when_chosen_and_read_back(tmp_path: Path) -> None:
    plain, grouped = _service("a"), replace(_service("b"), groups=("main", "dev"))
    project.save(Project(root=tmp_path, compose_file=None, services=(plain, grouped)))
    text = (tmp_path / "wheeldock.toml").read_text()
    assert text.count("groups") == 1
    assert project.load(tmp_path).services == (plain, grouped)


def test_writable_code_is_written_only_when_true_and_read_back(tmp_path: Path) -> None:
    svc = Service("web", "app", ("app/r.txt",), ("python", "app.py"), writable_code=True)
    assert svc.to_toml()["writable_code"] is True
    assert "writable_code" not in replace(svc, writable_code=False).to_toml()
    assert Service.from_toml("web", svc.to_toml(), tmp_path / "wheeldock.toml") == svc


def test_writable_code_that_is_not_a_boolean_is_refused_with_the_fix(tmp_path: Path) -> None:
    data = Service("web", "app", (), ("python", "app.py")).to_toml() | {"writable_code": "yes"}
    with pytest.raises(InvalidConfig, match="writable_code = 'yes' is not true or false"):
        Service.from_toml("web", data, tmp_path / "wheeldock.toml")


def test_the_native_commands_name_the_services_docker_compose_builds_when_none_is_left(
    tmp_path: Path,
) -> None:
    # testdrivenio/flask-on-docker (2026-12): its one Python service is built from its own
    # Dockerfile on python:3.11.3-slim-buster, so `wheeldock lock` had nothing to do
    proj = Project(
        root=tmp_path, compose_file=None, services=(), docker_only={"web": "Dockerfile:2: …"}
    )
    with pytest.raises(UnsupportedDockerfile) as err:
        proj.buildable([])
    assert "web is built from its own Dockerfile" in err.value.what
    assert "docker compose build" in (err.value.fix or "")
    assert proj.select([]) == ()  # `up` still takes the stack


def test_buildable_is_every_service_when_some_are_built_natively(tmp_path: Path) -> None:
    proj = Project(
        root=tmp_path, compose_file=None, services=(_service("api"),), docker_only={"web": "…"}
    )
    assert proj.buildable([]) == proj.services
