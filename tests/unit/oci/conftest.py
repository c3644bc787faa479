"""Fixtures for the unit tests of ``wheeldock.oci`` from :mod:`support.oci`; those made once per
session are registered here when no test outside this folder uses them."""

from support.oci import cache_in_tmp, store

__all__ = ["cache_in_tmp", "store"]
