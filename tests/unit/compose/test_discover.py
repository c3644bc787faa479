"""Finding Python services and inferring their settings from compose files and code."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from support.projects import write_files
from support.stacks import DATA, EXAMPLE

from wheeldock.compose import files as compose
from wheeldock.compose import survey as discover
from wheeldock.deps import lock
from wheeldock.errors import InvalidConfig, NotFound


def _discover(root: Path, env: dict[str, str] | None = None) -> list[discover.Finding]:
    files = [compose.load(p) for p in compose.find_files(root)]
    return discover.discover(root, files, env or {})


def test_cb_totem_has_two_python_services_with_their_entry_points() -> None:
    found = {f.service.name: f for f in _discover(EXAMPLE)}
    assert set(found) == {"calidda-api", "srv-img"}
    api, img = found["calidda-api"].service, found["srv-img"].service
    assert api.command == ("python", "api_wrapper.py")
    assert img.command == ("python", "main.py")
    for svc in (api, img):
        assert svc.source == "vcc-totem"
        assert svc.workdir == "/src" and svc.source_target == "/src"
        assert svc.requirements == ("vcc-totem/requirements.txt",)
        assert svc.health == "/health"
        assert svc.network_mode == "host"
    assert (api.port, img.port) == (8000, 8001)
    assert found["calidda-api"].drop_keys == ("command", "working_dir")
    assert found["calidda-api"].source_volume == "./vcc-totem"


def test_port_comes_from_the_environment_variable_the_user_sets() -> None:
    found = _discover(EXAMPLE, {"CALIDDA_API_PORT": "18555"})
    assert {f.service.name: f.service.port for f in found}["calidda-api"] == 18555


def test_flask_under_gunicorn_keeps_the_shell_variable_and_finds_healthz() -> None:
    (web,) = _discover(DATA / "flask")
    svc = web.service
    assert svc.command == ("gunicorn", "--workers", "2", "--bind", "0.0.0.0:${PORT}", "wsgi:app")
    assert svc.port == 5000
    assert svc.health == "/healthz"  # GET route; the POST /orders route is not a candidate


def test_worker_without_port_gets_a_process_check() -> None:
    (worker,) = _discover(DATA / "worker")
    assert worker.service.port is None
    assert worker.service.health == "process"
    assert worker.service.command == ("python", "-m", "jobs")
    assert worker.source_volume == "./worker"  # from the long volume syntax


def test_nested_requirements_follow_includes_and_constraints() -> None:
    (api,) = _discover(DATA / "nested")
    assert api.service.requirements == ("svc/requirements/prod.txt",)
    assert api.requirement_files == (
        "svc/requirements/prod.txt",
        "svc/requirements/base.txt",
        "svc/requirements/constraints.txt",
    )
    assert api.service.health == "tcp"  # a bare ASGI app declares no route
    assert api.service.port == 8300
    assert api.service.command[-2:] == ("--port", "8300")
    assert any("NESTED_PORT" in note for note in api.notes)


@pytest.mark.parametrize(
    ("command", "requirements", "packages", "projects"),
    [
        (
            "sh -c 'pip install flask \"gunicorn==23.0.0\" && gunicorn app:app'",
            (),
            ("flask", "gunicorn==23.0.0"),
            (),
        ),
        (
            "sh -c 'pip install -U pip && pip install --no-cache-dir -r req.txt && python a.py'",
            ("req.txt",),
            (),
            (),
        ),
        (
            "sh -c 'pip install uv && uv pip install --system -r req.txt && uvicorn main:app'",
            ("req.txt",),
            (),
            (),
        ),
        ("sh -c 'pip install -e . && python -m worker'", (), (), (".",)),
        ("sh -c 'python -m pip install /code && python -m worker'", (), (), ("/code",)),
        (
            "sh -c 'pip install -i https://example.org/simple -r r.txt requests && python a.py'",
            ("r.txt",),
            ("requests",),
            (),
        ),
    ],
)
def test_pip_installs_of_inline_packages_and_local_projects_are_read(
    command: str,
    requirements: tuple[str, ...],
    packages: tuple[str, ...],
    projects: tuple[str, ...],
) -> None:
    start = discover._parse_start(command)
    assert start is not None
    assert (start.requirements, start.packages, start.projects) == (
        requirements,
        packages,
        projects,
    )


@pytest.mark.parametrize(
    "command",
    [
        ["bash", "-lc", "pip install -r r.txt && python a.py"],
        ["/bin/sh", "-e", "-c", "pip install -r r.txt && python a.py"],
        ["bash", "-o", "pipefail", "-c", "pip install -r r.txt && python a.py"],
        "sh -euxc 'pip install -r r.txt && python a.py'",
    ],
)
def test_the_script_is_found_whatever_options_the_shell_is_given(command: Any) -> None:
    start = discover._parse_start(command)
    assert start is not None and start.argv == ("python", "a.py")


@pytest.mark.parametrize(
    ("command", "script", "system", "requirements"),
    [
        # the program alone (exec or not): the image runs it directly, no shell
        ("sh -c 'pip install -r r.txt && exec python app.py'", "", (), ("r.txt",)),
        (
            "sh -c 'pip install -r r.txt && python manage.py migrate && gunicorn a.wsgi "
            "-b 0.0.0.0:$PORT'",
            "python manage.py migrate && exec gunicorn a.wsgi -b 0.0.0.0:$PORT",
            (),
            ("r.txt",),
        ),
        (
            "sh -c 'apt-get update && apt-get install -y --no-install-recommends ffmpeg "
            "libpq5 && pip install -r r.txt && DEBUG=1 python app.py'",
            "exec env DEBUG=1 python app.py",
            ("ffmpeg", "libpq5"),
            ("r.txt",),
        ),
        (
            "sh -c 'cd src && pip install -r ../req/base.txt && python main.py'",
            "cd src && exec python main.py",
            (),
            ("req/base.txt",),
        ),
        (
            "sh -c 'pip install -r r.txt\necho \"starting $NAME\"\nexec uvicorn m:app'",
            'echo "starting $NAME"\nexec uvicorn m:app',  # the user's line breaks
            (),
            ("r.txt",),
        ),
        (
            "sh -c 'pip install -r r.txt && ./wait-for-it.sh db:5432 -- python app.py'",
            "exec ./wait-for-it.sh db:5432 -- python app.py",
            (),
            ("r.txt",),
        ),
        (
            "sh -c 'echo start && python app.py && pip install -r r.txt'",
            "echo start && exec python app.py",
            (),
            ("r.txt",),
        ),
        (
            "sh -c 'pip install -r r.txt && ddtrace-run gunicorn -b :8000 app:app'",
            "exec ddtrace-run gunicorn -b :8000 app:app",
            (),
            ("r.txt",),
        ),
    ],
)
def test_the_steps_around_the_program_are_kept_and_apt_get_moves_to_the_image(
    command: str, script: str, system: tuple[str, ...], requirements: tuple[str, ...]
) -> None:
    start = discover._parse_start(command)
    assert start is not None
    assert (start.script, start.system_packages, start.requirements) == (
        script,
        system,
        requirements,
    )


def test_alpine_package_steps_are_left_out_of_a_debian_image() -> None:
    start = discover._parse_start(
        "sh -c 'apk add --no-cache libffi && pip install -r r.txt && python app.py'"
    )
    assert start is not None
    assert start.dropped == ("apk add --no-cache libffi",)
    assert start.script == "" and start.argv == ("python", "app.py")


@pytest.mark.parametrize(
    "command", ["./entrypoint.sh", "sh entrypoint.sh", "[bash, entrypoint.sh]"]
)
def test_a_start_script_in_the_code_is_read_and_run_without_its_installs(
    tmp_path: Path, command: str
) -> None:
    _stack(
        command,
        {
            "app/entrypoint.sh": "#!/bin/sh\nset -e\npip install -r requirements.txt\n"
            "python manage.py migrate\nexec gunicorn -b 0.0.0.0:8000 site.wsgi\n",
            "app/requirements.txt": "django\ngunicorn\n",
            "app/manage.py": "",
        },
        tmp_path,
    )
    (found,) = _discover(tmp_path)
    assert found.service.requirements == ("app/requirements.txt",)
    assert found.service.command == (
        "/bin/sh",
        "-c",
        "set -e\npython manage.py migrate\nexec gunicorn -b 0.0.0.0:8000 site.wsgi",
    )
    assert found.service.port == 8000
    assert any("read from entrypoint.sh" in note for note in found.notes)


def _stack(command: str, files: dict[str, str], root: Path) -> Path:
    return write_files(
        root,
        {
            "compose.yaml": "services:\n  web:\n    image: python:3.11-slim\n"
            f"    working_dir: /app\n    command: {command}\n"
            "    volumes: [./app:/app]\n    network_mode: host\n",
            **files,
        },
    )


def test_packages_named_on_the_command_line_go_to_a_requirements_file_init_writes(
    tmp_path: Path,
) -> None:
    _stack(
        "sh -c 'pip install -r requirements.txt \"flask>=3\" cffi && python app.py'",
        {"app/requirements.txt": "six\n", "app/app.py": ""},
        tmp_path,
    )
    (found,) = _discover(tmp_path)
    assert found.service.requirements == ("app/requirements.txt", "requirements-web.txt")
    ((rel, text),) = found.generated
    assert rel == "requirements-web.txt"
    assert [line for line in text.splitlines() if not line.startswith("#")] == ["flask>=3", "cffi"]
    assert found.requirement_files == ("app/requirements.txt", "requirements-web.txt")
    assert not (tmp_path / rel).exists()  # discovering writes nothing


def test_a_local_project_contributes_its_pyproject_dependencies(tmp_path: Path) -> None:
    _stack(
        "sh -c 'pip install . && python -m worker'",
        {
            "app/pyproject.toml": '[project]\nname = "worker"\nversion = "1"\n'
            'dependencies = ["psycopg2>=2.9", "six"]\n',
            "app/worker/__main__.py": "",
        },
        tmp_path,
    )
    (found,) = _discover(tmp_path)
    assert found.service.requirements == ("app/pyproject.toml",)
    assert found.service.command == ("python", "-m", "worker")
    assert found.service.runtime_packages == ("libpq5",)  # read from [project].dependencies
    assert any("it is not installed" in note for note in found.notes)


@pytest.mark.parametrize(
    ("target", "project_files", "reason"),
    [
        (".", {"app/setup.py": "from setuptools import setup; setup()"}, "has no pyproject.toml"),
        (
            ".",
            {
                "app/pyproject.toml": '[project]\nname = "w"\nversion = "1"\ndynamic = ["dependencies"]\n'
            },
            "not declared in its [project] table",
        ),
        (
            "-e git+https://example.org/w.git#egg=w",
            {"app/w/__main__.py": ""},
            "from a URL: name it in a requirements file",
        ),
        (".[dev]", {"app/pyproject.toml": '[project]\nname = "w"\nversion = "1"\n'}, "with extras"),
    ],
)
def test_a_project_whose_dependencies_need_a_build_is_passed_over_with_the_reason(
    tmp_path: Path, target: str, project_files: dict[str, str], reason: str
) -> None:
    write_files(
        tmp_path,
        {
            "compose.yaml": "services:\n"
            "  api:\n    image: python:3.11\n    working_dir: /srv\n"
            "    command: sh -c 'pip install -r r.txt && python a.py'\n    volumes: [./srv:/srv]\n"
            "  worker:\n    image: python:3.11\n    working_dir: /app\n"
            f"    command: sh -c 'pip install {target} && python -m w'\n    volumes: [./app:/app]\n",
            "srv/r.txt": "six\n",
            "srv/a.py": "",
            **project_files,
        },
    )
    files = [compose.load(p) for p in compose.find_files(tmp_path)]
    found = discover.survey(tmp_path, files, {})
    assert [f.service.name for f in found.findings] == ["api"]
    (passed,) = found.passed_over
    assert passed.startswith("worker (") and reason in passed


@pytest.mark.parametrize(
    ("command", "requirements", "constraints", "no_binary", "argv"),
    [
        (
            'sh -c "pip install -q -r requirements.txt && python3 app.py"',
            ("requirements.txt",),
            (),
            (),
            ("python3", "app.py"),
        ),
        (
            [
                "bash",
                "-c",
                "python -m pip install --requirement=req/a.txt -c c.txt; exec python -m svc",
            ],
            ("req/a.txt",),
            ("c.txt",),
            (),
            ("python", "-m", "svc"),
        ),
        (
            "sh -c 'pip3 install --no-binary cffi,pyyaml -rreqs.txt && uvicorn main:app --port 80'",
            ("reqs.txt",),
            (),
            ("cffi", "pyyaml"),
            ("uvicorn", "main:app", "--port", "80"),
        ),
        (
            "sh -c 'pip install -r r.txt\ncelery -A tasks worker'",
            ("r.txt",),
            (),
            (),
            ("celery", "-A", "tasks", "worker"),
        ),
    ],
)
def test_start_command_parsing(
    command: Any,
    requirements: tuple[str, ...],
    constraints: tuple[str, ...],
    no_binary: tuple[str, ...],
    argv: tuple[str, ...],
) -> None:
    start = discover._parse_start(command)
    assert start is not None
    assert (start.requirements, start.constraints, start.no_binary, start.argv) == (
        requirements,
        constraints,
        no_binary,
        argv,
    )


@pytest.mark.parametrize(
    "command",
    [
        "python app.py",
        "sh -c 'pip install --upgrade pip setuptools && python app.py'",
        None,
        "pip install -r r.txt",
        "sh -c 'pip install flask'",
    ],
)
def test_commands_that_do_not_install_requirements_then_run_python_are_not_candidates(
    command: Any,
) -> None:
    assert discover._parse_start(command) is None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('@app.get("/healthz")\ndef h(): ...', ["/healthz"]),
        ('@bp.route("/ping", methods=["GET", "HEAD"])\ndef h(): ...', ["/ping"]),
        ('@app.route("/health", methods=["POST"])\ndef h(): ...', []),
        ('routes = [Route("/status", endpoint)]', ["/status"]),
        ('app.add_api_route("/ready", f)', ["/ready"]),
        ('log.get("/health")', ["/health"]),
    ],
)
def test_routes_declared_in_code(source: str, expected: list[str]) -> None:
    assert discover._routes(ast.parse(source)) == expected


def test_health_route_is_found_through_local_imports(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "main.py": "from api.routes import router\nimport os\n",
            "api/__init__.py": "",
            "api/routes.py": '@router.get("/livez")\nasync def live(): ...\n',
            "other.py": '@app.get("/health")\ndef h(): ...\n',  # another service's module
        },
    )
    route, where = discover.find_health_route([tmp_path / "main.py"], tmp_path)
    assert route == "/livez"
    assert where == (tmp_path / "api" / "routes.py").resolve()


@pytest.mark.parametrize(
    ("svc", "argv", "port", "source"),
    [
        ({"environment": {"PORT": "${P:-7000}"}}, (), 7000, "environment PORT"),
        ({}, ("gunicorn", "-b", "0.0.0.0:8123", "a:app"), 8123, "command-line flag"),
        ({}, ("uvicorn", "a:app", "--port=9000"), 9000, "command-line flag"),
        ({"ports": ["127.0.0.1:18080:8080/tcp"]}, (), 8080, "ports:"),
        ({"ports": [{"target": 81, "published": 18081}]}, (), 81, "ports:"),
        ({"expose": ["5555"]}, (), 5555, "expose:"),
    ],
)
def test_port_inference_order(
    svc: dict[str, Any], argv: tuple[str, ...], port: int, source: str
) -> None:
    assert discover.infer_port(svc, argv, {}) == (port, source)


def test_missing_included_requirement_file_names_the_including_file_and_line(
    tmp_path: Path,
) -> None:
    write_files(tmp_path, {"app/req.txt": "flask\n# base\n-r base.txt\n"})
    with pytest.raises(InvalidConfig) as info:
        discover.requirement_closure(tmp_path, ["app/req.txt"])
    assert info.value.path == tmp_path / "app" / "req.txt"
    assert "line 3" in info.value.what and "app/base.txt" in info.value.what


def test_missing_top_level_requirements_file_is_reported(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "compose.yaml": "services:\n  a:\n    image: python:3.12\n    working_dir: /app\n"
            "    command: sh -c 'pip install -r missing.txt && python a.py'\n"
            "    volumes: [./app:/app]\n",
            "app/a.py": "",
        },
    )
    with pytest.raises(InvalidConfig, match=r"app/missing\.txt does not exist"):
        _discover(tmp_path)


def test_no_python_service_lists_what_was_looked_at(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "compose.yaml": "services:\n  db:\n    image: postgres:16\n"
            "  app:\n    image: python:3.11\n    command: python a.py\n"
        },
    )
    with pytest.raises(NotFound) as info:
        _discover(tmp_path)
    assert "db (image 'postgres:16' is not python:*)" in info.value.what
    assert "app (its command does not" in info.value.what


def test_the_port_can_come_from_an_env_file_and_environment_wins_over_it(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "compose.yaml": "services:\n  a:\n    image: python:3.11\n    working_dir: /app\n"
            "    command: sh -c 'pip install -r r.txt && python a.py'\n"
            "    volumes: [./app:/app]\n"
            "    env_file: [web.env, {path: missing.env, required: false}]\n",
            "web.env": "# the web service\nexport PORT='8123'\nDEBUG=1  # on\n",
            "app/r.txt": "six\n",
            "app/a.py": "",
        },
    )
    (found,) = _discover(tmp_path)
    assert found.service.port == 8123
    assert "port 8123 from env_file PORT" in found.notes
    compose_file = tmp_path / "compose.yaml"
    compose_file.write_text(compose_file.read_text() + "    environment: {PORT: '9000'}\n")
    (found,) = _discover(tmp_path)
    assert found.service.port == 9000


def test_python_version_comes_from_the_image_tag(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "compose.yaml": "services:\n  a:\n    image: python:3.12-slim\n    working_dir: /app\n"
            "    command: sh -c 'pip install -r r.txt && python a.py'\n"
            "    volumes: [./app:/app]\n",
            "app/r.txt": "six\n",
            "app/a.py": "",
        },
    )
    (found,) = _discover(tmp_path)
    assert found.service.python == "3.12"
    assert found.service.health == "process"


@pytest.mark.parametrize(
    ("requirements", "no_binary", "expected"),
    [
        (["cffi==2.1.1", "pyyaml"], (), ()),
        (["cffi==2.1.1", "pyyaml"], ("cffi",), ("libffi8",)),
        (["cffi", "PyYAML"], ("cffi", "pyyaml"), ("libffi8", "libyaml-0-2")),
        (["psycopg2>=2.9"], (), ("libpq5",)),
        (["lxml"], (":all:",), ("libxml2", "libxslt1.1")),
    ],
)
def test_runtime_table_counts_vendored_libraries_only_for_source_builds(
    requirements: list[str], no_binary: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    reqs = [Requirement(r) for r in requirements]
    assert discover.table_runtime_packages(reqs, no_binary) == expected


# -- uv projects: `uv sync`, `uv run` ------------------------------------------------------------

SHOP = DATA / "adhoc" / "shop"  # a uv project with a uv.lock and a dev group


@pytest.mark.parametrize(
    ("command", "locked", "argv", "dev"),
    [
        (
            "sh -c 'uv sync --frozen --no-dev && uv run uvicorn shop:app --port 8000'",
            (("uv", "."),),
            ("uvicorn", "shop:app", "--port", "8000"),
            False,
        ),
        # `uv run` syncs the project on its own first
        ("uv run --frozen python -m shop", (("uv", "."),), ("python", "-m", "shop"), False),
        ("sh -c 'uv run -m shop'", (("uv", "."),), ("python", "-m", "shop"), False),
        (
            "sh -c 'cd svc && uv sync --locked && exec uv run -- gunicorn app:app'",
            (("uv", "svc"),),
            ("gunicorn", "app:app"),
            True,
        ),
        (
            "uv run --project /srv/shop python a.py",
            (("uv", "/srv/shop"),),
            ("python", "a.py"),
            False,
        ),
        (
            "sh -c 'pip install poetry && poetry install --no-root && poetry run python -m app'",
            (("poetry", "."),),
            ("python", "-m", "app"),
            True,
        ),
        (
            "sh -c 'poetry install -C api --only main && cd api && poetry run uvicorn a:app'",
            (("poetry", "api"),),
            ("uvicorn", "a:app"),
            False,
        ),
        (
            "sh -c 'poetry install --without dev,test && python app.py'",
            (("poetry", "."),),
            ("python", "app.py"),
            False,
        ),
        (
            "sh -c 'pip install pipenv && pipenv install --system --deploy && python app.py'",
            (("pipenv", "."),),
            ("python", "app.py"),
            False,
        ),
        (
            "sh -c 'pipenv sync && pipenv run gunicorn app:app'",
            (("pipenv", "."),),
            ("gunicorn", "app:app"),
            False,
        ),
    ],
)
def test_project_tools_read_as_installing_the_project_lock_then_running_its_command(
    command: str, locked: tuple[tuple[str, str], ...], argv: tuple[str, ...], dev: bool
) -> None:
    start = discover._parse_start(command)
    assert start is not None
    assert (start.locked, start.argv, start.dev_left_out) == (locked, argv, dev)
    assert start.requirements == start.packages == start.projects == ()


@pytest.mark.parametrize(
    "command",
    [
        "uv run --no-project python a.py",
        "uv run --no-sync python a.py",
        "uv sync",
        "poetry run python a.py",  # poetry and pipenv install nothing when they run
        "pipenv run python a.py",
    ],
)
def test_a_tool_that_installs_nothing_or_runs_nothing_is_not_a_candidate(command: str) -> None:
    assert discover._parse_start(command) is None


def test_a_uv_project_becomes_its_locked_packages_and_runs_without_uv(tmp_path: Path) -> None:
    _stack(
        'sh -c "uv sync --frozen && uv run uvicorn shop:app --port $${PORT}"',
        {f"app/{name}": (SHOP / name).read_text() for name in ("pyproject.toml", "uv.lock")},
        tmp_path,
    )
    (found,) = _discover(tmp_path, {"PORT": "8123"})
    assert found.service.requirements == ("app/uv.lock",)
    assert found.requirement_files == ("app/uv.lock", "app/pyproject.toml")
    assert found.service.command == ("uvicorn", "shop:app", "--port", "${PORT}")
    notes = " ".join(found.notes)
    assert "the packages locked in app/uv.lock" in notes
    assert "the development packages are left out" in notes  # its `uv sync` had no --no-dev


@pytest.mark.parametrize(
    ("command", "files", "reason"),
    [
        ("sh -c 'uv sync && uv run python a.py'", {"app/pyproject.toml": ""}, "has no uv.lock"),
        (
            "sh -c 'uv sync --extra web && uv run python a.py'",
            {"app/uv.lock": ""},
            "takes more than the project's runtime packages (--extra web selected; the "
            "development packages too)",
        ),
        (
            "sh -c 'uv run --with rich python a.py'",
            {"app/uv.lock": ""},
            "(--with rich selected",
        ),
        (
            "sh -c 'pip install -r r.txt && uv sync && uv run python a.py'",
            {"app/uv.lock": "", "app/r.txt": "six\n"},
            "a lock file is a service's whole requirements",
        ),
        (
            "sh -c 'uv sync && uv run python a.py'",
            {"app/uv.lock": "not a lock", "app/pyproject.toml": "[project]\nname = 'a'\n"},
            "uv could not read the lock",
        ),
    ],
)
def test_a_uv_project_wheeldock_cannot_install_as_uv_would_is_passed_over_with_the_reason(
    tmp_path: Path, command: str, files: dict[str, str], reason: str
) -> None:
    _stack(command, {"app/a.py": "", **files}, tmp_path)
    files_ = [compose.load(p) for p in compose.find_files(tmp_path)]
    survey = discover.survey(tmp_path, files_, {})
    assert survey.findings == ()
    (passed,) = survey.passed_over
    assert passed.startswith("web (") and reason in passed, passed


def _passed_over(root: Path) -> tuple[str, ...]:
    files = [compose.load(p) for p in compose.find_files(root)]
    found = discover.survey(root, files, {})
    assert found.findings == ()
    return found.passed_over


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (
            "sh -c 'pip install -r requirements.txt && echo \"unterminated && python app.py'",
            "is not shell syntax wheeldock can read: the shell cannot parse it (line 1, column",
        ),
        (
            "sh -c 'pip install -r requirements.txt | tee /tmp/pip.log && python app.py'",
            "`pip install -r requirements.txt` is part of a pipeline",
        ),
        (
            "sh -c 'if [ -f requirements.txt ]; then pip install -r requirements.txt; fi; "
            "python app.py'",
            "`pip install -r requirements.txt` is part of an `if`",
        ),
        (
            "./missing.sh",
            "start script not found at /app/missing.sh (app/missing.sh in the project)",
        ),
        ("sh bin/start.sh", "start script not found at /app/bin/start.sh"),
        (
            "sh -c 'uv sync --all-extras --dev && uv run pytest'",
            "its uv install takes more than the project's runtime packages (--all-extras "
            "selected; the development packages too)",
        ),
    ],
)
def test_a_service_that_cannot_be_made_an_image_as_written_is_passed_over_saying_why(
    tmp_path: Path, command: str, reason: str
) -> None:
    _stack(
        command, {"app/requirements.txt": "six\n", "app/app.py": "", "app/uv.lock": ""}, tmp_path
    )
    (passed,) = _passed_over(tmp_path)
    assert passed.startswith("web (") and reason in passed, passed


@pytest.mark.parametrize(
    ("command", "passed_for_its_syntax"),
    [
        # healthchecks/healthchecks (2026-12) waits for its database so; the parser cannot
        # read bash's negated redirection, which matters only if an install may be in it
        ("bash -c 'while !</dev/tcp/db/5432; do sleep 1; done; python app.py'", False),
        (
            "bash -c 'while !</dev/tcp/db/5432; do sleep 1; done; "
            "pip install -r requirements.txt && python app.py'",
            True,
        ),
    ],
)
def test_a_start_script_the_parser_cannot_read_is_passed_over_for_it_only_if_it_may_install(
    tmp_path: Path, command: str, passed_for_its_syntax: bool
) -> None:
    _stack(command, {"app/requirements.txt": "six\n", "app/app.py": ""}, tmp_path)
    (passed,) = _passed_over(tmp_path)
    assert ("is not shell syntax wheeldock can read" in passed) is passed_for_its_syntax, passed


def _notes(command: str, root: Path) -> list[str]:
    _stack(command, {"app/requirements.txt": "six\n", "app/app.py": ""}, root)
    (found,) = _discover(root)
    return [note for note in found.notes if note.startswith("warning: ")]


@pytest.mark.parametrize(
    ("command", "warning"),
    [
        (
            "sh -c 'pip install -r requirements.txt && npm run build && python app.py'",
            "`npm run build` runs npm, which the slim Python image does not have: the step "
            "fails there, and an `&&` chain stops before the server starts; add npm to "
            "runtime_packages in wheeldock.toml",
        ),
        (
            "sh -c 'pip install -r requirements.txt && until pg_isready -h db; do sleep 1; done; "
            "python app.py'",
            "runs pg_isready, which the slim Python image does not have: the step fails there, "
            "and an `&&` chain stops before the server starts; add postgresql-client",
        ),
        (
            "sh -c 'pip install -r requirements.txt && mkdir -p /var/log/app && python app.py'",
            "`mkdir -p /var/log/app` writes /var/log/app, which the service (uid 10001) cannot "
            "write: the image belongs to root; write under /tmp or to a volume instead",
        ),
    ],
)
def test_a_kept_step_that_cannot_work_in_the_image_gets_a_warning_with_the_fix(
    tmp_path: Path, command: str, warning: str
) -> None:
    (note,) = _notes(command, tmp_path)
    assert warning in note, note


@pytest.mark.parametrize(
    ("command", "writers"),
    [
        (
            "sh -c 'pip install -r requirements.txt && python manage.py migrate --noinput && "
            "python manage.py collectstatic --noinput && python app.py'",
            "`python manage.py migrate --noinput`; `python manage.py collectstatic --noinput`",
        ),
        ("sh -c 'pip install -r requirements.txt && python app.py > app.log 2>&1'", "app.log"),
        ("sh -c 'pip install -r requirements.txt && mkdir -p logs && python app.py'", "logs"),
    ],
)
def test_a_kept_step_writing_into_the_code_makes_the_code_folder_the_services_users(
    tmp_path: Path, command: str, writers: str
) -> None:
    _stack(command, {"app/requirements.txt": "six\n", "app/app.py": ""}, tmp_path)
    (found,) = _discover(tmp_path)
    assert found.service.writable_code
    assert not [n for n in found.notes if n.startswith("warning: ")]
    (note,) = [n for n in found.notes if n.startswith("code: /app belongs to")]
    assert writers in note and "(writable_code in wheeldock.toml)" in note


def test_a_service_that_does_not_write_into_its_code_keeps_it_roots(tmp_path: Path) -> None:
    _stack(
        "sh -c 'pip install -r requirements.txt && python app.py'",
        {"app/requirements.txt": "six\n", "app/app.py": ""},
        tmp_path,
    )
    (found,) = _discover(tmp_path)
    assert not found.service.writable_code


@pytest.mark.parametrize(
    "command",
    [
        "sh -c 'pip install -r requirements.txt && python app.py >> /tmp/app.log 2>&1'",
        "sh -c 'pip install -r requirements.txt && echo ready > /dev/stderr && python app.py'",
        "sh -c 'apt-get install -y curl && pip install -r requirements.txt && "
        "curl -fsS http://db:8080/ && python app.py'",
        "sh -c 'pip install -r requirements.txt && echo hi > \"$LOG\" && python app.py'",
    ],
)
def test_kept_steps_that_work_in_the_image_get_no_warning(tmp_path: Path, command: str) -> None:
    assert _notes(command, tmp_path) == []


def test_a_step_kept_as_written_keeps_its_quoting_in_the_image_command(tmp_path: Path) -> None:
    _stack(
        "sh -c 'pip install -r requirements.txt && echo $(which python) && python app.py'",
        {"app/requirements.txt": "six\n", "app/app.py": ""},
        tmp_path,
    )
    (found,) = _discover(tmp_path)
    assert found.service.command == (
        "/bin/sh",
        "-c",
        "echo $(which python) && exec python app.py",
    )


@pytest.mark.parametrize(
    ("install", "groups", "dev_left_out"),
    [
        ("poetry install", (), True),
        ("poetry install --only main", (), False),
        ("poetry install --with dev", ("main", "dev"), False),
        ("poetry install --with docs,dev --without docs", ("main", "dev"), False),
        ("poetry install --only api,worker", ("api", "worker"), False),
    ],
)
def test_a_poetry_install_reads_the_groups_it_selects(
    install: str, groups: tuple[str, ...], dev_left_out: bool
) -> None:
    start = discover._parse_start(f"sh -c '{install} && poetry run python app.py'")
    assert start is not None
    assert (start.groups, start.selects, start.dev_left_out) == (groups, (), dev_left_out)


@pytest.mark.parametrize(
    ("install", "groups", "dev_left_out"),
    [
        ("pdm install", (), True),
        ("pdm sync --prod", (), False),
        ("pdm install --production --frozen-lockfile", (), False),
        ("pdm install -G test", ("default", "test"), False),
        ("pdm sync --no-default --group api,worker", ("api", "worker"), False),
    ],
)
def test_a_pdm_install_reads_the_groups_it_selects(
    install: str, groups: tuple[str, ...], dev_left_out: bool
) -> None:
    start = discover._parse_start(f"sh -c 'pip install pdm && {install} && pdm run python app.py'")
    assert start is not None
    assert (start.locked, start.groups, start.selects, start.dev_left_out) == (
        (("pdm", "."),),
        groups,
        (),
        dev_left_out,
    )
    assert start.argv == ("python", "app.py")


PDM_CASE = Path(__file__).parents[2] / "data" / "dockerfiles" / "pdm-install-prod"


def test_a_pdm_install_at_start_pins_its_lock_with_the_group_named(tmp_path: Path) -> None:
    _stack(
        "sh -c 'pdm install -G test && pdm run uvicorn notes:app'",
        {f"app/{n}": (PDM_CASE / n).read_text() for n in ("pyproject.toml", "pdm.lock")},
        tmp_path,
    )
    (found,) = _discover(tmp_path)
    assert found.service.requirements == ("app/pdm.lock",)
    assert found.service.groups == ("default", "test")
    assert "as `pdm sync -G test` installs them" in " ".join(found.notes)
    pins = lock.pinned_requirements(
        tmp_path, lock.inputs_for(tmp_path, found.service, "linux/amd64")
    )
    assert {"pytest", "starlette"} <= set(pins)


WORKSPACE = Path(__file__).parents[2] / "data" / "dockerfiles" / "uv-workspace-member"


@pytest.mark.parametrize(
    ("command", "member", "selects"),
    [
        ("sh -c 'uv sync --frozen --package api && uv run uvicorn api:app'", "api", ()),
        ("uv run --frozen --package worker python -m worker", "worker", ()),
        (
            "uv run --package api --package worker python -m worker",
            None,
            ("--package api", "--package worker"),
        ),
    ],
)
def test_a_uv_step_of_a_workspace_member_names_the_member(
    command: str, member: str | None, selects: tuple[str, ...]
) -> None:
    start = discover._parse_start(command)
    assert start is not None
    assert (start.package, start.selects) == (member, selects)


def test_a_workspace_member_run_at_start_pins_its_own_dependencies_alone(tmp_path: Path) -> None:
    files = {
        f"app/{p.relative_to(WORKSPACE)}": p.read_text()
        for p in WORKSPACE.rglob("*")
        if p.is_file() and p.suffix in (".toml", ".lock", ".py")
    }
    _stack("sh -c 'cd packages/worker && uv run --frozen --package worker python worker.py'",
           files, tmp_path)  # fmt: skip
    (found,) = _discover(tmp_path)
    assert found.service.requirements == ("app/uv.lock",)
    assert found.service.package == "worker"
    assert "app/packages/api/pyproject.toml" in found.requirement_files
    assert "the dependencies of the workspace member worker" in " ".join(found.notes)
    pins = lock.pinned_requirements(
        tmp_path, lock.inputs_for(tmp_path, found.service, "linux/amd64")
    )
    assert set(pins) == {"click"}


POETRY_18 = Path(__file__).parents[2] / "data" / "poetry" / "poetry-1.8"


def test_a_poetry_install_with_a_group_pins_that_group_too(tmp_path: Path) -> None:
    _stack(
        "sh -c 'poetry install --with dev && poetry run python -m shop'",
        {f"app/{n}": (POETRY_18 / n).read_text() for n in ("pyproject.toml", "poetry.lock")},
        tmp_path,
    )
    (found,) = _discover(tmp_path)
    assert found.service.groups == ("main", "dev")
    assert "the lock's groups main, dev" in " ".join(found.notes)
    pins = lock.pinned_requirements(
        tmp_path, lock.inputs_for(tmp_path, found.service, "linux/amd64")
    )
    assert {"pytest", "httpx"} <= set(pins)


def test_a_poetry_install_of_extras_is_still_passed_over_with_the_reason(tmp_path: Path) -> None:
    _stack(
        "sh -c 'poetry install -E web && poetry run python -m shop'",
        {f"app/{n}": (POETRY_18 / n).read_text() for n in ("pyproject.toml", "poetry.lock")},
        tmp_path,
    )
    files_ = [compose.load(p) for p in compose.find_files(tmp_path)]
    (passed,) = discover.survey(tmp_path, files_, {}).passed_over
    assert "takes more than the project's runtime packages (-E web selected" in passed


@pytest.mark.parametrize(
    "setup",
    [
        "poetry config virtualenvs.create false",
        "poetry config virtualenvs.in-project true --local",
        "poetry --version",
        "uv --version",
        "pipenv --version",
    ],
)
def test_a_step_that_sets_the_installing_tool_up_goes_with_the_install(setup: str) -> None:
    start = discover._parse_start(
        f"sh -c 'pip install poetry && {setup} && poetry install --only main && python app.py'"
    )
    assert start is not None
    assert [c.source for c in start.kept] == ["python app.py"]  # the program alone
