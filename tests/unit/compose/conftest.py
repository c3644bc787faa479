"""Fixtures for the unit tests of ``wheeldock.compose`` from :mod:`support.stacks`; those made once
per session are registered here when no test outside this folder uses them."""

from support.stacks import stack_copy

__all__ = ["stack_copy"]
