"""Fixtures for the unit tests of ``wheeldock.build`` from :mod:`support.oci` and
:mod:`support.projects`; those made once per session are registered here when no test outside
this folder uses them."""

from support.oci import store
from support.projects import project

__all__ = ["project", "store"]
