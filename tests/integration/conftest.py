"""Fixtures for the integration tests of several areas, from :mod:`support.bases` and
:mod:`support.registry`: those made once per session, registered here so that every folder below
shares them."""

from support.bases import base_cache, base_images, base_slim_arm64
from support.registry import registry

__all__ = ["base_cache", "base_images", "base_slim_arm64", "registry"]
