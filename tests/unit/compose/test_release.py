"""compose.release.yaml: each released service pinned by digest, no build sections, the rest kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from wheeldock.compose import release
from wheeldock.errors import InvalidReference
from wheeldock.oci.digest import Digest

DIGEST = Digest.of_bytes(b"index")

COMPOSE = """\
services:
  api:
    build:
      context: .
      dockerfile: Dockerfile.api
    image: stack-api:wheeldock  # built by wheeldock
    ports: ["8000:8000"]
    environment:
      PORT: "8000"
  db:
    image: postgres:16
"""


def test_a_pushed_reference_is_pinned_by_its_digest() -> None:
    ref = "docker://127.0.0.1:5000/kiosk/api:v1"
    assert release.pinned(ref, DIGEST) == f"127.0.0.1:5000/kiosk/api@{DIGEST}"
    with pytest.raises(InvalidReference, match="registry"):
        release.pinned("oci:out:api", DIGEST)


def test_the_release_file_pins_each_service_drops_build_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE)
    image = f"registry.example/kiosk/api@{DIGEST}"
    written = release.write(compose, {"api": image, "worker": f"registry.example/w@{DIGEST}"})
    assert written == tmp_path / "compose.release.yaml"
    data = YAML(typ="safe").load(written.read_text())
    assert data["services"]["api"] == {
        "image": image,
        "ports": ["8000:8000"],
        "environment": {"PORT": "8000"},
    }
    assert data["services"]["db"] == {"image": "postgres:16"}  # not released: as written
    assert data["services"]["worker"] == {"image": f"registry.example/w@{DIGEST}"}
    assert compose.read_text() == COMPOSE  # the user's file is untouched
