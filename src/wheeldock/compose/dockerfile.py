"""The Docker path's generated files: ``Dockerfile.<service>`` and ``.dockerignore`` (pure).

The Dockerfile has two stages:

* ``builder`` (``wheeldock/python:<py>-builder``, compilers, headers and uv): uv installs the
  requirements into a venv (bytecode compiled) with its cache in a BuildKit cache mount, so a
  bumped requirement downloads or compiles only the wheels that changed (``pip wheel``
  re-fetches every wheel: docs/design/dockerfile.md). Another builder image gets uv from PyPI
  in a step of its own first.
* ``runtime`` (``wheeldock/python:<py>-<base>``): only the Debian runtime packages the wheels
  need, the venv copied from the builder (no index, compiler or wheel file), the code last, run
  as the non-root ``app`` account (which wheeldock's bases have; another image gets a
  ``useradd`` step), a ``HEALTHCHECK`` with a one-second start interval and an exec-form ``CMD``.

The proxy CA reaches pip and uv as a BuildKit secret for the RUN steps that download, and only
when one is handed in; no layer ever contains it.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from packaging.utils import canonicalize_name

from wheeldock.build.context import excluded
from wheeldock.build.runtime import APP_UID, exec_form, health_command
from wheeldock.debian import bases as base
from wheeldock.deps.requirements import project_lock
from wheeldock.edges.ca import SECRET_ID
from wheeldock.project import Service

#: Where a RUN step sees the CA secret.
CA_TARGET = "/run/secrets/wheeldock-ca.pem"
VENV = "/opt/venv"
#: Where the pip step puts uv in a builder image that is not wheeldock's.
PIP_UV = "/opt/uv/bin/uv"


@dataclass(frozen=True)
class DockerfileSpec:
    """Everything a Dockerfile depends on, so the same spec always gives the same bytes."""

    service: Service
    requirement_files: tuple[str, ...]  # every file pip reads (includes too), context-relative
    uv_version: str
    builder_image: str | None = None  # default: wheeldock/python:<python>-builder
    runtime_image: str | None = None  # default: wheeldock/python:<python>-<base>


def builder_image(service: Service) -> str:
    """wheeldock's builder base of the service's Python, or the official ``python:X.Y`` image
    (compilers and headers) when no Debian suite wheeldock builds from carries that Python."""
    if base.suite_for(service.python) is None:
        return f"python:{service.python}"
    return f"wheeldock/python:{service.python}-builder"


def runtime_image(service: Service) -> str:
    """wheeldock's base of the service's Python, or the official ``python:X.Y-slim``."""
    if base.suite_for(service.python) is None and service.base in base.VARIANTS:
        return f"python:{service.python}-slim"
    return f"wheeldock/python:{service.python}-{service.base}"


def _interpreter(spec: DockerfileSpec) -> str:
    """The builder's python3 for the venv, at the path the runtime image has it too (the venv
    links to it): Debian's in wheeldock's bases, the one on PATH in another image (python.org's
    ``/usr/local/bin/python3`` in the official ones)."""
    return "/usr/bin/python3" if _own_builder(spec) else "python3"


def _own_builder(spec: DockerfileSpec) -> bool:
    """Whether the builder stage starts from wheeldock's builder base, which has uv."""
    return (
        spec.builder_image in (None, builder_image(spec.service))
        and base.suite_for(spec.service.python) is not None
    )


def _own_runtime_with_user(spec: DockerfileSpec) -> bool:
    """Whether the runtime stage starts from a wheeldock base that has the ``app`` account."""
    svc = spec.service
    recipe = base.VARIANTS.get(svc.base)
    return (
        spec.runtime_image in (None, runtime_image(svc))
        and recipe is not None
        and base.APP_USER in base.users(recipe)
    )


def _secret_mount() -> str:
    return f"--mount=type=secret,id={SECRET_ID},target={CA_TARGET}"


def _with_ca(command: str) -> str:
    """Prefix a shell command so pip and uv trust the CA secret when one was handed in."""
    return (
        f"if [ -f {CA_TARGET} ]; then export SSL_CERT_FILE={CA_TARGET} PIP_CERT={CA_TARGET}; fi \\\n"
        f"    && {command}"
    )


def _bind_mounts(files: Iterable[str]) -> list[str]:
    return [f"--mount=type=bind,source={f},target=/build/{f}" for f in files]


def _run(mounts: Sequence[str], command: str) -> str:
    lines = ["RUN " + (mounts[0] if mounts else command)]
    lines += [f"    {m}" for m in mounts[1:]]
    if mounts:
        lines.append(f"    {command}")
    return " \\\n".join(lines)


@dataclass(frozen=True)
class WheelStage:
    """The stage that installs a service's requirements into a venv (:data:`VENV`): what it
    starts from, and what it installs. Paths are relative to the build context."""

    name: str
    image: str
    own_builder: bool  # ``image`` is wheeldock's builder base, which has uv
    uv_version: str
    requirements: tuple[str, ...]  # ``-r`` files (or a project's lock, or a pyproject.toml)
    bind_files: tuple[str, ...]  # every file the install reads (includes too)
    constraints: tuple[str, ...] = ()
    no_binary: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # a Poetry or PDM lock's groups (empty: its default)
    package: str | None = None  # the uv workspace member whose dependencies are installed
    packages: tuple[str, ...] = ()  # requirements named on the command line
    index: tuple[str, ...] = ()  # uv's options for where the packages come from
    python: str = "/usr/bin/python3"  # the interpreter the venv is made for
    prelude: tuple[str, ...] = ()  # instructions after FROM (the user's build dependencies)


def wheel_stage(stage: WheelStage) -> list[str]:
    """The lines of ``stage``: only the requirement files are bound in, so a code change never
    reaches it, and uv's cache (a BuildKit cache mount) keeps every wheel downloaded or built,
    so a bumped requirement fetches or compiles just the wheels that changed."""
    req_args = _index_args(stage) + _requirement_args(stage)
    build_pkgs = _build_packages(stage.no_binary, own_builder=stage.own_builder)
    uv = base.UV_PATH if stage.own_builder else PIP_UV
    out = [f"FROM {stage.image} AS {stage.name}", *stage.prelude]
    if stage.own_builder:
        out.append("ENV UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never")
    else:
        out += [
            "ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \\",
            "    UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never",
        ]
    if build_pkgs:
        out += [
            "# Headers for the distributions built from source (no_binary).",
            "RUN apt-get update \\",
            f"    && apt-get install -y --no-install-recommends {' '.join(build_pkgs)} \\",
            "    && rm -rf /var/lib/apt/lists/*",
        ]
    if not stage.own_builder:
        out += [
            "# uv, from PyPI, in a layer of its own: it changes only with wheeldock's pin.",
            _run(
                ["--mount=type=cache,target=/root/.cache/pip", _secret_mount()],
                _with_ca(f"python3 -m pip install --target /opt/uv uv=={stage.uv_version}"),
            ),
        ]
    install = f"{uv} venv --python {stage.python} {VENV} \\\n    && " + _install_step(
        stage, uv, _uv_no_binary(stage.no_binary), req_args
    )
    if stage.own_builder:
        # A builder base made by an older wheeldock has no uv: say so instead of "not found".
        install = (
            f"{{ [ -x {uv} ] || {{ echo 'no uv in {stage.image}: rebuild it with "
            "wheeldock base build builder' >&2; exit 1; }; } \\\n"
            f"    && {install}"
        )
    mounts = ["--mount=type=cache,target=/root/.cache/uv", *_bind_mounts(stage.bind_files)]
    out += [
        "# Only the requirement files are bound in, so a code change never reaches this stage.",
        "# uv's cache (a BuildKit cache mount) keeps every downloaded and locally built wheel:",
        "# a bumped requirement fetches or compiles just the wheels that changed.",
        _run([*mounts, _secret_mount()], _with_ca(install)),
    ]
    return out


def _requirement_args(stage: WheelStage) -> str:
    """``uv pip install``'s arguments for the stage's requirement files, constraints and the
    packages named inline (``""`` when there are none), spaced as earlier versions wrote them."""
    args = " ".join(f"-r /build/{r}" for r in stage.requirements)
    args += "".join(f" -c /build/{c}" for c in stage.constraints)
    return args + "".join(f" {shlex.quote(p)}" for p in stage.packages)


def _index_args(stage: WheelStage) -> str:
    """Where the packages come from, as uv's options, each followed by a space."""
    return "".join(f"{o} " for o in stage.index)


def render(spec: DockerfileSpec) -> str:
    """The ``Dockerfile.<service>`` text for ``spec`` (deterministic)."""
    svc = spec.service
    runtime = spec.runtime_image or runtime_image(svc)
    target = svc.source_target or svc.workdir
    source = svc.source.rstrip("/") or "."
    health = health_command(svc)
    stage = WheelStage(
        name="builder",
        image=spec.builder_image or builder_image(svc),
        own_builder=_own_builder(spec),
        uv_version=spec.uv_version,
        requirements=svc.requirements,
        bind_files=spec.requirement_files,
        constraints=svc.constraints,
        no_binary=svc.no_binary,
        groups=svc.groups,
        package=svc.package,
        python=_interpreter(spec),
    )
    out: list[str] = [
        f"# Generated by `wheeldock init` for the service {svc.name}. Edit freely: `init` then",
        "# keeps your version, and `init --revert` refuses to delete it unless --force.",
        "",
        "# ---- builder: requirements -> venv of prebuilt wheels (compilers only here)",
        *wheel_stage(stage),
        "",
        "# ---- runtime: slim base, runtime libraries, the venv, code last",
        f"FROM {runtime}",
        f"ENV VIRTUAL_ENV={VENV} PATH={VENV}/bin:$PATH PYTHONUNBUFFERED=1",
    ]
    if svc.runtime_packages:
        out += [
            f"# Runtime libraries the wheels link ({svc.runtime_packages_source}).",
            "RUN apt-get update \\",
            f"    && apt-get install -y --no-install-recommends {' '.join(svc.runtime_packages)} \\",
            "    && rm -rf /var/lib/apt/lists/*",
        ]
    if not _own_runtime_with_user(spec):
        user = base.APP_USER
        out.append(
            f"RUN groupadd --system --gid {user.gid} {user.name} \\\n"
            f"    && useradd --system --no-log-init --uid {user.uid} --gid {user.name} "
            f"--no-create-home --home-dir {user.home} --shell {user.shell} {user.name}"
        )
    out += [
        "# Installed and bytecode-compiled in the builder; no index, compiler or wheel file here.",
        f"COPY --from=builder {VENV} {VENV}",
        *_code_steps(svc, source, target.rstrip("/") or "/"),
        f"USER {APP_UID}:{APP_UID}",
    ]
    if svc.port is not None:
        out.append(f"EXPOSE {svc.port}")
    out += [
        "HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --start-interval=1s --retries=3 \\",
        f"    CMD {json.dumps(health)}",
        f"CMD {json.dumps(exec_form(svc.command))}",
        "",
    ]
    return "\n".join(out)


def _code_steps(svc: Service, source: str, target: str) -> list[str]:
    """WORKDIR and the code's COPY. Code the service writes into (``writable_code``) is
    copied first, owned by the image's user: COPY makes the missing folders with the owner
    it is given, where WORKDIR would make them root's."""
    if not svc.writable_code:
        return [f"WORKDIR {svc.workdir}", f"COPY {source}/ {target}/"]
    return [
        "# The service writes into its code folder (see writable_code in wheeldock.toml).",
        f"COPY --chown={APP_UID}:{APP_UID} {source}/ {target}/",
        f"WORKDIR {svc.workdir}",
    ]


def _uv_no_binary(no_binary: Sequence[str]) -> str:
    if ":all:" in no_binary:
        return " --no-binary :all:"
    return "".join(f" --no-binary {name}" for name in no_binary)


def _install_step(stage: WheelStage, uv: str, no_binary: str, req_args: str) -> str:
    """The builder's step that installs the service's requirements into the venv."""
    pip = f"{uv} pip install --python {VENV}/bin/python{no_binary}"
    found = next(((r, k) for r in stage.requirements if (k := project_lock(r)) is not None), None)
    if found is None:
        return f"{pip} {req_args}"
    # a project's lock: what its tool installs, without the development packages (the project
    # itself runs from its source); read by the tool itself
    locked, kind = found
    folder = str(PurePosixPath("/build", locked).parent)
    # what the stage installs besides the lock (`RUN pip install timm` after `poetry install`)
    others = _requirement_args(
        replace(stage, requirements=tuple(r for r in stage.requirements if r != locked))
    ).strip()
    exported = f"{pip} {_index_args(stage)}-r /tmp/requirements.txt" + (
        f" {others}" if others else ""
    )
    if kind.tool == "uv":
        synced = (
            f"UV_PROJECT_ENVIRONMENT={VENV} {uv} sync --frozen --no-dev {_uv_member(stage.package)}"
            f"{_sync_no_binary(stage.no_binary)} --project {folder}"
        )
        return synced + (f" \\\n    && {pip} {_index_args(stage)}{others}" if others else "")
    if kind.tool == "poetry":
        return (
            f"cd {folder} && {uv} tool run --from poetry --with poetry-plugin-export poetry "
            f"export --only {','.join(stage.groups or ('main',))} --without-hashes --format requirements.txt "
            f"--output /tmp/requirements.txt \\\n    && {exported}"
        )
    if kind.tool == "pdm":
        return (
            f"cd {folder} && PDM_USE_VENV=false PDM_CHECK_UPDATE=false {uv} tool run pdm "
            f"export {_pdm_selection(stage.groups)} "
            f"--no-hashes --output /tmp/requirements.txt \\\n    && {exported}"
        )
    return (
        f"cd {folder} && PIPENV_VERBOSITY=-1 {uv} tool run --from pipenv pipenv "
        f"requirements > /tmp/requirements.txt \\\n    && {exported}"
    )


def _uv_member(package: str | None) -> str:
    """``uv sync``'s options for the project (or the workspace member) whose dependencies the
    venv gets, the project's own code left out (it runs from its source)."""
    if package is None:
        return "--no-install-project"
    return f"--package {shlex.quote(package)} --no-install-workspace"


def _pdm_selection(groups: Sequence[str]) -> str:
    """``pdm export``'s options for the lock's ``groups`` (empty: the default group alone)."""
    if not groups or list(groups) == ["default"]:
        return "--prod"
    named = " ".join(f"-G {shlex.quote(g)}" for g in groups if g != "default")
    return named if "default" in groups else f"--no-default {named}"


def _sync_no_binary(no_binary: Sequence[str]) -> str:
    if ":all:" in no_binary:
        return " --no-binary"
    return "".join(f" --no-binary-package {name}" for name in no_binary)


def _build_packages(no_binary: Iterable[str], *, own_builder: bool) -> tuple[str, ...]:
    """Headers to add to the builder for ``no_binary``, less what wheeldock's builder base has
    (all of :data:`~wheeldock.debian.bases.BUILD_PACKAGES`) when it is the builder image."""
    names: set[str] = {canonicalize_name(n) for n in no_binary}
    if ":all:" in no_binary:
        names = set(base.BUILD_PACKAGES)
    have = set(base.recipe("builder").packages) if own_builder else set()
    packages: list[str] = []
    for name in sorted(names):
        packages += [
            p for p in base.BUILD_PACKAGES.get(name, ()) if p not in packages and p not in have
        ]
    return tuple(packages)


# --- .dockerignore ------------------------------------------------------------------------------

#: What a Python service's build context never needs.
IGNORE_DEFAULTS = (
    "**/.git",
    "**/__pycache__",
    "**/*.pyc",
    "**/*.pyo",
    "**/.env*",
    "**/logs",
    "**/tests",
    "**/.venv",
    "**/venv",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "**/.ruff_cache",
    "**/node_modules",
    ".wheeldock",
)
IGNORE_MARKER = "# added by wheeldock init (the image needs only the code and requirement files)"


def dockerignore(existing: str | None, needed: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """``existing`` (or nothing) with the missing default patterns appended, and the warnings.

    A default pattern that would exclude a ``needed`` file (requirements, code) is left out; an
    existing user pattern that does is kept (it is the user's) but reported.
    """
    text = existing or ""
    have = [line.strip() for line in text.splitlines()]
    added = [
        p for p in IGNORE_DEFAULTS if p not in have and not any(excluded(n, [p]) for n in needed)
    ]
    warnings = tuple(
        f".dockerignore excludes {n}, which the image needs" for n in needed if excluded(n, have)
    )
    if not added:
        return text, warnings
    if text and not text.endswith("\n"):
        text += "\n"
    if text:
        text += "\n"
    text += IGNORE_MARKER + "\n" + "".join(p + "\n" for p in added)
    return text, warnings
