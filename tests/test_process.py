from __future__ import annotations

import sys

import pytest

from wheeldock import process
from wheeldock.errors import CommandFailed, ToolNotFound


def test_run_returns_stdout() -> None:
    result = process.run([sys.executable, "-c", "print('hi')"])
    assert result.stdout == "hi\n" and result.returncode == 0


def test_failure_carries_argv_exit_code_and_last_lines() -> None:
    with pytest.raises(CommandFailed) as err:
        process.run(
            [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"]
        )
    assert err.value.returncode == 3
    assert "boom" in err.value.message


def test_secrets_are_masked_in_errors() -> None:
    with pytest.raises(CommandFailed) as err:
        process.run(
            [
                sys.executable,
                "-c",
                "import sys; print('token=s3cret', file=sys.stderr); sys.exit(1)",
                "s3cret",
            ],
            secrets=["s3cret"],
        )
    assert "s3cret" not in err.value.message
    assert "****" in err.value.message


def test_missing_tool_says_how_to_install_it() -> None:
    with pytest.raises(ToolNotFound) as err:
        process.which("mmdebstrap-does-not-exist")
    assert "install" in (err.value.fix or "")
