"""Config and manifest serialisation and digesting: small, but every publish, layout write,
index and comparison calls them, often several times per image.

The image is shaped like a cb-totem build: a base layer, a runtime-libraries layer, six
dependency layers and the app layer, with the builder's config (env, health check, labels,
one history entry per layer).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import Healthcheck, History, Image, ImageConfig, Platform, rfc3339
from wheeldock.oci.layer import MEDIA_TYPE_GZIP, Layer

Benchmark = Any
EPOCH = 1686355200
LAYER_TITLES = (
    "base: slim (bookworm, Python 3.11)",
    "runtime libraries",
    "deps: pillow 13.0.0",
    "deps: pydantic-core 2.50.5",
    "deps: uvloop 0.23.0",
    "deps: watchfiles 1.3.0",
    "deps: httptools 0.9.0",
    "deps: 21 packages",
    "app: vcc-totem",
)


def _digest(seed: str) -> Digest:
    return Digest.of_bytes(seed.encode())


def _nowhere() -> Path:
    raise AssertionError("the serialisation benchmarks never read layer bytes")


@pytest.fixture(scope="session")
def cbt_image() -> Image:
    layers = tuple(
        Layer(
            digest=_digest(f"blob {title}"),
            diff_id=_digest(f"tar {title}"),
            size=1_000_000 * (i + 1),
            media_type=MEDIA_TYPE_GZIP,
            locate=_nowhere,
            annotations={"org.opencontainers.image.title": title},
            uncompressed_size=3_000_000 * (i + 1),
        )
        for i, title in enumerate(LAYER_TITLES)
    )
    config = ImageConfig(
        cmd=("python3", "api_wrapper.py"),
        env=(
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG=C.UTF-8",
            "PYTHONUNBUFFERED=1",
            "PYTHONDONTWRITEBYTECODE=1",
            "PORT=8000",
            "UPSTREAM_URL=http://127.0.0.1:9000",
        ),
        working_dir="/app",
        user="10001:10001",
        exposed_ports=("8000/tcp",),
        labels={
            "org.opencontainers.image.title": "calidda-api",
            "org.opencontainers.image.created": rfc3339(EPOCH),
            "org.opencontainers.image.revision": hashlib.sha1(b"head").hexdigest(),
        },
        healthcheck=Healthcheck(
            test=(
                "CMD",
                "python3",
                "-c",
                "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health')",
            ),
            interval=30,
            timeout=5,
            start_period=60,
            start_interval=1,
            retries=3,
        ),
    )
    history = tuple(
        History(created_by=f"wheeldock build: {t}", created=rfc3339(EPOCH)) for t in LAYER_TITLES
    )
    return Image(
        layers=layers,
        config=config,
        platform=Platform("linux", "amd64"),
        history=history,
        created=rfc3339(EPOCH),
        annotations={"org.opencontainers.image.created": rfc3339(EPOCH)},
    )


@pytest.mark.benchmark(group="image: serialise and digest")
def test_config_bytes(benchmark: Benchmark, cbt_image: Image) -> None:
    data = benchmark(cbt_image.config_bytes)
    benchmark.extra_info["bytes"] = len(data)
    assert b'"diff_ids"' in data


@pytest.mark.benchmark(group="image: serialise and digest")
def test_manifest_bytes(benchmark: Benchmark, cbt_image: Image) -> None:
    """Includes the config's bytes and digest (the manifest's config descriptor)."""
    data = benchmark(cbt_image.manifest_bytes)
    benchmark.extra_info["bytes"] = len(data)
    assert data.count(b'"mediaType"') == len(LAYER_TITLES) + 2


@pytest.mark.benchmark(group="image: serialise and digest")
def test_image_digest(benchmark: Benchmark, cbt_image: Image) -> None:
    digest = benchmark(lambda: cbt_image.digest)
    assert digest == Digest.of_bytes(cbt_image.manifest_bytes())


@pytest.mark.benchmark(group="image: serialise and digest")
def test_image_from_raw_and_digest(benchmark: Benchmark, cbt_image: Image) -> None:
    """Reading an image back (layout, archive, registry): parse both documents, keep the raw
    bytes, and the digest is the source's."""
    manifest, config = cbt_image.manifest_bytes(), cbt_image.config_bytes()

    def run() -> Digest:
        return Image.from_raw(manifest, config, cbt_image.layers).digest

    assert benchmark(run) == cbt_image.digest


@pytest.mark.benchmark(group="image: serialise and digest")
def test_layer_cache_record_round_trip(
    benchmark: Benchmark, cbt_image: Image, tmp_path: Path
) -> None:
    """Every cached layer of a rebuild goes through ``from_json`` (the blob store's index)."""
    store = BlobStore(tmp_path / "blobs")
    records = [layer.to_json() for layer in cbt_image.layers]

    def run() -> list[Layer]:
        return [Layer.from_json(r, store) for r in records]

    layers = benchmark(run)
    assert [x.digest for x in layers] == [x.digest for x in cbt_image.layers]


@pytest.mark.benchmark(group="image: serialise and digest")
def test_digest_parse(benchmark: Benchmark) -> None:
    text = str(_digest("x"))
    assert str(benchmark(Digest.parse, text)) == text
