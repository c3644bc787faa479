"""The registry cache's pure part: entry tags, entry manifests and reading them back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from wheeldock.errors import InvalidCacheEntry, InvalidReference
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.cache import (
    ARTIFACT_TYPE,
    RegistryCache,
    cache_name,
    entry_manifest,
    entry_tag,
    parse_entry,
)
from wheeldock.oci.digest import Digest
from wheeldock.oci.layer import MEDIA_TYPE_GZIP, Layer

KEY = "sha256:" + "ab" * 32


def a_layer() -> Layer:
    return Layer(
        Digest.of_bytes(b"blob"),
        Digest.of_bytes(b"tar"),
        4,
        MEDIA_TYPE_GZIP,
        lambda: Path("/nonexistent"),
        {"org.opencontainers.image.title": "deps: idna 3.7"},
        uncompressed_size=3,
    )


def test_an_entry_is_tagged_wd_and_the_keys_hex_or_its_sha256() -> None:
    assert entry_tag(KEY) == "wd-" + "ab" * 32
    other = "layer/tar-file/v1/x"
    assert entry_tag(other) == "wd-" + hashlib.sha256(other.encode()).hexdigest()


def test_a_layer_entry_reads_back_as_the_layer_descriptor_and_diff_id() -> None:
    layer = a_layer()
    raw = entry_manifest(KEY, layer=layer)
    manifest = json.loads(raw)
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert manifest["layers"][0]["digest"] == str(layer.digest)
    assert entry_manifest(KEY, layer=layer) == raw  # the same inputs, the same bytes
    entry = parse_entry(KEY, raw)
    assert entry.value is None
    assert entry.layer == layer.to_json()


def test_a_record_entry_reads_back_as_its_value() -> None:
    raw = entry_manifest(KEY, value={"packages": ["libgomp1"]})
    entry = parse_entry(KEY, raw)
    assert entry.layer is None and entry.value == {"packages": ["libgomp1"]}


def _edited(edit: str) -> bytes:
    manifest = json.loads(entry_manifest(KEY, layer=a_layer()))
    if edit == "artifact type":
        manifest["artifactType"] = "application/vnd.example"
    elif edit == "other key":
        manifest["annotations"]["dev.wheeldock.cache.key"] = "sha256:" + "cd" * 32
    elif edit == "no diff_id":
        del manifest["annotations"]["dev.wheeldock.cache.diff_id"]
    elif edit == "bad digest":
        manifest["layers"][0]["digest"] = "sha256:nothex"
    elif edit == "two layers":
        manifest["layers"] *= 2
    return json.dumps(manifest).encode()


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        *(
            _edited(e)
            for e in ("artifact type", "other key", "no diff_id", "bad digest", "two layers")
        ),
    ],
    ids=["not json", "a list", "artifact type", "other key", "no diff_id", "bad digest", "2"],
)
def test_an_entry_wheeldock_did_not_write_for_that_key_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidCacheEntry, match=entry_tag(KEY)):
        parse_entry(KEY, raw)


def test_the_cache_is_a_repository_without_a_tag() -> None:
    assert cache_name("docker://127.0.0.1:5000/team/cache").repository == "team/cache"
    with pytest.raises(InvalidReference, match="without a tag"):
        cache_name("docker://127.0.0.1:5000/team/cache:v1")


def test_a_registry_that_fails_is_one_warning_then_no_more_requests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(403 if request.url.path == "/v2/" else 500)

    cache = RegistryCache(
        "docker://127.0.0.1:5999/cache",
        store=BlobStore(tmp_path / "blobs"),
        transport=httpx.MockTransport(answer),
    )
    with cache:
        assert cache.lookup(KEY) is None
        assert cache.lookup_many([KEY, "sha256:" + "cd" * 32]) == {}
    assert len(asked) == 1  # after the first failure, nothing more is asked
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "cannot be used" in warnings[0].getMessage()
    assert cache.stats.misses == 3 and cache.stats.hits == 0
