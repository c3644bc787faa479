"""The hand-made approaches ``bench`` measures wheeldock against, generated for any stack.

* ``seed``: the kiosk team's multi-stage Dockerfile, reproduced faithfully from the seed's text
  (builder: slim + gcc/build-essential, ``pip wheel --no-cache-dir --wheel-dir /tmp/wheels``;
  runtime: slim + ``libffi8``, the wheelhouse copied in and left there, ``pip install --no-index
  --find-links``, code, ``HEALTHCHECK --interval=30s``).
* ``uvguide``: what uv's Docker guide teaches (uv in a builder stage, a BuildKit cache mount for
  uv's cache, the requirements bind-mounted, ``UV_COMPILE_BYTECODE=1``, the venv copied into a
  slim runtime stage, code last).

The only departure from the originals is forced by this environment and applies to both alike:
the package index is reached through a proxy with its own CA, handed in as a BuildKit secret
(never written to a layer); and, as no registry is reachable, uv is installed with pip instead of
``COPY --from=ghcr.io/astral-sh/uv``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from wheeldock.build.runtime import exec_form

#: Where the CA secret is mounted inside a RUN step.
CA_TARGET = "/run/secrets/ca"


@dataclass(frozen=True)
class DockerfileInputs:
    """What both hand-made Dockerfiles need to know about one service.

    Paths are relative to the build context (the project folder).
    """

    source: str  # the service's folder, e.g. "vcc-totem"
    requirements: str  # e.g. "vcc-totem/requirements.txt"
    #: e.g. ("python3", "api_wrapper.py"); one using ``$VAR`` runs through ``sh -c``, as in
    #: wheeldock's own images (:func:`wheeldock.build.runtime.exec_form`)
    command: tuple[str, ...]
    port: int | None
    health_path: str | None  # e.g. "/health"; None: no HTTP health check
    base_image: str = "python:3.11-slim"
    with_ca: bool = True
    no_binary: tuple[str, ...] = ()  # packages forced to build from source
    #: the Debian packages the wheels' native code loads (``runtime_packages`` of
    #: wheeldock.toml, e.g. libodbc2 for pyodbc): a hand-made image without them fails at import
    runtime_packages: tuple[str, ...] = ()


def _health_cmd(inputs: DockerfileInputs) -> str:
    if inputs.port is None or inputs.health_path is None:
        return 'CMD ["python3", "-c", "import os; os.kill(1, 0)"]'
    url = f"http://localhost:{inputs.port}{inputs.health_path}"
    script = f"import urllib.request; urllib.request.urlopen('{url}', timeout=5)"
    return "CMD " + json.dumps(["python3", "-c", script])


def _secret(inputs: DockerfileInputs) -> str:
    return f"--mount=type=secret,id=ca,target={CA_TARGET} " if inputs.with_ca else ""


def _cert_env(inputs: DockerfileInputs) -> str:
    return f"PIP_CERT={CA_TARGET} SSL_CERT_FILE={CA_TARGET} " if inputs.with_ca else ""


def _no_binary_flag(inputs: DockerfileInputs) -> str:
    return f" --no-binary {','.join(inputs.no_binary)}" if inputs.no_binary else ""


def _runtime_apt(inputs: DockerfileInputs, always: tuple[str, ...] = ()) -> str:
    """The runtime stage's ``apt-get install`` of ``always`` and the service's runtime
    packages, as a Dockerfile author writes it; empty when there are none."""
    packages = list(dict.fromkeys((*always, *inputs.runtime_packages)))
    if not packages:
        return ""
    return (
        "RUN apt-get update && apt-get install -y --no-install-recommends "
        f"{' '.join(packages)} \\\n    && rm -rf /var/lib/apt/lists/*\n"
    )


def seed_dockerfile(inputs: DockerfileInputs) -> str:
    """The seed's Dockerfile.<service>, for this service."""
    req = inputs.requirements
    return f"""\
# Reproduction of the seed's hand-made Dockerfile (Option 2: multi-stage, prebuilt wheels).
# ---- Stage 1: builder (gcc + build-essential, compiles every wheel) ----
FROM {inputs.base_image} AS builder
WORKDIR /build
# (python3-dev and libffi-dev: the official slim image ships Python's headers and source builds
# of cffi need ffi.h; Debian's python3 keeps both in -dev packages.)
RUN apt-get update && apt-get install -y --no-install-recommends gcc build-essential python3-dev libffi-dev \\
    && rm -rf /var/lib/apt/lists/*
COPY {req} requirements.txt
RUN {_secret(inputs)}{_cert_env(inputs)}pip wheel --no-cache-dir{_no_binary_flag(inputs)} --wheel-dir /tmp/wheels -r requirements.txt

# ---- Stage 2: runtime (slim, no compiler) ----
FROM {inputs.base_image}
WORKDIR /src
{_runtime_apt(inputs, ("libffi8",))}COPY --from=builder /tmp/wheels /tmp/wheels
COPY {req} requirements.txt
RUN pip install --no-cache-dir --no-index --find-links=/tmp/wheels -r requirements.txt
COPY {inputs.source}/ .
HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 \\
    {_health_cmd(inputs)}
CMD {json.dumps(exec_form(inputs.command))}
"""


def uvguide_dockerfile(inputs: DockerfileInputs) -> str:
    """A Dockerfile written the way uv's Docker guide teaches, for this service."""
    req = inputs.requirements
    no_binary = (
        " " + " ".join(f"--no-binary {shlex.quote(p)}" for p in inputs.no_binary)
        if inputs.no_binary
        else ""
    )
    builder_base = inputs.base_image
    build_tools = (
        "RUN apt-get update && apt-get install -y --no-install-recommends gcc build-essential "
        "python3-dev libffi-dev \\\n    && rm -rf /var/lib/apt/lists/*\n"
        if inputs.no_binary
        else ""
    )
    return f"""\
# A Dockerfile written the way uv's Docker guide teaches (multi-stage, cache mounts).
FROM {builder_base} AS builder
{build_tools}RUN {_secret(inputs)}{_cert_env(inputs)}pip install --no-cache-dir uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=0
WORKDIR /app
RUN uv venv /app/.venv
ENV VIRTUAL_ENV=/app/.venv
RUN --mount=type=cache,target=/root/.cache/uv \\
    --mount=type=bind,source={req},target=requirements.txt \\
    {_secret(inputs)}{_cert_env(inputs)}uv pip install{no_binary} -r requirements.txt

FROM {inputs.base_image}
{_runtime_apt(inputs)}COPY --from=builder /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH"
WORKDIR /app
COPY {inputs.source}/ .
HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 \\
    {_health_cmd(inputs)}
CMD {json.dumps(exec_form(inputs.command))}
"""
