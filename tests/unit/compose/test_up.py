"""``wheeldock up`` / ``status`` / ``logs`` / ``down`` on the real engine, after ``init``.

Each stack is copied to a uniquely named folder with free ports and its own container names;
BuildKit's cache (pip downloads, built wheels) is shared between the stacks and the runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wheeldock import cli, platforms
from wheeldock.compose import health, up
from wheeldock.errors import ToolNotFound
from wheeldock.project import Service


def test_log_tails_carry_no_terminal_escape_codes() -> None:
    raw = "\x1b[2K\x1b[1A#5 [builder 2/6] RUN pip\x1b[0m\n\x1b]0;title\x07ERROR: boom\x1bM\n"
    assert up.strip_escapes(raw) == "#5 [builder 2/6] RUN pip\nERROR: boom\n"
    assert "\x1b" not in up._tail(raw)


class _Stack:
    """A stack whose ``docker compose port`` answers from a table."""

    def __init__(self, picked: dict[int, tuple[str, int]] | None = None) -> None:
        self.picked = picked or {}

    def published(self, name: str, binding: object) -> tuple[str, int] | None:
        return self.picked.get(getattr(binding, "target", 0))


API = Service("api", "app", ("r.txt",), ("python", "main.py"), port=8000, health="/health")


@pytest.mark.parametrize(
    ("compose", "described", "port"),
    [
        ({"ports": ["8001:8000"]}, "GET http://127.0.0.1:8001/health", 8001),
        ({"ports": ["127.0.0.1:18001:8000"]}, "GET http://127.0.0.1:18001/health", 18001),
        ({"ports": [{"target": 8000, "published": "18002"}]}, "GET http://127.0.0.1:18002/health", 18002),
        ({"network_mode": "host"}, "GET http://127.0.0.1:8000/health", 8000),
        ({"ports": ["8000"]}, "GET http://127.0.0.1:32768/health", 32768),
        ({"expose": ["8000"]}, "Docker health (port 8000 is expose: only: not reachable from the host)", 8000),
    ],
)  # fmt: skip
def test_the_probe_follows_composes_port_model(
    compose: dict[str, object], described: str, port: int
) -> None:
    stack = _Stack({8000: ("127.0.0.1", 32768)})
    p = up.probe_for(stack, API, {"services": {"api": compose}}, 8000)  # type: ignore[arg-type]
    assert p.describe() == described
    assert p.port == port


def test_a_remote_engine_is_probed_at_its_address() -> None:
    facts = up.override_mod.EngineFacts(remote_host="build-box")
    config = {"services": {"api": {"ports": ["8001:8000"]}}}
    p = up.probe_for(_Stack(), API, config, 8000, facts)  # type: ignore[arg-type]
    assert p.describe() == "GET http://build-box:8001/health"


@pytest.mark.parametrize(
    ("restart", "kind"), [("no", "job"), ("unless-stopped", "process"), (None, "process")]
)
def test_a_service_without_a_port_is_a_worker_or_a_one_shot_job(
    restart: str | None, kind: str
) -> None:
    worker = Service("w", "app", ("r.txt",), ("python", "w.py"), health="process")
    svc = {"restart": restart} if restart else {}
    p = up.probe_for(_Stack(), worker, {"services": {"w": svc}}, None)  # type: ignore[arg-type]
    assert p.kind == kind


@pytest.mark.parametrize(
    ("kind", "state", "ok", "detail"),
    [
        ("job", {"Status": "exited", "ExitCode": 0}, True, "done (exit code 0)"),
        ("job", {"Status": "exited", "ExitCode": 3}, False, "failed (exit code 3)"),
        ("job", {"Status": "running"}, True, "running"),
        ("process", {"Status": "running"}, True, "running"),
        ("process", {"Status": "exited", "ExitCode": 1}, False, "failed (exit code 1)"),
        ("docker", {"Status": "running", "Health": {"Status": "healthy"}}, True, "Docker health: healthy"),
        ("docker", {"Status": "running", "Health": {"Status": "starting"}}, False, "Docker health: starting"),
        ("docker", {"Status": "running"}, True, "running (the image has no HEALTHCHECK)"),
        ("http", {"Status": "exited", "ExitCode": 0}, False, "not running"),
    ],
)  # fmt: skip
def test_status_judges_each_service_as_what_it_is(
    kind: str, state: dict[str, object], ok: bool, detail: str
) -> None:
    outcome = up._status_outcome(health.Probe(kind, 8000), state)
    assert (outcome.ok, outcome.detail) == (ok, detail)


def _judge(
    kind: str, state: dict[str, object], elapsed: float = 0.0
) -> tuple[dict[str, float], dict[str, float]]:
    """One look of the shared health waiter at service ``s`` ``elapsed`` seconds after its
    start: which answered and which are healthy by then."""
    since = 100.0
    pace = health.Pace(clock=lambda: since + elapsed, sleep=lambda _: None)
    probes = {"s": health.Probe(kind)}

    def states(pending: object) -> dict[str, health.ContainerState]:
        return {"s": up._container_state(state)}

    try:
        ready = health.wait_healthy(probes, states, since, elapsed - 0.001, pace=pace)
    except health.HealthFailed as exc:
        if exc.reason != "timeout":
            raise
        ready = exc.readiness
    return dict(ready.answered), dict(ready.healthy)


def test_a_one_shot_job_is_done_when_it_exits_0_and_waited_for_while_it_runs() -> None:
    assert _judge("job", {"Status": "running"}, elapsed=60) == ({}, {})
    answers, healthy = _judge("job", {"Status": "exited", "ExitCode": 0})
    assert set(answers) == set(healthy) == {"s"}


def test_a_failed_job_fails_up_at_the_start_step_naming_its_exit_code() -> None:
    with pytest.raises(health.HealthFailed) as info:
        _judge("job", {"Status": "exited", "ExitCode": 1})
    assert info.value.reason == "failed" and "exit code 1" in info.value.what
    assert up._HEALTH_FAILURES["failed"][0] == "start"


def test_a_worker_is_up_once_it_keeps_running_past_its_start() -> None:
    assert _judge("process", {"Status": "running"}, elapsed=0.5) == ({}, {})
    answers, healthy = _judge("process", {"Status": "running"}, elapsed=health.WORKER_SETTLE + 1)
    assert set(answers) == set(healthy) == {"s"}


def test_a_port_the_host_cannot_reach_waits_for_dockers_healthy() -> None:
    starting = {"Status": "running", "Health": {"Status": "starting"}}
    assert _judge("docker", starting, elapsed=60) == ({}, {})
    answers, healthy = _judge("docker", {"Status": "running", "Health": {"Status": "healthy"}})
    assert set(answers) == set(healthy) == {"s"}


def test_port_is_resolved_from_the_running_configuration() -> None:
    svc = Service("a", "a", (), ("python", "a.py"), port=8000, health="/health")
    config = {"services": {"a": {"environment": {"PORT": "18999"}}}}
    assert up.resolve_port(svc, config) == 18999
    assert up.resolve_port(svc, {"services": {}}) == 8000


# -- --platform ---------------------------------------------------------------------------------


def _foreign() -> platforms.Target:
    """A platform this machine runs only through qemu."""
    arm64 = platforms.parse("linux/arm64")
    return arm64 if platforms.host() != arm64 else platforms.parse("linux/amd64")


def test_the_port_of_a_command_run_by_sh_is_read_from_its_last_step() -> None:
    svc = Service(
        "api",
        "api",
        ("r.txt",),
        ("/bin/sh", "-c", "python prepare.py && exec uvicorn main:app --port ${API_PORT}"),
        port=8200,
    )
    config = {"services": {"api": {"environment": {"API_PORT": "8311"}}}}
    assert up.resolve_port(svc, config) == 8311


def test_up_refuses_a_platform_without_a_binfmt_handler_before_anything_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _foreign()
    monkeypatch.setattr(platforms, "BINFMT_DIR", tmp_path / "binfmt_misc")
    with pytest.raises(ToolNotFound) as info:
        # no wheeldock.toml and no engine needed: the check comes first
        up.up(tmp_path, platform=target)
    assert f"cannot run {target} images" in info.value.what
    assert info.value.fix is not None
    assert "apt-get install qemu-user-static binfmt-support" in info.value.fix


def test_up_refuses_an_unknown_platform_with_the_accepted_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["-C", str(tmp_path), "up", "--platform", "linux/sparc"]) == 2
    err = capsys.readouterr().err
    assert "unknown platform 'linux/sparc'" in err
    assert "linux/amd64, linux/arm64, linux/arm/v7" in err
