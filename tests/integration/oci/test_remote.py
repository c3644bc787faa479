from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from support.oci import EPOCH, tool
from support.registry import Registry

from wheeldock.errors import WheeldockError
from wheeldock.oci import image, mutate, remote
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import Image, Index, Platform
from wheeldock.oci.layer import Layer, TarEntry, build_layer, cached_layer
from wheeldock.oci.remote import RegistryError

#: nothing here may touch the real cache (remote.read and publish default to it)
pytestmark = pytest.mark.usefixtures("cache_in_tmp")


# -- integration: the real registries --------------------------------------------------------------


def skopeo_inspect(reg: Registry, ref: str, *, raw: bool = False) -> dict[str, object]:
    argv = [tool("skopeo"), "inspect", *reg.skopeo_args()]
    if raw:
        argv.append("--raw")
    proc = subprocess.run([*argv, ref], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, object] = json.loads(proc.stdout)
    return data


def uploads(reg: Registry, repo: str, since: int) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in reg.requests()[since:]
        if f"/v2/{repo}/blobs/uploads" in r.path and r.method in ("POST", "PUT", "PATCH")
    ]


@pytest.mark.integration
def test_push_then_push_again_uploads_nothing(registry: Registry, runnable_image: Image) -> None:
    ref = registry.ref("wheeldock-test/push", "v1")
    first = remote.push(runnable_image, ref)
    assert (first.blobs_written, first.blobs_skipped) == (3, 0)
    assert first.digest == runnable_image.digest
    assert first.bytes_written == runnable_image.size
    info = skopeo_inspect(registry, ref)
    assert info["Digest"] == str(runnable_image.digest)
    assert info["Layers"] == [str(x.digest) for x in runnable_image.layers]

    mark = len(registry.requests())
    second = remote.push(runnable_image, ref)
    assert (second.blobs_written, second.blobs_skipped) == (0, 3)
    assert uploads(registry, "wheeldock-test/push", mark) == []
    heads = [r for r in registry.requests()[mark:] if r.method == "HEAD"]
    assert len(heads) == 3 and all(r.status == 200 for r in heads)


@pytest.mark.integration
@pytest.mark.parametrize("how", ["a flipped byte", "cut short"])
def test_a_push_of_a_damaged_cached_layer_sends_the_layer_made_again(
    registry: Registry, store: BlobStore, tmp_path: Path, how: str
) -> None:
    def build() -> Layer:
        content = b"x" * 4096 + how.encode()  # a blob the session's registry does not have yet
        return build_layer([TarEntry.file("app/x", content)], store=store, mtime=EPOCH)

    made = cached_layer(store, "push-damaged", build)
    blob = store.path(made.digest)
    data = bytearray(blob.read_bytes())
    if how == "a flipped byte":
        data[len(data) // 2] ^= 0x01
    else:
        del data[len(data) // 2 :]
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    img = mutate.append_layers(image.empty(), [cached_layer(store, "push-damaged", build)])
    ref = registry.ref("wheeldock-test/damaged", how.replace(" ", "-"))
    assert remote.push(img, ref).digest == img.digest
    out = tmp_path / "copied"  # skopeo checks every blob it copies against its descriptor
    subprocess.run(
        [tool("skopeo"), "copy", "-q", "--src-tls-verify=false", ref, f"dir:{out}"],
        check=True, timeout=120,
    )  # fmt: skip
    assert Digest.of_bytes((out / made.digest.hex).read_bytes()) == made.digest


@pytest.mark.integration
def test_chunked_upload_uses_patch(registry: Registry, runnable_image: Image) -> None:
    ref = registry.ref("wheeldock-test/chunked", "v1")
    mark = len(registry.requests())
    result = remote.push(runnable_image, ref, upload=remote.Upload(chunk_size=256 * 1024))
    assert result.blobs_written == 3
    patches = [
        u for u in uploads(registry, "wheeldock-test/chunked", mark) if u.startswith("PATCH")
    ]
    biggest = max(x.size for x in runnable_image.layers)
    assert len(patches) >= biggest // (256 * 1024)
    assert skopeo_inspect(registry, ref)["Digest"] == str(runnable_image.digest)


@pytest.mark.integration
def test_cross_repository_mount_skips_the_upload(registry: Registry, store: BlobStore) -> None:
    lay = build_layer([TarEntry.file("m/x", b"mount me" * 1000)], store=store, mtime=EPOCH)
    img = mutate.append_layers(image.empty(), [lay])
    remote.push(img, registry.ref("wheeldock-test/mount-src"))
    mark = len(registry.requests())
    result = remote.push(
        img,
        registry.ref("wheeldock-test/mount-dst"),
        upload=remote.Upload(mount_from="wheeldock-test/mount-src"),
    )
    assert result.blobs_written == 0 and result.blobs_skipped == 2
    posts = uploads(registry, "wheeldock-test/mount-dst", mark)
    assert posts and all("mount=" in p for p in posts)


@pytest.mark.integration
def test_read_back_is_lazy_and_matches(
    registry: Registry, runnable_image: Image, tmp_path: Path
) -> None:
    ref = registry.ref("wheeldock-test/read", "v1")
    remote.push(runnable_image, ref)
    store = BlobStore(tmp_path / "pulled")
    read = remote.read(ref, store)
    assert isinstance(read, Image) and read.digest == runnable_image.digest
    assert list((store.root / "sha256").iterdir()) == []  # nothing downloaded yet
    top = read.layers[-1]
    assert Digest.of_bytes(top.compressed().read()) == runnable_image.layers[-1].digest
    assert store.has(top.digest)
    # a pulled base pushed to the same registry needs no download at all
    again = remote.push(
        mutate.with_config(read, user="0"), registry.ref("wheeldock-test/read", "v2")
    )
    assert again.blobs_written == 1  # only the new config
    assert not store.has(read.layers[0].digest)


@pytest.mark.integration
def test_index_push_and_read(registry: Registry, runnable_image: Image) -> None:
    arm = mutate.with_platform(runnable_image, Platform("linux", "arm64"))
    idx = image.index_of(runnable_image, arm)
    ref = registry.ref("wheeldock-test/multi", "v1")
    result = remote.push(idx, ref)
    assert result.digest == idx.digest
    raw = skopeo_inspect(registry, ref, raw=True)
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    read = remote.read(ref)
    assert isinstance(read, Index) and read.digest == idx.digest
    one = remote.read(ref, platform=Platform("linux", "arm64"))
    assert isinstance(one, Image) and one.digest == arm.digest


@pytest.mark.integration
def test_auth_registry_with_tls_and_htpasswd(
    registry_auth: Registry, runnable_image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no stray credentials
    ref = registry_auth.ref("wheeldock-test/auth", "v1")
    with pytest.raises(RegistryError, match="refused the credentials"):
        remote.push(runnable_image, ref, ca_file=registry_auth.ca_file)
    assert registry_auth.username and registry_auth.password
    result = remote.push(
        runnable_image,
        ref,
        auth=(registry_auth.username, registry_auth.password),
        ca_file=registry_auth.ca_file,
    )
    assert result.blobs_written == 3
    assert skopeo_inspect(registry_auth, ref)["Digest"] == str(runnable_image.digest)
    # the same credentials from Docker's config.json
    token = base64.b64encode(f"{registry_auth.username}:{registry_auth.password}".encode()).decode()
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {registry_auth.host: {"auth": token}}})
    )
    again = remote.push(runnable_image, ref, ca_file=registry_auth.ca_file)
    assert again.blobs_skipped == 3


@pytest.mark.integration
def test_tls_registry_without_its_ca_is_refused_with_the_fix(
    registry_auth: Registry, runnable_image: Image
) -> None:
    with pytest.raises(WheeldockError) as info:
        remote.push(runnable_image, registry_auth.ref("wheeldock-test/noca"), auth=("a", "b"))
    assert "CA file" in (info.value.fix or "")
