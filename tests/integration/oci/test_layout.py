from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support.oci import tool

from wheeldock.oci import layout
from wheeldock.oci.image import Image

# -- against the reference tools -----------------------------------------------------------------


def run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{argv} failed: {proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def written_layout(tmp_path_factory: pytest.TempPathFactory, runnable_image: Image) -> Path:
    out = tmp_path_factory.mktemp("layout") / "lay"
    layout.write(runnable_image, out, "v1")
    return out


@pytest.mark.integration
def test_skopeo_inspects_and_copies_the_layout(
    written_layout: Path, runnable_image: Image, tmp_path: Path
) -> None:
    info = json.loads(run(tool("skopeo"), "inspect", f"oci:{written_layout}:v1"))
    assert info["Digest"] == str(runnable_image.digest)
    assert info["Layers"] == [str(x.digest) for x in runnable_image.layers]
    run(tool("skopeo"), "copy", f"oci:{written_layout}:v1", f"oci:{tmp_path / 'copy'}:c")
    copied = layout.read(tmp_path / "copy", "c")
    assert copied.digest == runnable_image.digest  # skopeo kept our bytes as they are


@pytest.mark.integration
def test_umoci_unpacks_the_layout(written_layout: Path, tmp_path: Path) -> None:
    run(
        tool("umoci"),
        "unpack",
        "--rootless",
        "--image",
        f"{written_layout}:v1",
        str(tmp_path / "b"),
    )
    rootfs = tmp_path / "b" / "rootfs"
    assert (rootfs / "app" / "hello.txt").read_text() == "hello from wheeldock\n"
    assert (rootfs / "bin" / "sh").is_symlink()
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["process"]["cwd"] == "/app"
    assert "GREETING=hi" in config["process"]["env"]


@pytest.mark.integration
def test_oci_image_tool_validates_the_layout(written_layout: Path) -> None:
    out = run(
        tool("oci-image-tool"),
        "validate",
        "--type",
        "image",
        "--ref",
        "name=v1",
        str(written_layout),
    )
    assert "Validation succeeded" in out
