from __future__ import annotations

import hashlib

import pytest

from wheeldock.errors import InvalidDigest
from wheeldock.oci.digest import Digest

HEX = hashlib.sha256(b"wheeldock").hexdigest()


def test_str_round_trips_through_parse() -> None:
    text = f"sha256:{HEX}"
    assert str(Digest.parse(text)) == text


def test_of_bytes_matches_hashlib() -> None:
    assert Digest.of_bytes(b"wheeldock") == Digest("sha256", HEX)


@pytest.mark.parametrize(
    "text",
    [
        "sha256:" + HEX[:-1],  # too short
        "sha256:" + HEX.upper(),  # not lowercase
        "md5:" + HEX,  # unsupported algorithm
        HEX,  # no algorithm
        "",
    ],
)
def test_parse_rejects_malformed_digests_with_invalid_digest(text: str) -> None:
    with pytest.raises(InvalidDigest):
        Digest.parse(text)


def test_invalid_digest_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Digest.parse("nope")
