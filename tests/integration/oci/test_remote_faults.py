"""Pushes through a fault-injecting proxy on 127.0.0.1 in front of the real registry: one
request in ten is answered 500 (the registry never sees it) or cut mid-response (the registry
did the work, the answer is lost). The push must still complete with the right digests."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from support.oci import tool
from support.proxy import RandomFaults, serve
from support.registry import Registry

from wheeldock.oci import remote
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.image import Image
from wheeldock.oci.remote import RetryPolicy

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cache_in_tmp")]


@pytest.fixture
def faulty(registry: Registry) -> Iterator[tuple[Registry, RandomFaults]]:
    """The session registry behind a proxy that fails one request in ten (seed 25: a 500 on
    the 2nd request, cuts on the 6th and 8th, whatever order threads take)."""
    faults = RandomFaults(seed=25)
    for proxy in serve(registry, faults):
        yield proxy, faults


def skopeo_digests(reg: Registry, ref: str) -> tuple[str, list[str]]:
    argv = [tool("skopeo"), "inspect", *reg.skopeo_args(), ref]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    return info["Digest"], info["Layers"]


FAST = RetryPolicy(first_delay=0.02, max_delay=0.2, seconds=30, attempts=8)


@pytest.mark.parametrize("chunk_size", [None, 64 * 1024], ids=["monolithic", "chunked"])
def test_push_through_a_failing_proxy_completes_with_the_right_digests(
    faulty: tuple[Registry, RandomFaults],
    registry: Registry,
    runnable_image: Image,
    chunk_size: int | None,
) -> None:
    proxy, faults = faulty
    tag = "chunked" if chunk_size else "monolithic"
    ref = proxy.ref(f"wheeldock-test/faults-{tag}", "v1")
    result = remote.push(
        runnable_image, ref, upload=remote.Upload(chunk_size=chunk_size, retry=FAST)
    )
    assert result.digest == runnable_image.digest
    assert {"500", "cut"} <= {fate for _, _, fate in faults.seen}
    assert result.blobs_written + result.blobs_skipped == 3

    # the registry itself (not the proxy) has the manifest and every blob
    direct = registry.ref(f"wheeldock-test/faults-{tag}", "v1")
    digest, layers = skopeo_digests(registry, direct)
    assert digest == str(runnable_image.digest)
    assert layers == [str(lay.digest) for lay in runnable_image.layers]
    # and reading back through the failing proxy gets the same bytes
    pulled = remote.read(ref, BlobStore(registry.root.parent / f"pulled-{tag}"), retry=FAST)
    assert isinstance(pulled, Image) and pulled.digest == runnable_image.digest
    for got, want in zip(pulled.layers, runnable_image.layers, strict=True):
        assert got.compressed().read() == want.compressed().read()
