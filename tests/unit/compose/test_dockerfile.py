"""The generated Dockerfile and .dockerignore (pure), and hadolint's verdict on them."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from support.stacks import DATA, EXAMPLE

from wheeldock.compose import dockerfile
from wheeldock.compose import files as compose
from wheeldock.compose import survey as discover
from wheeldock.debian import bases as base
from wheeldock.project import Service

HADOLINT = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "hadolint"


def _findings(root: Path) -> list[discover.Finding]:
    files = [compose.load(p) for p in compose.find_files(root)]
    return discover.discover(root, files, {})


def _spec(finding: discover.Finding, **changes: object) -> dockerfile.DockerfileSpec:
    svc = replace(finding.service, **changes)  # type: ignore[arg-type]
    return dockerfile.DockerfileSpec(svc, finding.requirement_files, "0.13.9")


ALL = [
    (name, f)
    for name, root in (
        ("cb-totem", EXAMPLE),
        ("flask", DATA / "flask"),
        ("worker", DATA / "worker"),
        ("nested", DATA / "nested"),
        ("adhoc", DATA / "adhoc"),
    )
    for f in _findings(root)
]


def _hadolint(text: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [str(HADOLINT), "--format", "json", "--no-fail", "-"],
        input=text.encode(),
        capture_output=True,
        check=True,
    )
    findings: list[dict[str, object]] = json.loads(result.stdout or b"[]")
    return findings


@pytest.mark.parametrize(
    ("finding", "changes"),
    [(f, {}) for _, f in ALL]
    + [(ALL[0][1], {"no_binary": ("cffi", "pyyaml", "lxml"), "runtime_packages": ("libffi8",)})],
    ids=[f"{n}-{f.service.name}" for n, f in ALL] + ["cb-totem-no-binary"],
)
def test_hadolint_finds_no_errors(finding: discover.Finding, changes: dict[str, object]) -> None:
    text = dockerfile.render(_spec(finding, **changes))
    errors = [f for f in _hadolint(text) if f["level"] == "error"]
    assert errors == []


@pytest.mark.parametrize(
    "images",
    [
        {"builder_image": "python:3.11", "runtime_image": "python:3.11-slim"},
        {"builder_image": "python:3.11"},
        {"runtime_image": "python:3.11-slim"},
    ],
    ids=["other-builder-and-runtime", "other-builder", "other-runtime"],
)
def test_hadolint_finds_no_errors_with_images_that_are_not_wheeldock_bases(
    images: dict[str, str],
) -> None:
    finding = ALL[0][1]
    spec = dockerfile.DockerfileSpec(finding.service, finding.requirement_files, "0.13.9", **images)
    errors = [f for f in _hadolint(dockerfile.render(spec)) if f["level"] == "error"]
    assert errors == []


def test_hadolint_reports_errors_when_there_are_some() -> None:
    # The lint test above would pass vacuously if hadolint never reported anything.
    assert any(f["level"] == "error" for f in _hadolint("FROM python:3.11\nWORKDIR app\n"))


def test_ca_only_reaches_download_steps_as_a_secret_mount() -> None:
    text = dockerfile.render(_spec(ALL[0][1]))
    assert "COPY" not in text.split("FROM wheeldock/python:3.11-slim")[0]  # builder copies none
    for line in text.splitlines():
        if "wheeldock-ca.pem" in line and line.lstrip().startswith("--mount"):
            assert line.strip().startswith("--mount=type=secret,id=ca,")
    runtime = text.split("FROM wheeldock/python:3.11-slim")[1]
    assert "secret" not in runtime  # the runtime stage downloads nothing: no CA needed
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    assert "pip" not in runtime and "uv" not in runtime


def test_requirement_files_are_bound_into_the_builder_with_their_layout() -> None:
    nested = next(f for n, f in ALL if n == "nested")
    text = dockerfile.render(_spec(nested))
    for rel in nested.requirement_files:
        mount = f"--mount=type=bind,source={rel},target=/build/{rel}"
        assert text.count(mount) == 1
    assert "-r /build/svc/requirements/prod.txt" in text


def test_code_is_copied_last_into_its_mount_target_and_runs_as_non_root() -> None:
    lines = dockerfile.render(_spec(ALL[0][1])).splitlines()
    copy = lines.index("COPY vcc-totem/ /src/")
    assert lines[copy - 1] == "WORKDIR /src"
    assert lines[copy + 1] == f"USER {dockerfile.APP_UID}:{dockerfile.APP_UID}"
    assert not any(line.startswith(("RUN", "COPY")) for line in lines[copy + 1 :])
    assert lines[-1] == 'CMD ["python", "api_wrapper.py"]'


def test_code_the_service_writes_into_is_copied_as_its_users_before_workdir() -> None:
    text = dockerfile.render(_spec(ALL[0][1], writable_code=True))
    lines = text.splitlines()
    copy = lines.index(f"COPY --chown={dockerfile.APP_UID}:{dockerfile.APP_UID} vcc-totem/ /src/")
    # COPY makes /src the user's; a WORKDIR before it would have made it root's
    assert lines[copy + 1] == "WORKDIR /src"
    assert "WORKDIR /src" not in lines[:copy]
    assert not [f for f in _hadolint(text) if f["level"] == "error"]


@pytest.mark.parametrize(
    ("python", "builder", "runtime"),
    [
        ("3.11", "wheeldock/python:3.11-builder", "wheeldock/python:3.11-slim"),
        ("3.13", "wheeldock/python:3.13-builder", "wheeldock/python:3.13-slim"),
        ("3.12", "python:3.12", "python:3.12-slim"),
    ],
)
def test_the_images_follow_the_services_python(python: str, builder: str, runtime: str) -> None:
    text = dockerfile.render(_spec(ALL[0][1], python=python))
    assert f"FROM {builder} AS builder\n" in text and f"FROM {runtime}\n" in text
    assert not [f for f in _hadolint(text) if f["level"] == "error"]


def test_runtime_packages_get_an_apt_step_only_when_there_are_some() -> None:
    finding = ALL[0][1]
    without = dockerfile.render(_spec(finding, runtime_packages=()))
    with_ffi = dockerfile.render(_spec(finding, runtime_packages=("libffi8",)))
    runtime_without = without.split("FROM wheeldock/python:3.11-slim")[1]
    assert "apt-get" not in runtime_without
    runtime_with = with_ffi.split("FROM wheeldock/python:3.11-slim")[1]
    assert "apt-get install -y --no-install-recommends libffi8" in runtime_with
    assert "rm -rf /var/lib/apt/lists/*" in runtime_with


def test_no_binary_builds_from_source_with_the_builder_bases_headers() -> None:
    text = dockerfile.render(_spec(ALL[0][1], no_binary=("cffi", "pyyaml")))
    builder = text.split("FROM wheeldock/python:3.11-slim")[0]
    assert "--no-binary cffi --no-binary pyyaml" in builder
    assert "apt-get" not in builder  # the builder base has every header of BUILD_PACKAGES


def test_no_binary_installs_the_headers_into_another_builder_image() -> None:
    spec = replace(_spec(ALL[0][1], no_binary=("cffi", "pyyaml")), builder_image="python:3.11")
    builder = dockerfile.render(spec).split("FROM wheeldock/python:3.11-slim")[0]
    assert "libffi-dev" in builder and "libyaml-dev" in builder


def test_healthcheck_has_a_one_second_start_interval() -> None:
    text = dockerfile.render(_spec(ALL[0][1]))
    assert "HEALTHCHECK --interval=30s" in text and "--start-interval=1s" in text


def _svc(**kw: object) -> Service:
    base: dict[str, object] = {
        "name": "s",
        "source": "app",
        "requirements": ("app/r.txt",),
        "command": ("python", "a.py"),
    }
    return Service(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("service", "must_contain"),
    [
        (
            _svc(port=8000, health="/health"),
            "'http://127.0.0.1:%d/health' % int(os.environ.get('PORT', '8000'))",
        ),
        (
            _svc(port=8000, health="tcp"),
            "socket.create_connection(('127.0.0.1', int(os.environ.get('PORT', '8000'))), 2)",
        ),
        (_svc(health="process"), "os.kill(1, 0)"),
        (
            _svc(port=9000, health="/h", command=("uvicorn", "m:app", "--port", "9000")),
            "'http://127.0.0.1:%d/h' % 9000",
        ),
        # the port the command takes from a variable is the one the check reads
        (
            _svc(
                port=8200, health="/health", command=("uvicorn", "m:app", "--port", "${API_PORT}")
            ),
            "int(os.environ.get('API_PORT', '8200'))",
        ),
        (
            _svc(
                port=8000,
                health="tcp",
                command=("/bin/sh", "-c", "migrate && exec gunicorn -b 0.0.0.0:$PORT_WEB w:app"),
            ),
            "int(os.environ.get('PORT_WEB', '8000'))",
        ),
    ],
)
def test_health_command_by_kind(service: Service, must_contain: str) -> None:
    argv = dockerfile.health_command(service)
    assert argv[:2] == ["python3", "-c"]
    assert must_contain in argv[2]
    compile(argv[2], "<healthcheck>", "exec")  # valid Python


def test_command_with_shell_variables_runs_through_sh_exec() -> None:
    assert dockerfile.exec_form(["gunicorn", "--bind", "0.0.0.0:${PORT}", "w:app"]) == [
        "/bin/sh",
        "-c",
        'exec gunicorn --bind "0.0.0.0:${PORT}" w:app',
    ]
    assert dockerfile.exec_form(["python", "a.py"]) == ["python", "a.py"]


def test_render_is_deterministic() -> None:
    spec = _spec(ALL[1][1])
    assert dockerfile.render(spec) == dockerfile.render(spec)


def test_dockerignore_merges_with_an_existing_file_and_keeps_it_first() -> None:
    existing = "# mine\n.env.local\nnode_modules\n"
    text, warnings = dockerfile.dockerignore(existing, ["vcc-totem/requirements.txt", "vcc-totem"])
    assert text.startswith(existing + "\n" + dockerfile.IGNORE_MARKER + "\n")
    assert "**/__pycache__\n" in text and ".git\n" in text
    assert warnings == ()
    again, _ = dockerfile.dockerignore(text, ["vcc-totem"])
    assert again == text  # nothing missing any more: unchanged


def test_dockerignore_never_excludes_what_the_image_needs() -> None:
    text, warnings = dockerfile.dockerignore("tests/*.txt\n", ["tests/requirements.txt", "tests"])
    patterns = text.splitlines()
    assert "**/tests" not in patterns  # the code lives in tests/ here
    assert warnings == (".dockerignore excludes tests/requirements.txt, which the image needs",)


@pytest.mark.parametrize(
    ("path", "patterns", "expected"),
    [
        ("a/__pycache__/x.pyc", ["**/__pycache__"], True),
        ("__pycache__", ["**/__pycache__"], True),
        ("src/app.py", ["**/*.pyc"], False),
        ("logs/x", ["logs"], True),
        ("app/logs/x", ["logs"], False),
        ("keep.txt", ["*.txt", "!keep.txt"], False),
        ("vcc-totem/requirements.txt", [".env*", ".git"], False),
        ("src/.git/config", [".git"], False),
        ("src/.git/config", ["**/.git"], True),
        ("a/b.txt", ["./a//"], True),
        ("a/b.txt", ["/a"], True),
        ("b1.txt", ["b[0-9].txt"], True),
        ("bx.txt", ["b[^x].txt"], False),
        ("a*b", ["a\\*b"], True),
        ("axb", ["a\\*b"], False),
    ],
)
def test_dockerignore_matching_follows_docker(
    path: str, patterns: list[str], expected: bool
) -> None:
    assert dockerfile.excluded(path, patterns) is expected


def _stages(text: str) -> tuple[str, str]:
    builder, _, runtime = text.partition("\n# ---- runtime")
    return builder, runtime


def _run_steps(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("RUN ")]


def test_wheeldock_builder_base_has_uv_so_the_builder_stage_downloads_only_wheels() -> None:
    builder, _ = _stages(dockerfile.render(_spec(ALL[0][1])))
    assert "FROM wheeldock/python:3.11-builder AS builder" in builder
    assert "python3 -m pip" not in builder and dockerfile.PIP_UV not in builder
    (step,) = _run_steps(builder)  # the venv install is the only step
    assert step.startswith("RUN --mount=type=cache,target=/root/.cache/uv")
    assert f"{base.UV_PATH} venv --python /usr/bin/python3 /opt/venv" in builder
    assert f"{base.UV_PATH} pip install --python /opt/venv/bin/python -r /build/" in builder
    # an older builder base without uv fails with the fix, not with "not found"
    assert f"[ -x {base.UV_PATH} ] ||" in builder
    assert "wheeldock base build builder" in builder


@pytest.mark.parametrize("image", ["python:3.11", "ghcr.io/acme/builder:1"])
def test_another_builder_image_gets_the_pinned_uv_from_pypi_first(image: str) -> None:
    finding = ALL[0][1]
    spec = dockerfile.DockerfileSpec(
        finding.service, finding.requirement_files, "0.13.9", builder_image=image
    )
    builder, _ = _stages(dockerfile.render(spec))
    assert f"FROM {image} AS builder" in builder
    pip_step, install_step = _run_steps(builder)
    assert pip_step.startswith("RUN --mount=type=cache,target=/root/.cache/pip")
    assert "python3 -m pip install --target /opt/uv uv==0.13.9" in builder
    assert f"{dockerfile.PIP_UV} pip install --python /opt/venv/bin/python" in builder
    assert base.UV_PATH not in builder
    assert install_step.startswith("RUN --mount=type=cache,target=/root/.cache/uv")


def test_naming_the_wheeldock_builder_explicitly_is_the_same_as_the_default() -> None:
    finding = ALL[0][1]
    explicit = dockerfile.DockerfileSpec(
        finding.service,
        finding.requirement_files,
        "0.13.9",
        builder_image="wheeldock/python:3.11-builder",
        runtime_image="wheeldock/python:3.11-slim",
    )
    assert dockerfile.render(explicit) == dockerfile.render(_spec(finding))


@pytest.mark.parametrize("variant", ["slim", "minimal"])
def test_wheeldock_runtime_bases_have_the_app_account_so_no_step_adds_it(variant: str) -> None:
    _, runtime = _stages(dockerfile.render(_spec(ALL[0][1], base=variant)))
    assert f"FROM wheeldock/python:3.11-{variant}" in runtime
    assert _run_steps(runtime) == []
    assert "useradd" not in runtime and "groupadd" not in runtime
    assert f"USER {base.APP_USER.uid}:{base.APP_USER.gid}" in runtime


def test_another_runtime_image_gets_the_same_app_account_added() -> None:
    finding = ALL[0][1]
    spec = dockerfile.DockerfileSpec(
        finding.service, finding.requirement_files, "0.13.9", runtime_image="python:3.11-slim"
    )
    _, runtime = _stages(dockerfile.render(spec))
    (step,) = _run_steps(runtime)
    assert step == "RUN groupadd --system --gid 10001 app \\"
    assert (
        "useradd --system --no-log-init --uid 10001 --gid app --no-create-home "
        "--home-dir /nonexistent --shell /usr/sbin/nologin app"
    ) in runtime
    # the account a base writes has the same fields
    assert (
        base.APP_USER.entries()["etc/passwd"] == "app:x:10001:10001::/nonexistent:/usr/sbin/nologin"
    )


@pytest.mark.parametrize(
    ("groups", "only"), [((), "--only main"), (("main", "dev"), "--only main,dev")]
)
def test_a_poetry_lock_is_exported_with_the_groups_of_the_service(
    groups: tuple[str, ...], only: str
) -> None:
    svc = Service(
        name="api",
        source="app",
        requirements=("app/poetry.lock",),
        command=("python", "-m", "shop"),
        groups=groups,
    )
    text = dockerfile.render(dockerfile.DockerfileSpec(svc, ("app/poetry.lock",), "0.5.0"))
    assert f"poetry export {only} --without-hashes" in text


def test_packages_named_with_a_uv_lock_are_installed_after_the_sync() -> None:
    stage = dockerfile.WheelStage(
        name="deps",
        image="python:3.12",
        own_builder=False,
        uv_version="0.5.0",
        requirements=("uv.lock",),
        bind_files=("uv.lock", "pyproject.toml"),
        packages=("gunicorn==23.0.0",),
    )
    text = "\n".join(dockerfile.wheel_stage(stage))
    assert (
        "--project /build \\\n    && /opt/uv/bin/uv pip install --python /opt/venv/bin/python "
        "gunicorn==23.0.0" in text
    )
