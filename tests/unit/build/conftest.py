"""Fixtures for the unit tests of ``wheeldock.build`` from :mod:`support.oci`; those made once per
session are registered here when no test outside this folder uses them."""

from support.oci import store

__all__ = ["store"]
