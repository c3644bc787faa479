"""Session data for the hot-path benchmarks (``make bench-suite``).

Everything expensive is made once and kept under ``benchmarks/.data`` (``$WHEELDOCK_BENCH_DATA``
overrides; the folder ignores itself in git), so a second run only measures:

* ``site_packages``: fastapi, uvicorn[standard], httpx, pillow, cffi, pyyaml installed with
  ``uv pip install --target`` (with bytecode, as the builder's dependency layers have it);
* ``cbt_lock_path``: the committed lock of examples/cb-totem (``benchmarks/data/``), re-made
  with uv when cb-totem's requirements change;
* ``cbt_wheelhouse``: the wheels that lock names (linux x86_64, Python 3.11), in one folder;
* the wheeldock cache (``WHEELDOCK_CACHE``): the Debian index, the ``slim`` base rootfs, the
  blob store, the wheelhouse and installed trees the build benchmarks reuse.

The cache variable is set for the whole session, so library calls here never touch the
developer's own cache.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.env import environ

from wheeldock.deps import lock, pylock
from wheeldock.deps.wheelhouse import Wheelhouse, select
from wheeldock.edges import process
from wheeldock.project import Project, Service

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CB_TOTEM = REPO / "examples" / "cb-totem"
CBT_REQUIREMENTS = "vcc-totem/requirements.txt"
#: The committed benchmark lock (PEP 751) of cb-totem's requirements for linux/amd64, 3.11.
CBT_LOCK = HERE / "data" / "pylock.cb-totem.toml"
PYTHON = "3.11"
SITE_PACKAGES_SPEC = ("fastapi", "uvicorn[standard]", "httpx", "pillow", "cffi", "pyyaml")
#: The one-pin change of the bump benchmark: cb-totem pins idna 3.20; the other state pins this.
BUMP_PIN = ("idna", "3.19")


_load_at_start: tuple[float, float, float] | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _load_at_start
    _load_at_start = os.getloadavg()


def pytest_benchmark_update_machine_info(
    config: pytest.Config, machine_info: dict[str, Any]
) -> None:
    """Other work on a shared machine skews timings: record how busy it was."""
    machine_info["loadavg_start"] = list(_load_at_start or ())
    machine_info["loadavg_end"] = list(os.getloadavg())
    machine_info["cpus_online"] = os.cpu_count()


def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: list[Any], output_json: dict[str, Any]
) -> None:
    """Keep the committed JSON small: drop every round's raw time (fast benchmarks run
    tens of thousands of rounds); the statistics stay."""
    for bench in output_json.get("benchmarks", []):
        bench.get("stats", {}).pop("data", None)


def data_dir() -> Path:
    folder = Path(os.environ.get("WHEELDOCK_BENCH_DATA") or HERE / ".data")
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.is_file():
        ignore.write_text("*\n")  # cached downloads and caches: never committed
    return folder


@pytest.fixture(scope="session", autouse=True)
def bench_cache() -> Iterator[Path]:
    """WHEELDOCK_CACHE for the session: a persistent folder under the benchmark data."""
    folder = data_dir() / "cache"
    folder.mkdir(parents=True, exist_ok=True)
    with environ({"WHEELDOCK_CACHE": str(folder), "SOURCE_DATE_EPOCH": None}):
        yield folder


def _made_once(dest: Path, stamp: str) -> bool:
    """Whether ``dest`` was completed for ``stamp`` (the inputs it was made from)."""
    marker = _marker(dest)
    return dest.is_dir() and marker.is_file() and marker.read_text() == stamp


def _mark_made(dest: Path, stamp: str) -> None:
    _marker(dest).write_text(stamp)


def _marker(dest: Path) -> Path:
    # beside the folder, not in it: the site-packages tree is benchmark input byte for byte
    return dest.with_name(dest.name + ".made-for")


# -- a realistic site-packages tree -------------------------------------------------------------


@pytest.fixture(scope="session")
def site_packages() -> Path:
    """~65 MB, ~1,600 files: the cb-totem stack's dependencies installed with bytecode."""
    dest = data_dir() / "site-packages"
    stamp = " ".join((sys.version.split()[0], *SITE_PACKAGES_SPEC))
    if _made_once(dest, stamp):
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    process.run(
        [
            lock.uv_bin(),
            "pip",
            "install",
            "--quiet",
            "--compile-bytecode",
            "--python",
            sys.executable,
            "--target",
            str(partial),
            *SITE_PACKAGES_SPEC,
        ],
        timeout=600,
        fix="check that PyPI answers (uv reads SSL_CERT_FILE for the proxy's CA)",
    )
    partial.rename(dest)
    _mark_made(dest, stamp)
    return dest


# -- cb-totem: lock, wheelhouse, project copies -------------------------------------------------


def cbt_inputs(root: Path = CB_TOTEM) -> lock.LockInputs:
    return lock.collect_inputs(
        root, [CBT_REQUIREMENTS], platform=pylock.DEFAULT_PLATFORM, python=PYTHON
    )


def ensure_lock(root: Path, dest: Path) -> pylock.Lock:
    """``dest`` as a fresh lock of ``root``'s cb-totem requirements (re-made with uv if stale).

    uv resolves into a scratch folder under the benchmark data (``compile_lock`` leaves a file
    lock beside its output), and only the lock file is copied to ``dest``.
    """
    inputs = cbt_inputs(root)
    if lock.status(dest, inputs) != "fresh":
        scratch = data_dir() / "locks" / dest.name
        made = lock.compile_lock(root, inputs, scratch)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(made.text)
    return pylock.read(dest)


@pytest.fixture(scope="session")
def cbt_lock_path() -> Path:
    ensure_lock(CB_TOTEM, CBT_LOCK)
    return CBT_LOCK


@pytest.fixture(scope="session")
def cbt_wheelhouse(cbt_lock_path: Path, bench_cache: Path) -> Path:
    """The lock's wheels (linux x86_64, cp311) side by side in one folder, as ``libs`` scans."""
    locked = pylock.read(cbt_lock_path)
    dest = data_dir() / "cbt-wheelhouse"
    stamp = locked.digest
    if _made_once(dest, stamp):
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    wheels = Wheelhouse().fetch(select(locked), platform=locked.platform, python=locked.python)
    for wheel in wheels:
        shutil.copyfile(wheel, dest / wheel.name)
    _mark_made(dest, stamp)
    return dest


CBT_SERVICES = (
    Service(
        "calidda-api",
        "vcc-totem",
        (CBT_REQUIREMENTS,),
        ("python3", "api_wrapper.py"),
        port=8000,
        health="/health",
        env={"UPSTREAM_URL": "http://127.0.0.1:9000"},
    ),
    Service(
        "srv-img",
        "vcc-totem",
        (CBT_REQUIREMENTS,),
        ("python3", "main.py"),
        port=8001,
        health="/health",
    ),
)


@dataclass(frozen=True)
class CbtStates:
    """A cb-totem project copy and the two requirement/lock states of the one-pin bump.

    ``requirements[i]`` and ``locks[i]`` belong together; state 0 is cb-totem's own.
    """

    project: Project
    requirements: tuple[str, str]
    locks: tuple[str, str]

    def apply(self, state: int) -> None:
        """Put the project in ``state``: its requirements and both services' fresh locks."""
        root = self.project.root
        (root / CBT_REQUIREMENTS).write_text(self.requirements[state])
        for svc in self.project.services:
            path = pylock.lock_path(root, svc.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.locks[state])


def bumped(requirements: str) -> str:
    name, version = BUMP_PIN
    text, count = re.subn(rf"(?m)^{re.escape(name)}==\S+", f"{name}=={version}", requirements)
    if count != 1 or text == requirements:
        raise AssertionError(f"cb-totem's requirements no longer pin {name} once: update BUMP_PIN")
    return text


@pytest.fixture(scope="session")
def cbt_states(cbt_lock_path: Path, tmp_path_factory: pytest.TempPathFactory) -> CbtStates:
    """A copy of cb-totem (code + wheeldock.toml) outside git, with both bump states locked.

    The bumped lock is resolved once with uv and kept under the benchmark data.
    """
    from wheeldock import project

    root = tmp_path_factory.mktemp("bench-cbt")
    shutil.copytree(
        CB_TOTEM / "vcc-totem",
        root / "vcc-totem",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    proj = Project(root, None, CBT_SERVICES)
    project.save(proj)
    original = (root / CBT_REQUIREMENTS).read_text()
    other = bumped(original)

    # The bumped lock is made in a scratch copy so its input hash is that of the bumped file.
    scratch = data_dir() / "cbt-bumped"
    (scratch / "vcc-totem").mkdir(parents=True, exist_ok=True)
    (scratch / CBT_REQUIREMENTS).write_text(other)
    bumped_lock = ensure_lock(scratch, scratch / "pylock.cb-totem.toml")
    states = CbtStates(proj, (original, other), (CBT_LOCK.read_text(), bumped_lock.text))
    states.apply(0)
    return states
