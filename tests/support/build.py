"""Fixtures for the native builder (lock, wheelhouse, install, builder).

``build_cache`` is a session cache folder whose ``bases`` and ``debian`` sub-folders are the
base tests' (``base_cache``), so mmdebstrap and Debian's index run at most once per session.
``cbt_built`` locks and builds a copy of examples/cb-totem once per session (to an OCI layout);
the integration tests compare against it. ``make_wheel`` and ``make_sdist`` write tiny
distributions for tests that need no network.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import tarfile
import zipfile
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.env import environ
from wheeldock import platforms, project
from wheeldock.build import builder
from wheeldock.build.builder import BuildOptions, ServiceBuild

REPO = Path(__file__).resolve().parents[2]
CB_TOTEM = REPO / "examples" / "cb-totem"

#: The platforms the multi-platform tests build for.
AMD64 = platforms.parse("linux/amd64")
ARM64 = platforms.parse("linux/arm64")
ARMV7 = platforms.parse("linux/arm/v7")


def cache_at(folder: Path) -> AbstractContextManager[None]:
    """WHEELDOCK_CACHE set, SOURCE_DATE_EPOCH unset, for the duration."""
    return environ({"WHEELDOCK_CACHE": str(folder), "SOURCE_DATE_EPOCH": None})


def new_cache(base_cache: Path, folder: Path) -> Path:
    """A fresh cache that shares the session's base rootfs tars and Debian index."""
    folder.mkdir(parents=True, exist_ok=True)
    for shared in ("bases", "debian"):
        (base_cache / shared).mkdir(parents=True, exist_ok=True)
        (folder / shared).symlink_to(base_cache / shared)
    return folder


@pytest.fixture(scope="session")
def build_cache(base_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_cache(base_cache, tmp_path_factory.mktemp("wheeldock-build-cache"))


@pytest.fixture
def build_env(build_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(build_cache))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return build_cache


# -- cb-totem -----------------------------------------------------------------------------------


def cbt_services() -> tuple[project.Service, ...]:
    return (
        project.Service(
            "calidda-api",
            "vcc-totem",
            ("vcc-totem/requirements.txt",),
            ("python3", "api_wrapper.py"),
            port=8000,
            health="/health",
            env={"UPSTREAM_URL": "http://127.0.0.1:9000"},
        ),
        project.Service(
            "srv-img",
            "vcc-totem",
            ("vcc-totem/requirements.txt",),
            ("python3", "main.py"),
            port=8001,
            health="/health",
        ),
    )


def make_cbt_project(dest: Path, *, lock_from: Path | None = None) -> project.Project:
    """A copy of cb-totem's code with a wheeldock.toml (and the lock of ``lock_from``)."""
    shutil.copytree(
        CB_TOTEM / "vcc-totem",
        dest / "vcc-totem",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    proj = project.Project(dest, None, cbt_services())
    project.save(proj)
    if lock_from is not None:
        shutil.copytree(lock_from / "wheeldock.lock", dest / "wheeldock.lock")
    return proj


@dataclass(frozen=True)
class CbtBuild:
    root: Path
    layout: Path
    results: dict[str, ServiceBuild]


@pytest.fixture(scope="session")
def cbt_built(build_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> CbtBuild:
    """cb-totem locked and built once (both services) into an OCI layout."""
    work = tmp_path_factory.mktemp("cbt")
    with cache_at(build_cache):
        proj = make_cbt_project(work / "a")
        layout = work / "oci"
        results = builder.build(proj, proj.services, [f"oci:{layout}"], BuildOptions())
    return CbtBuild(proj.root, layout, {r.service: r for r in results})


# -- tiny distributions -------------------------------------------------------------------------


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    files: dict[str, str] | dict[str, str | bytes],
    *,
    console_scripts: dict[str, str] | None = None,
    tag: str = "py3-none-any",
) -> Path:
    """Write a valid wheel with ``files`` (path → text or bytes) and optional console scripts."""
    dist = f"{name.replace('-', '_')}-{version}"
    members: dict[str, bytes] = {
        path: data if isinstance(data, bytes) else data.encode() for path, data in files.items()
    }
    members[f"{dist}.dist-info/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    ).encode()
    members[f"{dist}.dist-info/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"
    ).encode()
    if console_scripts:
        lines = "".join(f"{k} = {v}\n" for k, v in console_scripts.items())
        members[f"{dist}.dist-info/entry_points.txt"] = f"[console_scripts]\n{lines}".encode()
    record = f"{dist}.dist-info/RECORD"
    lines = [_record_line(n, d) for n, d in members.items()] + [f"{record},,"]
    members[record] = ("\n".join(lines) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members.items():
            info = zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return path


def make_sdist(folder: Path, name: str, version: str, setup_py: str) -> Path:
    """Write ``name-version.tar.gz`` with ``setup_py`` and a one-line module."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}.tar.gz"
    files = {
        "setup.py": setup_py,
        f"{name}.py": "VALUE = 1\n",
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    }
    with tarfile.open(path, "w:gz") as tar:
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-{version}/{member}")
            info.size = len(data)
            info.mtime = 1577836800
            tar.addfile(info, io.BytesIO(data))
    return path
