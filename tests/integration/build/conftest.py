"""Fixtures for the integration tests of ``wheeldock.build`` from :mod:`support.bases`,
:mod:`support.build`, :mod:`support.oci` and :mod:`support.projects`; those made once per session
are registered here when no test outside this folder uses them."""

from support.bases import base_slim_armhf
from support.build import build_cache, build_env, cbt_built
from support.oci import store
from support.projects import project

__all__ = ["base_slim_armhf", "build_cache", "build_env", "cbt_built", "project", "store"]
