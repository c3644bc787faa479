"""Send an image (or index) to a destination named by a transport reference.

The four destinations share one shape — ``write(target, ref, store, …) -> PublishResult`` — and
this module picks one by the reference's transport, so ``--output`` may name any of them and
may repeat.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, Unpack

from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.image import Image, Index
from wheeldock.oci.reference import ArchiveRef, DaemonRef, OciRef, Reference, RegistryRef, coerce
from wheeldock.oci.result import PublishResult

if TYPE_CHECKING:
    from wheeldock.oci.daemon import EngineLayers

log = logging.getLogger(__name__)


class RegistryOptions(TypedDict, total=False):
    """What :func:`publish` passes to a registry destination only."""

    auth: tuple[str, str] | None
    ca_file: Path | None
    insecure: bool
    #: a repository on the same registry whose blobs are mounted rather than uploaded (the
    #: registry cache's)
    mount_from: str | None


def publish(
    target: Image | Index,
    ref: str | Reference,
    store: BlobStore | None = None,
    *,
    compressed_daemon_layers: bool = False,
    known: EngineLayers | None = None,
    **registry: Unpack[RegistryOptions],
) -> PublishResult:
    """Write ``target`` to ``ref`` (``oci:…``, ``docker-archive:…``, ``docker-daemon:…`` or
    ``docker://…``). ``registry`` (see :class:`RegistryOptions`) applies to registries only;
    ``known`` (what the command knows of the engine's layers) to the engine only.

    Layers carry their own bytes; ``store`` (default: the cache's) is where archive and daemon
    writes remember the uncompressed size of layers that did not record one.
    """
    # Each destination is imported only when chosen: the registry client's imports alone are a
    # large part of a code-change build's start-up.
    parsed = coerce(ref)
    started = time.monotonic()
    result: PublishResult
    if isinstance(parsed, OciRef):
        from wheeldock.oci import layout

        result = layout.write(target, parsed.path, parsed.tag)
    elif isinstance(parsed, ArchiveRef):
        from wheeldock.oci import tarball

        result = tarball.write(target, parsed.path, parsed.name, store)
    elif isinstance(parsed, DaemonRef):
        from wheeldock.oci import daemon

        result = daemon.load(
            target, parsed.name, store, compressed=compressed_daemon_layers, known=known
        )
    elif isinstance(parsed, RegistryRef):
        from wheeldock.oci import remote

        result = remote.push(
            target,
            parsed,
            auth=registry.get("auth"),
            ca_file=registry.get("ca_file"),
            insecure=registry.get("insecure", False),
            upload=remote.Upload(mount_from=registry.get("mount_from")),
        )
    else:  # pragma: no cover - Reference is a closed union
        raise TypeError(parsed)
    seconds = time.monotonic() - started
    log.info("published %s to %s in %.2f s", result.digest, parsed, seconds)
    return PublishResult(
        str(parsed),
        result.digest,
        result.bytes_written,
        result.blobs_written,
        result.blobs_skipped,
        seconds,
    )


def publish_all(
    target: Image | Index,
    refs: Sequence[str | Reference],
    store: BlobStore | None = None,
    **options: object,
) -> list[PublishResult]:
    """:func:`publish` to each of ``refs`` in turn (``--output`` repeated)."""
    return [publish(target, ref, store, **options) for ref in refs]  # type: ignore[arg-type]


__all__ = ["PublishResult", "RegistryOptions", "publish", "publish_all"]
