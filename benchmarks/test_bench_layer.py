"""Layer tarring, hashing and compression: wheeldock's layer writer against the floors.

The floors are the plain library calls on the same data, each alone: ``tarfile`` writing the
folder to a sink that discards, ``hashlib.sha256`` over the tar bytes in memory, ISA-L gzip
level 1 (our default), zlib gzip level 6 (what ``docker build``/``tarfile`` give) and zstd level
3. ``build_layer`` does all of its parts in one streaming pass into the blob store, so its
floor is the sum of the parts it performs (see docs/bench/hot-paths.md).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard
from isal import isal_zlib

from wheeldock.build.builder import app_key
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.layer import (
    DEFAULT_GZIP_LEVEL,
    DEFAULT_ZSTD_LEVEL,
    Compression,
    TarEntry,
    build_layer,
    entries_from_dir,
)

CB_TOTEM = Path(__file__).resolve().parent.parent / "examples" / "cb-totem"
MTIME = 1686355200
ROUNDS = 7
#: The app layer: cb-totem's five top-level files (its image assets left out).
APP_FILES = ("api_wrapper.py", "main.py", "config.yaml", "requirements.in", "requirements.txt")

Benchmark = Any  # pytest-benchmark's fixture has no public type


class _Discard:
    """A write-only sink that counts bytes (``tarfile`` also wants ``tell``)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size


def _plain_tar(folder: Path, out: Any) -> None:
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(folder, arcname=".")


@pytest.fixture(scope="session")
def site_entries(site_packages: Path) -> list[TarEntry]:
    return entries_from_dir(site_packages, prefix="usr/local/lib/python3.11/site-packages")


@pytest.fixture(scope="session")
def site_tar(site_packages: Path) -> bytes:
    """The site-packages tree as one tar in memory: the input of the hashing and compression
    floors (so those measure the algorithm, not the file system)."""
    buf = io.BytesIO()
    _plain_tar(site_packages, buf)
    return buf.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def _slow(benchmark: Benchmark, fn: Callable[[], Any]) -> Any:
    """Whole-second operations: a fixed number of rounds, after one warm-up (page cache)."""
    return benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)


def _describe(benchmark: Benchmark, tar_bytes: int, files: int, **extra: Any) -> None:
    benchmark.extra_info.update({"tar_bytes": tar_bytes, "files": files, **extra})


# -- ours ---------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="layer: site-packages")
@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_build_layer_site_packages(
    benchmark: Benchmark,
    site_entries: list[TarEntry],
    store: BlobStore,
    compression: Compression,
) -> None:
    """tar → sha256 (diff_id) → compressor → sha256 (digest) → blob store, streaming."""
    layer = _slow(
        benchmark,
        lambda: build_layer(site_entries, store=store, compression=compression, mtime=MTIME),
    )
    assert layer.uncompressed_size is not None
    files = sum(e.kind == "file" for e in site_entries)
    _describe(benchmark, layer.uncompressed_size, files, blob_bytes=layer.size)
    if compression == "none":
        assert layer.digest == layer.diff_id
    else:
        assert layer.size < layer.uncompressed_size * 0.7


@pytest.mark.benchmark(group="layer: site-packages")
def test_build_layer_from_folder_gzip(
    benchmark: Benchmark, site_packages: Path, store: BlobStore
) -> None:
    """What a dependency layer costs the builder: walk the folder, then the gzip layer."""

    def run() -> Any:
        entries = entries_from_dir(site_packages, prefix="usr/local/lib/python3.11/site-packages")
        return build_layer(entries, store=store, compression="gzip", mtime=MTIME)

    layer = _slow(benchmark, run)
    assert layer.uncompressed_size is not None
    _describe(benchmark, layer.uncompressed_size, 0, blob_bytes=layer.size)


@pytest.mark.benchmark(group="layer: site-packages")
def test_walk_site_packages(benchmark: Benchmark, site_packages: Path) -> None:
    """``entries_from_dir`` alone: the lstat walk that precedes every layer from a folder."""
    entries = benchmark(entries_from_dir, site_packages, prefix="site-packages")
    assert sum(e.kind == "file" for e in entries) > 1000


# -- the floors ---------------------------------------------------------------------------------


@pytest.mark.benchmark(group="floor: site-packages")
def test_floor_tarfile(benchmark: Benchmark, site_packages: Path) -> None:
    """Python's tarfile writing the same folder to a sink that discards the bytes."""

    def run() -> int:
        sink = _Discard()
        _plain_tar(site_packages, sink)
        return sink.size

    size = _slow(benchmark, run)
    _describe(benchmark, size, 0)
    assert size > 10_000_000


@pytest.mark.benchmark(group="floor: site-packages")
def test_floor_read_files(benchmark: Benchmark, site_packages: Path) -> None:
    """Walking the folder and reading every file (page cache warm): what any tar writer must
    do at least, without headers."""

    def run() -> int:
        total = 0
        for path in sorted(site_packages.rglob("*")):
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as fh:
                    while chunk := fh.read(1 << 20):
                        total += len(chunk)
        return total

    size = _slow(benchmark, run)
    benchmark.extra_info["content_bytes"] = size
    assert size > 10_000_000


@pytest.mark.benchmark(group="floor: site-packages")
def test_floor_sha256(benchmark: Benchmark, site_tar: bytes) -> None:
    digest = _slow(benchmark, lambda: hashlib.sha256(site_tar).hexdigest())
    _describe(benchmark, len(site_tar), 0)
    assert len(digest) == 64


def _isal_gzip(data: bytes) -> bytes:
    c = isal_zlib.compressobj(DEFAULT_GZIP_LEVEL, isal_zlib.DEFLATED, 31)
    out: bytes = c.compress(data) + c.flush()
    return out


def _zlib_gzip6(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def _zstd(data: bytes) -> bytes:
    cctx = zstandard.ZstdCompressor(level=DEFAULT_ZSTD_LEVEL, write_content_size=False)
    c = cctx.compressobj()
    return c.compress(data) + c.flush()


@pytest.mark.benchmark(group="floor: site-packages")
@pytest.mark.parametrize(
    "compress", [_isal_gzip, _zlib_gzip6, _zstd], ids=["isal-gzip-1", "zlib-gzip-6", "zstd-3"]
)
def test_floor_compress(
    benchmark: Benchmark, site_tar: bytes, compress: Callable[[bytes], bytes]
) -> None:
    out = _slow(benchmark, lambda: compress(site_tar))
    _describe(benchmark, len(site_tar), 0, blob_bytes=len(out))
    assert len(out) < len(site_tar) * 0.7


# -- the app layer ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def app_entries_small() -> list[TarEntry]:
    source = CB_TOTEM / "vcc-totem"
    return [TarEntry.file(f"app/{name}", source / name) for name in APP_FILES]


@pytest.mark.benchmark(group="layer: app (5 files)")
@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_build_layer_app(
    benchmark: Benchmark,
    app_entries_small: list[TarEntry],
    store: BlobStore,
    compression: Compression,
) -> None:
    layer = benchmark(
        build_layer, app_entries_small, store=store, compression=compression, mtime=MTIME
    )
    assert layer.uncompressed_size is not None
    _describe(benchmark, layer.uncompressed_size, len(APP_FILES), blob_bytes=layer.size)


@pytest.mark.benchmark(group="layer: app (5 files)")
def test_app_layer_cache_key(benchmark: Benchmark, app_entries_small: list[TarEntry]) -> None:
    """What a rebuild pays to learn the app layer is unchanged: hash every file's content."""
    key = benchmark(app_key, app_entries_small, "gzip", MTIME)
    assert key.startswith("sha256:")
