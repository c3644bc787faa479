"""Fixtures for the integration tests of ``wheeldock.compose`` from :mod:`support.stacks`; those
made once per session are registered here when no test outside this folder uses them."""

from support.stacks import init_cache

__all__ = ["init_cache"]
