"""The docker-archive destination: one tar that ``docker load`` and ``skopeo`` both read.

The archive holds what Docker 25+'s ``docker save`` writes: ``manifest.json`` (Config,
RepoTags, Layers) for the Docker loader, and an OCI image layout (``oci-layout``,
``index.json``, ``blobs/sha256/…``) for OCI tools, sharing the same blob files. It is
deterministic: fixed member order, mtime 0, owner 0:0, no user names.

Layers are stored compressed as built (the archive's OCI manifest is then the image's own) or,
with ``compressed=False``, as plain tars named by their diff_id (the manifest then lists
uncompressed layer descriptors; the config, and so Docker's image ID, is the same).
"""

from __future__ import annotations

import json
import logging
import tarfile
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from wheeldock.edges.fsutil import atomic_writer
from wheeldock.errors import (
    DiffIdMismatch,
    InvalidArchive,
    InvalidConfig,
    InvalidReference,
    NotFound,
    SizeMismatch,
)
from wheeldock.oci.blobs import CHUNK, BlobStore, default_store
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX, Image, Index, canonical_json
from wheeldock.oci.layer import MAGIC_SIZE, MEDIA_TYPE_TAR, MEDIA_TYPES, Layer, sniff_compression
from wheeldock.oci.reference import parse_name
from wheeldock.oci.result import PublishResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    """One file of the archive: bytes, or an opener (called once) giving ``size`` bytes."""

    name: str
    size: int
    data: bytes | None = None
    opener: Callable[[], IO[bytes]] | None = None


def _header(name: str, size: int, *, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = 0 if directory else size
    info.mtime = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def uncompressed_size(layer: Layer, store: BlobStore | None = None) -> int:
    """The layer tar's size: recorded when wheeldock built it, else counted once and cached
    in ``store`` (default: the cache's)."""
    if layer.uncompressed_size is not None:
        return layer.uncompressed_size
    if layer.media_type == MEDIA_TYPE_TAR or layer.compression == "none":
        return layer.size
    store = store or default_store()
    key = f"layer/uncompressed-size/v1/{layer.digest}"
    cached = store.get_cached(key)
    if cached is not None:
        return int(cached["size"])
    size = 0
    with layer.uncompressed() as fh:
        while chunk := fh.read(CHUNK):
            size += len(chunk)
    store.set_cached(key, {"size": size})
    return size


def _full_name(name: str) -> str:
    return str(parse_name(name))


def plan(
    image: Image,
    name: str | None,
    *,
    compressed: bool = True,
    store: BlobStore | None = None,
    omit: Collection[Digest] = (),
) -> tuple[list[Member], Image]:
    """The archive's members in order, and the image as the archive's OCI manifest names it.

    Layers whose diff_id is in ``omit`` are named in ``manifest.json`` but their files are left
    out (for ``docker load`` into an engine that has them: it looks a layer up by chain ID
    before it opens the file). Such an archive is only for that; OCI tools cannot read it.
    """
    members, (written,) = plan_many([(image, name)], compressed=compressed, store=store, omit=omit)
    return members, written


def _layer_members(
    image: Image, compressed: bool, store: BlobStore | None, omit: Collection[Digest]
) -> tuple[list[Member], Image]:
    if compressed:
        return [
            Member(f"blobs/sha256/{lay.digest.hex}", lay.size, opener=lay.compressed)
            for lay in image.layers
        ], image
    views = []
    for lay in image.layers:
        size = 0 if lay.diff_id in omit else uncompressed_size(lay, store)
        views.append(Member(f"blobs/sha256/{lay.diff_id.hex}", size, opener=lay.uncompressed))
    plain = tuple(
        Layer(
            digest=lay.diff_id,
            diff_id=lay.diff_id,
            size=m.size,
            media_type=MEDIA_TYPE_TAR,
            locate=lay.locate,
            annotations=lay.annotations,
            uncompressed_size=m.size,
        )
        for lay, m in zip(image.layers, views, strict=True)
    )
    return views, replace(image, layers=plain, raw_manifest=None)


def plan_many(
    images: Sequence[tuple[Image, str | None]],
    *,
    compressed: bool = True,
    store: BlobStore | None = None,
    omit: Collection[Digest] = (),
) -> tuple[list[Member], list[Image]]:
    """As :func:`plan`, for several images in one archive: a blob they share (a dependency
    layer, the base) is one file, so one ``docker load`` takes a whole stack."""
    blobs: list[Member] = []
    seen: set[str] = set()
    manifests: list[dict[str, object]] = []
    docker_manifest: list[dict[str, object]] = []
    written: list[Image] = []
    for source, name in images:
        layer_members, image = _layer_members(source, compressed, store, omit)
        written.append(image)
        config = image.config_bytes()
        manifest = image.manifest_bytes()
        config_name = f"blobs/sha256/{Digest.of_bytes(config).hex}"
        annotations: dict[str, str] = {}
        if name:
            annotations = {
                "io.containerd.image.name": _full_name(name),
                ANNOTATION_REF_NAME: name.rpartition(":")[2],
            }
        manifests.append(image.descriptor(annotations=annotations or None))
        docker_manifest.append(
            {
                "Config": config_name,
                "RepoTags": [name] if name else [],
                "Layers": [m.name for m in layer_members],
            }
        )
        if omit:
            seen.update(
                m.name
                for m, lay in zip(layer_members, source.layers, strict=True)
                if lay.diff_id in omit
            )
        for member in [
            Member(config_name, len(config), data=config),
            *layer_members,
            Member(f"blobs/sha256/{image.digest.hex}", len(manifest), data=manifest),
        ]:
            if member.name not in seen:  # a blob two layers or images share is written once
                seen.add(member.name)
                blobs.append(member)
    index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": manifests}
    members = [
        *blobs,
        Member("index.json", 0, data=canonical_json(index)),
        Member(
            "manifest.json", 0, data=json.dumps(docker_manifest, separators=(",", ":")).encode()
        ),
        Member("oci-layout", 0, data=canonical_json({"imageLayoutVersion": "1.0.0"})),
    ]
    return members, written


def write_members(members: list[Member], out: IO[bytes]) -> int:
    """Write the archive to ``out``; returns the bytes written. Opens each opener once."""
    total = 0

    def put(data: bytes) -> None:
        nonlocal total
        out.write(data)
        total += len(data)

    for directory in ("blobs", "blobs/sha256"):
        put(_header(directory, 0, directory=True))
    for m in members:
        if m.data is not None:
            put(_header(m.name, len(m.data)))
            put(m.data)
            size = len(m.data)
        else:
            assert m.opener is not None
            put(_header(m.name, m.size))
            size = 0
            with m.opener() as fh:
                while chunk := fh.read(CHUNK):
                    size += len(chunk)
                    if size > m.size:
                        break
                    put(chunk)
            if size != m.size:
                raise SizeMismatch(
                    f"{m.name}: the layer gave {size} bytes, its descriptor says {m.size}",
                    expected=m.size,
                    actual=size,
                    fix="clear the cache (WHEELDOCK_CACHE) and rebuild the image",
                )
        pad = -size % tarfile.BLOCKSIZE
        if pad:
            put(b"\0" * pad)
    put(b"\0" * (2 * tarfile.BLOCKSIZE))
    return total


def _image_only(target: Image | Index) -> Image:
    if isinstance(target, Index):
        raise InvalidConfig(
            "a docker-archive holds one image, not a multi-platform index",
            fix="write one platform's image (index.image(Platform.parse('linux/amd64'))), "
            "or use oci:DIR for the index",
        )
    return target


def write(
    target: Image | Index,
    file: Path,
    name: str | None = None,
    store: BlobStore | None = None,
    *,
    compressed: bool = True,
) -> PublishResult:
    """Write ``target`` as a docker-archive at ``file`` (atomically), tagged ``name:tag``."""
    image = _image_only(target)
    members, written = plan(image, name, compressed=compressed, store=store)
    file = Path(file)
    with atomic_writer(file, mode=0o644) as fh:
        total = write_members(members, fh)
    blobs = sum(1 for m in members if m.name.startswith("blobs/"))
    return PublishResult(
        f"docker-archive:{file}" + (f":{name}" if name else ""), written.digest, total, blobs, 0
    )


def stream(
    target: Image | Index,
    out: IO[bytes],
    name: str | None = None,
    store: BlobStore | None = None,
    *,
    compressed: bool = True,
    omit: Collection[Digest] = (),
) -> PublishResult:
    """Write the archive to an open stream (a pipe into ``docker load``), not a file.

    ``omit``: diff_ids of layers to leave out (see :func:`plan`)."""
    image = _image_only(target)
    members, written = plan(image, name, compressed=compressed, store=store, omit=omit)
    total = write_members(members, out)
    blobs = sum(1 for m in members if m.name.startswith("blobs/"))
    return PublishResult(f"stream:{name or ''}", written.digest, total, blobs, 0)


def stream_many(
    images: Sequence[tuple[Image, str]],
    out: IO[bytes],
    store: BlobStore | None = None,
    *,
    compressed: bool = True,
    omit: Collection[Digest] = (),
) -> list[PublishResult]:
    """:func:`stream` for several named images in one archive (shared blobs written once).
    Each result carries its image's digest; the bytes and blobs count for the whole archive."""
    members, written = plan_many(images, compressed=compressed, store=store, omit=omit)
    total = write_members(members, out)
    blobs = sum(1 for m in members if m.name.startswith("blobs/"))
    return [
        PublishResult(f"stream:{name}", image.digest, total, blobs, 0)
        for (_, name), image in zip(images, written, strict=True)
    ]


# -- reading ------------------------------------------------------------------------------------


def read(file: Path, name: str | None = None, store: BlobStore | None = None) -> Image:
    """The image tagged ``name`` (or the only one) in a docker-archive, its blobs in ``store``.

    Layers keep the compression they have in the archive (``docker save`` writes plain tars).
    """
    file = Path(file)
    store = store or default_store()
    try:
        tar = tarfile.open(file, "r:")  # noqa: SIM115 - closed by the `with` below
    except (OSError, tarfile.TarError) as exc:
        raise NotFound(
            f"not a readable docker-archive ({exc})",
            path=file,
            fix="check the path given as docker-archive:FILE",
        ) from exc
    with tar:
        entries = json.loads(_member_bytes(tar, "manifest.json", file))
        if name is not None:
            chosen = [e for e in entries if name in (e.get("RepoTags") or [])]
        else:
            chosen = entries
        if len(chosen) != 1:
            have = ", ".join(t for e in entries for t in (e.get("RepoTags") or [])) or "none"
            raise InvalidReference(
                f"{'no image ' + repr(name) if name else str(len(chosen)) + ' images'} in the archive",
                path=file,
                fix=f"name one as docker-archive:FILE:NAME:TAG ({have})",
            )
        entry = chosen[0]
        config_raw = _member_bytes(tar, entry["Config"], file)
        diff_ids = json.loads(config_raw).get("rootfs", {}).get("diff_ids", [])
        if len(diff_ids) != len(entry["Layers"]):
            raise InvalidArchive(
                "manifest.json and the config disagree on the number of layers", path=file
            )
        layers = tuple(
            _read_layer(tar, member, Digest.parse(diff_id), store, file)
            for member, diff_id in zip(entry["Layers"], diff_ids, strict=True)
        )
    return Image.from_raw(None, config_raw, layers)


def _member_bytes(tar: tarfile.TarFile, name: str, file: Path) -> bytes:
    try:
        fh = tar.extractfile(name)
    except KeyError:
        fh = None
    if fh is None:
        raise NotFound(f"the archive has no {name}", path=file, fix="re-create it with docker save")
    with fh:
        return fh.read()


def _read_layer(
    tar: tarfile.TarFile, name: str, diff_id: Digest, store: BlobStore, file: Path
) -> Layer:
    fh = tar.extractfile(name)
    if fh is None:
        raise NotFound(f"the archive has no layer {name}", path=file)
    with fh:
        compression = sniff_compression(fh.read(MAGIC_SIZE))
        fh.seek(0)
        blob = store.put_stream(fh)
    media_type = MEDIA_TYPES[compression]
    if compression == "none" and blob.digest != diff_id:
        raise DiffIdMismatch(
            f"layer {name} does not hash to its diff_id {diff_id}",
            path=file,
            expected=str(diff_id),
            actual=str(blob.digest),
            fix="re-create the archive with docker save",
        )
    return Layer.from_store(
        store, blob.digest, diff_id=diff_id, media_type=media_type, size=blob.size
    )


def members_of(file: Path) -> Iterator[tarfile.TarInfo]:
    """The archive's tar headers (for checks and tests)."""
    with tarfile.open(file, "r:") as tar:
        yield from tar.getmembers()


__all__ = ["plan", "read", "stream", "uncompressed_size", "write", "write_members"]
