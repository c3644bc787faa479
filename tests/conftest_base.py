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
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from wheeldock import base


@pytest.fixture(scope="session")
def base_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    explicit = os.environ.get("WHEELDOCK_TEST_BASE_CACHE")
    return Path(explicit) if explicit else tmp_path_factory.mktemp("wheeldock-bases")


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` for the duration (a session fixture cannot use monkeypatch)."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _cache_at(folder: Path) -> AbstractContextManager[None]:
    """WHEELDOCK_CACHE set for the duration."""
    return _env("WHEELDOCK_CACHE", str(folder))


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
def base_slim_arm64(base_cache: Path, base_images: dict[str, base.BaseImage]) -> base.BaseImage:
    """The arm64 slim base in the engine (``wheeldock/python:3.11-slim-arm64``), for stacks run
    under qemu; mmdebstrap runs Debian's maintainer scripts emulated (~5 min, once per cache)."""
    with _cache_at(base_cache):
        return base.ensure_image("slim", arch="arm64")


def armhf_sources() -> AbstractContextManager[None]:
    """The APT sources the armhf test base is made from, for the duration: Debian's, without the
    security archive. The mirror this workplace reaches serves a stale armhf security index
    (Packages.xz 334,084 bytes where its Release file says 354,092), so apt refuses it and no
    armhf base with security fixes can be built here; the arm/v7 tests exercise the builder,
    not Debian's security feed. The base's cache key records the difference."""
    return _env("WHEELDOCK_DEBIAN_SECURITY_MIRROR", "none")


@pytest.fixture(scope="session")
def base_slim_armhf(base_cache: Path, base_images: dict[str, base.BaseImage]) -> base.BaseImage:
    """The armhf slim base in the engine (``wheeldock/python:3.11-slim-armhf``), for linux/arm/v7
    images; built like the arm64 one, Debian's maintainer scripts under qemu-arm (~4 min, once
    per cache), from :func:`armhf_sources`. The native builder finds its rootfs in the same
    cache (``build_cache``), under the same sources."""
    with _cache_at(base_cache), armhf_sources():
        return base.ensure_image("slim", arch="armhf")
