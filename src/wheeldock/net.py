"""The HTTPS client for package indexes and file hosts (PyPI and its CDN), one per process.

Shared so its connections are reused: a one-pin bump asks pypi.org for the release list, then
files.pythonhosted.org for the metadata and the wheel; with one client the second host's TLS
handshake (through a proxy, ~0.1 s here) happens once, and ``build --watch`` keeps both
connections warm between rebuilds. httpx's client is safe to use from several threads.
"""

from __future__ import annotations

import atexit
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

#: Idle connections are kept this long (httpx's default, 5 s, would drop them between edits).
KEEPALIVE_SECONDS = 120.0


@cache
def client() -> httpx.Client:
    """The process's client: the system CA store (which honours ``SSL_CERT_FILE``, so a proxy's
    CA is trusted; certifi's bundle would not have it), redirects followed, bounded timeouts."""
    import ssl

    import httpx  # imported on first use: it is slow to import, and most commands never need it

    made = httpx.Client(
        verify=ssl.create_default_context(),
        follow_redirects=True,
        timeout=httpx.Timeout(60.0, connect=15.0),
        limits=httpx.Limits(max_connections=16, keepalive_expiry=KEEPALIVE_SECONDS),
    )
    atexit.register(made.close)
    return made


__all__ = ["client"]
