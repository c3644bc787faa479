from __future__ import annotations

from pathlib import Path

import pytest

from wheeldock.errors import InvalidReference
from wheeldock.oci import layout, tarball
from wheeldock.oci.image import Image
from wheeldock.oci.publish import publish, publish_all

#: nothing here may touch the real cache (remote.read and publish default to it)
pytestmark = pytest.mark.usefixtures("cache_in_tmp")


def test_publish_dispatches_by_transport_and_repeats(runnable_image: Image, tmp_path: Path) -> None:
    results = publish_all(
        runnable_image,
        [f"oci:{tmp_path / 'lay'}:v1", f"docker-archive:{tmp_path / 'img.tar'}:cb/api:1"],
    )
    assert [r.ref for r in results] == [
        f"oci:{tmp_path / 'lay'}:v1",
        f"docker-archive:{tmp_path / 'img.tar'}:cb/api:1",
    ]
    assert all(r.digest == runnable_image.digest for r in results)
    assert layout.read(tmp_path / "lay", "v1").digest == runnable_image.digest
    assert tarball.read(tmp_path / "img.tar").config_bytes() == runnable_image.config_bytes()


def test_publish_rejects_an_unknown_transport(runnable_image: Image) -> None:
    with pytest.raises(InvalidReference):
        publish(runnable_image, "dir:/tmp/x")
