"""The ``Digest`` value type: parsed and validated once, ``str()`` round-trips."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from wheeldock.errors import InvalidDigest

_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_PATTERN = re.compile(r"^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")


@dataclass(frozen=True, order=True)
class Digest:
    """A content digest as the OCI image spec defines it (``sha256:<64 hex>``)."""

    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        want = _HEX_LENGTH.get(self.algorithm)
        if want is None:
            raise InvalidDigest(
                f"unsupported digest algorithm {self.algorithm!r}", fix="use sha256 or sha512"
            )
        if len(self.hex) != want or any(c not in "0123456789abcdef" for c in self.hex):
            raise InvalidDigest(f"digest is not {want} lowercase hex characters: {self.hex!r}")

    @classmethod
    def parse(cls, text: str) -> Digest:
        match = _PATTERN.match(text.strip())
        if match is None:
            raise InvalidDigest(f"not a digest (want 'sha256:<hex>'): {text!r}")
        return cls(match.group(1), match.group(2))

    @classmethod
    def of_bytes(cls, data: bytes) -> Digest:
        return cls("sha256", hashlib.sha256(data).hexdigest())

    @classmethod
    def from_hasher(cls, hasher: hashlib._Hash) -> Digest:
        return cls(hasher.name, hasher.hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        return self.hex[:12]
