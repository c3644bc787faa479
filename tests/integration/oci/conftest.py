"""Fixtures for the integration tests of ``wheeldock.oci`` from :mod:`support.oci` and
:mod:`support.registry`; those made once per session are registered here when no test outside this
folder uses them."""

from support.oci import cache_in_tmp, store
from support.registry import registry_auth

__all__ = ["cache_in_tmp", "registry_auth", "store"]
