"""Which services built from their own Dockerfile the native builder carries out, and the
words that name every instruction it cannot (the table's and ``build``'s)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.stacks import REPO

from wheeldock import project
from wheeldock.compose import native
from wheeldock.compose import plan as init
from wheeldock.errors import UnsupportedDockerfile
from wheeldock.project import Service

CORPUS = REPO / "tests" / "data" / "dockerfiles"


def _scanner(
    root: Path, svc: Service, files: tuple[str, ...], planned: object = None
) -> tuple[tuple[str, ...], str]:
    return ("libpq5",) if "psycopg2" in (root / svc.requirements[0]).read_text() else (), "table"


@pytest.fixture(autouse=True)
def _no_host_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(init, "runtime_packages", _scanner)


def _plan(name: str, tmp_path: Path) -> init.InitPlan:
    root = tmp_path / name
    shutil.copytree(CORPUS / name, root)
    return init.plan(root, environ={})


@pytest.mark.parametrize(
    ("name", "command", "workdir"),
    [
        ("exec-form-run", ("python", "app.py"), "/app"),
        ("celery-worker", ("celery", "-A", "tasks", "worker", "--loglevel=info"), "/usr/src/app"),
        ("rq-worker-cd", ("rq", "worker", "--url", "redis://redis:6379"), "/opt/worker"),
        ("pipenv-system-deploy", ("uvicorn", "desk:app", "--host", "0.0.0.0"), "/usr/src/app"),
        ("poetry-no-venv", ("uvicorn", "cart:app", "--host", "0.0.0.0", "--port", "8000"), "/app"),
    ],
)
def test_a_dockerfile_of_what_the_native_builder_does_becomes_a_service(
    name: str, command: tuple[str, ...], workdir: str, tmp_path: Path
) -> None:
    p = _plan(name, tmp_path)
    built = p.built[0]
    svc = p.project.service(built.name)
    assert (svc.command, svc.workdir, svc.python) == (command, workdir, "3.11")
    assert svc.source == "."
    assert not p.project.docker_only


def test_build_dependencies_are_not_runtime_packages(tmp_path: Path) -> None:
    svc = _plan("apt-build-deps", tmp_path).project.service("app")
    assert svc.runtime_packages == ("libpq5",)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("untagged-python", "Dockerfile:1: `FROM python` (the native builder builds on"),
        ("target-stage", "Dockerfile:11: `FROM base AS prod` (it is built from another stage"),
        ("non-root-user", "Dockerfile:2: `RUN groupadd -r app && useradd -r -g app app` (it runs"),
        ("inline-packages", "(packages named inline: the lock reads files)"),
        ("lowercase-dockerfile", "dockerfile:1: `FROM python:3.11-alpine`"),
    ],
)
def test_what_the_native_builder_cannot_do_is_named_with_its_line_and_build_refuses_it(
    name: str, words: str, tmp_path: Path
) -> None:
    p = _plan(name, tmp_path)
    service = p.built[0].name
    assert words in p.project.docker_only[service]
    init.apply(p)
    proj = project.load(p.root)
    with pytest.raises(UnsupportedDockerfile) as refused:
        proj.select((service,))
    assert p.project.docker_only[service] in refused.value.what


def test_every_instruction_in_the_way_is_named(tmp_path: Path) -> None:
    why = _plan("non-root-user", tmp_path).project.docker_only["app"]
    for line in (
        "Dockerfile:2:",
        "Dockerfile:4:",
        "Dockerfile:6:",
        "Dockerfile:7:",
        "Dockerfile:9:",
    ):
        assert line in why


def test_the_verdict_of_a_built_service_is_pure(tmp_path: Path) -> None:
    p = _plan("exec-form-run", tmp_path)
    first = native.verdict(p.built[0], p.root)
    assert native.verdict(p.built[0], p.root) == first and first.blockers == ()


def test_init_says_which_path_each_takes_and_what_to_run_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    from wheeldock import cli
    from wheeldock.cli import output

    # a wide console: the table's cells on one line each
    monkeypatch.setattr(output.console, "_console", Console(highlight=False, width=300))
    root = tmp_path / "stack"
    shutil.copytree(CORPUS / "non-root-user", root)
    assert cli.main(["-C", str(root), "init"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "native: no (below)" in out
    assert "app: not built natively: Dockerfile:2:" in out
    assert "Next: `docker compose up --build`" in out


def test_a_python_3_13_dockerfile_is_built_natively_on_the_trixie_base(tmp_path: Path) -> None:
    p = _plan("flask-gunicorn", tmp_path)
    assert "web" not in p.project.docker_only
    assert p.project.service("web").python == "3.13"


def test_a_pdm_install_and_the_pdm_config_before_it_are_carried_out_natively(
    tmp_path: Path,
) -> None:
    root = tmp_path / "pdm-install-prod"
    shutil.copytree(CORPUS / "pdm-install-prod", root)
    dockerfile = root / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace(
            "RUN pdm install", "RUN pdm config python.use_venv false\nRUN pdm install"
        )
    )
    p = init.plan(root, environ={})
    assert not p.project.docker_only
    svc = p.project.service("app")
    assert (svc.requirements, svc.groups, svc.python) == (("pdm.lock",), (), "3.13")


@pytest.mark.parametrize(
    ("compose", "command"),
    [
        ("    command: gunicorn app.wsgi:application\n", ("gunicorn", "app.wsgi:application")),
        ("    entrypoint: [python, -m, gunicorn]\n", ("python", "-m", "gunicorn")),
        (
            "    entrypoint: gunicorn\n    command: app.wsgi:application\n",
            ("gunicorn", "app.wsgi:application"),
        ),
    ],
)
def test_a_dockerfile_without_cmd_runs_the_command_compose_gives(
    compose: str, command: tuple[str, ...], tmp_path: Path
) -> None:
    # django-on-docker's shape: the Dockerfile has no CMD, compose gives the command
    root = tmp_path / "compose-entrypoint-script"
    shutil.copytree(CORPUS / root.name, root)
    (root / "Dockerfile").write_text((root / "Dockerfile").read_text().replace("CMD [", "# CMD ["))
    (root / "compose.yaml").write_text("services:\n  web:\n    build: .\n" + compose)
    p = init.plan(root, environ={})
    verdict = native.verdict(p.built[0], p.root)
    assert verdict.blockers == ()
    assert verdict.service is not None and verdict.service.command == command


def test_a_dockerfile_without_cmd_nor_a_compose_command_is_not_native_and_says_so(
    tmp_path: Path,
) -> None:
    root = tmp_path / "compose-entrypoint-script"
    shutil.copytree(CORPUS / root.name, root)
    (root / "Dockerfile").write_text((root / "Dockerfile").read_text().replace("CMD [", "# CMD ["))
    (root / "compose.yaml").write_text("services:\n  web:\n    build: .\n")
    p = init.plan(root, environ={})
    assert native.verdict(p.built[0], p.root).blockers == (
        "Dockerfile:1: `FROM python:3.11-slim` (no CMD or ENTRYPOINT, nor a compose command or "
        "entrypoint: the image's command is its base's)",
    )
