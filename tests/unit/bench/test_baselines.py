"""The hand-made Dockerfiles bench compares against must stay faithful to their sources."""

from __future__ import annotations

import dataclasses
import json

import pytest

from wheeldock.bench.baselines import DockerfileInputs, seed_dockerfile, uvguide_dockerfile

INPUTS = DockerfileInputs(
    source="vcc-totem",
    requirements="vcc-totem/requirements.txt",
    command=("python3", "api_wrapper.py"),
    port=8000,
    health_path="/health",
)


def test_seed_builds_a_wheelhouse_with_pip_wheel_and_no_cache() -> None:
    text = seed_dockerfile(INPUTS)
    assert "pip wheel --no-cache-dir --wheel-dir /tmp/wheels -r requirements.txt" in text
    assert "gcc build-essential" in text


def test_seed_runtime_installs_libffi8_and_keeps_the_wheelhouse_in_a_layer() -> None:
    runtime = seed_dockerfile(INPUTS).split("FROM python:3.11-slim\n", 1)[1]
    assert "libffi8" in runtime
    assert "COPY --from=builder /tmp/wheels /tmp/wheels" in runtime
    assert "--no-index --find-links=/tmp/wheels" in runtime


def test_seed_has_the_30_second_healthcheck_and_runs_the_script() -> None:
    text = seed_dockerfile(INPUTS)
    assert "HEALTHCHECK --interval=30s" in text
    assert "http://localhost:8000/health" in text
    assert text.rstrip().endswith('CMD ["python3", "api_wrapper.py"]')


def test_code_is_copied_after_dependencies_in_both() -> None:
    for text in (seed_dockerfile(INPUTS), uvguide_dockerfile(INPUTS)):
        assert text.index("COPY vcc-totem/ .") > text.rindex("requirements.txt")


def test_uvguide_uses_a_cache_mount_bind_mounted_requirements_and_bytecode() -> None:
    text = uvguide_dockerfile(INPUTS)
    assert "--mount=type=cache,target=/root/.cache/uv" in text
    assert "--mount=type=bind,source=vcc-totem/requirements.txt,target=requirements.txt" in text
    assert "UV_COMPILE_BYTECODE=1" in text
    assert "COPY --from=builder /app/.venv /app/.venv" in text


@pytest.mark.parametrize("render", [seed_dockerfile, uvguide_dockerfile])
def test_the_ca_is_a_build_secret_never_copied(render: object) -> None:
    text = render(INPUTS)  # type: ignore[operator]
    assert "--mount=type=secret,id=ca" in text
    assert "ca-certificates.crt" not in text
    without = render(DockerfileInputs(**{**INPUTS.__dict__, "with_ca": False}))  # type: ignore[operator]
    assert "secret" not in without


def test_forced_source_builds_are_passed_to_pip_and_uv() -> None:
    forced = DockerfileInputs(**{**INPUTS.__dict__, "no_binary": ("cffi", "pyyaml")})
    assert "--no-binary cffi,pyyaml" in seed_dockerfile(forced)
    uv_text = uvguide_dockerfile(forced)
    assert "--no-binary cffi --no-binary pyyaml" in uv_text
    assert "build-essential" in uv_text


def test_worker_without_port_gets_a_process_check() -> None:
    worker = DockerfileInputs(**{**INPUTS.__dict__, "port": None, "health_path": None})
    assert "os.kill(1, 0)" in seed_dockerfile(worker)


@pytest.mark.parametrize("render", [seed_dockerfile, uvguide_dockerfile])
def test_a_command_that_uses_a_variable_runs_through_a_shell(render: object) -> None:
    # data-api's `uvicorn app:app --port $${MODEL_PORT}`: exec form would pass it literally
    inputs = dataclasses.replace(INPUTS, command=("uvicorn", "app:app", "--port", "${MODEL_PORT}"))
    assert callable(render)
    text = render(inputs)
    cmd = json.loads(text.rstrip().rsplit("\nCMD ", 1)[1])
    assert cmd == ["/bin/sh", "-c", 'exec uvicorn app:app --port "${MODEL_PORT}"']


@pytest.mark.parametrize("render", [seed_dockerfile, uvguide_dockerfile])
def test_the_services_runtime_packages_are_installed_in_the_runtime_stage(render: object) -> None:
    # toplevel-api's pyodbc loads libodbc.so.2: an image without libodbc2 fails at import
    inputs = dataclasses.replace(INPUTS, runtime_packages=("libodbc2",))
    assert callable(render)
    runtime = render(inputs).rsplit("FROM python:3.11-slim\n", 1)[1]
    assert "apt-get install -y --no-install-recommends" in runtime
    assert "libodbc2" in runtime.split("COPY")[0]


def test_the_uvguide_runtime_stage_installs_nothing_when_no_package_is_needed() -> None:
    runtime = uvguide_dockerfile(INPUTS).rsplit("FROM python:3.11-slim\n", 1)[1]
    assert "apt-get" not in runtime
