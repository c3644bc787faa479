"""SBOMs: package URLs, the CycloneDX document, and the artifact that refers to its image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wheeldock.build import sbom
from wheeldock.debian import dpkg
from wheeldock.deps.pylock import LockedFile
from wheeldock.deps.wheelhouse import Artifact
from wheeldock.oci import layout
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import Image, ImageConfig, Platform
from wheeldock.oci.layer import TarEntry, build_layer

STATUS = """\
Package: libc6
Status: install ok installed
Architecture: arm64
Version: 2.36-9+deb12u9

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1

Package: gone
Status: deinstall ok config-files
Architecture: arm64
Version: 1.0-1
"""


def _image(store: BlobStore, files: dict[str, bytes], arch: str = "arm64") -> Image:
    layer = build_layer(
        [TarEntry.file(path, data) for path, data in files.items()],
        store=store,
        compression="gzip",
        mtime=0,
    )
    return Image(
        layers=(layer,), config=ImageConfig(cmd=("python3",)), platform=Platform("linux", arch)
    )


@pytest.mark.parametrize(
    ("name", "version", "want"),
    [
        ("PyYAML", "6.0.4", "pkg:pypi/pyyaml@6.0.4"),
        ("typing_extensions", "4.16.0", "pkg:pypi/typing-extensions@4.16.0"),
        ("pydantic-core", "2.50.5", "pkg:pypi/pydantic-core@2.50.5"),
    ],
)
def test_pypi_purl_normalises_the_name(name: str, version: str, want: str) -> None:
    assert sbom.purl_pypi(name, version) == want


def test_deb_purl_carries_arch_and_encodes_the_version() -> None:
    got = sbom.purl_deb("libc6", "2.36-9+deb12u9", "arm64", distro="bookworm")
    assert got == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=arm64&distro=bookworm"
    assert sbom.purl_deb("perl", "1:5.36.0-7", "all") == "pkg:deb/debian/perl@1:5.36.0-7?arch=all"


def test_status_packages_lists_installed_ones_with_their_architecture() -> None:
    got = sbom.status_packages(STATUS, default_arch="arm64")
    assert got == [
        sbom.DebPackage("libc6", "2.36-9+deb12u9", "arm64"),
        sbom.DebPackage("tzdata", "2024a-0+deb12u1", "all"),
    ]


def test_status_in_layers_reads_the_topmost_status(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    image = _image(store, {"var/lib/dpkg/status": STATUS.encode(), "etc/hostname": b"x\n"})
    assert dpkg.status_in_layers(image.layers) == STATUS
    assert dpkg.status_in_layers(_image(store, {"app/main.py": b""}).layers) is None


def _artifacts() -> list[Artifact]:
    wheel = LockedFile("PyYAML-6.0.4-cp311-cp311-manylinux_2_17_aarch64.whl", "ab" * 32)
    sdist = LockedFile("cffi-2.1.1.tar.gz", "cd" * 32)
    return [Artifact("PyYAML", "6.0.4", wheel, "wheel"), Artifact("cffi", "2.1.1", sdist, "sdist")]


def _doc(digest: Digest) -> dict[str, object]:
    comps = [
        *sbom.python_components(_artifacts()),
        *sbom.debian_components(sbom.status_packages(STATUS, default_arch="arm64"), "base"),
        *sbom.debian_components([sbom.DebPackage("libc6", "2.36-9+deb12u9", "arm64")], "base"),
        *sbom.debian_components(
            [sbom.DebPackage("libffi8", "3.4.4-1", "arm64", "ef" * 32)], "runtime-libs"
        ),
    ]
    return sbom.document(
        name="srv-img",
        image_digest=digest,
        platform="linux/arm64",
        components=comps,
        epoch=1700000000,
    )


def test_document_is_cyclonedx_1_5_with_every_component_once() -> None:
    digest = Digest.of_bytes(b"image")
    doc = _doc(digest)
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.5"
    comps = doc["components"]
    assert isinstance(comps, list)
    purls = [c["purl"] for c in comps]
    assert len(purls) == len(set(purls)) == 5  # libc6 given twice, listed once
    by_purl = {c["purl"]: c for c in comps}
    yaml = by_purl["pkg:pypi/pyyaml@6.0.4"]
    assert yaml["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    assert yaml["properties"] == [{"name": "wheeldock:layer", "value": "python"}]
    ffi = by_purl["pkg:deb/debian/libffi8@3.4.4-1?arch=arm64"]
    assert ffi["properties"][0]["value"] == "runtime-libs"
    assert ffi["hashes"][0]["content"] == "ef" * 32
    meta = doc["metadata"]
    assert isinstance(meta, dict)
    assert meta["component"]["version"] == str(digest)
    assert meta["timestamp"] == "2023-11-14T22:13:20Z"
    assert str(doc["serialNumber"]).startswith("urn:uuid:")


def test_document_bytes_are_deterministic_and_differ_per_image() -> None:
    a = sbom.to_bytes(_doc(Digest.of_bytes(b"one")))
    assert a == sbom.to_bytes(_doc(Digest.of_bytes(b"one")))
    b = sbom.to_bytes(_doc(Digest.of_bytes(b"two")))
    assert a != b
    assert json.loads(a)["serialNumber"] != json.loads(b)["serialNumber"]


def test_artifact_refers_to_its_subject_with_the_cyclonedx_type(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    subject = _image(store, {"app/x": b"1"})
    data = b'{"bomFormat": "CycloneDX"}\n'
    art = sbom.artifact(data, subject, store, created="2023-11-14T22:13:20Z")
    manifest = json.loads(art.manifest_bytes())
    assert manifest["artifactType"] == sbom.MEDIA_TYPE
    assert manifest["subject"]["digest"] == str(subject.digest)
    assert manifest["subject"]["size"] == len(subject.manifest_bytes())
    assert manifest["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == sbom.MEDIA_TYPE and layer["digest"] == str(Digest.of_bytes(data))
    assert art.config_bytes() == b"{}"


def test_referrers_index_lists_artifacts_with_their_type(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    subject = _image(store, {"app/x": b"1"})
    art = sbom.artifact(b"{}", subject, store, created="2023-11-14T22:13:20Z")
    index = json.loads(sbom.referrers_index([art]).manifest_bytes())
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    (desc,) = index["manifests"]
    assert desc["digest"] == str(art.digest)
    assert desc["artifactType"] == sbom.MEDIA_TYPE
    assert "platform" not in desc
    assert sbom.referrers_tag(subject.digest) == f"sha256-{subject.digest.hex}"


def test_sbom_attached_in_a_layout_is_found_through_the_referrers_tag(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    subject = _image(store, {"app/x": b"1"})
    oci = tmp_path / "oci"
    layout.write(subject, oci, "app")
    data = sbom.to_bytes(_doc(subject.digest))
    art = sbom.artifact(data, subject, store, created="2023-11-14T22:13:20Z")
    layout.write(sbom.referrers_index([art]), oci, sbom.referrers_tag(subject.digest))
    assert sbom.read_attached(oci, subject.digest) == data
    assert sorted(layout.tags(oci)) == sorted(["app", f"sha256-{subject.digest.hex}"])


def test_reading_an_sbom_that_was_never_attached_names_the_image(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    subject = _image(store, {"app/x": b"1"})
    layout.write(subject, tmp_path / "oci", "app")
    with pytest.raises(Exception, match=subject.digest.hex[:12]):
        sbom.read_attached(tmp_path / "oci", subject.digest)


def test_write_file_puts_the_sbom_beside_the_image(tmp_path: Path) -> None:
    path = sbom.write_file(b"{}\n", tmp_path / "out", "srv-img-arm64")
    assert path == tmp_path / "out" / "srv-img-arm64.cdx.json"
    assert path.read_bytes() == b"{}\n"
