"""Fixtures for the unit tests of ``wheeldock.debian`` from :mod:`support.libs`; those made once per
session are registered here when no test outside this folder uses them."""

from support.libs import fake_index, libs_cache

__all__ = ["fake_index", "libs_cache"]
