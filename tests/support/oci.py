"""Shared fixtures for the OCI core: a session blob store and a tiny runnable image.

The runnable image is one statically linked busybox (Debian's busybox-static) plus an app
layer, so destinations can be checked with ``docker run`` without pulling anything.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from wheeldock.oci import image, mutate
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.layer import Layer, TarEntry, build_layer

EPOCH = 1_700_000_000
BUSYBOX = Path("/bin/busybox")
BUSYBOX_APPLETS = ("sh", "cat", "echo", "ls", "env", "id", "stat")


@pytest.fixture(scope="session")
def oci_store(tmp_path_factory: pytest.TempPathFactory) -> BlobStore:
    """A blob store shared by the session's OCI tests (read-mostly; tests add blobs)."""
    return BlobStore(tmp_path_factory.mktemp("oci-store"))


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    """A fresh, empty blob store for one test."""
    return BlobStore(tmp_path / "store")


@pytest.fixture
def cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point WHEELDOCK_CACHE at a temp folder for one test."""
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    yield tmp_path / "cache"


def busybox_entries() -> list[TarEntry]:
    if not BUSYBOX.is_file():
        pytest.fail(f"{BUSYBOX} is missing: apt-get install busybox-static (scripts/setup.sh)")
    entries = [TarEntry.file("bin/busybox", BUSYBOX, mode=0o755)]
    entries += [TarEntry.symlink(f"bin/{a}", "busybox") for a in BUSYBOX_APPLETS]
    entries += [TarEntry.directory("tmp", mode=0o1777), TarEntry.directory("etc")]
    entries += [TarEntry.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")]
    return entries


@pytest.fixture(scope="session")
def busybox_layer(oci_store: BlobStore) -> Layer:
    return build_layer(busybox_entries(), store=oci_store, mtime=EPOCH)


@pytest.fixture(scope="session")
def runnable_image(oci_store: BlobStore, busybox_layer: Layer) -> image.Image:
    """busybox + an app layer; its command prints /app/hello.txt and an env value."""
    app = build_layer(
        [TarEntry.file("app/hello.txt", b"hello from wheeldock\n")], store=oci_store, mtime=EPOCH
    )
    img = mutate.append_layers(image.empty(), [busybox_layer, app])
    img = mutate.with_config(
        img,
        cmd=["/bin/sh", "-c", "cat /app/hello.txt; echo greeting=$GREETING"],
        env={"PATH": "/bin", "GREETING": "hi"},
        working_dir="/app",
    )
    return mutate.with_created(img, EPOCH)


def tool(name: str) -> str:
    """The path of a tool the integration tests need; fail (not skip) when it is missing."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not installed; run scripts/setup.sh")
    return found
