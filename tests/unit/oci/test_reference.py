from __future__ import annotations

from pathlib import Path

import pytest

from wheeldock.errors import InvalidReference
from wheeldock.oci.digest import Digest
from wheeldock.oci.reference import (
    ArchiveRef,
    DaemonRef,
    Name,
    OciRef,
    RegistryRef,
    parse,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected", "round_trip"),
    [
        ("oci:out/layout", OciRef(Path("out/layout")), "oci:out/layout"),
        ("oci:/tmp/l:v1.2", OciRef(Path("/tmp/l"), "v1.2"), "oci:/tmp/l:v1.2"),
        ("docker-archive:img.tar", ArchiveRef(Path("img.tar")), "docker-archive:img.tar"),
        (
            "docker-archive:img.tar:cb/api:1",
            ArchiveRef(Path("img.tar"), "cb/api:1"),
            "docker-archive:img.tar:cb/api:1",
        ),
        (
            "docker-archive:img.tar:api",
            ArchiveRef(Path("img.tar"), "api:latest"),
            "docker-archive:img.tar:api:latest",
        ),
        ("docker-daemon:api:dev", DaemonRef("api:dev"), "docker-daemon:api:dev"),
        (
            "docker-daemon:localhost:5000/x/y:2",
            DaemonRef("localhost:5000/x/y:2"),
            "docker-daemon:localhost:5000/x/y:2",
        ),
        (
            "docker://127.0.0.1:5000/cb-totem/api:1.0",
            RegistryRef(Name("127.0.0.1:5000", "cb-totem/api", "1.0")),
            "docker://127.0.0.1:5000/cb-totem/api:1.0",
        ),
        (
            "docker://python",
            RegistryRef(Name("docker.io", "library/python", "latest")),
            "docker://docker.io/library/python:latest",
        ),
        (
            f"docker://ghcr.io/o/r@{DIGEST}",
            RegistryRef(Name("ghcr.io", "o/r", None, Digest.parse(DIGEST))),
            f"docker://ghcr.io/o/r@{DIGEST}",
        ),
        (
            f"docker://localhost/r:t@{DIGEST}",
            RegistryRef(Name("localhost", "r", "t", Digest.parse(DIGEST))),
            f"docker://localhost/r:t@{DIGEST}",
        ),
    ],
)
def test_accepted_forms_parse_and_round_trip(text: str, expected: object, round_trip: str) -> None:
    parsed = parse(text)
    assert parsed == expected
    assert str(parsed) == round_trip
    assert parse(str(parsed)) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "",
        "layout",
        "dir:/tmp/x",
        "docker:registry/x",
        "oci:",
        "oci:dir:bad tag",
        "docker://Upper/Case",
        "docker://host:5000/repo:bad/tag",
        "docker://repo@sha256:short",
        "docker-daemon:x@" + DIGEST,
        "docker://-bad-/repo",
    ],
)
def test_bad_references_list_the_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse(text)
    assert "oci:DIR[:TAG]" in (info.value.fix or "")
    assert "docker://" in (info.value.fix or "")


def test_registry_reference_uses_digest_over_tag_for_the_api() -> None:
    ref = parse(f"docker://h.io/r:t@{DIGEST}")
    assert isinstance(ref, RegistryRef)
    assert ref.name.reference == DIGEST
    local = parse("docker://localhost:5000/r")
    assert isinstance(local, RegistryRef) and local.name.is_local
    assert not parse("docker://h.io/r").name.is_local  # type: ignore[union-attr]
