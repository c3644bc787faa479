"""What a destination reports after writing an image: the one result type all four share."""

from __future__ import annotations

from dataclasses import dataclass

from wheeldock.oci.digest import Digest


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
