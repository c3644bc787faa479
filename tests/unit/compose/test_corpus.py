"""The corpus of Dockerfiles in public shapes (tests/data/dockerfiles): each is converted by
init, the generated Dockerfile passes hadolint, is read back by BuildKit's parser, and keeps
every instruction of the user's own but the installs, in order and as written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support.stacks import REPO

from wheeldock import cli
from wheeldock.compose import converted
from wheeldock.compose import plan as init
from wheeldock.compose import userdockerfile as ud
from wheeldock.deps.requirements import requirement_closure
from wheeldock.errors import NotFound, UsageError
from wheeldock.project import Service

CORPUS = REPO / "tests" / "data" / "dockerfiles"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
#: The cases whose Dockerfile already builds its dependencies apart from its code.
LEFT_ALONE = {"multi-stage-prebuilt", "uv-sync-cached", "pip-wheel-builder"}
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


def _scanner(
    root: Path, svc: Service, files: tuple[str, ...], planned: object = None
) -> tuple[tuple[str, ...], str]:
    return (), "table"


@pytest.fixture(autouse=True)
def _no_host_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(init, "runtime_packages", _scanner)


def _copy(name: str, tmp_path: Path) -> Path:
    root = tmp_path / name
    shutil.copytree(CORPUS / name, root)
    return root


def _generated(p: init.InitPlan, name: str) -> str:
    return (next(c for c in p.changes if c.path == f"Dockerfile.{name}").desired or b"").decode()


def _hadolint(text: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [HADOLINT, "--format", "json", "--no-fail", "-"],
        input=text.encode(),
        capture_output=True,
        check=True,
    )
    findings: list[dict[str, object]] = json.loads(result.stdout or b"[]")
    return findings


def _shape(ins: ud.Instruction) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    return ins.cmd, ins.flags, ins.value


def test_the_corpus_has_the_shapes_of_the_issue() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("name", sorted(set(CASES) - LEFT_ALONE))
def test_each_dockerfile_is_converted_and_keeps_every_other_instruction(
    name: str, tmp_path: Path
) -> None:
    root = _copy(name, tmp_path)
    p = init.plan(root, environ={})
    assert len(p.built) == 1, p.warnings
    built = p.built[0]
    generated = _generated(p, built.name)
    original = built.reading.dockerfile
    back = ud.parse(generated, root / f"Dockerfile.{built.name}", built.reading.source.args)
    # the user's stages are all there, after the wheel stage, in order
    assert [s.name for s in back.stages if s.name != ud.WHEEL_STAGE] == [
        s.name for s in original.stages
    ]
    installs = {i.instruction.start_line for i in built.reading.installs}
    kept = [
        _shape(ins)
        for stage in original.stages
        for ins in (stage.start, *stage.body)
        if ins.start_line not in installs
    ]
    user_part = [
        _shape(ins)
        for stage in back.stages
        if stage.name != ud.WHEEL_STAGE
        for ins in (stage.start, *stage.body)
        if ins.text.rstrip("\n") not in converted.VENV_LINES
    ]
    assert [s for s in user_part if s in kept] == kept
    assert all(
        i.text in generated for s in original.stages for i in s.body if i.start_line not in installs
    )
    # no error hadolint does not find in the user's own file too (its ADD, its heredocs)
    theirs = {f["code"] for f in _hadolint(original.text) if f["level"] == "error"}
    errors = [f for f in _hadolint(generated) if f["level"] == "error" and f["code"] not in theirs]
    assert errors == []


@pytest.mark.parametrize("name", sorted(set(CASES) - LEFT_ALONE))
def test_no_install_is_left_in_the_converted_stage(name: str, tmp_path: Path) -> None:
    root = _copy(name, tmp_path)
    p = init.plan(root, environ={})
    built = p.built[0]
    text = (root / "x").name and next(
        c for c in p.changes if c.path == f"Dockerfile.{built.name}"
    ).desired
    df = ud.parse((text or b"").decode(), root / "Dockerfile.x", built.reading.source.args)
    converted = df.stage(built.reading.stage.name or "") or df.stages[built.reading.stage.index + 1]
    assert ud.stage_installs(converted, df) == []


# The reason follows "its Dockerfile already": it read garbled ("its Dockerfile already its
# install …") on docker/awesome-compose (fastapi, flask, nginx-flask-*) and astral-sh/uv-docker-example.
@pytest.mark.parametrize(
    ("name", "why"),
    [
        (
            "multi-stage-prebuilt",
            "its Dockerfile already installs its dependencies in the stage builder",
        ),
        (
            "uv-sync-cached",
            r"its Dockerfile already keeps the downloads of its install \(Dockerfile:5\) in a "
            "cache mount and copies in only the dependency files before it: left as it is",
        ),
    ],
)
def test_a_dockerfile_that_already_builds_its_dependencies_apart_is_left_alone(
    name: str, why: str, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match=why) as caught:
        init.plan(_copy(name, tmp_path), environ={})
    assert "`wheeldock init --convert app` converts it anyway" in str(caught.value)
    # the fix is --convert, not another shape of stack (docker/awesome-compose's flask)
    assert caught.value.fix == (
        "nothing to do for app: its image already gets its dependencies before its code; "
        "`wheeldock init --convert app` converts it anyway"
    )


def test_an_image_installing_the_wheels_a_builder_made_is_left_alone_without_convert(
    tmp_path: Path,
) -> None:
    root = _copy("pip-wheel-builder", tmp_path) / "docker"
    with pytest.raises(NotFound) as caught:
        init.plan(root, environ={})
    assert (
        "web (its Dockerfile already installs wheels built apart from its code "
        "(Dockerfile:16: /wheels/*): left as it is)" in caught.value.what
    )
    # its command waits for the database in bash the shell reader cannot parse: no matter
    assert "not shell syntax" not in caught.value.what
    assert caught.value.fix == (
        "nothing to do for web: its image already gets its dependencies before its code"
    )


def test_a_no_index_install_from_a_builders_wheels_is_left_alone_and_its_workers_say_so(
    tmp_path: Path,
) -> None:
    # the shape of DefectDojo/django-DefectDojo (2026-12): pip wheel in the build stage, the
    # release stage installs -r requirements.txt with --no-index from the wheels mounted in,
    # and the Celery services run the image the uwsgi service builds
    root = _copy("pip-wheel-builder", tmp_path) / "docker"
    (root / "Dockerfile").write_text(
        "FROM python:3.13-slim AS base\nFROM base AS build\nWORKDIR /app\n"
        "COPY requirements.txt ./\n"
        "RUN CPUCOUNT=1 pip3 wheel --wheel-dir=/tmp/wheels -r ./requirements.txt\n\n"
        "FROM base AS release\nWORKDIR /app\nRUN \\\n"
        "  --mount=from=build,src=/tmp/wheels,target=/tmp/wheels \\\n"
        "  --mount=from=build,src=/app/requirements.txt,target=/app/requirements.txt \\\n"
        "  pip3 install \\\n\t--no-cache-dir \\\n\t--no-index \\\n"
        "  --find-links=/tmp/wheels \\\n  -r ./requirements.txt\nCOPY . .\n"
    )
    (root / "docker-compose.yml").write_text(
        "services:\n  uwsgi:\n    build:\n      context: ..\n      dockerfile: docker/Dockerfile\n"
        "    image: dojo-django:latest\n  celeryworker:\n    image: dojo-django:latest\n"
        "    command: celery -A dojo worker\n"
    )
    with pytest.raises(NotFound) as caught:
        init.plan(root, environ={})
    assert (
        "uwsgi (its Dockerfile already installs wheels built apart from its code "
        "(Dockerfile:9: /tmp/wheels): left as it is)" in caught.value.what
    )
    assert (
        "celeryworker (runs the image dojo-django:latest that uwsgi builds: see uwsgi)"
        in caught.value.what
    )


def test_converting_an_image_that_installs_wheel_files_alone_says_there_is_nothing_to_build(
    tmp_path: Path,
) -> None:
    root = _copy("pip-wheel-builder", tmp_path) / "docker"
    with pytest.raises(NotFound, match="there is nothing for init to build"):
        init.plan(root, environ={}, convert=["web"])


@pytest.mark.parametrize(
    ("name", "requirements"),
    [
        ("multi-stage-prebuilt", ("requirements.txt",)),
        ("uv-sync-cached", ("uv.lock", "pyproject.toml")),
    ],
)
def test_a_dockerfile_left_alone_is_converted_when_asked(
    name: str, requirements: tuple[str, ...], tmp_path: Path
) -> None:
    root = _copy(name, tmp_path)
    p = init.plan(root, environ={}, convert=["app"])
    (built,) = p.built
    assert built.requirement_files == requirements
    text = _generated(p, "app")
    df = ud.parse(text, root / "Dockerfile.app", {})
    assert df.stages[0].name == ud.WHEEL_STAGE
    assert ud.stage_installs(df.stages[built.reading.stage.index + 1], df) == []
    assert not any(w.startswith("app (") for w in p.warnings)


def test_an_image_copying_the_builders_project_folder_gets_the_venv_when_converted(
    tmp_path: Path,
) -> None:
    # the shape of python-discord/bot's Dockerfile (2026-12): uv sync makes /build/.venv in
    # the builder, and the image copies /build, not a venv folder
    root = _copy("uv-sync-cached", tmp_path)
    (root / "Dockerfile").write_text(
        "FROM python:3.12-slim AS builder\n"
        "COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /bin/\nWORKDIR /build\n"
        "RUN --mount=type=cache,target=/root/.cache/uv \\\n"
        "  --mount=type=bind,source=uv.lock,target=uv.lock \\\n"
        "  --mount=type=bind,source=pyproject.toml,target=pyproject.toml \\\n"
        "  uv sync --frozen --no-dev\n\n"
        "FROM python:3.12-slim\nCOPY --from=builder /build /build\n"
        'ENV PATH="/build/.venv/bin:$PATH"\nWORKDIR /app\nCOPY . .\n'
        'CMD ["uvicorn", "shop:app", "--host", "0.0.0.0"]\n'
    )
    p = init.plan(root, environ={}, convert=["app"])
    text = _generated(p, "app")
    image = text[text.rindex("\nFROM python:3.12-slim\n") :]
    assert image.index("COPY --from=builder /build /build") < image.index(
        "COPY --from=wheeldock-deps /opt/venv /opt/venv\n"
        "ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH\n"
    )


def test_an_image_copying_the_venv_folder_itself_gets_it_once(tmp_path: Path) -> None:
    root = _copy("multi-stage-prebuilt", tmp_path)
    p = init.plan(root, environ={}, convert=["app"])
    text = _generated(p, "app")
    assert text.count("COPY --from=wheeldock-deps /opt/venv /opt/venv") == 1


def test_convert_names_a_service_that_is_not_built_from_a_dockerfile(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--convert web: not a service built from its own"):
        init.plan(_copy("uv-sync-cached", tmp_path), environ={}, convert=["web"])


@pytest.mark.parametrize(
    ("name", "requirements"),
    [
        ("build-args", ("requirements-prod.txt", "requirements.txt")),
        ("poetry-no-venv", ("poetry.lock", "pyproject.toml")),
        ("pipenv-system-deploy", ("Pipfile.lock", "Pipfile")),
        ("pdm-install-prod", ("pdm.lock", "pyproject.toml")),
        ("uv-sync-frozen", ("uv.lock", "pyproject.toml")),
        (
            "uv-workspace-member",
            (
                "uv.lock",
                "pyproject.toml",
                "packages/api/pyproject.toml",
                "packages/worker/pyproject.toml",
            ),
        ),
        ("pip-install-project", ("pyproject.toml",)),
        ("rq-worker-cd", ("requirements.txt",)),
        ("utf16-requirements", ("requirements.txt",)),
        ("inline-packages", ()),
    ],
)
def test_the_files_the_install_reads_are_bound_into_the_wheel_stage(
    name: str, requirements: tuple[str, ...], tmp_path: Path
) -> None:
    p = init.plan(_copy(name, tmp_path), environ={})
    built = p.built[0]
    assert built.requirement_files == requirements
    text = _generated(p, built.name)
    for rel in requirements:
        assert f"--mount=type=bind,source={rel},target=/build/{rel}" in text


def test_inline_packages_are_installed_as_named(tmp_path: Path) -> None:
    p = init.plan(_copy("inline-packages", tmp_path), environ={})
    text = _generated(p, "app")
    assert "pip install --python /opt/venv/bin/python  flask==3.0.3 gunicorn==22.0.0 redis" in text


def test_the_venv_comes_before_the_code(tmp_path: Path) -> None:
    p = init.plan(_copy("copy-all-first", tmp_path), environ={})
    text = _generated(p, "app")
    assert text.index("COPY --from=wheeldock-deps /opt/venv /opt/venv") < text.index("COPY . /app")
    assert "RUN pip install" not in text


def test_the_kept_steps_of_an_install_run_stay(tmp_path: Path) -> None:
    p = init.plan(_copy("django-collectstatic", tmp_path), environ={})
    text = _generated(p, "web")
    assert "RUN python manage.py collectstatic --noinput\n" in text


def _wheel_stage_and_rest(text: str) -> tuple[str, str]:
    start = text.index("AS wheeldock-deps")
    end = text.index("\nFROM ", start)
    return text[start:end], text[end:]


def test_build_dependencies_installed_in_the_install_run_are_in_the_wheel_stage(
    tmp_path: Path,
) -> None:
    p = init.plan(_copy("build-deps-purged", tmp_path), environ={})
    text = _generated(p, "app")
    wheel_stage, _ = _wheel_stage_and_rest(text)
    before_install = wheel_stage.index("uv pip install")
    assert (
        0
        <= wheel_stage.index("apt-get install -y --no-install-recommends $BUILD_DEPS")
        < (before_install)
    )
    assert wheel_stage.index('BUILD_DEPS=" \\\n        build-essential') < before_install
    # what the RUN did after its install (the purge), or that is not a system package, is not
    assert "apt-get purge" not in wheel_stage
    assert "python -m venv" not in wheel_stage


def test_the_venv_comes_first_on_path_again_after_the_users_own_venv(tmp_path: Path) -> None:
    p = init.plan(_copy("build-deps-purged", tmp_path), environ={})
    text = _generated(p, "app")
    _, image = _wheel_stage_and_rest(text)
    envs = [line for line in image.splitlines() if line.startswith("ENV ") and "PATH=" in line]
    assert envs[-1] == "ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH"
    # said again after the RUN that makes the user's venv, before what runs python
    assert image.index("python -m venv ${VIRTUAL_ENV}") < image.rindex(envs[-1])
    assert image.rindex(envs[-1]) < image.index("python manage.py collectstatic")


def test_the_venv_is_said_once_when_no_env_puts_another_first(tmp_path: Path) -> None:
    p = init.plan(_copy("apt-build-deps", tmp_path), environ={})
    text = _generated(p, "app")
    assert text.count("ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH") == 1


def test_packages_named_in_another_install_go_with_the_lock_in_the_wheel_stage(
    tmp_path: Path,
) -> None:
    # the shape of Mirrormsk/lms_rest_api (2026-12): poetry, gunicorn and a Celery scheduler
    # named in one RUN, the lock installed by the next; the image then runs poetry and
    # gunicorn, which the lock alone would not bring
    root = _copy("poetry-no-venv", tmp_path)
    (root / "Dockerfile").write_text(
        "FROM python:3.12\nWORKDIR /app\nRUN pip install --upgrade pip\n"
        "RUN pip install poetry gunicorn django-celery-beat\n"
        "COPY ./poetry.lock .\nCOPY ./pyproject.toml .\n"
        "RUN poetry  config virtualenvs.create false --local && poetry install\nCOPY . .\n"
    )
    p = init.plan(root, environ={})
    text = _generated(p, "app")
    assert (
        "uv pip install --python /opt/venv/bin/python -r /tmp/requirements.txt "
        "poetry gunicorn django-celery-beat\n" in text
    )
    assert "RUN poetry  config virtualenvs.create false --local\n" in text


def test_a_worker_on_the_image_the_build_makes_is_noted_not_passed_over(tmp_path: Path) -> None:
    p = init.plan(_copy("celery-worker", tmp_path), environ={})
    assert any(
        n.startswith("beat: runs the image corpus-celery that worker builds") for n in p.notes
    )
    assert not any(w.startswith("passed over: beat") for w in p.warnings)


def test_the_compose_patch_points_build_at_the_generated_file_and_reverts(tmp_path: Path) -> None:
    root = _copy("target-stage", tmp_path)
    before = {p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    p = init.plan(root, environ={})
    init.apply(p)
    compose = (root / "compose.yaml").read_text()
    assert "dockerfile: Dockerfile.web" in compose and "target: prod" in compose
    assert (root / "Dockerfile").read_bytes() == before["Dockerfile"]
    init.revert(root)
    after = {p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before


def test_a_lowercase_dockerfile_is_the_one_read(tmp_path: Path) -> None:
    p = init.plan(_copy("lowercase-dockerfile", tmp_path), environ={})
    assert p.built[0].reading.dockerfile.path.name == "dockerfile"


@pytest.mark.parametrize(
    ("name", "requirements", "command"),
    [
        (
            "thin-dockerfile-start-install",
            ("requirements.txt",),
            '["gunicorn", "-b", "0.0.0.0:8000", "app:app"]',
        ),
        (
            "dockerfile-and-start-install",
            ("requirements.txt", "requirements-dev.txt"),
            '["/bin/sh", "-c", "python manage.py migrate &&\\n       exec python manage.py '
            'runserver 0.0.0.0:8000"]',
        ),
    ],
)
def test_installs_at_start_on_top_of_the_build_move_into_the_image(
    name: str, requirements: tuple[str, ...], command: str, tmp_path: Path
) -> None:
    root = _copy(name, tmp_path)
    p = init.plan(root, environ={})
    built = p.built[0]
    assert built.shape == "own Dockerfile + install at start"
    assert built.reading.requirements == requirements
    text = _generated(p, "web")
    assert text.endswith(f"CMD {command}\n")
    init.apply(p)
    assert "command:" not in (root / "compose.yaml").read_text()


def test_a_context_in_a_subfolder_keeps_its_context_and_names_the_file_from_the_project(
    tmp_path: Path,
) -> None:
    root = _copy("subfolder-context", tmp_path)
    p = init.plan(root, environ={})
    built = p.built[0]
    assert built.reading.where(built.reading.installs[0].instruction) == "web/Dockerfile:4"
    init.apply(p)
    compose = (root / "compose.yaml").read_text()
    assert "context: ./web" in compose and "dockerfile: ../Dockerfile.web" in compose
    assert "image: example/web:dev" in compose
    assert not (root / "Dockerfile.web.dockerignore").exists()


@pytest.mark.parametrize("name", ["flask-gunicorn", "dockerfile-and-start-install"])
def test_init_run_again_changes_nothing(name: str, tmp_path: Path) -> None:
    root = _copy(name, tmp_path)
    init.apply(init.plan(root, environ={}))
    assert init.plan(root, environ={}).nothing_to_do


def test_the_wheel_stage_runs_as_root_when_the_stage_it_starts_from_does_not(
    tmp_path: Path,
) -> None:
    root = _copy("flask-gunicorn", tmp_path)
    (root / "Dockerfile").write_text(
        "FROM python:3.13-slim AS base\nRUN useradd app\nUSER app\n\n"
        "FROM base\nWORKDIR /home/app\nCOPY requirements.txt .\n"
        "RUN pip install --user -r requirements.txt\nCOPY . .\n"
    )
    p = init.plan(root, environ={})
    text = _generated(p, "web")
    assert "FROM base AS wheeldock-deps\nUSER root\n" in text


def test_where_pip_takes_packages_from_is_where_uv_does(tmp_path: Path) -> None:
    root = _copy("flask-gunicorn", tmp_path)
    (root / "Dockerfile").write_text(
        "FROM python:3.13-slim\nARG PIP_INDEX_URL\nENV PIP_TRUSTED_HOST=pypi.internal\n"
        "WORKDIR /app\nCOPY requirements.txt .\n"
        "RUN pip install --extra-index-url https://pypi.internal/simple -r requirements.txt\n"
        "COPY . .\n"
    )
    p = init.plan(root, environ={})
    text = _generated(p, "web")
    assert "ENV UV_INDEX_URL=${PIP_INDEX_URL} UV_INSECURE_HOST=${PIP_TRUSTED_HOST}\n" in text
    assert (
        "pip install --python /opt/venv/bin/python "
        "--extra-index-url https://pypi.internal/simple -r /build/requirements.txt" in text
    )


def test_a_pdm_lock_is_exported_in_the_wheel_stage_with_the_groups_selected(
    tmp_path: Path,
) -> None:
    root = _copy("pdm-install-prod", tmp_path)
    text = (next(c for c in init.plan(root, environ={}).changes if c.path == "Dockerfile.app")
            .desired or b"").decode()  # fmt: skip
    assert "pdm export --prod --no-hashes --output /tmp/requirements.txt" in text
    dockerfile = root / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("--prod", "-G test"))
    text = (next(c for c in init.plan(root, environ={}).changes if c.path == "Dockerfile.app")
            .desired or b"").decode()  # fmt: skip
    assert "pdm export -G test --no-hashes" in text


def test_a_workspace_member_gets_its_own_dependencies_and_not_the_workspace(
    tmp_path: Path,
) -> None:
    root = _copy("uv-workspace-member", tmp_path)
    p = init.plan(root, environ={})
    assert p.built[0].reading.package == "api"
    text = _generated(p, "api")
    assert "sync --frozen --no-dev --package api --no-install-workspace --project /build" in text
    _, reqs = requirement_closure(
        root, p.built[0].reading.requirements, package=p.built[0].reading.package
    )
    assert {r.name for r in reqs} == {
        "anyio", "click", "h11", "idna", "starlette", "typing-extensions", "uvicorn"
    }  # fmt: skip


def test_init_convert_on_the_command_line_converts_the_service_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy("uv-sync-cached", tmp_path)
    assert cli.main(["-C", str(root), "init", "--dry-run", "--convert", "app"]) == 0
    assert "Dockerfile.app" in capsys.readouterr().out


UV_RUN_ENV = "ENV UV_PROJECT_ENVIRONMENT=/opt/venv UV_NO_SYNC=1\n"
_UV_RUN_COMMENT = (
    "# wheeldock: `uv run` runs in that venv as it is, without syncing a .venv of its own\n"
)


def test_a_uv_run_command_over_a_dockerfile_that_syncs_the_project_is_kept_as_written(
    tmp_path: Path,
) -> None:
    # n0tsSzzz/python-rmq-pubsub: `uv sync` in the Dockerfile, `uv run python …` as the
    # compose command of three services; they were passed over as installing at start
    root = _copy("uv-run-compose-command", tmp_path)
    p = init.plan(root, environ={})
    assert p.warnings == ()
    [built] = p.built
    assert (built.name, built.shared_with, built.reading.command) == ("api", ("worker",), ())
    assert any(
        "its `uv run` syncs the project its Dockerfile installs" in n for n in built.reading.notes
    )
    text = _generated(p, "api")
    assert (
        "ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH\n" + _UV_RUN_COMMENT + UV_RUN_ENV
        in text
    )
    init.apply(p)
    compose = (root / "compose.yaml").read_text()
    assert 'command: "uv run uvicorn shop:app --host 0.0.0.0"' in compose
    assert compose.count("dockerfile: Dockerfile.api") == 2


def test_a_uv_run_command_that_syncs_another_project_is_still_passed_over(
    tmp_path: Path,
) -> None:
    root = _copy("uv-run-compose-command", tmp_path)
    compose = root / "compose.yaml"
    compose.write_text(
        compose.read_text().replace("uv run uvicorn", "uv run --project /srv uvicorn")
    )
    with pytest.raises(NotFound, match="its compose command installs a project at start"):
        init.plan(root, environ={})


@pytest.mark.parametrize(
    ("name", "told"),
    [
        # astral-sh/uv-docker-example: `CMD ["uv", "run", "fastapi", "dev", …]` would make a
        # .venv of its own at start and install the project's dependencies into it
        ("uv-sync-frozen", True),
        ("uv-workspace-member", True),
        ("fastapi-uvicorn", False),
        ("poetry-no-venv", False),
    ],
)
def test_uv_run_is_told_to_use_the_venv_only_in_a_uv_project(
    name: str, told: bool, tmp_path: Path
) -> None:
    p = init.plan(_copy(name, tmp_path), environ={})
    assert (UV_RUN_ENV in _generated(p, p.built[0].name)) is told


def test_a_start_command_the_parser_cannot_read_that_installs_nothing_is_kept_as_written(
    tmp_path: Path,
) -> None:
    # testdrivenio/fastapi-crud-async waits for the database in bash's own syntax; the service
    # was passed over as "not shell syntax wheeldock can read" though the command installs nothing
    root = _copy("fastapi-uvicorn", tmp_path)
    wait = (
        "bash -c 'while !</dev/tcp/db/5432; do sleep 1; done; "
        "uvicorn app.main:app --host 0.0.0.0 --port 8000'"
    )
    (root / "compose.yaml").write_text(
        f"services:\n  api:\n    build: .\n    command: {json.dumps(wait)}\n"
    )
    p = init.plan(root, environ={})
    [built] = p.built
    assert (built.name, built.reading.command) == ("api", ())
    init.apply(p)
    assert f"command: {json.dumps(wait)}" in (root / "compose.yaml").read_text()


def test_a_start_command_the_parser_cannot_read_that_may_install_is_still_passed_over(
    tmp_path: Path,
) -> None:
    root = _copy("fastapi-uvicorn", tmp_path)
    wait = "bash -c 'while !</dev/tcp/db/5432; do sleep 1; done; pip install -r r.txt; uvicorn x'"
    (root / "compose.yaml").write_text(
        f"services:\n  api:\n    build: .\n    command: {json.dumps(wait)}\n"
    )
    with pytest.raises(NotFound, match="is not shell syntax wheeldock can read"):
        init.plan(root, environ={})


def test_a_poetry_export_in_a_stage_of_its_own_installs_from_the_lock(tmp_path: Path) -> None:
    # cgtyunerr/apps-app, after FastAPI's Docker page: passed over as "its requirements file
    # /code/requirements.txt is not copied from the build context before the install"
    root = _copy("poetry-export-stage", tmp_path)
    p = init.plan(root, environ={})
    [built] = p.built
    assert (built.reading.requirements, built.reading.groups) == (("backend/poetry.lock",), ())
    assert set(built.requirement_files) == {"backend/poetry.lock", "backend/pyproject.toml"}
    assert any(
        "the `poetry export` at backend/Dockerfile:11 turns into the /code/requirements.txt" in n
        for n in built.reading.notes
    )
    text = _generated(p, "app")
    assert "poetry export --only main --without-hashes --format requirements.txt" in text
    # the user's export stage and its COPY --from stay; the install is gone from the image
    assert "COPY --from=requirements-stage /tmp/requirements.txt /code/requirements.txt\n" in text
    assert "RUN pip install --no-cache-dir --upgrade -r requirements.txt" not in text


@pytest.mark.parametrize(
    ("export", "groups"),
    [
        ("--with dev", ("main", "dev")),
        ("--dev", ("main", "dev")),
        ("--only dev", ("dev",)),
        ("--without-hashes", ()),
    ],
)
def test_a_poetry_export_takes_the_groups_it_names(
    tmp_path: Path, export: str, groups: tuple[str, ...]
) -> None:
    root = _copy("poetry-export-stage", tmp_path)
    dockerfile = root / "backend" / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace(
            "--output requirements.txt --without-hashes", export + " > requirements.txt"
        )
    )
    [built] = init.plan(root, environ={}).built
    assert (built.reading.requirements, built.reading.groups) == (("backend/poetry.lock",), groups)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda root: (root / "backend" / "poetry.lock").unlink(),
            r"is a `poetry export` \(backend/Dockerfile:11\) of backend/poetry.lock, which is "
            "not in the build context: lock the project",
        ),
        (
            lambda root: (root / "backend" / "Dockerfile").write_text(
                (root / "backend" / "Dockerfile")
                .read_text()
                .replace("--without-hashes", "--without-hashes --extras web")
            ),
            r"is a `poetry export` \(backend/Dockerfile:11\) that takes --extras web",
        ),
    ],
)
def test_a_poetry_export_wheeldock_cannot_stand_in_for_is_passed_over_with_the_reason(
    tmp_path: Path, change: Callable[[Path], object], reason: str
) -> None:
    root = _copy("poetry-export-stage", tmp_path)
    change(root)
    with pytest.raises(NotFound, match=reason):
        init.plan(root, environ={})


def test_packages_a_later_run_installs_beside_a_lock_are_installed_too(tmp_path: Path) -> None:
    # mfmezger/aleph-alpha-fastapi: `poetry install`, then `RUN pip install timm`; the wheel
    # stage installed the lock's packages alone, and the note said timm was installed
    root = _copy("poetry-no-venv", tmp_path)
    dockerfile = root / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace("COPY . .\n", "RUN pip install itsdangerous\nCOPY . .\n")
    )
    text = _generated(init.plan(root, environ={}), "app")
    assert (
        "pip install --python /opt/venv/bin/python -r /tmp/requirements.txt itsdangerous\n" in text
    )
    root = _copy("uv-sync-frozen", tmp_path)
    dockerfile = root / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace("COPY . .\n", "RUN pip install itsdangerous\nCOPY . .\n")
    )
    text = _generated(init.plan(root, environ={}), "app")
    assert (
        "--project /build \\\n    && /opt/uv/bin/uv pip install --python /opt/venv/bin/python "
        "itsdangerous\n" in text
    )


@pytest.mark.parametrize(
    ("sync", "command", "kept"),
    [
        # zephyr363/subsciption_platform_api: `uv sync --frozen --no-dev` in the Dockerfile,
        # `uv run pytest` as the command of its tests service: the sync at start adds pytest
        ("uv sync --frozen --no-dev", "uv run pytest -s -v", False),
        ("uv sync --frozen --no-dev", "uv run --no-dev uvicorn shop:app", True),
        ("uv sync --frozen", "uv run pytest -s -v", True),
    ],
)
def test_a_uv_run_that_would_add_the_dev_group_the_build_left_out_is_not_kept(
    tmp_path: Path, sync: str, command: str, kept: bool
) -> None:
    root = _copy("uv-run-compose-command", tmp_path)
    (root / "Dockerfile").write_text(
        (root / "Dockerfile").read_text().replace("uv sync --frozen --no-cache", sync)
    )
    (root / "compose.yaml").write_text(
        f"services:\n  api:\n    build: .\n    command: {json.dumps(command)}\n"
    )
    if kept:
        reading = init.plan(root, environ={}).built[0].reading
        assert reading.command == ()
        noted = any("the development group the install at Dockerfile:9" in n for n in reading.notes)
        assert noted is ("--no-dev" in sync)
    else:
        with pytest.raises(NotFound, match=r"`uv run` installs the development group at every"):
            init.plan(root, environ={})


def test_services_passed_over_for_reasons_of_their_own_are_pointed_at_not_another_shape(
    tmp_path: Path,
) -> None:
    # the shape of CTFd/CTFd (2026-12): the plugins' requirements installed in a `for` loop of
    # the install's RUN, a database beside it; no service qualifies
    root = _copy("flask-gunicorn", tmp_path)
    (root / "Dockerfile").write_text(
        "FROM python:3.11-slim-bookworm\nWORKDIR /opt/CTFd\nCOPY . /opt/CTFd\n"
        "RUN pip install --no-cache-dir -r requirements.txt \\\n"
        "    && for d in CTFd/plugins/*; do \\\n"
        '        if [ -f "$d/requirements.txt" ]; then \\\n'
        '            pip install --no-cache-dir -r "$d/requirements.txt";\\\n'
        "        fi; \\\n    done;\n"
        'CMD ["gunicorn", "app:app"]\n'
    )
    (root / "compose.yaml").write_text(
        "services:\n  ctfd:\n    build: .\n  db:\n    image: mariadb:10.11\n"
    )
    with pytest.raises(NotFound) as caught:
        init.plan(root, environ={})
    assert "ctfd (Dockerfile:4: " in caught.value.what, caught.value.what
    assert caught.value.fix is not None
    assert "python:*" not in caught.value.fix
    assert caught.value.fix.startswith(
        "ctfd is built from its own Dockerfile and was passed over for the reason after its "
        "name above: fix that, or describe it in wheeldock.toml by hand"
    )
    assert "--convert" not in caught.value.fix


def test_a_prebuilt_dockerfile_installing_at_start_too_points_at_convert(tmp_path: Path) -> None:
    # docker/awesome-compose's flask shape (a cache-mounted install), its compose command
    # installing more at every start; with another service passed over for its own reason
    root = _copy("uv-sync-cached", tmp_path)
    (root / "requirements-dev.txt").write_text("pytest==8.3.4\n")
    (root / "compose.yaml").write_text(
        "services:\n  app:\n    build: .\n"
        '    command: sh -c "pip install -r requirements-dev.txt && uvicorn shop:app"\n'
        "  worker:\n    build:\n      context: .\n      dockerfile: Dockerfile.missing\n"
    )
    with pytest.raises(NotFound) as caught:
        init.plan(root, environ={})
    assert caught.value.fix is not None
    assert "python:*" not in caught.value.fix
    assert caught.value.fix.startswith(
        "app, worker are built from their own Dockerfiles and were each passed over for the "
        "reason after its name above: fix that, or describe them in wheeldock.toml by hand; "
    )
    assert caught.value.fix.endswith("`wheeldock init --convert app` converts it anyway")


def test_a_compose_entrypoint_running_a_script_of_the_context_moves_its_install_into_the_image(
    tmp_path: Path,
) -> None:
    # the shape of UlasevichNazar/TraidingBot-FastAPI (2026-12): the Dockerfile installs, and
    # the compose entrypoint runs a script of the context that pip-installs more at each start
    root = _copy("compose-entrypoint-script", tmp_path)
    p = init.plan(root, environ={})
    (built,) = p.built
    assert built.reading.requirements == ("requirements.txt", "requirements-prod.txt")
    script = (
        "set -e\npython manage.py migrate --noinput\n"
        "exec gunicorn app.wsgi:application --bind 0.0.0.0:8000"
    )
    assert built.reading.command == ("/bin/sh", "-c", script)
    assert "read from docker-entrypoint.sh" in built.reading.notes[-1]
    text = _generated(p, "web")
    # the compose entrypoint had replaced the Dockerfile's CMD: the image's is the script's
    assert text.endswith(f"ENTRYPOINT []\nCMD {json.dumps(['/bin/sh', '-c', script])}\n")
    patched = (next(c for c in p.changes if c.path == "compose.yaml").desired or b"").decode()
    assert "entrypoint" not in patched
    assert p.project.service("web").command == ("/bin/sh", "-c", script)


def test_the_words_compose_gives_an_entrypoint_script_stay_its_arguments(tmp_path: Path) -> None:
    root = _copy("compose-entrypoint-script", tmp_path)
    (root / "docker-entrypoint.sh").write_text(
        "#!/bin/sh\npip install -r requirements-prod.txt\npython manage.py migrate\n"
        'exec gunicorn "$@"\n'
    )
    (root / "compose.yaml").write_text(
        "services:\n  web:\n    build: .\n    entrypoint: [./docker-entrypoint.sh]\n"
        "    command: app.wsgi:application --bind 0.0.0.0:8000\n"
    )
    p = init.plan(root, environ={})
    (built,) = p.built
    assert built.reading.command == (
        "/bin/sh",
        "-c",
        'python manage.py migrate\nexec gunicorn "$@"',
        "docker-entrypoint.sh",  # its $0
        "app.wsgi:application",
        "--bind",
        "0.0.0.0:8000",
    )
    assert built.reading.start_keys == ("entrypoint", "command")
    patched = (next(c for c in p.changes if c.path == "compose.yaml").desired or b"").decode()
    assert "entrypoint" not in patched and "command" not in patched


def test_a_compose_entrypoint_script_not_in_the_context_leaves_the_dockerfile_converted(
    tmp_path: Path,
) -> None:
    root = _copy("compose-entrypoint-script", tmp_path)
    (root / "compose.yaml").write_text(
        "services:\n  web:\n    build: .\n    entrypoint: /usr/local/bin/wait-then-run.sh\n"
    )
    (built,) = init.plan(root, environ={}).built
    assert built.reading.command == ()
    assert built.reading.entrypoint == ("/usr/local/bin/wait-then-run.sh",)


@pytest.mark.parametrize(
    ("program", "command"),
    [
        ('exec gunicorn "$@"', ("gunicorn", "app.wsgi:application", "--bind", "0.0.0.0:8000")),
        # the docker-library shape: the script installs, then runs the command it is given
        ('exec "$@"', ("gunicorn", "app.wsgi:application", "--bind", "0.0.0.0:8000")),
        ("exec gunicorn $1", None),
    ],
)
def test_an_entrypoint_script_running_its_program_alone_gets_the_compose_words(
    program: str, command: tuple[str, ...] | None, tmp_path: Path
) -> None:
    root = _copy("compose-entrypoint-script", tmp_path)
    (root / "docker-entrypoint.sh").write_text(
        f"#!/bin/sh\npip install -r requirements-prod.txt\n{program}\n"
    )
    (root / "compose.yaml").write_text(
        "services:\n  web:\n    build: .\n    entrypoint: [./docker-entrypoint.sh]\n"
        "    command: app.wsgi:application --bind 0.0.0.0:8000\n"
    )
    if program == 'exec "$@"':
        compose = (root / "compose.yaml").read_text()
        (root / "compose.yaml").write_text(compose.replace("command: app", "command: gunicorn app"))
    if command is None:
        with pytest.raises(NotFound, match=r"web \(its compose entrypoint: its start script "):
            init.plan(root, environ={})
        return
    (built,) = init.plan(root, environ={}).built
    assert built.reading.command == command
