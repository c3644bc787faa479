"""The HTTPS client for package indexes and file hosts (PyPI and its CDN), one per process.

Shared so its connections are reused: a one-pin bump asks pypi.org for the release list, then
files.pythonhosted.org for the metadata and the wheel; with one client the second host's TLS
handshake (slow through a proxy) happens once, and ``build --watch`` keeps both
connections warm between rebuilds. httpx's client is safe to use from several threads.
"""

from __future__ import annotations

import atexit
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


_made: httpx.Client | None = None
_making = threading.Lock()


def client() -> httpx.Client:
    """The process's client: the system CA store (which honours ``SSL_CERT_FILE``, so a proxy's
    CA is trusted; certifi's bundle would not have it), redirects followed, bounded timeouts."""
    global _made
    with _making:  # one client, also when a warm-up thread is making it
        if _made is None:
            import httpx  # imported on first use: it is slow to import, and most commands never need it

            _made = httpx.Client(
                verify=tls_context(),
                follow_redirects=True,
                timeout=httpx.Timeout(60.0, connect=15.0),
                limits=httpx.Limits(max_connections=16, keepalive_expiry=KEEPALIVE_SECONDS),
            )
            atexit.register(_made.close)
        return _made


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


def warm() -> None:
    """Make the client on a thread, now: a build that will ask the index (a stale lock) calls
    this first, so importing httpx and making the client overlap the lock's reading
    of its inputs instead of preceding its first request."""
    threading.Thread(target=client, name="net-warm", daemon=True).start()


__all__ = ["client", "tls_context", "warm"]
