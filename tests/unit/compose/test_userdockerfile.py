"""A service's own Dockerfile: the build: section resolved, the file read with BuildKit's
parser, the installs found in its RUN steps (pure but for the files of the context)."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from wheeldock.compose import builds
from wheeldock.compose import userdockerfile as ud
from wheeldock.deps.requirements import requirement_closure
from wheeldock.errors import InvalidDockerfile


def _context(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {"requirements.txt": "flask==3.0.3\n"}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def _reading(tmp_path: Path, dockerfile: str, **files: str) -> builds.Reading:
    context = _context(tmp_path, dockerfile, files or None)
    return builds.read_service(ud.build_source(".", context, {}))


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("python:${PY}-slim", {"PY": "3.12"}, "python:3.12-slim"),
        ("python:${PY:-3.11}", {}, "python:3.11"),
        ("python:${PY:-3.11}", {"PY": ""}, "python:3.11"),
        ("python:${PY-3.11}", {"PY": ""}, "python:"),
        ("python:$PY", {"PY": "3.13"}, "python:3.13"),
        ("x${DEV:+-dev}", {"DEV": "1"}, "x-dev"),
        ("x${DEV:+-dev}", {}, "x"),
    ],
)
def test_expand_reads_variables_as_buildkit_does(
    text: str, values: dict[str, str], expected: str
) -> None:
    assert ud.expand(text, values) == expected


def test_build_source_falls_back_to_a_lowercase_dockerfile(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "dockerfile").write_text("FROM python\n")
    source = ud.build_source({"context": "app"}, tmp_path, {})
    assert source.dockerfile == tmp_path / "app" / "dockerfile"


def test_build_args_without_a_value_come_from_the_environment(tmp_path: Path) -> None:
    build = {"context": ".", "args": ["A=1", "B", "C"], "target": "prod"}
    source = ud.build_source(build, tmp_path, {"B": "2"})
    assert source.args == {"A": "1", "B": "2"}
    assert source.target == "prod"


def test_a_remote_context_is_not_convertible(tmp_path: Path) -> None:
    with pytest.raises(ud.NotConvertible, match="remote"):
        ud.build_source("https://github.com/o/r.git", tmp_path, {})


def test_from_is_resolved_with_global_args_and_build_args(tmp_path: Path) -> None:
    text = "ARG PY=3.11\nARG VARIANT\nFROM python:${PY}-${VARIANT:-slim} AS base\nFROM base\n"
    df = ud.parse(text, tmp_path / "Dockerfile", {"PY": "3.12"})
    assert [s.image for s in df.stages] == ["python:3.12-slim", "base"]
    assert df.chain(df.target(None)) == [df.stages[1], df.stages[0]]
    assert df.stage("0") == df.stages[0]


def test_an_unknown_target_names_the_stages(tmp_path: Path) -> None:
    df = ud.parse("FROM python AS dev\nFROM python AS prod\n", tmp_path / "Dockerfile", {})
    with pytest.raises(InvalidDockerfile, match="dev, prod"):
        df.target("test")


@pytest.mark.parametrize(
    ("run", "requirements", "packages", "kept"),
    [
        ("RUN pip install -r requirements.txt", ("requirements.txt",), (), ""),
        (
            "RUN pip install --upgrade pip && pip install --upgrade -r requirements.txt",
            ("requirements.txt",),
            (),
            "pip install --upgrade pip",
        ),
        (
            "RUN --mount=type=cache,target=/root/.cache/pip \\\n"
            "    python -m pip install -r requirements.txt \\\n"
            "    && python manage.py collectstatic --noinput",
            ("requirements.txt",),
            (),
            "python manage.py collectstatic --noinput",
        ),
        ('RUN ["pip", "install", "-r", "requirements.txt"]', ("requirements.txt",), (), ""),
        ("RUN uv pip install --system -r requirements.txt", ("requirements.txt",), (), ""),
        ("RUN pip install flask gunicorn==22.0.0", (), ("flask", "gunicorn==22.0.0"), ""),
        (
            "RUN <<EOF\nset -e\npip install -r requirements.txt\necho done\nEOF",
            ("requirements.txt",),
            (),
            "set -e\necho done",
        ),
        (
            "RUN pip install \\\n      -r requirements.txt \\\n  # BuildKit drops this line\n"
            "    && echo done",
            ("requirements.txt",),
            (),
            "echo done",
        ),
        ("RUN cd /app && pip install -r requirements.txt", ("requirements.txt",), (), ""),
    ],
)
def test_the_install_steps_are_found_and_the_others_kept(
    tmp_path: Path, run: str, requirements: tuple[str, ...], packages: tuple[str, ...], kept: str
) -> None:
    reading = _reading(tmp_path, f"FROM python:3.11-slim\nWORKDIR /app\nCOPY . .\n{run}\n")
    assert reading.requirements == requirements
    assert reading.packages == packages
    assert reading.installs[0].kept == kept


@pytest.mark.parametrize(
    ("dockerfile", "files", "expected"),
    [
        (
            "FROM python:3.11\nWORKDIR /srv\nCOPY pyproject.toml poetry.lock ./\n"
            "RUN pip install poetry && poetry config virtualenvs.create false \\\n"
            "    && poetry install --no-root --only main\nCOPY . .\n",
            {"pyproject.toml": "[tool.poetry]\nname='x'\n", "poetry.lock": ""},
            ("poetry.lock",),
        ),
        (
            "FROM python:3.12-slim\nCOPY Pipfile Pipfile.lock /app/\nWORKDIR /app\n"
            "RUN pip install pipenv && pipenv install --system --deploy\n",
            {"Pipfile": "", "Pipfile.lock": "{}"},
            ("Pipfile.lock",),
        ),
        (
            "FROM python:3.12-slim\nWORKDIR /app\nCOPY uv.lock pyproject.toml ./\n"
            "RUN uv sync --frozen --no-dev\n",
            {"uv.lock": "", "pyproject.toml": "[project]\nname='x'\nversion='1'\n"},
            ("uv.lock",),
        ),
        (
            "FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements/ ./reqs/\n"
            "RUN pip install -r reqs/prod.txt -c reqs/constraints.txt\n",
            {"requirements/prod.txt": "flask\n", "requirements/constraints.txt": "flask<4\n"},
            ("requirements/prod.txt",),
        ),
        (
            "FROM python:3.12-slim\nWORKDIR /app\n"
            "RUN --mount=type=bind,source=requirements.txt,target=/tmp/r.txt "
            "pip install -r /tmp/r.txt\n",
            {"requirements.txt": "flask\n"},
            ("requirements.txt",),
        ),
    ],
)
def test_the_files_an_install_reads_are_found_in_the_context(
    tmp_path: Path, dockerfile: str, files: dict[str, str], expected: tuple[str, ...]
) -> None:
    assert _reading(tmp_path, dockerfile, **files).requirements == expected


@pytest.mark.parametrize(
    "run",
    [
        # tiangolo/full-stack-fastapi-postgresql: read as "installs no dependencies"
        "RUN bash -c \"if [ $INSTALL_DEV == 'true' ] ; then poetry install --no-root ; "
        'else poetry install --no-root --only main ; fi"',
        'RUN ["/bin/sh", "-ec", "pip install -r requirements.txt"]',
        "RUN set -e && sh -c 'uv sync --frozen'",
    ],
)
def test_an_install_in_a_script_handed_to_another_shell_is_not_convertible_and_says_so(
    tmp_path: Path, run: str
) -> None:
    text = f"FROM python:3.10\nWORKDIR /app/\nCOPY ./pyproject.toml ./poetry.lock* /app/\n{run}\n"
    with pytest.raises(
        ud.NotConvertible, match=r"is in a script run by `(/bin/)?(ba)?sh -c`"
    ) as caught:
        _reading(tmp_path, text)
    assert caught.value.line == 4


def test_a_shell_script_step_that_installs_nothing_is_kept(tmp_path: Path) -> None:
    text = (
        "FROM python:3.10\nWORKDIR /app\nCOPY requirements.txt .\n"
        "RUN pip install -r requirements.txt && sh -c 'python -m compileall -q .'\n"
        "RUN bash -c 'pip install --upgrade pip setuptools wheel'\n"
    )
    reading = _reading(tmp_path, text, **{"requirements.txt": "flask\n"})
    assert [i.kept for i in reading.installs] == ["sh -c 'python -m compileall -q .'"]


def test_an_install_inside_an_if_is_not_convertible_and_says_the_line(tmp_path: Path) -> None:
    text = "FROM python\nCOPY . .\nRUN if [ -f r.txt ]; then pip install -r r.txt; fi\n"
    with pytest.raises(ud.NotConvertible, match="`if`") as caught:
        _reading(tmp_path, text)
    assert caught.value.line == 3


@pytest.mark.parametrize(
    ("install", "groups", "dev"),
    [
        ("pdm install --prod --no-self", (), False),
        ("pdm sync -G test", ("default", "test"), False),
        ("pdm install", (), True),
    ],
)
def test_a_pdm_install_reads_its_lock_and_the_groups_it_selects(
    tmp_path: Path, install: str, groups: tuple[str, ...], dev: bool
) -> None:
    text = f"FROM python\nWORKDIR /app\nCOPY pyproject.toml pdm.lock ./\nRUN {install}\nCOPY . .\n"
    case = Path(__file__).parents[2] / "data" / "dockerfiles" / "pdm-install-prod"
    files = {n: (case / n).read_text() for n in ("pyproject.toml", "pdm.lock")}
    reading = _reading(tmp_path, text, **files)
    assert (reading.requirements, reading.groups) == (("pdm.lock",), groups)
    assert any("development packages are left out" in n for n in reading.notes) is dev
    _, reqs = requirement_closure(tmp_path, reading.requirements, groups=reading.groups)
    assert ("pytest" in {r.name for r in reqs}) is bool(groups)


def test_a_pdm_install_from_another_lock_file_is_named(tmp_path: Path) -> None:
    text = "FROM python\nCOPY . .\nRUN pdm install -L other.lock\n"
    with pytest.raises(ud.NotConvertible, match=r"-L other\.lock"):
        _reading(tmp_path, text, **{"pdm.lock": "", "pyproject.toml": ""})


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("FROM python:3.11\nCOPY . /app\nCMD python /app/app.py\n", "#0 (`FROM python:3.11`)"),
        # Kylep342/mendel's Go server: the reason names the base, which is not Python
        (
            'ARG GO=1.24\nFROM golang:${GO}-alpine AS dev\nCOPY . .\nCMD ["air"]\n',
            "dev (`FROM golang:1.24-alpine`)",
        ),
    ],
)
def test_a_stage_installing_nothing_is_not_convertible_and_names_its_base(
    tmp_path: Path, text: str, said: str
) -> None:
    with pytest.raises(ud.NotConvertible, match="installs no dependencies") as caught:
        _reading(tmp_path, text)
    assert f"its stage {said} installs no dependencies" in caught.value.why


def test_a_requirements_file_not_in_the_context_is_named(tmp_path: Path) -> None:
    text = "FROM python\nWORKDIR /app\nCOPY app.py .\nRUN pip install -r requirements.txt\n"
    with pytest.raises(ud.NotConvertible, match="not copied from the build context"):
        _reading(tmp_path, text, **{"app.py": ""})


def test_cache_mounts_after_the_dependency_files_alone_are_already_prebuilt(
    tmp_path: Path,
) -> None:
    text = (
        "FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt .\n"
        "RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt\n"
        "COPY . .\n"
    )
    assert "cache mount" in (_reading(tmp_path, text).prebuilt or "")


def test_a_multi_stage_build_copying_its_venv_is_already_prebuilt(tmp_path: Path) -> None:
    text = (
        "FROM python:3.12 AS build\nCOPY requirements.txt .\n"
        "RUN python -m venv /venv && /venv/bin/pip install -r requirements.txt\n"
        "FROM python:3.12-slim\nCOPY --from=build /venv /venv\nCOPY . /app\n"
    )
    assert "stage build" in (_reading(tmp_path, text).prebuilt or "")


def test_a_utf16_requirements_file_is_decoded_as_pip_does(tmp_path: Path) -> None:
    data = codecs.BOM_UTF16_LE + "flask==3.0.3\r\ngunicorn\r\n".encode("utf-16-le")
    (tmp_path / "requirements.txt").write_bytes(data)
    _, reqs = requirement_closure(tmp_path, ["requirements.txt"])
    assert [r.name for r in reqs] == ["flask", "gunicorn"]


def test_a_dockerfile_buildkit_cannot_read_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidDockerfile, match="parser"):
        ud.parse("FROM python\nRUN <<EOF\n", tmp_path / "Dockerfile", {})


def test_two_installs_of_one_stage_are_read_together(tmp_path: Path) -> None:
    text = (
        "FROM python\nWORKDIR /app\nCOPY requirements.txt .\n"
        "RUN pip install -r requirements.txt\nRUN pip install gunicorn\nCOPY . .\n"
    )
    reading = _reading(tmp_path, text)
    assert (reading.requirements, reading.packages) == (("requirements.txt",), ("gunicorn",))
    assert [i.instruction.start_line for i in reading.installs] == [4, 5]


def test_a_file_copied_under_another_name_is_found_by_its_own(tmp_path: Path) -> None:
    text = (
        "FROM python:slim\nCOPY ./requirements-docker.txt /app/requirements.txt\n"
        "WORKDIR /app\nRUN pip install -r requirements.txt\n"
    )
    reading = _reading(tmp_path, text, **{"requirements-docker.txt": "flask\n"})
    assert reading.requirements == ("requirements-docker.txt",)


def test_a_lock_install_taking_the_development_packages_says_they_are_left_out(
    tmp_path: Path,
) -> None:
    text = (
        "FROM python:3.11\nWORKDIR /app\nCOPY pyproject.toml poetry.lock ./\n"
        "RUN poetry install --no-root\n"
    )
    reading = _reading(
        tmp_path, text, **{"pyproject.toml": "[tool.poetry]\nname='x'\n", "poetry.lock": ""}
    )
    assert any("development packages are left out" in n for n in reading.notes)


@pytest.mark.parametrize(
    ("told", "dev"),
    [
        # astral-sh/uv-docker-example tells `uv sync` so with `ENV UV_NO_DEV=1`
        ("ENV UV_NO_DEV=1\n", False),
        ("ARG UV_NO_DEV=true\n", False),
        ("ENV UV_NO_DEV=0\n", True),
        ("", True),
    ],
)
def test_a_uv_sync_told_no_dev_by_the_stage_env_is_not_said_to_take_them(
    tmp_path: Path, told: str, dev: bool
) -> None:
    text = (
        f"FROM python:3.12-slim\n{told}WORKDIR /app\nCOPY pyproject.toml uv.lock ./\n"
        "RUN uv sync --locked --no-install-project\nCOPY . .\n"
    )
    case = Path(__file__).parents[2] / "data" / "dockerfiles" / "uv-sync-frozen"
    files = {n: (case / n).read_text() for n in ("pyproject.toml", "uv.lock")}
    reading = _reading(tmp_path, text, **files)
    assert reading.installs[0].dev is dev
    assert any("development packages are left out" in n for n in reading.notes) is dev


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ('ENV A=1 B="2 3"', [("A", "1"), ("B", "2 3")]),
        ("ENV C 4 5", [("C", "4 5")]),
        ("ENV D=${A:-x}/bin", [("D", "${A:-x}/bin")]),
    ],
)
def test_env_pairs_are_read_in_both_forms(
    env: str, expected: list[tuple[str, str]], tmp_path: Path
) -> None:
    df = ud.parse(f"FROM python\n{env}\n", tmp_path / "Dockerfile", {})
    assert ud.env_pairs(df.stages[0].body[0]) == expected


def test_a_workdir_made_of_env_values_is_expanded(tmp_path: Path) -> None:
    text = (
        "FROM python\nENV HOME=/home/app APP=site\nWORKDIR $HOME/$APP\n"
        "COPY requirements.txt .\nRUN pip install -r requirements.txt\n"
    )
    reading = _reading(tmp_path, text)
    assert reading.installs[0].folder == "/home/app/site"
    assert reading.requirements == ("requirements.txt",)


def test_a_dockerfile_with_another_escape_character_is_not_convertible(tmp_path: Path) -> None:
    text = (
        "# escape=`\nFROM python\nCOPY . .\nRUN pip install -r requirements.txt `\n  && echo hi\n"
    )
    with pytest.raises(ud.NotConvertible, match="escape directive") as caught:
        _reading(tmp_path, text)
    assert caught.value.line == 1


def test_what_ran_only_when_the_install_failed_goes_with_it(tmp_path: Path) -> None:
    text = "FROM python\nCOPY . .\nRUN pip install -r requirements.txt || true\n"
    assert _reading(tmp_path, text).installs[0].kept == ""


_UV_PROJECT = {"uv.lock": "", "pyproject.toml": "[project]\nname='x'\nversion='1'\n"}


def test_an_install_taking_options_the_run_computes_is_not_convertible(tmp_path: Path) -> None:
    # the shape of getredash/redash's Dockerfile (2026-12): the groups in a build arg, turned
    # into uv's flags by a loop of the same RUN
    text = (
        "FROM python:3.13-slim\nWORKDIR /app\nCOPY pyproject.toml uv.lock ./\n"
        'ARG install_groups="main,all_ds,dev"\n'
        "RUN <<EOF\n"
        '  group_flags=""\n'
        "  for group in $(echo \"$install_groups\" | tr ',' ' '); do\n"
        '    group_flags="$group_flags --group $group"\n'
        "  done\n"
        "  uv sync --frozen $group_flags\n"
        "EOF\n"
    )
    with pytest.raises(ud.NotConvertible, match=r"takes \$group_flags, which the RUN sets") as e:
        _reading(tmp_path, text, **_UV_PROJECT)
    assert e.value.line == 5


def _uv_sync_with_options(options: str) -> str:
    return (
        "FROM python:3.13-slim\nWORKDIR /app\nCOPY pyproject.toml uv.lock ./\n"
        f'ARG UV_OPTIONS="{options}"\nRUN uv sync $UV_OPTIONS\n'
    )


@pytest.mark.parametrize(("options", "dev"), [("--frozen --no-dev", False), ("--frozen", True)])
def test_install_options_from_a_build_arg_are_read_as_the_shell_splits_them(
    tmp_path: Path, options: str, dev: bool
) -> None:
    reading = _reading(tmp_path, _uv_sync_with_options(options), **_UV_PROJECT)
    assert reading.installs[0].dev is dev


def test_a_group_selected_through_a_build_arg_is_not_convertible(tmp_path: Path) -> None:
    with pytest.raises(ud.NotConvertible, match="--group all_ds"):
        _reading(tmp_path, _uv_sync_with_options("--no-dev --group all_ds"), **_UV_PROJECT)
