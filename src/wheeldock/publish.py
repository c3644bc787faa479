"""Send an image (or index) to a destination named by a transport reference.

The four destinations share one shape — ``write(target, ref, store, …) -> PublishResult`` — and
this module picks one by the reference's transport, so ``--output`` may name any of them and
may repeat.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wheeldock.blobs import BlobStore
from wheeldock.digest import Digest
from wheeldock.image import Image, Index
from wheeldock.reference import ArchiveRef, DaemonRef, OciRef, Reference, RegistryRef, coerce

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishResult:
    """What a destination did.

    ``digest`` is the manifest (or index) digest at the destination; ``bytes_written`` counts
    blob and manifest bytes written or uploaded; ``blobs_skipped`` the blobs already there
    (not read at all).
    """

    ref: str
    digest: Digest
    bytes_written: int
    blobs_written: int
    blobs_skipped: int
    seconds: float = 0.0


def publish(
    target: Image | Index,
    ref: str | Reference,
    store: BlobStore | None = None,
    *,
    auth: tuple[str, str] | None = None,
    ca_file: Path | None = None,
    insecure: bool = False,
    compressed_daemon_layers: bool = False,
) -> PublishResult:
    """Write ``target`` to ``ref`` (``oci:…``, ``docker-archive:…``, ``docker-daemon:…`` or
    ``docker://…``). ``auth``/``ca_file``/``insecure`` apply to registries only.

    Layers carry their own bytes; ``store`` (default: the cache's) is where archive and daemon
    writes remember the uncompressed size of layers that did not record one.
    """
    # Imported here: the destinations import PublishResult from this module; and each only when
    # chosen (the registry client's imports alone cost a code-change build 0.1 s).
    parsed = coerce(ref)
    started = time.monotonic()
    result: PublishResult
    if isinstance(parsed, OciRef):
        from wheeldock import layout

        result = layout.write(target, parsed.path, parsed.tag)
    elif isinstance(parsed, ArchiveRef):
        from wheeldock import tarball

        result = tarball.write(target, parsed.path, parsed.name, store)
    elif isinstance(parsed, DaemonRef):
        from wheeldock import daemon

        result = daemon.load(target, parsed.name, store, compressed=compressed_daemon_layers)
    elif isinstance(parsed, RegistryRef):
        from wheeldock import remote

        result = remote.push(target, parsed, auth=auth, ca_file=ca_file, insecure=insecure)
    else:  # pragma: no cover - Reference is a closed union
        raise TypeError(parsed)
    seconds = time.monotonic() - started
    log.info("published %s to %s in %.2f s", result.digest, parsed, seconds)
    return PublishResult(
        str(parsed), result.digest, result.bytes_written, result.blobs_written,
        result.blobs_skipped, seconds,
    )  # fmt: skip


def publish_all(
    target: Image | Index,
    refs: Sequence[str | Reference],
    store: BlobStore | None = None,
    **options: object,
) -> list[PublishResult]:
    """:func:`publish` to each of ``refs`` in turn (``--output`` repeated)."""
    return [publish(target, ref, store, **options) for ref in refs]  # type: ignore[arg-type]
