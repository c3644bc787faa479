from __future__ import annotations

import sys
import time
from typing import IO

import pytest

from wheeldock.edges import process
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


def test_input_is_handed_to_the_command() -> None:
    result = process.run(
        [sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])"],
        streams=process.Streams(input=b"abc"),
    )
    assert result.stdout == "cba\n"


def test_a_command_past_its_timeout_is_killed_and_reported() -> None:
    started = time.monotonic()
    with pytest.raises(CommandFailed) as err:
        process.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert "timed out after 0.5 s" in err.value.message
    assert time.monotonic() - started < 10


def test_a_fed_command_past_its_timeout_is_killed_and_reported() -> None:
    def feed(pipe: IO[bytes]) -> None:
        pipe.write(b"x")

    with pytest.raises(CommandFailed) as err:
        process.run(
            [sys.executable, "-c", "import time; time.sleep(30)"],
            timeout=0.5,
            streams=process.Streams(feed=feed),
        )
    assert "timed out" in err.value.message


def test_a_fed_command_output_is_heard_line_by_line_while_it_runs() -> None:
    # the command echoes each line it is fed; the feeder waits to hear it before the next
    import queue

    heard: queue.SimpleQueue[bytes] = queue.SimpleQueue()

    def feed(pipe: IO[bytes]) -> None:
        for word in (b"one", b"two"):
            pipe.write(word + b"\n")
            pipe.flush()
            assert heard.get(timeout=10) == word + b"\n"

    echo = "import sys\nfor line in sys.stdin:\n    print(line, end='', flush=True)"
    result = process.run(
        [sys.executable, "-c", echo], streams=process.Streams(feed=feed, on_line=heard.put)
    )
    assert result.stdout == "one\ntwo\n"


def test_what_the_line_listener_raises_is_raised_once_the_command_ends() -> None:
    def listen(line: bytes) -> None:
        raise ValueError(f"bad line {line!r}")

    with pytest.raises(ValueError, match="bad line"):
        process.run(
            [sys.executable, "-c", "print('x')"],
            streams=process.Streams(feed=lambda pipe: None, on_line=listen),
        )


def test_a_command_spawned_ahead_is_fed_and_waited_for_by_run_not_started_again() -> None:
    echo = "import sys\nfor line in sys.stdin:\n    print(line.upper(), end='', flush=True)"
    started = process.spawn([sys.executable, "-c", echo])
    result = process.run(
        [sys.executable, "-c", echo],
        streams=process.Streams(feed=lambda pipe: pipe.write(b"ahead\n"), started=started),
    )
    assert result.stdout == "AHEAD\n"
    assert started.returncode == 0  # the very process spawned: run waited for it


def test_a_spawned_command_is_only_for_a_fed_run() -> None:
    started = process.spawn([sys.executable, "-c", "pass"])
    try:
        with pytest.raises(ValueError, match="need feed"):
            process.run([sys.executable, "-c", "pass"], streams=process.Streams(started=started))
    finally:
        started.communicate()
