"""Session fixtures for the Debian-made Python base images (``wheeldock base``).

``base_images`` makes sure ``wheeldock/python:3.11-slim`` (also ``python:3.11-slim`` where that
cannot be pulled) and ``wheeldock/python:3.11-builder`` are in the engine, built once per
session; ``base_minimal`` does the same for the minimal base, ``base_slim_arm64`` and
``base_slim_armhf`` for the foreign slim bases (mmdebstrap under qemu). The rootfs tars are
cached in a session folder, or in ``$WHEELDOCK_TEST_BASE_CACHE`` when set (to reuse them across
runs on a developer's machine; CI leaves it unset and builds for real).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from support.env import environ
from wheeldock.debian import bases as base

#: The environment the armhf base is made and used under (see :func:`armhf_sources`).
_ARMHF_SOURCES = {"WHEELDOCK_DEBIAN_SECURITY_MIRROR": "none"}
#: The foreign bases (fixture → Debian architecture, extra environment). mmdebstrap runs their
#: maintainer scripts under qemu, minutes each, so they start building in the background as soon
#: as the tests needing them are collected: the emulated work overlaps the rest of the suite
#: instead of holding it up when the first such test runs.
_FOREIGN: dict[str, tuple[str, dict[str, str]]] = {
    "base_slim_arm64": ("arm64", {}),
    "base_slim_armhf": ("armhf", _ARMHF_SOURCES),
}
_CACHE = pytest.StashKey[Path]()
_PREBUILDS = pytest.StashKey[dict[str, subprocess.Popen[bytes]]]()


def _base_cache(config: pytest.Config) -> Path:
    if _CACHE not in config.stash:
        explicit = os.environ.get("WHEELDOCK_TEST_BASE_CACHE")
        folder = Path(explicit) if explicit else Path(tempfile.mkdtemp(prefix="wheeldock-bases-"))
        config.stash[_CACHE] = folder
    return config.stash[_CACHE]


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    needed = sorted(
        {name for item in session.items for name in getattr(item, "fixturenames", ())}
        & set(_FOREIGN)
    )
    if not needed:
        return
    cache = _base_cache(session.config)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name in needed:
        arch, extra = _FOREIGN[name]
        with (cache / f"prebuild-{arch}.log").open("wb") as log:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "wheeldock", "base", "build", "slim", "--arch", arch],
                env={**os.environ, "WHEELDOCK_CACHE": str(cache), **extra},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    session.config.stash[_PREBUILDS] = procs


def _await_prebuild(config: pytest.Config, name: str) -> None:
    """Wait for the background build of ``name``'s base; a failure is left to the fixture's own
    ``ensure_image``, which builds what is missing and reports errors with their fix."""
    proc = config.stash.get(_PREBUILDS, {}).get(name)
    if proc is not None:
        proc.wait()


def pytest_unconfigure(config: pytest.Config) -> None:
    for proc in config.stash.get(_PREBUILDS, {}).values():
        if proc.poll() is None:  # the run stopped early: let wheeldock drop its partial tar
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    cache = config.stash.get(_CACHE, None)
    if cache is not None and not os.environ.get("WHEELDOCK_TEST_BASE_CACHE"):
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="session")
def base_cache(request: pytest.FixtureRequest) -> Path:
    """Where the bases' rootfs tars are cached: a session folder, or $WHEELDOCK_TEST_BASE_CACHE."""
    return _base_cache(request.config)


def _cache_at(folder: Path) -> AbstractContextManager[None]:
    """WHEELDOCK_CACHE set for the duration."""
    return environ({"WHEELDOCK_CACHE": str(folder)})


@pytest.fixture(scope="session")
def base_images(base_cache: Path) -> dict[str, base.BaseImage]:
    """``{"slim": BaseImage, "builder": BaseImage}``, both present in the engine.

    ``base_images["slim"].tags[0]`` is ``wheeldock/python:3.11-slim``.
    """
    with _cache_at(base_cache):
        return {name: base.ensure_image(name) for name in ("slim", "builder")}


@pytest.fixture(scope="session")
def base_minimal(base_cache: Path, base_images: dict[str, base.BaseImage]) -> base.BaseImage:
    """The minimal base in the engine (pruned from slim's cached rootfs, so built after it)."""
    with _cache_at(base_cache):
        return base.ensure_image("minimal")


@pytest.fixture(scope="session")
def base_slim_arm64(
    base_cache: Path, base_images: dict[str, base.BaseImage], request: pytest.FixtureRequest
) -> base.BaseImage:
    """The arm64 slim base in the engine (``wheeldock/python:3.11-slim-arm64``), for stacks run
    under qemu; mmdebstrap runs Debian's maintainer scripts emulated (~5 min, once per cache)."""
    _await_prebuild(request.config, "base_slim_arm64")
    with _cache_at(base_cache):
        return base.ensure_image("slim", arch="arm64")


def armhf_sources() -> AbstractContextManager[None]:
    """The APT sources the armhf test base is made from, for the duration: Debian's, without the
    security archive. The mirror this workplace reaches serves a stale armhf security index
    (Packages.xz 334,084 bytes where its Release file says 354,092), so apt refuses it and no
    armhf base with security fixes can be built here; the arm/v7 tests exercise the builder,
    not Debian's security feed. The base's cache key records the difference."""
    return environ(_ARMHF_SOURCES)


@pytest.fixture(scope="session")
def base_slim_armhf(
    base_cache: Path, base_images: dict[str, base.BaseImage], request: pytest.FixtureRequest
) -> base.BaseImage:
    """The armhf slim base in the engine (``wheeldock/python:3.11-slim-armhf``), for linux/arm/v7
    images; built like the arm64 one, Debian's maintainer scripts under qemu-arm (~4 min, once
    per cache), from :func:`armhf_sources`. The native builder finds its rootfs in the same
    cache (``build_cache``), under the same sources."""
    _await_prebuild(request.config, "base_slim_armhf")
    with _cache_at(base_cache), armhf_sources():
        return base.ensure_image("slim", arch="armhf")
