"""Shared test set-up. Area fixtures live in conftest_<area>.py, registered here."""

from __future__ import annotations

pytest_plugins: list[str] = [
    "conftest_oci",
    "conftest_registry",
    "conftest_base",
    "conftest_init",
    "conftest_build",
    "conftest_libs",
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
