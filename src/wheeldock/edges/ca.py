"""The host's certificate bundle for a TLS-intercepting proxy, handed to builds as a secret.

Where PyPI is reached through a proxy that re-signs TLS, pip and uv inside a build need the
proxy's CA. It goes in as a BuildKit secret (``--secret id=ca,src=…``) for one ``RUN`` only,
never into a layer. This module only finds the file; it never reads or copies it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from wheeldock.errors import NotFound

#: The BuildKit secret id the generated Dockerfiles and compose patches use.
SECRET_ID = "ca"
#: Environment variables naming a CA bundle, in the order they are tried.
ENV_VARS = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE")


def find(explicit: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The CA bundle to hand to builds, or ``None`` when the host has none configured.

    ``explicit`` (``--ca-cert PATH``) must exist; otherwise the first of ``SSL_CERT_FILE``,
    ``PIP_CERT``, ``REQUESTS_CA_BUNDLE`` that names an existing file wins.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise NotFound(
                "the CA bundle given with --ca-cert does not exist",
                path=path,
                fix="pass the PEM file your proxy's CA is in, or leave --ca-cert out",
            )
        return path.resolve()
    env = os.environ if environ is None else environ
    for name in ENV_VARS:
        value = env.get(name)
        if value and Path(value).is_file():
            return Path(value).resolve()
    return None
