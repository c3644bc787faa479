"""The OCI image layout destination: a folder with ``oci-layout``, ``index.json`` and ``blobs/``.

:func:`write` merges into an existing layout (a tag names one entry of ``index.json``, through
the ``org.opencontainers.image.ref.name`` annotation; writing the same tag again replaces it).
Blobs already in the layout are skipped without reading the layer; new layer blobs are copied
from the blob store (never hard-linked: a layout must not change when the cache's file does),
after the store has checked them against their digests. Every file appears atomically (temp
file + rename), and a whole write holds a lock (``.wheeldock.lock`` in the folder), so
concurrent writes into one folder, new or not, each succeed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wheeldock.edges.fsutil import atomic_write_bytes, file_lock
from wheeldock.errors import DigestMismatch, InvalidLayout, InvalidReference, NotFound, NotWritable
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import (
    ANNOTATION_REF_NAME,
    INDEX_MEDIA_TYPES,
    MEDIA_TYPE_INDEX,
    Image,
    Index,
    canonical_json,
    iter_images,
)
from wheeldock.oci.layer import Layer
from wheeldock.oci.result import PublishResult

log = logging.getLogger(__name__)

LAYOUT_FILE = "oci-layout"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
_LOCK = ".wheeldock.lock"


def blob_path(root: Path, digest: Digest) -> Path:
    return Path(root) / "blobs" / digest.algorithm / digest.hex


def _copy(src: Path, dest: Path) -> None:
    """A copy, never a hard link: a layout must not change when the blob store's file does."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-copied blob behind
        raise


class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.written = 0
        self.skipped = 0
        self.bytes = 0

    def put_bytes(self, data: bytes) -> Digest:
        digest = Digest.of_bytes(data)
        dest = blob_path(self.root, digest)
        if dest.is_file():
            self.skipped += 1
        else:
            atomic_write_bytes(dest, data)
            self.written += 1
            self.bytes += len(data)
        return digest

    def put_layer(self, layer: Layer) -> None:
        dest = blob_path(self.root, layer.digest)
        if dest.is_file():
            self.skipped += 1  # not even located: a lazy layer stays unbuilt
            return
        _copy(layer.blob_path(), dest)
        self.written += 1
        self.bytes += layer.size

    def put_image(self, image: Image) -> None:
        for layer in image.layers:
            self.put_layer(layer)
        self.put_bytes(image.config_bytes())
        self.put_bytes(image.manifest_bytes())


def write(
    target: Image | Index, path: Path, tag: str | None = None, store: BlobStore | None = None
) -> PublishResult:
    """Write ``target`` into the OCI image layout at ``path``, named ``tag`` in ``index.json``.

    ``store`` is not needed (layers carry their bytes); it is accepted so all destinations
    share one signature.
    """
    root = Path(path)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NotWritable(
            f"cannot create the layout folder ({exc.strerror})",
            path=root,
            fix="pick a writable folder for oci:DIR",
        ) from exc
    # The lock lives inside the layout: tools ignore files the spec does not name.
    with file_lock(str(root / _LOCK)):
        _prepare(root)
        w = _Writer(root)
        for image in iter_images(target):
            w.put_image(image)
        if isinstance(target, Index):
            w.put_bytes(target.manifest_bytes())
        annotations = {ANNOTATION_REF_NAME: tag} if tag else None
        descriptor = target.descriptor(annotations=annotations)
        index = _read_index(root) if (root / "index.json").exists() else _empty_index()
        kept = [d for d in index.get("manifests", []) if not _same_slot(d, descriptor, tag)]
        index["manifests"] = [*kept, descriptor]
        atomic_write_bytes(root / "index.json", canonical_json(index))
    log.info("wrote %s to %s (%d blobs new, %d there)", target.digest, root, w.written, w.skipped)
    return PublishResult(
        f"oci:{root}" + (f":{tag}" if tag else ""), target.digest, w.bytes, w.written, w.skipped
    )


def _prepare(root: Path) -> None:
    """Check that ``root`` is a layout, or make it one if it is empty (call with the lock)."""
    if (root / LAYOUT_FILE).exists():
        _check_layout(root)
    elif any(p.name != _LOCK for p in root.iterdir()):
        raise InvalidLayout(
            "is not empty and is not an OCI image layout (no oci-layout file)",
            path=root,
            fix="pick an empty or new folder for oci:DIR",
        )
    else:
        # First, so a write killed half-way leaves a layout (with spare blobs) that a retry reuses.
        atomic_write_bytes(root / LAYOUT_FILE, canonical_json(LAYOUT_VERSION))


def _empty_index() -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": []}


def _same_slot(existing: dict[str, Any], new: dict[str, Any], tag: str | None) -> bool:
    name = (existing.get("annotations") or {}).get(ANNOTATION_REF_NAME)
    if tag is not None:
        return bool(name == tag)
    return name is None and existing.get("digest") == new["digest"]


def _check_layout(root: Path) -> None:
    try:
        version = json.loads((root / LAYOUT_FILE).read_bytes()).get("imageLayoutVersion")
    except (OSError, ValueError, AttributeError) as exc:
        raise InvalidLayout(
            "oci-layout is unreadable", path=root / LAYOUT_FILE, fix="remove the folder and retry"
        ) from exc
    if version != "1.0.0":
        raise InvalidLayout(
            f"unsupported image layout version {version!r}",
            path=root / LAYOUT_FILE,
            fix="write to a new folder",
        )


def _read_index(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / "index.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidLayout(
            f"index.json is unreadable ({exc})",
            path=root / "index.json",
            fix="remove the folder and write the image again",
        ) from exc
    if not isinstance(data, dict):
        raise InvalidLayout("index.json is not a JSON object", path=root / "index.json")
    return data


# -- reading ------------------------------------------------------------------------------------


def tags(path: Path) -> list[str]:
    """The tags (``ref.name`` annotations) in the layout's ``index.json``."""
    index = _read_index(Path(path))
    return [
        d["annotations"][ANNOTATION_REF_NAME]
        for d in index.get("manifests", [])
        if ANNOTATION_REF_NAME in (d.get("annotations") or {})
    ]


_REWRITE = "write the image to the layout again (wheeldock build --output oci:DIR, or skopeo copy)"


def _missing_blob(path: Path, digest: Digest) -> NotFound:
    return NotFound(f"blob {digest} is missing from the layout", path=path, fix=_REWRITE)


def _read_blob(root: Path, digest: Digest) -> bytes:
    path = blob_path(root, digest)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise _missing_blob(path, digest) from exc
    if Digest.of_bytes(data) != digest:
        raise DigestMismatch(
            "a layout blob does not match its name",
            expected=str(digest),
            actual=str(Digest.of_bytes(data)),
            path=path,
            fix=_REWRITE,
        )
    return data


def _copy_checked(store: BlobStore, source: Path, digest: Digest) -> None:
    """``source`` into ``store``, checked against ``digest``; a missing or damaged blob is an
    error naming it."""
    try:
        store.put_file(source, expected=digest)
    except FileNotFoundError as exc:
        raise _missing_blob(source, digest) from exc
    except DigestMismatch as exc:
        raise DigestMismatch(
            "a layout blob does not match its name",
            expected=exc.expected,
            actual=exc.actual,
            path=source,
            fix=_REWRITE,
        ) from exc


def read(path: Path, tag: str | None = None, store: BlobStore | None = None) -> Image | Index:
    """The image (or index) named ``tag`` in the layout at ``path`` (the only one if no tag).

    Layers read their bytes from the layout; with ``store`` they are copied into it first (each
    checked against its digest) so the image outlives the folder.
    """
    root = Path(path)
    if not (root / LAYOUT_FILE).is_file():
        raise NotFound(
            "is not an OCI image layout (no oci-layout file)",
            path=root,
            fix="check the path given as oci:DIR",
        )
    manifests = _read_index(root).get("manifests", [])
    if tag is not None:
        found = [
            d for d in manifests if (d.get("annotations") or {}).get(ANNOTATION_REF_NAME) == tag
        ]
    else:
        found = list(manifests)
    if len(found) != 1:
        have = ", ".join(tags(root)) or "none"
        what = f"no image tagged {tag!r}" if tag else f"{len(found)} images and no tag given"
        raise InvalidReference(
            f"{what} in the layout", path=root, fix=f"name one of its tags as oci:DIR:TAG: {have}"
        )
    return _read_target(root, found[0], store)


def _read_target(root: Path, desc: dict[str, Any], store: BlobStore | None) -> Image | Index:
    raw = _read_blob(root, Digest.parse(desc["digest"]))
    manifest = json.loads(raw)
    if manifest.get("mediaType", desc.get("mediaType")) in INDEX_MEDIA_TYPES:
        children = []
        for child in manifest.get("manifests", []):
            img = _read_target(root, child, store)
            if isinstance(img, Image):
                children.append(img)
        return Index(tuple(children), dict(manifest.get("annotations") or {}), raw_manifest=raw)
    config_raw = _read_blob(root, Digest.parse(manifest["config"]["digest"]))
    diff_ids = json.loads(config_raw).get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(manifest.get("layers", [])):
        raise InvalidLayout(
            "manifest and config disagree on the number of layers",
            path=root,
            fix="write the image to the layout again",
        )
    layers = []
    for ldesc, diff_id in zip(manifest.get("layers", []), diff_ids, strict=True):
        digest = Digest.parse(ldesc["digest"])
        source = blob_path(root, digest)
        if store is not None:
            _copy_checked(store, source, digest)
            layer = Layer.from_store(
                store,
                digest,
                diff_id=Digest.parse(diff_id),
                media_type=ldesc["mediaType"],
                size=int(ldesc["size"]),
                annotations=ldesc.get("annotations"),
            )
        else:
            layer = Layer(
                digest=digest,
                diff_id=Digest.parse(diff_id),
                size=int(ldesc["size"]),
                media_type=ldesc["mediaType"],
                locate=_layout_locator(root, source),
                annotations=dict(ldesc.get("annotations") or {}),
            )
        layers.append(layer)
    return Image.from_raw(raw, config_raw, tuple(layers))


def _layout_locator(root: Path, source: Path) -> Callable[[], Path]:
    def locate() -> Path:
        if not source.is_file():
            raise NotFound(
                f"layer blob {source.name} is gone from the layout",
                path=root,
                fix="write the image to the layout again",
            )
        return source

    return locate


__all__ = ["blob_path", "read", "tags", "write"]
