"""Shared test set-up. Helpers and fixtures live in ``support/``; a fixture is registered by the
conftest.py of each folder whose tests use it, or, when it is made once per session, of the nearest
folder above all of them: here, those that unit and integration tests share, and the hooks."""

from __future__ import annotations

from support.bases import pytest_collection_finish, pytest_unconfigure
from support.oci import busybox_layer, oci_store, runnable_image

__all__ = [
    "busybox_layer",
    "oci_store",
    "pytest_collection_finish",
    "pytest_unconfigure",
    "runnable_image",
]


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    """In CI, an integration test that was skipped is a failure: they must really run there."""
    import os

    import pytest

    if os.environ.get("CI") != "true":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")  # type: ignore[attr-defined]
    if reporter is None:
        return
    skipped = [
        rep
        for rep in reporter.stats.get("skipped", [])
        if "integration" in getattr(rep, "keywords", {})
    ]
    if skipped:
        names = ", ".join(rep.nodeid for rep in skipped[:10])
        reporter.write_line(
            f"CI: {len(skipped)} integration test(s) were skipped: {names}", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # type: ignore[attr-defined]
