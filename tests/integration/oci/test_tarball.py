from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support.oci import tool

from wheeldock.oci import layout, tarball
from wheeldock.oci.image import Image

# -- against skopeo ------------------------------------------------------------------------------


@pytest.mark.integration
def test_skopeo_reads_and_copies_the_archive(runnable_image: Image, tmp_path: Path) -> None:
    archive = tmp_path / "img.tar"
    tarball.write(runnable_image, archive, "wheeldock-test/oci:v1")
    proc = subprocess.run(
        [tool("skopeo"), "inspect", f"docker-archive:{archive}"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    # skopeo's docker-archive source decompresses layers and names them by diff_id
    assert info["Layers"] == [str(x.diff_id) for x in runnable_image.layers]
    proc = subprocess.run(
        [tool("skopeo"), "copy", f"docker-archive:{archive}", f"oci:{tmp_path / 'lay'}:v1"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    copied = layout.read(tmp_path / "lay", "v1")
    assert [x.diff_id for x in copied.layers] == [x.diff_id for x in runnable_image.layers]  # type: ignore[union-attr]
