"""``wheeldock init``: plan, apply and revert the move to prebuilt-wheel images.

:func:`plan` reads the project (compose files, ``wheeldock.toml``, an earlier init's backup) and
computes every file's desired bytes without writing anything. :func:`apply` writes them: the
originals first into ``.wheeldock/backup/`` with a manifest holding the sha256 of every file it
wrote, then each file atomically, restoring the ones already written if a later one fails.
A file that is a symbolic link (a compose file kept elsewhere) is written through: the link
stays, and the manifest records where it pointed. :func:`revert` puts the originals back byte
for byte (a link as the link it was) and deletes what init created, refusing where a file was
edited since init wrote it (unless forced).

Planning always starts from the *original* compose files (the backup once there is one), so
running ``init`` again computes the same bytes and changes nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

from wheeldock import project
from wheeldock.build import runtime
from wheeldock.compose import builds, converted, dockerfile, native, override
from wheeldock.compose import config as compose_config
from wheeldock.compose import files as compose
from wheeldock.compose import survey as discover
from wheeldock.deps.requirements import build_backend_needed, project_lock, requirement_lines
from wheeldock.edges import ca as ca_mod
from wheeldock.edges.fsutil import atomic_write_bytes, atomic_write_text, decode
from wheeldock.errors import (
    DownloadFailed,
    InvalidConfig,
    NotFound,
    NotWritable,
    SdistNotBuildable,
    UsageError,
    WheeldockError,
)
from wheeldock.project import Project, Service

log = logging.getLogger(__name__)

STATE_DIR = ".wheeldock"
BACKUP_DIR = f"{STATE_DIR}/backup"
MANIFEST = f"{BACKUP_DIR}/manifest.json"
DOCKERIGNORE = ".dockerignore"

#: Computes (runtime Debian packages, where they came from) for a service; see
#: :func:`runtime_packages`. Tests and callers may pass their own.
#: Its last argument holds requirement files init has planned but not written yet (path → text).
RuntimeScanner = Callable[
    [Path, Service, tuple[str, ...], Mapping[str, str]], tuple[tuple[str, ...], str]
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FileChange:
    """One file init manages: its bytes now and the bytes it should have (``None``: absent)."""

    path: str  # relative to the project folder
    kind: str  # "compose" | "dockerfile" | "dockerignore" | "config" | "requirements"
    current: bytes | None
    desired: bytes | None
    note: str = ""
    #: the user's own file (init did not write it), which init replaces only when forced
    user_file: bool = False

    @property
    def changed(self) -> bool:
        return self.current != self.desired

    @property
    def action(self) -> str:
        if not self.changed:
            return "unchanged"
        if self.current is None:
            return "create"
        return "delete" if self.desired is None else "update"


@dataclass(frozen=True)
class Manifest:
    """What ``.wheeldock/backup/manifest.json`` records for each file init manages."""

    originals: Mapping[str, str | None]  # path -> sha256 of the original (None: did not exist)
    written: Mapping[str, str]  # path -> sha256 of the bytes init wrote
    #: path -> where it pointed, for originals that were symbolic links (init writes through them)
    links: Mapping[str, str] = field(default_factory=dict)

    def dumps(self) -> str:
        files: dict[str, dict[str, str | None]] = {
            path: {
                "original_sha256": self.originals.get(path),
                "written_sha256": self.written[path],
            }
            for path in sorted(self.written)
        }
        for path, link in self.links.items():
            files[path]["original_symlink"] = link
        return json.dumps({"version": 1, "files": files}, indent=2) + "\n"

    @classmethod
    def read(cls, root: Path) -> Manifest | None:
        path = root / MANIFEST
        if not path.is_file():
            return None
        try:
            files = json.loads(path.read_text())["files"]
            return cls(
                originals={p: f["original_sha256"] for p, f in files.items()},
                written={p: f["written_sha256"] for p, f in files.items()},
                links={
                    p: f["original_symlink"] for p, f in files.items() if "original_symlink" in f
                },
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidConfig(
                f"the backup manifest is damaged ({exc})",
                path=path,
                fix=f"restore the compose file from version control and delete {BACKUP_DIR}",
            ) from exc


def _backup_path(root: Path, rel: str) -> Path:
    return root / BACKUP_DIR / "files" / rel


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _original(root: Path, rel: str, manifest: Manifest | None) -> bytes | None:
    """A file's bytes before init first touched it (from the backup), else as they are now."""
    if manifest is not None and rel in manifest.originals:
        if manifest.originals[rel] is None:
            return None
        data = _read(_backup_path(root, rel))
        if data is None:
            raise NotFound(
                f"the backup of {rel} is missing",
                path=_backup_path(root, rel),
                fix=f"restore {rel} from version control and delete {BACKUP_DIR}",
            )
        return data
    return _read(root / rel)


@dataclass(frozen=True)
class InitPlan:
    root: Path
    findings: tuple[discover.Finding, ...]
    project: Project
    changes: tuple[FileChange, ...]
    originals: Mapping[str, bytes | None]  # what the backup must hold for each managed file
    ca: Path | None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: the services built from their own Dockerfile that init converts
    built: tuple[builds.Built, ...] = ()

    @property
    def nothing_to_do(self) -> bool:
        return not any(c.changed for c in self.changes)

    def diff(self) -> str:
        """A unified diff of every change, as ``git diff`` would show it."""
        out: list[str] = []
        for change in self.changes:
            if not change.changed:
                continue
            before = (change.current or b"").decode(errors="replace").splitlines(keepends=True)
            after = (change.desired or b"").decode(errors="replace").splitlines(keepends=True)
            out += difflib.unified_diff(
                before,
                after,
                fromfile="/dev/null" if change.current is None else f"a/{change.path}",
                tofile="/dev/null" if change.desired is None else f"b/{change.path}",
            )
        return "".join(line if line.endswith("\n") else line + "\n" for line in out)

    def summary(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "services": [
                {**f.service.to_toml(), "name": f.service.name, "notes": list(f.notes)}
                for f in self.findings
            ],
            "files": [
                {"path": c.path, "kind": c.kind, "action": c.action, "note": c.note}
                for c in self.changes
            ],
            "built": [_built_summary(b, self.project.docker_only) for b in self.built],
            "ca": str(self.ca) if self.ca else None,
            "nothing_to_do": self.nothing_to_do,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


def _built_summary(built: builds.Built, docker_only: Mapping[str, str]) -> dict[str, Any]:
    reading = built.reading
    why = docker_only.get(built.name)
    return {
        "name": built.name,
        "shape": built.shape,
        "command": list(reading.command),
        "shared_with": list(built.shared_with),
        "dockerfile": str(reading.source.dockerfile),
        "context": str(reading.source.context),
        "stage": reading.stage.name or reading.stage.index,
        "installs": [reading.where(i.instruction) for i in reading.installs],
        "requirements": list(built.requirement_files),
        "dockerfile_generated": f"Dockerfile.{built.name}",
        "native": why is None,
        "not_native_because": why,
        "notes": list(reading.notes),
    }


# --- runtime packages --------------------------------------------------------------------------


def _uv_version() -> str:
    try:
        return dist_version("uv")
    except PackageNotFoundError:
        return "0.5.31"


def runtime_packages(
    root: Path,
    service: Service,
    requirement_files: tuple[str, ...],
    planned: Mapping[str, str] | None = None,
) -> tuple[tuple[str, ...], str]:
    """The Debian packages the service's wheels need at run time, and where that came from.

    With ``wheeldock.libs`` present: the ELF files of a wheelhouse built on this host for the
    service (:func:`host_wheelhouse`) are scanned (``"elf-scan"``). Without it, or when that
    fails, :data:`discover.RUNTIME_TABLE` answers (``"table"``). ``planned`` holds the
    requirement files init will write (path → text).
    """
    _, reqs = discover.requirement_closure(root, requirement_files, overlay=planned)
    table = discover.table_runtime_packages(reqs, service.no_binary)
    try:
        libs: Any = importlib.import_module("wheeldock.debian.libs")
    except ImportError:
        return table, "table"
    if not hasattr(libs, "runtime_packages"):
        return table, "table"
    try:
        wheelhouse = host_wheelhouse(root, service, planned)
        packages = tuple(str(p) for p in libs.runtime_packages(wheelhouse, base=service.base))
    except WheeldockError as exc:
        log.warning(
            "ELF scan of %s's wheels failed, using the table instead: %s", service.name, exc.what
        )
        return table, "table"
    return packages, "elf-scan"


#: The target platform's wheel tag (the base images are Debian bookworm, glibc 2.36, amd64).
TARGET_PLATFORM = "manylinux_2_36_x86_64"
#: Every tag a bookworm-or-newer x86_64 image runs: pip does not widen ``--platform`` to the
#: older manylinux levels, so a wheel tagged ``manylinux_2_17`` only would not be found.
TARGET_PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)


def host_wheelhouse(root: Path, service: Service, planned: Mapping[str, str] | None = None) -> Path:
    """A folder of the wheels the service's image will hold, built or fetched on this host.

    Without ``no_binary``: ``pip download`` of binary wheels for the target platform and Python.
    With it (or when a distribution has no wheel): ``pip wheel`` on this host, which builds from
    source like the builder stage does; that needs this host's Python to be the service's.
    Cached under ``cache_dir("init-wheelhouse")``, keyed by the requirement files' bytes,
    ``no_binary`` and the Python version. ``planned`` holds requirement files not written yet
    (path → text); a ``pyproject.toml`` gives pip its ``[project].dependencies``.
    """
    import platform
    import sys

    from wheeldock.edges import process
    from wheeldock.edges.paths import cache_dir

    pending = dict(planned or {})
    files, _ = discover.requirement_closure(
        root, (*service.requirements, *service.constraints), parse=False, overlay=pending
    )

    def data(rel: str) -> bytes:
        return pending[rel].encode() if rel in pending else (root / rel).read_bytes()

    key = hashlib.sha256()
    for rel in files:
        key.update(rel.encode() + b"\0" + data(rel) + b"\0")
    key.update(repr((service.no_binary, service.python, TARGET_PLATFORM)).encode())
    target = cache_dir("init-wheelhouse") / key.hexdigest()[:32]
    if (target / ".complete").is_file():
        return target
    built = build_backend_needed(root, (f for f in files if f not in pending), static=False)
    if built is not None:
        raise SdistNotBuildable(f"pip would build a project on this host to scan it ({built})")
    reqs: list[str] = []
    for req in service.requirements:
        # pip reads no pyproject.toml or lock file with -r, and a planned file is not written
        # yet (it holds requirement lines only, no includes)
        if req.endswith(".toml") or project_lock(req) or req in pending:
            reqs += requirement_lines(root, req, pending.get(req))
        else:
            reqs += ["-r", str(root / req)]
    for con in service.constraints:
        reqs += ["-c", str(root / con)]
    # pip's own cache (~/.cache/pip) is not written: the wheelhouse is wheeldock's cache
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-cache-dir"]
    host_matches = (
        f"{sys.version_info.major}.{sys.version_info.minor}" == service.python
        and sys.platform == "linux"
        and platform.machine() == "x86_64"
    )
    download = [
        *pip,
        "download",
        "--quiet",
        "--only-binary=:all:",
        *(f"--platform={tag}" for tag in TARGET_PLATFORMS),
        "--implementation",
        "cp",
        "--python-version",
        service.python,
        "--dest",
        str(target),
        *reqs,
    ]
    build = [*pip, "wheel", "--quiet", "--wheel-dir", str(target), *reqs]
    if service.no_binary:
        build += ["--no-binary", ",".join(service.no_binary)]
    if service.no_binary and not host_matches:
        raise SdistNotBuildable(
            f"cannot build {', '.join(service.no_binary)} from source for Python {service.python} "
            "on this host",
        )
    if service.no_binary:
        process.run(build, timeout=1800, fix="check the requirement files and the network")
    else:
        result = process.run(download, timeout=1800, check=False)
        if result.returncode != 0:
            if not host_matches:
                raise DownloadFailed(f"pip download failed: {result.stderr.strip()[-300:]}")
            process.run(build, timeout=1800, fix="check the requirement files and the network")
    (target / ".complete").write_text("")
    return target


# --- planning ----------------------------------------------------------------------------------


def _image_name(project_name: str, service: str) -> str:
    name = re.sub(r"[^a-z0-9_.-]+", "-", project_name.lower()).strip("-.") or "app"
    return f"{name}-{service}:wheeldock"


def compose_project_name(
    root: Path, files: Sequence[compose.ComposeFile], environ: Mapping[str, str]
) -> str:
    """The compose project name: ``COMPOSE_PROJECT_NAME``, the top-level ``name:``, else the
    name of the folder of the first compose file (compose's project directory)."""
    explicit = environ.get("COMPOSE_PROJECT_NAME")
    if explicit:
        return explicit
    for f in files:
        name = f.data.get("name")
        if isinstance(name, str) and name:
            return name
    return files[0].path.parent.name if files else root.name


def plan(
    root: Path,
    *,
    ca_cert: Path | None = None,
    environ: Mapping[str, str] | None = None,
    no_binary: Sequence[str] = (),
    scanner: RuntimeScanner | None = None,
    selection: compose.Selection | None = None,
    python: str | None = None,
    convert: Sequence[str] = (),
) -> InitPlan:
    """Everything init would write in ``root``, computed without writing.

    ``convert`` names services built from their own Dockerfile to convert even where that
    Dockerfile already builds its dependencies apart from its code (else left alone);
    :class:`UsageError` for a name that is no such service.

    ``python`` (``X.Y``) moves every newly found service to that Python; by default each keeps
    the one its image names.

    ``selection``: the compose files (``-f``, else ``COMPOSE_FILE``, else compose's defaults)
    and project name (``-p``, else ``COMPOSE_PROJECT_NAME``, ``name:``, the folder) to use;
    named files are recorded in wheeldock.toml, so ``up`` and the others use them unasked.

    ``no_binary`` adds distributions to build from source for every newly found service (user
    edits in ``wheeldock.toml`` still win). ``scanner`` overrides :func:`runtime_packages`.
    """
    root = root.resolve()
    env = dict(os.environ if environ is None else environ)
    manifest = Manifest.read(root)
    selection = selection or compose.Selection()
    compose_paths = tuple(  # absolute, a symlinked file kept as the link (not resolved)
        Path(os.path.abspath(p)) for p in compose.find_files(root, selection.files, env)
    )
    originals, files = _read_compose_files(root, compose_paths, manifest)
    rels = [p.relative_to(root).as_posix() for p in compose_paths]
    interpolation = compose.interpolation_env(compose_paths[0].parent, env)
    resolved = compose_config.resolved_services(
        compose_paths, env, [originals[rel] or b"" for rel in rels]
    )
    found = discover.survey(root, files, interpolation, resolved)
    project_dir = compose_paths[0].parent
    unknown = sorted(set(convert) - set(found.built))
    if unknown:
        raise UsageError(
            f"--convert {','.join(unknown)}: not a service built from its own Dockerfile "
            f"(those are: {', '.join(found.built) or 'none'})",
            fix="name services with a build: section in the compose file",
        )
    dockerfiles = builds.survey_builds(
        resolved if resolved is not None else compose.merged_services(files),
        found.built,
        project_dir,
        interpolation,
        convert,
    )
    all_services = resolved if resolved is not None else compose.merged_services(files)
    riders = _image_riders(all_services, dockerfiles)
    unconverted = _riders_of_unconverted(all_services, found.built, dockerfiles)
    found = replace(
        found,
        passed_over=(
            *(
                unconverted.get(p.partition(" (")[0], p)
                for p in found.passed_over
                if p.partition(" (")[0] not in riders
            ),
            *dockerfiles.passed_over,
            *dockerfiles.left_alone,
        ),
    )
    findings = (
        found.findings
        if dockerfiles.built
        else discover.require_findings(
            found,
            files,
            root,
            dockerfiles.prebuilt,
            dockerfiles.convertible,
            dockerfiles.own_reasons,
            dockerfiles.convert_anyway,
        )
    )
    ca = ca_mod.find(ca_cert, env)

    existing = _existing_config(root)
    settled = _Settled(notes=list(riders.values()))
    for finding in findings:
        _settle(settled, root, finding, existing, no_binary, scanner or runtime_packages, python)
    docker_only = _settle_built(settled, root, dockerfiles, existing, scanner or runtime_packages)
    services = list(settled.services)
    if existing is not None:  # services the user added by hand stay
        known = {s.name for s in services} | set(docker_only)
        services += [s for s in existing.services if s.name not in known]

    named = bool(compose.named_files(selection.files, env))
    proj = Project(
        root,
        rels[0],
        tuple(services),
        tuple(rels[1:]) if named else (),
        docker_only=docker_only,
    )
    name = selection.project_name or compose_project_name(root, files, env)

    desired: dict[str, tuple[str, bytes]] = {}
    uv = _uv_version()
    needed: list[str] = []
    for finding in settled.findings:
        svc = finding.service
        spec = dockerfile.DockerfileSpec(svc, finding.requirement_files, uv)
        desired[f"Dockerfile.{svc.name}"] = ("dockerfile", dockerfile.render(spec).encode())
        needed += [*finding.requirement_files, svc.source]

    for built in dockerfiles.built:
        text = converted.render(built.name, built.reading, built.requirement_files, uv)
        desired[f"Dockerfile.{built.name}"] = ("dockerfile", text.encode())

    warnings: list[str] = [f"passed over: {why}" for why in found.passed_over]
    for rel, text in settled.generated.items():
        _check_generated(root, rel, text, manifest)
        desired[rel] = ("requirements", text.encode())
    if settled.findings:
        ignore_original = _original(root, DOCKERIGNORE, manifest)
        ignore_text, ignore_warnings = dockerfile.dockerignore(
            decode(ignore_original, root / ".dockerignore")
            if ignore_original is not None
            else None,
            needed,
        )
        warnings += ignore_warnings
        desired[DOCKERIGNORE] = ("dockerignore", ignore_text.encode())
        if ignore_original is not None:
            originals[DOCKERIGNORE] = ignore_original
        for built in dockerfiles.built:
            if built.reading.source.context == root:
                rel = f"Dockerfile.{built.name}.dockerignore"
                desired[rel] = ("dockerignore", _own_ignore(ignore_original))

    context = os.path.relpath(root, project_dir)  # `build:` is read against the project dir
    change = _compose_patch(settled.findings, name, context)
    change = replace(change, services=(*change.services, *_built_patches(root, files, dockerfiles)))
    notes: dict[str, str] = {}
    for i, f in enumerate(files):
        rel = rels[i]
        text = compose.patch(f, change, primary=i == 0, project_dir=project_dir)
        desired[rel] = ("compose", text.encode())
        replaced = _replaced_builds(f, text)
        if replaced:
            notes[rel] = (
                f"the build: section of {', '.join(replaced)} is replaced; the original is kept "
                f"in {BACKUP_DIR}/files/{rel}"
            )

    desired[project.CONFIG_NAME] = ("config", _config_bytes(root, proj, existing))

    for rel in desired:
        if rel not in originals:
            originals[rel] = _original(root, rel, manifest)
    changes = [
        _file_change(root, rel, kind, data, manifest, warnings)
        for rel, (kind, data) in desired.items()
    ]
    changes = [
        replace(c, note="; ".join(filter(None, (c.note, notes[c.path]))))
        if c.changed and c.path in notes
        else c
        for c in changes
    ]
    return InitPlan(
        root=root,
        findings=tuple(settled.findings),
        project=proj,
        changes=tuple(changes),
        originals=originals,
        ca=ca,
        notes=tuple(settled.notes),
        warnings=tuple(warnings),
        built=dockerfiles.built,
    )


def _image_riders(
    services: Mapping[str, Mapping[str, Any]], dockerfiles: builds.BuildSurvey
) -> dict[str, str]:
    """The services that run the image a converted service builds (Celery or rq workers
    reusing the web's ``image:``), each with a note: they get the prebuilt dependencies with
    that image, and nothing of theirs changes."""
    images = {
        str(services[name]["image"]): built.name
        for built in dockerfiles.built
        for name in (built.name, *built.shared_with)
        if services.get(name, {}).get("image")
    }
    return {
        name: f"{name}: runs the image {svc['image']} that {images[str(svc['image'])]} builds "
        "(its dependencies prebuilt with it); nothing of its own changes"
        for name, svc in services.items()
        if "build" not in svc and str(svc.get("image")) in images
    }


def _riders_of_unconverted(
    services: Mapping[str, Mapping[str, Any]],
    built_services: Sequence[str],
    dockerfiles: builds.BuildSurvey,
) -> dict[str, str]:
    """Why each service that runs the image of a build init does not convert is passed over
    (Celery workers on the image the web builds, which is left alone): that build's reason
    is theirs, not that the image is not python:*."""
    converted = {n for b in dockerfiles.built for n in (b.name, *b.shared_with)}
    images = {
        str(services[name]["image"]): name
        for name in built_services
        if name not in converted and services.get(name, {}).get("image")
    }
    return {
        name: f"{name} (runs the image {svc['image']} that {images[str(svc['image'])]} builds: "
        f"see {images[str(svc['image'])]})"
        for name, svc in services.items()
        if "build" not in svc and str(svc.get("image")) in images
    }


def _own_ignore(original: bytes | None) -> bytes:
    """The ``.dockerignore`` BuildKit reads for a converted Dockerfile next to it (it wins over
    the context's): the context's own as it was, which init extends for the other services."""
    header = (
        b"# Written by `wheeldock init`: the build context's .dockerignore as it was, for the\n"
        b"# Dockerfile beside this file (init adds to the context's own for its other services).\n"
    )
    return header + (original or b"")


def _built_patches(
    root: Path, files: Sequence[compose.ComposeFile], dockerfiles: builds.BuildSurvey
) -> list[compose.ServicePatch]:
    """Each converted service's ``build:`` as the user wrote it, its ``dockerfile`` pointing
    at ``Dockerfile.<service>`` (relative to the context, as compose reads it)."""
    patches: list[compose.ServicePatch] = []
    for built in dockerfiles.built:
        generated = os.path.relpath(root / f"Dockerfile.{built.name}", built.reading.source.context)
        for name in (built.name, *built.shared_with):
            written = next(
                (
                    f.services[name]["build"]
                    for f in reversed(files)
                    if isinstance(f.services.get(name), dict) and "build" in f.services[name]
                ),
                None,
            )
            build = dict(written) if isinstance(written, dict) else {"context": written or "."}
            build["dockerfile"] = generated
            # its command's installs are done in the image, which runs the rest as its CMD
            drop = built.reading.start_keys if built.reading.command else ()
            patches.append(compose.ServicePatch(name=name, build=build, image=None, drop_keys=drop))
    return patches


def _read_compose_files(
    root: Path, paths: Sequence[Path], manifest: Manifest | None
) -> tuple[dict[str, bytes | None], list[compose.ComposeFile]]:
    """The compose files as they were before init (project-relative path -> bytes) and parsed;
    :class:`NotFound` when one is gone meanwhile."""
    originals: dict[str, bytes | None] = {}
    files: list[compose.ComposeFile] = []
    for path in paths:
        if not path.is_relative_to(root):
            raise InvalidConfig(
                "the compose file is outside the project folder",
                path=path,
                fix=f"run wheeldock with -C pointing at a folder that holds it and the code "
                f"(now {root})",
            )
        rel = path.relative_to(root).as_posix()
        data = _original(root, rel, manifest)
        if data is None:
            raise NotFound(f"{rel} disappeared while reading it", path=path)
        originals[rel] = data
        files.append(compose.parse(decode(data, path), path))
    return originals, files


@dataclass
class _Settled:
    """The services found, settled one after another: their final settings and findings."""

    services: list[Service] = field(default_factory=list)
    findings: list[discover.Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    generated: dict[str, str] = field(
        default_factory=dict
    )  # requirement files from inline packages


def _settle(
    settled: _Settled,
    root: Path,
    finding: discover.Finding,
    existing: Project | None,
    no_binary: Sequence[str],
    scan: RuntimeScanner,
    python: str | None = None,
) -> None:
    """A found service's final settings: the user's from ``wheeldock.toml`` when it has some,
    else the finding's, on its image's Python (or ``python``, when asked), with its runtime
    packages scanned."""
    svc = finding.service
    # a generated file already there (init wrote it; perhaps edited since) is read as it is
    planned = {rel: text for rel, text in finding.generated if not (root / rel).is_file()}
    if existing is not None and svc.name in {s.name for s in existing.services}:
        svc = existing.service(svc.name)
        settled.notes.append(f"{svc.name}: settings from {project.CONFIG_NAME} (your edits win)")
    else:
        if no_binary:
            svc = replace(svc, no_binary=tuple(dict.fromkeys((*svc.no_binary, *no_binary))))
        svc, note = _python_of(svc, python)
        settled.notes += [note] if note else []
        packages, source = scan(root, svc, finding.requirement_files, planned)
        packages = tuple(dict.fromkeys((*packages, *finding.system_packages)))
        svc = replace(svc, runtime_packages=packages, runtime_packages_source=source)
    settled.generated.update(
        (rel, text) for rel, text in finding.generated if rel in svc.requirements
    )
    planned = {rel: text for rel, text in planned.items() if rel in svc.requirements}
    closure, _ = discover.requirement_closure(
        root,
        (*svc.requirements, *svc.constraints),
        overlay=planned,
        groups=svc.groups,
        package=svc.package,
    )
    settled.findings.append(replace(finding, service=svc, requirement_files=closure))
    settled.services.append(svc)


def _settle_built(
    settled: _Settled,
    root: Path,
    dockerfiles: builds.BuildSurvey,
    existing: Project | None,
    scan: RuntimeScanner,
) -> dict[str, str]:
    """The services built from their own Dockerfile that the native builder can carry out,
    settled like the others (the user's settings from ``wheeldock.toml`` win, else the
    Dockerfile's, with the runtime packages scanned); the others, and why, returned."""
    docker_only: dict[str, str] = {}
    mine = {s.name: s for s in existing.services} if existing is not None else {}
    for built in dockerfiles.built:
        verdict = native.verdict(built, root)
        for name in built.shared_with:
            docker_only[name] = f"it shares the build of {built.name}: build that one"
        if verdict.service is None:
            docker_only[built.name] = verdict.why
            continue
        svc = mine.get(built.name)
        if svc is None:
            files, _ = discover.requirement_closure(
                root,
                (*verdict.service.requirements, *verdict.service.constraints),
                groups=verdict.service.groups,
                package=verdict.service.package,
            )
            packages, source = scan(root, verdict.service, files, {})
            apt = verdict.service.runtime_packages
            svc = replace(
                verdict.service,
                runtime_packages=tuple(dict.fromkeys((*packages, *apt))),
                runtime_packages_source=source,
            )
        settled.services.append(svc)
    return docker_only


def _check_generated(root: Path, rel: str, text: str, manifest: Manifest | None) -> None:
    """:class:`InvalidConfig` when a requirements file init would write is there already and is
    neither init's nor what it would write."""
    current = _read(root / rel)
    ours = manifest is not None and rel in manifest.written
    if current is not None and not ours and current != text.encode():
        raise InvalidConfig(
            f"{rel} exists and is not the one init would write: the packages the compose "
            "command installs inline go there",
            path=root / rel,
            fix=f"rename or delete {rel}, or make the command install it with `pip install -r`",
        )


def _replaced_builds(original: compose.ComposeFile, patched: str) -> list[str]:
    """The services of ``original`` whose own ``build:`` section the patched text replaces."""
    after = compose.parse(patched, original.path).services
    return [
        name
        for name, svc in original.services.items()
        if isinstance(svc, dict)
        and "build" in svc
        and isinstance(after.get(name), dict)
        and after[name].get("build") != svc["build"]
    ]


def _config_bytes(root: Path, proj: Project, existing: Project | None) -> bytes:
    """``wheeldock.toml`` for ``proj``; the user's file as it is when the settings are the same
    (its formatting kept)."""
    dumped = project.dumps(proj).encode()
    if (
        existing is not None
        and existing.services == proj.services
        and existing.compose_files == proj.compose_files
        and existing.docker_only == proj.docker_only
    ):
        return (root / project.CONFIG_NAME).read_bytes()
    return dumped


def _file_change(
    root: Path,
    rel: str,
    kind: str,
    data: bytes,
    manifest: Manifest | None,
    warnings: list[str],
) -> FileChange:
    """The change to one file; a file edited since init wrote it is kept (with a warning)."""
    current = _read(root / rel)
    desired: bytes | None = data
    note = ""
    edited = (
        manifest is not None
        and rel in manifest.written
        and current is not None
        and sha256(current) != manifest.written[rel]
        and kind != "config"
    )
    ours = manifest is not None and rel in manifest.written
    if edited and current != data:
        note = "edited since init wrote it: kept (delete it and re-run init to regenerate)"
        warnings.append(f"{rel} was edited since init wrote it; kept as it is")
        desired = current
    elif current is None and ours:
        note = "recreated (it had been deleted)"
    elif kind == "dockerfile" and current is not None and current != data and not ours:
        backup = f"{BACKUP_DIR}/files/{rel}"
        note = f"yours (init did not write it): replaced only with --force; kept in {backup}"
        warnings.append(
            f"{rel} is yours (init did not write it): init replaces it only with --force, "
            f"keeping the original in {backup}"
        )
        return FileChange(rel, kind, current, desired, note, user_file=True)
    return FileChange(rel, kind, current, desired, note)


def _python_of(svc: Service, asked: str | None) -> tuple[Service, str | None]:
    """``svc`` on the Python its image names, or on ``asked`` (``init --python``), and a note
    saying which base carries it: wheeldock's Debian base of that Python, else the official
    ``python:X.Y`` images. A service is never moved to another Python unasked."""
    from wheeldock.debian.bases import SUITE_PYTHON, VARIANTS, suite_for

    note = None
    if asked is not None and asked != svc.python:
        note = f"{svc.name}: moved from Python {svc.python} to {asked}, as asked (--python)"
        svc = replace(svc, python=asked)
    if svc.base in VARIANTS and suite_for(svc.python) is None:
        carried = ", ".join(f"{v} ({s})" for s, v in SUITE_PYTHON.items())
        note = (note + "; " if note else f"{svc.name}: ") + (
            f"Python {svc.python} kept: wheeldock's Debian bases carry {carried}, so the "
            f"official python:{svc.python} images are its builder and base (from the engine, "
            f"else Docker Hub); `init --python X.Y` moves it to another version"
        )
    return svc, note


def _existing_config(root: Path) -> Project | None:
    path = project.config_path(root)
    return project.load(root) if path.is_file() else None


def _compose_patch(
    findings: Sequence[discover.Finding], project_name: str, context: str
) -> compose.Patch:
    """The compose file's change: only what every machine shares, ``build:`` read against the
    project directory (``context``: the project folder from there). What is this machine's
    (the proxy CA's path, host networking for builds the user did not choose) goes into
    wheeldock's own override, written by ``up`` (:mod:`wheeldock.compose.override`)."""
    patches: list[compose.ServicePatch] = []
    for f in findings:
        svc = f.service
        build: dict[str, Any] = {"context": context, "dockerfile": f"Dockerfile.{svc.name}"}
        if svc.network_mode == "host":
            build["network"] = "host"  # the build reaches PyPI the way the service reaches anything
        patches.append(
            compose.ServicePatch(
                name=svc.name,
                build=build,
                image=_image_name(project_name, svc.name),
                drop_keys=f.drop_keys,
                drop_volumes=() if f.keep_code_mount else (f.source_volume,),
                add_volumes=f.data_volumes,
                healthcheck=(
                    {"test": ["CMD", *runtime.health_command(svc)]}
                    if f.replace_healthcheck
                    else None
                ),
            )
        )
    return compose.Patch(services=tuple(patches))


# --- applying ----------------------------------------------------------------------------------


def _check_writable(root: Path) -> None:
    """Fail before anything is written when the folder takes no new files."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".wheeldock-probe-", dir=root)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise NotWritable(
            f"cannot write in the project folder ({exc.strerror}); nothing was changed",
            path=root,
            fix="make the folder writable (init writes Dockerfiles, .dockerignore, wheeldock.toml "
            "and patches the compose file there)",
        ) from exc


@dataclass(frozen=True)
class ApplyResult:
    written: tuple[str, ...]
    backup: str
    unchanged: tuple[str, ...] = field(default_factory=tuple)


def _back_up_originals(
    p: InitPlan, manifest: Manifest | None
) -> tuple[dict[str, str | None], list[Path]]:
    """Back up the originals not backed up by an earlier init; the digests of all originals
    (``None``: the file did not exist) and the backups made now (removed again on failure)."""
    root = p.root
    originals: dict[str, str | None] = dict(manifest.originals) if manifest else {}
    new_backups: list[Path] = []
    try:
        for rel, data in p.originals.items():
            if rel in originals:
                continue
            if data is not None:
                backup = _backup_path(root, rel)
                atomic_write_bytes(backup, data)
                new_backups.append(backup)
            originals[rel] = sha256(data) if data is not None else None
    except BaseException:
        for path in new_backups:
            path.unlink(missing_ok=True)
        raise
    return originals, new_backups


def _through_link(path: Path) -> Path:
    """Where writing ``path`` must go: the file a symbolic link points to (so the link stays a
    link), else ``path`` itself."""
    return path.resolve() if path.is_symlink() else path


def _links(p: InitPlan, manifest: Manifest | None) -> dict[str, str]:
    """The originals that are symbolic links, and where they point: those an earlier init
    recorded, and the ones found now among the files backed up for the first time."""
    links = dict(manifest.links) if manifest is not None else {}
    before = manifest.originals if manifest is not None else {}
    for rel, data in p.originals.items():
        path = p.root / rel
        if rel not in before and data is not None and path.is_symlink():
            links[rel] = os.readlink(path)
    return links


def _write_change(root: Path, change: FileChange) -> None:
    target = root / change.path
    if change.desired is None:
        target.unlink(missing_ok=True)
    else:
        atomic_write_bytes(_through_link(target), change.desired)


def _undo_changes(root: Path, done: Sequence[FileChange]) -> None:
    """Put the files of ``done`` back as they were, last first (a failure is logged)."""
    for change in reversed(done):
        target = root / change.path
        try:
            if change.current is None:
                target.unlink(missing_ok=True)
            else:
                atomic_write_bytes(_through_link(target), change.current)
        except OSError:
            log.error("could not restore %s after a failed init", target)


def apply(p: InitPlan, *, force: bool = False) -> ApplyResult:
    """Write the plan: backups and manifest first, then each changed file atomically.

    A ``Dockerfile.<service>`` the user wrote (init did not) is replaced only with ``force``
    (its original backed up like the others); without, :class:`InvalidConfig` naming each and
    nothing is written. If a write fails, files already written are put back as they were and
    the error is raised: no user file is left half-changed.
    """
    root = p.root
    yours = [c.path for c in p.changes if c.user_file and c.changed]
    if yours and not force:
        raise InvalidConfig(
            f"{', '.join(yours)}: yours (init did not write it), and init would replace it with "
            "its own; nothing was changed",
            path=root / yours[0],
            fix="rename it (and point the service's build: at it yourself), or run "
            f"`wheeldock init --force` to replace it (the original is kept in {BACKUP_DIR}/files "
            "and `wheeldock init --revert` puts it back)",
        )
    _check_writable(root)
    manifest = Manifest.read(root)
    links = _links(p, manifest)
    originals, new_backups = _back_up_originals(p, manifest)
    written: list[str] = []
    done: list[FileChange] = []
    try:
        for change in p.changes:
            if not change.changed:
                continue
            _write_change(root, change)
            done.append(change)
            written.append(change.path)
        hashes = {c.path: sha256(c.desired) for c in p.changes if c.desired is not None}
        if manifest is not None:  # files written by an earlier init and not planned now
            hashes = {**{k: v for k, v in manifest.written.items() if k not in hashes}, **hashes}
        atomic_write_text(root / MANIFEST, Manifest(originals, hashes, links).dumps())
    except BaseException:
        _undo_changes(root, done)
        if manifest is None:
            for path in new_backups:
                path.unlink(missing_ok=True)
        raise
    return ApplyResult(
        written=tuple(written),
        backup=BACKUP_DIR,
        unchanged=tuple(c.path for c in p.changes if not c.changed),
    )


# --- reverting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RevertResult:
    restored: tuple[str, ...]
    removed: tuple[str, ...]
    forced: tuple[str, ...]  # edited files reverted anyway


def revert(root: Path, *, force: bool = False) -> RevertResult:
    """Restore the originals byte for byte and delete the files init created.

    Refuses (naming every such file) when one was edited since init wrote it, unless ``force``.
    """
    root = root.resolve()
    manifest = Manifest.read(root)
    if manifest is None:
        raise NotFound(
            f"nothing to revert: {MANIFEST} does not exist (init has not run here, or was reverted)",
            path=root,
            fix="run `wheeldock init` first; `--revert` undoes it",
        )
    edited: list[str] = []
    for rel, digest in manifest.written.items():
        current = _read(root / rel)
        if current is not None and sha256(current) != digest:
            edited.append(rel)
    if edited and not force:
        raise InvalidConfig(
            f"edited since init wrote them: {', '.join(sorted(edited))}; reverting would lose "
            "those edits, so nothing was changed",
            path=root / sorted(edited)[0],
            fix="keep a copy of your edits and run `wheeldock init --revert --force`",
        )
    _check_writable(root)
    # Every backup must be readable before anything is restored.
    restore: dict[str, bytes] = {}
    for rel, original in manifest.originals.items():
        if original is None:
            continue
        data = _read(_backup_path(root, rel))
        if data is None or sha256(data) != original:
            raise InvalidConfig(
                f"the backup of {rel} is missing or damaged; nothing was changed",
                path=_backup_path(root, rel),
                fix=f"restore {rel} from version control, then delete {BACKUP_DIR}",
            )
        restore[rel] = data
    restored: list[str] = []
    removed: list[str] = []
    for rel in sorted(set(manifest.written) | set(manifest.originals)):
        target = root / rel
        if rel in restore:
            if _restore(target, restore[rel], manifest.links.get(rel)):
                restored.append(rel)
        elif target.exists() or target.is_symlink():
            target.unlink()
            removed.append(rel)
    _remove_tree(root / BACKUP_DIR)
    (root / override.PATH).unlink(missing_ok=True)  # this machine's, made by `up`
    state = root / STATE_DIR
    if state.is_dir() and not any(state.iterdir()):
        state.rmdir()
    return RevertResult(tuple(restored), tuple(removed), tuple(sorted(edited)))


def _restore(target: Path, data: bytes, link: str | None) -> bool:
    """Put ``target`` back as it was: ``data`` in a regular file, or, when it was a symbolic
    link to ``link``, that link (made again if it was replaced) with ``data`` in the file it
    points to. Whether anything changed."""
    if link is None:
        if _read(target) == data and not target.is_symlink():
            return False
        atomic_write_bytes(target, data)
        return True
    changed = False
    if not (target.is_symlink() and os.readlink(target) == link):
        _replace_with_link(target, link)
        changed = True
    if _read(target) != data:
        atomic_write_bytes(target.resolve(), data)
        changed = True
    return changed


def _replace_with_link(target: Path, link: str) -> None:
    """Make ``target`` a symbolic link to ``link`` in one step (a new link renamed over it)."""
    temp = target.with_name(f".{target.name}.wheeldock-link")
    temp.unlink(missing_ok=True)
    os.symlink(link, temp)
    try:
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _remove_tree(path: Path) -> None:
    if not path.exists():
        return
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if child.is_dir() and not child.is_symlink():
            child.rmdir()
        else:
            child.unlink()
    path.rmdir()
