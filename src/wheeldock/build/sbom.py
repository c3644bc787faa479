"""Software bills of materials: one CycloneDX 1.5 JSON document per image, attached to it.

Why CycloneDX rather than SPDX 2.3: a component carries its package URL (``purl``) and its
hashes as plain fields, so a scanner (grype, trivy, dependency-track) matches it against
advisories without the ``externalRefs``/``relationships`` graph SPDX needs for the same facts,
and the document stays small enough to diff by eye.

What goes in (all known at build time, nothing is guessed from file names):

- the Python distributions the lock pins, each with ``pkg:pypi/NAME@VERSION`` and the sha256 of
  the exact file installed (the wheel chosen for the platform, or the sdist built from);
- the Debian packages of the base (its dpkg status) and of the runtime-libraries layer (from
  Debian's Packages index, with the .deb's sha256), each ``pkg:deb/debian/NAME@VERSION?arch=…``.

The document is deterministic: its serial number and timestamp come from the image digest and
``SOURCE_DATE_EPOCH``, so the same image gets the same SBOM bytes.

Attaching (OCI 1.1): the SBOM becomes an *artifact manifest* — an image manifest with
``artifactType`` ``application/vnd.cyclonedx+json``, the empty config and ``subject`` pointing to
the image manifest. Registries without the referrers API (Debian's docker-registry 2.8) are served
by the distribution spec's fallback, which wheeldock always writes: a tag ``sha256-<hex>`` (the
subject's digest) naming an index that lists the referrers. An OCI layout gets the same tag.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from packaging.utils import canonicalize_name

from wheeldock import __version__
from wheeldock.debian import dpkg
from wheeldock.deps.wheelhouse import Artifact
from wheeldock.errors import NotFound
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import (
    ANNOTATION_REF_NAME,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    Image,
    Index,
    rfc3339,
)
from wheeldock.oci.layer import Layer

MEDIA_TYPE = "application/vnd.cyclonedx+json"
MEDIA_TYPE_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
SPEC_VERSION = "1.5"
FILENAME = "sbom.cdx.json"

Origin = Literal["python", "base", "runtime-libs"]


@dataclass(frozen=True)
class DebPackage:
    """An installed Debian package: name, version, architecture, and the .deb's sha256 if known."""

    name: str
    version: str
    arch: str
    sha256: str | None = None


@dataclass(frozen=True)
class Component:
    """One CycloneDX component (a library), with where in the image it comes from."""

    name: str
    version: str
    purl: str
    origin: Origin
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": "library",
            "bom-ref": self.purl,
            "name": self.name,
            "version": self.version,
            "purl": self.purl,
            "properties": [{"name": "wheeldock:layer", "value": self.origin}],
        }
        if self.sha256:
            data["hashes"] = [{"alg": "SHA-256", "content": self.sha256}]
        return data


# -- package URLs -------------------------------------------------------------------------------


def _enc(text: str) -> str:
    # purl percent-encodes everything but unreserved characters; ':' (a Debian epoch) may stay.
    return quote(text, safe=".-_~:")


def purl_pypi(name: str, version: str) -> str:
    """``pkg:pypi/NAME@VERSION`` with the name normalised as the purl spec says (PEP 503)."""
    return f"pkg:pypi/{canonicalize_name(name)}@{_enc(version)}"


def purl_deb(name: str, version: str, arch: str, *, distro: str | None = None) -> str:
    """``pkg:deb/debian/NAME@VERSION?arch=ARCH`` (``&distro=`` when known)."""
    qualifiers = f"arch={_enc(arch)}" + (f"&distro={_enc(distro)}" if distro else "")
    return f"pkg:deb/debian/{_enc(name)}@{_enc(version)}?{qualifiers}"


# -- components ---------------------------------------------------------------------------------


def python_components(artifacts: Iterable[Artifact]) -> list[Component]:
    """The pinned distributions, hashed by the file the image was installed from."""
    return [
        Component(a.name, a.version, purl_pypi(a.name, a.version), "python", a.sha256)
        for a in artifacts
    ]


def debian_components(
    packages: Iterable[DebPackage], origin: Origin, *, distro: str | None = None
) -> list[Component]:
    return [
        Component(
            p.name, p.version, purl_deb(p.name, p.version, p.arch, distro=distro), origin, p.sha256
        )
        for p in packages
    ]


def status_packages(text: str, *, default_arch: str) -> list[DebPackage]:
    """The installed packages in a dpkg status file (``Architecture: all`` kept as such)."""
    return sorted(
        (
            DebPackage(p.package, p.version, p.fields.get("Architecture") or default_arch)
            for p in dpkg.installed(dpkg.parse_status(text))
        ),
        key=lambda d: d.name,
    )


# -- the document -------------------------------------------------------------------------------


def document(
    *,
    name: str,
    image_digest: Digest,
    platform: str,
    components: Sequence[Component],
    epoch: int,
) -> dict[str, Any]:
    """A CycloneDX 1.5 BOM for the image ``image_digest`` (pure; deterministic)."""
    serial = uuid.UUID(bytes=hashlib.sha256(f"{image_digest}\0{platform}".encode()).digest()[:16])
    seen: set[str] = set()
    unique = []
    for c in sorted(components, key=lambda c: (c.origin != "python", c.purl)):
        if c.purl not in seen:  # a package in both base and libs layers is listed once
            seen.add(c.purl)
            unique.append(c)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.UUID(int=serial.int, version=5)}",
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(epoch),
            "tools": {
                "components": [{"type": "application", "name": "wheeldock", "version": __version__}]
            },
            "component": {
                "type": "container",
                "bom-ref": str(image_digest),
                "name": name,
                "version": str(image_digest),
                "properties": [{"name": "oci:platform", "value": platform}],
            },
        },
        "components": [c.to_json() for c in unique],
    }


def to_bytes(doc: dict[str, Any]) -> bytes:
    """The document as written and attached: indented (people read SBOMs), stable key order."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def parse(data: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(data)
    return doc


# -- attaching ----------------------------------------------------------------------------------


def referrers_tag(subject: Digest) -> str:
    """The distribution spec's fallback tag for the referrers of ``subject``."""
    return f"{subject.algorithm}-{subject.hex}"


def artifact(sbom: bytes, subject: Image, store: BlobStore, *, created: str) -> Image:
    """The SBOM as an OCI artifact manifest whose ``subject`` is ``subject``'s manifest.

    The SBOM bytes go into ``store`` (the layer reads them from there when pushed or written).
    """
    blob = store.put_bytes(sbom)
    layer = Layer.from_store(
        store,
        blob.digest,
        diff_id=blob.digest,
        media_type=MEDIA_TYPE,
        size=len(sbom),
        annotations={"org.opencontainers.image.title": FILENAME},
    )
    subject_bytes = subject.manifest_bytes()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "artifactType": MEDIA_TYPE,
        "config": {
            "mediaType": MEDIA_TYPE_EMPTY,
            "digest": str(Digest.of_bytes(EMPTY_CONFIG)),
            "size": len(EMPTY_CONFIG),
        },
        "layers": [layer.descriptor()],
        "subject": {
            "mediaType": subject.media_type,
            "digest": str(Digest.of_bytes(subject_bytes)),
            "size": len(subject_bytes),
        },
        "annotations": {"org.opencontainers.image.created": created},
    }
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return Image.from_raw(raw, EMPTY_CONFIG, (layer,))


def referrers_index(artifacts: Sequence[Image]) -> Index:
    """The fallback tag's index: one descriptor per artifact, with its ``artifactType``."""
    manifests = []
    for art in artifacts:
        data = art.manifest_json()
        raw = art.manifest_bytes()
        desc: dict[str, Any] = {
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": str(Digest.of_bytes(raw)),
            "size": len(raw),
            "artifactType": data.get("artifactType", MEDIA_TYPE),
        }
        if data.get("annotations"):
            desc["annotations"] = data["annotations"]
        manifests.append(desc)
    body = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": manifests}
    raw_index = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return Index(tuple(artifacts), raw_manifest=raw_index)


def write_file(sbom: bytes, folder: Path, name: str) -> Path:
    """Write the SBOM beside the image as ``<name>.cdx.json`` (atomically)."""
    from wheeldock.edges.fsutil import atomic_write_bytes

    dest = Path(folder) / f"{name}.cdx.json"
    atomic_write_bytes(dest, sbom)
    return dest


def read_attached(layout: Path, subject: Digest) -> bytes:
    """The SBOM attached to ``subject`` in an OCI layout, found through the referrers tag.

    Read from the raw JSON: an artifact's empty config is not an image config."""
    from wheeldock.oci import layout as layouts

    root = Path(layout)
    tag = referrers_tag(subject)
    index = json.loads((root / "index.json").read_bytes())
    for desc in index.get("manifests", []):
        if (desc.get("annotations") or {}).get(ANNOTATION_REF_NAME) != tag:
            continue
        referrers = json.loads(layouts.blob_path(root, Digest.parse(desc["digest"])).read_bytes())
        for ref in referrers.get("manifests", []):
            if ref.get("artifactType") != MEDIA_TYPE:
                continue
            path = layouts.blob_path(root, Digest.parse(ref["digest"]))
            manifest = json.loads(path.read_bytes())
            layer = manifest["layers"][0]
            return layouts.blob_path(root, Digest.parse(layer["digest"])).read_bytes()
    raise NotFound(
        f"no SBOM is attached to {subject} in the layout",
        path=root,
        fix="build with wheeldock build --platform … (SBOMs are attached by default)",
    )
