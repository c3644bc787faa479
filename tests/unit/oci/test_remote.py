from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from support.oci import EPOCH

from wheeldock.errors import WheeldockError
from wheeldock.oci import image, mutate, remote
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.image import Image
from wheeldock.oci.layer import Layer, TarEntry, build_layer
from wheeldock.oci.remote import Credentials, RegistryError, credentials_for

# -- unit: a fake registry behind httpx.MockTransport --------------------------------------------

#: nothing here may touch the real cache (remote.read and publish default to it)
pytestmark = pytest.mark.usefixtures("cache_in_tmp")


def lazy_image(store: BlobStore) -> tuple[Image, list[str]]:
    """An image whose layer records every time its bytes are asked for."""
    real = build_layer([TarEntry.file("app/x", b"x")], store=store, mtime=EPOCH)
    reads: list[str] = []

    def locate() -> Path:
        reads.append("read")
        return real.blob_path()

    lazy = Layer(real.digest, real.diff_id, real.size, real.media_type, locate=locate)
    return mutate.append_layers(image.empty(), [lazy]), reads


def test_bearer_challenge_gets_a_token_and_existing_blobs_are_not_read(store: BlobStore) -> None:
    img, reads = lazy_image(store)
    seen: list[tuple[str, str, str | None]] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append((req.method, str(req.url), req.headers.get("authorization")))
        if req.url.host == "auth.example":
            assert req.url.params["scope"] == "repository:team/app:pull,push"
            assert req.url.params["service"] == "reg.example"
            assert req.headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
            return httpx.Response(200, json={"token": "T0K"})
        if req.headers.get("authorization") != "Bearer T0K":
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://auth.example/token",'
                    'service="reg.example",scope="repository:team/app:pull"'
                },
            )
        if req.method == "HEAD":
            return httpx.Response(200)
        if req.method == "PUT" and "/manifests/" in req.url.path:
            assert req.headers["content-type"] == img.media_type
            return httpx.Response(201, headers={"Docker-Content-Digest": str(img.digest)})
        return httpx.Response(500)

    result = remote.push(
        img,
        "docker://reg.example/team/app:1",
        auth=("u", "p"),
        transport=httpx.MockTransport(handler),
    )
    assert reads == []  # the registry had the layer: its bytes were never touched
    assert (result.blobs_written, result.blobs_skipped) == (0, 2)
    assert result.digest == img.digest
    assert seen[0][0] == "GET" and seen[0][1] == "https://reg.example/v2/"
    assert any(url.startswith("https://auth.example/token") for _, url, _ in seen)


def test_a_mount_asks_a_token_that_may_also_pull_the_repository_mounted_from(
    store: BlobStore,
) -> None:
    img, reads = lazy_image(store)
    scopes: list[list[str]] = []
    mounts: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.host == "auth.example":
            scopes.append(req.url.params.get_list("scope"))
            return httpx.Response(200, json={"token": "T0K"})
        if req.headers.get("authorization") != "Bearer T0K":
            challenge = 'Bearer realm="https://auth.example/token",service="reg.example"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        if req.method == "HEAD":
            return httpx.Response(404)
        if req.method == "POST":
            mounts.append(req.url.params["from"])
            return httpx.Response(201)  # mounted: no bytes to send
        assert req.method == "PUT" and "/manifests/" in req.url.path
        return httpx.Response(201, headers={"Docker-Content-Digest": str(img.digest)})

    remote.push(
        img,
        "docker://reg.example/team/app:1",
        auth=("u", "p"),
        upload=remote.Upload(mount_from="team/cache"),
        transport=httpx.MockTransport(handler),
    )
    assert scopes and all(
        s == ["repository:team/app:pull,push", "repository:team/cache:pull"] for s in scopes
    )
    assert mounts == ["team/cache", "team/cache"] and reads == []


def test_plain_http_is_refused_for_a_remote_host(store: BlobStore) -> None:
    img, _ = lazy_image(store)

    def handler(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("TLS handshake failed", request=req)

    with pytest.raises(WheeldockError) as info:
        remote.push(img, "docker://reg.example/app:1", transport=httpx.MockTransport(handler))
    assert "--insecure" in (info.value.fix or "") and "ca-file" in (info.value.fix or "")


def test_basic_challenge_without_credentials_says_to_log_in(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    img, _ = lazy_image(store)

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})

    with pytest.raises(RegistryError) as info:
        remote.push(img, "docker://reg.example/app:1", transport=httpx.MockTransport(handler))
    assert "docker login reg.example" in (info.value.fix or "")


def test_credentials_come_from_docker_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
                    "127.0.0.1:5000": {"auth": base64.b64encode(b"me:x:y").decode()},
                }
            }
        )
    )
    assert credentials_for("docker.io", config) == Credentials("hub", "pw")
    assert credentials_for("127.0.0.1:5000", config) == Credentials("me", "x:y")
    assert credentials_for("other.io", config) is None
    assert credentials_for("other.io", tmp_path / "absent.json") is None
