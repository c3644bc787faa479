"""The HTTPS client's trust store (no network: only how it is loaded)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wheeldock.deps import index as net

SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def _pems(count: int) -> bytes:
    text = SYSTEM_BUNDLE.read_text()
    blocks = re.findall(
        r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", text, flags=re.S
    )
    return "".join(blocks[:count]).encode()


@pytest.fixture
def debian_like(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bundle of two CAs and a hashed folder holding the same two, where Debian keeps them."""
    folder = tmp_path / "certs"
    folder.mkdir()
    bundle = folder / "ca-certificates.crt"
    bundle.write_bytes(_pems(2))
    for i in range(2):
        (folder / f"{i:08x}.0").write_bytes(b"")  # the names are what is counted
    monkeypatch.setattr(net, "_DEBIAN_BUNDLE", bundle)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return bundle


def test_debians_bundle_is_looked_up_in_its_hashed_folder(debian_like: Path) -> None:
    context = net.tls_context()
    # nothing parsed up front: the folder is searched for a server's issuer when needed
    assert context.cert_store_stats()["x509"] == 0


def test_a_ca_added_to_the_bundle_by_hand_is_read_with_the_rest(debian_like: Path) -> None:
    debian_like.write_bytes(_pems(3))  # three in the bundle, two in the folder
    assert net.tls_context().cert_store_stats()["x509_ca"] == 3


def test_another_bundle_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "corporate.pem"
    bundle.write_bytes(_pems(2))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert net.tls_context().cert_store_stats()["x509_ca"] == 2
