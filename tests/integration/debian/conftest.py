"""Fixtures for the integration tests of ``wheeldock.debian`` from :mod:`support.bases` and
:mod:`support.libs`; those made once per session are registered here when no test outside this
folder uses them."""

from support.bases import base_minimal
from support.libs import (
    arm64_site_packages,
    libs_shared_cache,
    manylinux_wheels,
    shared_cache,
    source_wheels,
)

__all__ = [
    "arm64_site_packages",
    "base_minimal",
    "libs_shared_cache",
    "manylinux_wheels",
    "shared_cache",
    "source_wheels",
]
