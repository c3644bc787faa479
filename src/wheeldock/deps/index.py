"""The HTTPS client for package indexes and file hosts (PyPI and its CDN), one per command.

Shared so its connections are reused: a one-pin bump asks pypi.org for the release list, then
files.pythonhosted.org for the metadata and the wheel; with one client the second host's TLS
handshake (slow through a proxy) happens once, and ``build --watch`` keeps both
connections warm between rebuilds. httpx's client is safe to use from several threads.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

    import httpx

#: Idle connections are kept this long (httpx's default, 5 s, would drop them between edits).
KEEPALIVE_SECONDS = 120.0


class Index:
    """The HTTPS client for package indexes and file hosts, made on first use and shared by
    whatever asks through this object (a command's locks and downloads: see the module's notes).

    Safe to use from several threads; :meth:`close` closes its connections (a later
    :meth:`client` makes a new client)."""

    def __init__(self) -> None:
        self._made: httpx.Client | None = None
        self._making = threading.Lock()

    def client(self) -> httpx.Client:
        """The client: the system CA store (which honours ``SSL_CERT_FILE``, so a proxy's CA is
        trusted; certifi's bundle would not have it), redirects followed, bounded timeouts."""
        with self._making:  # one client, also when a warm-up thread is making it
            if self._made is None:
                import httpx  # imported on first use: it is slow to import, and most commands never need it

                self._made = httpx.Client(
                    verify=tls_context(),
                    follow_redirects=True,
                    timeout=httpx.Timeout(60.0, connect=15.0),
                    limits=httpx.Limits(max_connections=16, keepalive_expiry=KEEPALIVE_SECONDS),
                )
            return self._made

    def warm(self) -> None:
        """Make the client on a thread, now: a build that will ask the index (a stale lock)
        calls this first, so importing httpx and making the client (~0.1 s) overlap the lock's
        reading of its inputs instead of preceding its first request."""
        threading.Thread(target=self.client, name="net-warm", daemon=True).start()

    def close(self) -> None:
        """Close the client's connections, if it was made."""
        with self._making:
            made, self._made = self._made, None
        if made is not None:
            made.close()


#: Debian's CA bundle; update-ca-certificates writes it and the hashed folder beside it together.
_DEBIAN_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


#: The names c_rehash (and update-ca-certificates) give the CAs in a hashed folder.
_HASHED = re.compile(r"[0-9a-f]{8}\.[0-9]+")


def tls_context() -> ssl.SSLContext:
    """The system's trust, as ``ssl.create_default_context()`` gives it (``SSL_CERT_FILE``
    included, so a proxy's CA is trusted). When that file is Debian's bundle and its hashed
    folder holds as many CAs, they are looked up in the folder instead, which reads only the
    one a server's chain needs instead of parsing ~150 certificates on every build that asks an
    index (docs/design/start-up.md). A CA appended to the bundle by hand makes the counts differ,
    and the bundle is read whole."""
    import ssl

    cafile = os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile
    folder = _DEBIAN_BUNDLE.parent
    try:
        if cafile is not None and Path(cafile).resolve() == _DEBIAN_BUNDLE.resolve():
            bundled = _DEBIAN_BUNDLE.read_bytes().count(b"-----BEGIN CERTIFICATE-----")
            hashed = sum(1 for name in os.listdir(folder) if _HASHED.fullmatch(name))
            if bundled and bundled == hashed:
                return ssl.create_default_context(capath=str(folder))
    except OSError:
        pass
    return ssl.create_default_context()


__all__ = ["Index", "tls_context"]
