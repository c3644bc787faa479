"""The Docker engine destination: ``docker load`` fed a docker-archive through its stdin.

No temp file: the archive is written straight into the pipe (:func:`wheeldock.tarball.stream`).
By default layers go uncompressed: the engine unpacks them anyway, so gzip only adds a
decompression on the same machine. Measured with an 88 MB site-packages layer (Docker 26,
2 cores): 1.5 s plain (90 MB piped) against 2.2-2.4 s gzip (31 MB piped).
"""

from __future__ import annotations

import logging
from typing import IO

from wheeldock import engine
from wheeldock.blobs import BlobStore
from wheeldock.errors import WheeldockError
from wheeldock.image import Image, Index
from wheeldock.publish import PublishResult
from wheeldock.reference import parse_name
from wheeldock.tarball import stream

log = logging.getLogger(__name__)


def _short(name: str) -> str:
    """``name:tag`` as ``docker images`` shows it (Docker Hub's prefix dropped)."""
    parsed = parse_name(name)
    repo = parsed.repository
    if parsed.registry == "docker.io":
        return f"{repo.removeprefix('library/')}:{parsed.tag}"
    return f"{parsed.registry}/{repo}:{parsed.tag}"


def load(
    target: Image | Index,
    name: str,
    store: BlobStore | None = None,
    *,
    compressed: bool = False,
    timeout: float | None = 900,
) -> PublishResult:
    """Load ``target`` into the running engine as ``name`` (``name:tag``).

    ``compressed`` sends layers as stored (gzip/zstd) instead of plain tars. The result's
    digest is the manifest digest of the archive that was sent; ``docker images`` shows the
    config digest as the image ID.
    """
    engine.require()
    short = _short(name)
    results: list[PublishResult] = []

    def feed(pipe: IO[bytes]) -> None:
        results.append(stream(target, pipe, short, store, compressed=compressed))

    loaded = engine.load_stream(feed, timeout=timeout)
    if not results:  # pragma: no cover - feed raised, and run() re-raised it
        raise WheeldockError("docker load received nothing")
    if short not in loaded and f"docker.io/library/{short}" not in loaded:
        raise WheeldockError(
            f"docker load did not report loading {short} (it said: {', '.join(loaded) or 'nothing'})",
            fix="check `docker images`; the engine may be too old for OCI archives (need >= 25)",
        )
    sent = results[0]
    log.info("loaded %s into the engine (%d bytes sent)", short, sent.bytes_written)
    return PublishResult(
        f"docker-daemon:{short}", sent.digest, sent.bytes_written, sent.blobs_written, 0
    )
