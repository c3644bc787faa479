"""``oci.open``: one way to open any image reference (layout, docker-archive; the engine and
registries are read in the integration tests of check and build)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.oci import EPOCH

from wheeldock.errors import NotFound
from wheeldock.oci import image, layout, mutate, tarball
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.image import Platform
from wheeldock.oci.layer import TarEntry, build_layer
from wheeldock.oci.open import choose, open_image

ARM64 = Platform("linux", "arm64")
S390X = Platform("linux", "s390x")
AMD64 = Platform("linux", "amd64")


def _image(store: BlobStore, text: bytes, platform: Platform = AMD64) -> image.Image:
    lay = build_layer([TarEntry.file("app/v.txt", text)], store=store, mtime=EPOCH)
    return mutate.with_platform(mutate.append_layers(image.empty(), [lay]), platform)


def test_an_index_in_a_layout_gives_the_image_for_the_platform_asked(
    store: BlobStore, tmp_path: Path
) -> None:
    amd, arm = _image(store, b"amd"), _image(store, b"arm", ARM64)
    layout.write(image.index_of(amd, arm), tmp_path / "lay", "multi")
    assert open_image(f"oci:{tmp_path / 'lay'}:multi", platform=ARM64).digest == arm.digest
    with pytest.raises(NotFound, match="no image for linux/s390x"):
        open_image(f"oci:{tmp_path / 'lay'}:multi", platform=S390X)


def test_without_a_platform_an_index_gives_this_hosts_image_else_its_first(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    amd, arm = _image(store, b"amd"), _image(store, b"arm", ARM64)
    index = image.index_of(amd, arm)
    monkeypatch.setattr(Platform, "host", classmethod(lambda cls: ARM64))
    assert choose(index).digest == arm.digest
    monkeypatch.setattr(Platform, "host", classmethod(lambda cls: S390X))
    assert choose(index).digest == index.manifests[0].digest
    assert choose(amd, S390X) is amd  # a single image is taken as it is


def test_a_docker_archive_opens_as_the_image_written(store: BlobStore, tmp_path: Path) -> None:
    img = _image(store, b"x")
    tarball.write(img, tmp_path / "img.tar", "t/x:1", store)
    opened = open_image(f"docker-archive:{tmp_path / 'img.tar'}", BlobStore(tmp_path / "other"))
    assert [lay.diff_id for lay in opened.layers] == [lay.diff_id for lay in img.layers]
    assert opened.config_bytes() == img.config_bytes()
