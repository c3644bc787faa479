"""bench's pure parts: pins, bumps, probing and the rendered table."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from wheeldock import cli, platforms
from wheeldock.bench import lifecycle as bench
from wheeldock.compose.health import ContainerState
from wheeldock.errors import CommandFailed, ToolNotFound, UsageError
from wheeldock.project import Service

REQS = """\
# pinned
fastapi==0.115.0
uvicorn[standard]==0.30.1
idna==3.10  # via anyio
"""


def test_pins_reads_exact_pins_with_extras_and_comments() -> None:
    assert bench.pins(REQS) == {"fastapi": "0.115.0", "uvicorn": "0.30.1", "idna": "3.10"}


def test_bump_requirement_changes_only_that_pin(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(REQS)
    assert bench.bump_requirement(req, "idna", "3.9") == "3.10"
    assert req.read_text() == REQS.replace("idna==3.10", "idna==3.9")


def test_bump_requirement_keeps_extras(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(REQS)
    bench.bump_requirement(req, "uvicorn", "0.30.0")
    assert "uvicorn[standard]==0.30.0" in req.read_text()


def test_bumping_an_unpinned_package_is_a_usage_error(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(REQS)
    with pytest.raises(UsageError) as err:
        bench.bump_requirement(req, "requests", "2.0")
    assert err.value.path == req


def _pypi(releases: dict[str, list[dict[str, object]]]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/pypi/idna/json"
        return httpx.Response(200, json={"releases": releases})

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_previous_release_skips_prereleases_yanked_and_empty_releases() -> None:
    client = _pypi(
        {
            "3.8": [{"yanked": False}],
            "3.9": [{"yanked": True}],
            "3.10rc1": [{"yanked": False}],
            "3.9.1": [],
            "3.10": [{"yanked": False}],
        }
    )
    assert bench.previous_release("idna", "3.10", client) == "3.8"


def test_previous_release_of_the_oldest_version_is_an_error() -> None:
    with pytest.raises(UsageError):
        bench.previous_release("idna", "3.8", _pypi({"3.8": [{"yanked": False}]}))


class _Health(BaseHTTPRequestHandler):
    ready_at = 0.0

    def do_GET(self) -> None:
        code = 200 if time.monotonic() >= self.ready_at else 503
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("H", (_Health,), {"ready_at": time.monotonic() + 0.3})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()


def _svc(name: str, port: int | None, health: str = "/health") -> Service:
    return Service(
        name=name,
        source=".",
        requirements=(),
        command=("python3", "x.py"),
        port=port,
        health=health,
    )


HEALTHY = ContainerState("running", "healthy")


def test_wait_healthy_returns_when_every_service_answers_200(
    health_server: tuple[int, type[_Health]],
) -> None:
    port, _ = health_server
    t0 = time.perf_counter()
    answer, healthy = bench.wait_healthy(
        [_svc("api", port)],
        lambda: {"api": HEALTHY},
        t0,
        timeout=10,
        docker_health=True,
        on_fail=lambda s: "",
    )
    assert 0.25 <= answer < 5
    assert healthy is not None and healthy < 5


def test_wait_healthy_counts_a_portless_worker_when_docker_says_healthy() -> None:
    answer, _ = bench.wait_healthy(
        [_svc("worker", None, "process")],
        lambda: {"worker": HEALTHY},
        time.perf_counter(),
        timeout=5,
        docker_health=True,
        on_fail=lambda s: "",
    )
    assert answer < 1


def test_wait_healthy_does_not_count_a_portless_worker_docker_has_not_called_healthy() -> None:
    with pytest.raises(bench.BenchFailed, match="worker not healthy after 0 s"):
        bench.wait_healthy(
            [_svc("worker", None, "process")],
            lambda: {"worker": ContainerState("running", "starting")},
            time.perf_counter(),
            timeout=0.3,
            docker_health=True,
            on_fail=lambda s: "",
        )


def test_wait_healthy_times_out_with_the_services_logs() -> None:
    with pytest.raises(bench.BenchFailed) as err:
        bench.wait_healthy(
            [_svc("api", 1)],  # nothing listens on port 1
            lambda: {"api": ContainerState("running", "starting")},
            time.perf_counter(),
            timeout=0.3,
            docker_health=True,
            on_fail=lambda s: f"last lines of {s}",
        )
    assert "api not healthy" in err.value.what and "last lines of api" in err.value.what


def test_wait_healthy_fails_at_once_when_a_container_exits() -> None:
    started = time.perf_counter()
    with pytest.raises(bench.BenchFailed, match=r"the container exited \(exit code 3\)"):
        bench.wait_healthy(
            [_svc("api", 1)],
            lambda: {"api": ContainerState("exited", exit_code=3)},
            started,
            timeout=30,
            docker_health=True,
            on_fail=lambda s: "",
        )
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("state", "status", "expected"),
    [
        ("running", "Up 3 seconds (healthy)", ContainerState("running", "healthy")),
        ("running", "Up 1 second (health: starting)", ContainerState("running", "starting")),
        ("running", "Up 9 seconds (unhealthy)", ContainerState("running", "unhealthy")),
        ("running", "Up 2 seconds", ContainerState("running")),
        ("exited", "Exited (137) 2 seconds ago", ContainerState("exited", exit_code=137)),
    ],
)
def test_docker_ps_columns_become_a_container_state(
    state: str, status: str, expected: ContainerState
) -> None:
    assert bench._ps_state(state, status) == expected


def _report() -> bench.BenchReport:
    report = bench.BenchReport(
        stack="cb-totem",
        runs=3,
        scenarios=("seed", "uvguide", "native"),
        events=("cold", "bump"),
        machine={"cpu": "test cpu", "cores": "2"},
        bumped="idna 3.10 -> 3.9",
    )
    for run, (seed, uv, native) in enumerate(
        [(40.0, 20.0, 2.0), (42.0, 21.0, 2.2), (38.0, 19.0, 1.8)]
    ):
        for name, value in (("seed", seed), ("uvguide", uv), ("native", native)):
            report.measurements.append(
                bench.Measurement(name, "cold", run, value - 1, value, value + 0.5)
            )
            report.measurements.append(
                bench.Measurement(name, "bump", run, value / 4, value / 2, None)
            )
    report.sizes.append(bench.ImageSize("seed", "api", "x", 403_000_000, 150_000_000))
    return report


def test_stat_is_median_min_max_of_the_runs() -> None:
    stat = _report().stat("seed", "cold", "answer_s")
    assert stat == bench.Stat(40.0, 38.0, 42.0, 3)


def test_markdown_table_has_medians_and_ratios_against_seed_and_uvguide() -> None:
    text = bench.render_markdown(_report())
    row = next(line for line in text.splitlines() if line.startswith("| First build + start"))
    assert "40.0 s (40.5 s)" in row and "2.00 s (2.50 s)" in row
    assert "20.0× (native)" in row and "10.0× (native)" in row
    assert "403.0 MB" in text
    assert "idna 3.10 -> 3.9" in text


def test_report_json_has_a_summary_per_scenario_and_event() -> None:
    data = _report().to_dict()
    assert data["summary"]["native"]["cold"]["answer_s"]["median"] == 2.0
    assert len(data["measurements"]) == 18


def _report_with_daemonless() -> bench.BenchReport:
    report = _report()
    report.scenarios = ("seed", "uvguide", "native", "native-oci")
    for run, value in enumerate([0.5, 0.6, 0.4]):
        report.measurements.append(bench.Measurement("native-oci", "cold", run, value, None, None))
        report.measurements.append(
            bench.Measurement("native-oci", "bump", run, value / 4, None, None)
        )
    return report


def test_the_daemonless_build_has_build_times_and_no_start_figures() -> None:
    report = _report_with_daemonless()
    assert report.stat("native-oci", "cold", "build_s") == bench.Stat(0.5, 0.4, 0.6, 3)
    assert report.stat("native-oci", "cold", "answer_s") is None
    assert "answer_s" not in report.to_dict()["summary"]["native-oci"]["cold"]


def test_the_daemonless_build_is_a_build_column_with_its_own_ratios_not_a_start_column() -> None:
    lines = bench.render_markdown(_report_with_daemonless()).splitlines()
    health_header, build_header = (line for line in lines if line.startswith("| Event |"))
    assert "native-oci" not in health_header
    assert build_header.endswith("| native-oci vs seed | native-oci vs uvguide |")
    cold_build = [line for line in lines if line.startswith("| First build + start")][1]
    # seed's build 39 s, uvguide's 19 s; native's 1.0 s into the engine, native-oci's 0.5 s
    assert cold_build.endswith("| 39.0× (native) | 19.0× (native) | 78.0× | 38.0× |")


def test_the_daemonless_scenario_writes_one_layout_a_tag_per_service_and_nothing_to_the_engine(
    tmp_path: Path,
) -> None:
    calls = tmp_path / "calls.jsonl"
    services = tuple(
        Service(n, n, (f"{n}/requirements.txt",), ("python3", "main.py"), port=8000 + i)
        for i, n in enumerate(("api", "img"))
    )
    stack = bench.Stack(tmp_path, services, (tmp_path / "compose.yaml",))
    oci = bench.NativeOci(
        stack, tmp_path, ca_file=None, wheeldock=[sys.executable, "-c", RECORDER, str(calls)]
    )
    try:
        oci.build()
    finally:
        shutil.rmtree(oci.cache, ignore_errors=True)
    (argv,) = [json.loads(line) for line in calls.read_text().splitlines()]
    outputs = [a.removeprefix("--output=") for a in argv if a.startswith("--output=")]
    # one layout: the layers the services share are stored once
    assert outputs == [f"oci:{oci.layouts}:{{service}}"]
    assert oci.image_refs() == [] and not oci.starts


def test_a_cold_daemonless_build_starts_without_the_layouts_of_earlier_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.engine, "docker", lambda *args, **kwargs: None)  # no engine here
    svc = Service("api", "api", ("api/requirements.txt",), ("python3", "main.py"), port=8000)
    oci = bench.NativeOci(
        bench.Stack(tmp_path, (svc,), (tmp_path / "compose.yaml",)),
        tmp_path,
        ca_file=None,
        wheeldock=[sys.executable],
    )
    try:
        (oci.layouts / "blobs").mkdir(parents=True)
        oci.clear_caches()
        assert not oci.layouts.exists()
    finally:
        shutil.rmtree(oci.cache, ignore_errors=True)


BASE = ("sha256:base",)


def test_a_cold_build_sharing_only_its_base_with_the_engine_is_cold() -> None:
    built = [*BASE, "sha256:deps", "sha256:app"]
    before = {"wheeldock/python:3.11-slim": BASE, "python:3.11-slim": ("sha256:other",)}
    assert bench.already_held(built, before) == (0, [])


def test_layers_past_the_base_already_in_the_engine_make_a_cold_build_warm() -> None:
    built = [*BASE, "sha256:pillow", "sha256:idna", "sha256:app"]
    before = {
        "wheeldock/python:3.11-slim": BASE,
        "cb-totem-srv-img:wheeldock": (*BASE, "sha256:pillow", "sha256:idna", "sha256:old-app"),
        "unrelated:1": ("sha256:x",),
    }
    assert bench.already_held(built, before) == (2, ["cb-totem-srv-img:wheeldock"])


def test_the_report_lists_cold_builds_that_were_warm_in_the_engine() -> None:
    report = _report()
    report.warm_engine.append("native run 1 cold: the engine already held 19 of x's 21 layers")
    assert "## Cold builds that were not cold in the engine" in bench.render_markdown(report)
    assert report.to_dict()["warm_engine"] == report.warm_engine


def test_chart_is_a_png(tmp_path: Path) -> None:
    path = bench.render_chart(_report(), tmp_path / "chart.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_port_in_use_sees_a_listening_server(health_server: tuple[int, type[_Health]]) -> None:
    port, _ = health_server
    assert bench.port_in_use(port)


def test_port_in_use_is_false_for_a_closed_port() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert not bench.port_in_use(port)


# -- --platform ---------------------------------------------------------------------------------

ARM64 = platforms.parse("linux/arm64")
ARMV7 = platforms.parse("linux/arm/v7")


def _foreign() -> platforms.Target:
    """A platform this machine runs only through qemu."""
    return ARM64 if platforms.host() != ARM64 else platforms.parse("linux/amd64")


def test_report_names_the_platform_in_its_json_and_says_it_ran_emulated() -> None:
    report = dataclasses.replace(_report(), platform="linux/arm64", emulated=True)
    data = report.to_dict()
    assert (data["platform"], data["emulated"]) == ("linux/arm64", True)
    text = bench.render_markdown(report)
    assert text.splitlines()[0] == "# wheeldock bench: cb-totem (linux/arm64)"
    assert "Platform: linux/arm64, emulated: every container" in text


def test_report_on_the_engines_own_platform_says_so() -> None:
    report = dataclasses.replace(_report(), platform="linux/amd64")
    text = bench.render_markdown(report)
    assert text.splitlines()[0] == "# wheeldock bench: cb-totem"
    assert "Platform: linux/amd64 (this machine's own)." in text


def test_bench_refuses_a_platform_without_a_binfmt_handler_before_any_work(
    tmp_path: Path,
) -> None:
    target = _foreign()
    options = bench.BenchOptions(platform=target, binfmt_dir=tmp_path / "binfmt_misc")
    with pytest.raises(ToolNotFound) as info:
        bench.run_bench(tmp_path, options)  # no compose file, no engine: refused before
    assert f"cannot run {target} images" in info.value.what
    assert info.value.fix is not None and "qemu-user-static binfmt-support" in info.value.fix


def test_bench_takes_arm_v7_for_the_native_builder_too_given_a_qemu_arm_handler(
    tmp_path: Path,
) -> None:
    binfmt = tmp_path / "binfmt_misc"
    binfmt.mkdir()
    (binfmt / "qemu-arm").write_text(
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/arm\nflags: PF\n"
    )
    options = bench.BenchOptions(scenarios=("seed", "native"), platform=ARMV7, binfmt_dir=binfmt)
    assert bench._check_platform(options) == ("linux/arm/v7", platforms.needs_emulation(ARMV7))


#: A stand-in for the wheeldock CLI: appends its arguments, as JSON, to the file named first.
RECORDER = "import json, sys; open(sys.argv[1], 'a').write(json.dumps(sys.argv[2:]) + chr(10))"


@pytest.mark.parametrize(
    ("platform", "no_binary", "expected"),
    [
        (None, (), []),
        (ARM64, (), ["--platform", "linux/arm64"]),
        (ARM64, ("cffi",), ["--platform", "linux/arm64", "--emulate-sdists"]),
        (platforms.host(), ("cffi",), ["--platform", platforms.host().name]),
    ],
)
def test_native_scenario_builds_for_the_platform_emulating_only_forced_source_builds(
    tmp_path: Path,
    platform: platforms.Target | None,
    no_binary: tuple[str, ...],
    expected: list[str],
) -> None:
    calls = tmp_path / "calls.jsonl"
    svc = Service("api", "api", ("api/requirements.txt",), ("python3", "main.py"), port=8000)
    stack = bench.Stack(tmp_path, (svc,), (tmp_path / "compose.yaml",))
    native = bench.Native(
        stack,
        tmp_path,
        ca_file=None,
        wheeldock=[sys.executable, "-c", RECORDER, str(calls)],
        platform=platform,
    )
    try:
        native.no_binary = no_binary
        native.build()
    finally:
        shutil.rmtree(native.cache, ignore_errors=True)
    (argv,) = [json.loads(line) for line in calls.read_text().splitlines()]
    assert argv[:3] == ["-C", str(tmp_path), "build"]
    platform_args = []
    for i, arg in enumerate(argv):
        if arg == "--platform":
            platform_args += argv[i : i + 2]
        elif arg == "--emulate-sdists":
            platform_args.append(arg)
    assert platform_args == expected


def test_bench_cli_refuses_an_unknown_platform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["-C", str(tmp_path), "bench", "--platform", "linux/sparc"]) == 2
    assert "unknown platform 'linux/sparc'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stderr", "raised"),
    [("", bench.BuildSessionLost), ("#5 ERROR: process did not complete\n", CommandFailed)],
    ids=["silent", "a-step-failed"],
)
def test_a_compose_build_that_printed_nothing_is_a_lost_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stderr: str, raised: type[Exception]
) -> None:
    def compose(*args: object, **kwargs: object) -> None:
        raise CommandFailed(["docker", "compose", "build"], 17, "", stderr)

    monkeypatch.setattr(bench.engine, "compose", compose)
    svc = Service("api", "api", ("api/requirements.txt",), ("python3", "main.py"), port=8000)
    stack = bench.Stack(tmp_path, (svc,), (tmp_path / "compose.yaml",))
    scenario = bench.UvGuide(stack, tmp_path, ca_file=None, wheeldock=["wheeldock"])
    with pytest.raises(raised) as info:
        scenario.build()
    assert type(info.value) is raised


def test_a_build_timed_again_is_listed_in_the_report() -> None:
    report = _report()
    report.retried.append("uvguide run 2 code: `docker compose build` exited with 17")
    text = bench.render_markdown(report)
    assert "## Builds timed again (nothing had been built)" in text
    assert "- uvguide run 2 code:" in text
    assert report.to_dict()["retried"] == report.retried


def _report_with_costs() -> bench.BenchReport:
    report = _report_with_daemonless()
    report.services, report.installed_bytes = 2, 431_000_000
    costs = {"cold": (200e6, 900e6), "bump": (90e6, 2e6)}
    for i, m in enumerate(list(report.measurements)):
        if m.scenario in ("native", "native-oci"):
            rss, written = costs[m.event]
            report.measurements[i] = dataclasses.replace(
                m, peak_rss=int(rss) + m.run * 1_000_000, written_bytes=int(written)
            )
    return report


def test_the_cost_of_each_measured_build_is_summarised_in_the_json() -> None:
    data = _report_with_costs().to_dict()
    assert (data["services"], data["installed_bytes"]) == (2, 431_000_000)
    cold = data["summary"]["native-oci"]["cold"]
    assert cold["peak_rss"] == {"median": 201e6, "min": 200e6, "max": 202e6, "n": 3}
    assert cold["written_bytes"]["median"] == 900e6
    assert "peak_rss" not in data["summary"]["uvguide"]["cold"]


def test_the_cost_table_has_a_build_rss_and_written_column_per_measured_scenario() -> None:
    lines = bench.render_markdown(_report_with_costs()).splitlines()
    start = lines.index("## What each build costs")
    assert "2 services; installed size 431.0 MB" in lines[start + 2]
    header = lines[start + 4]
    assert header.startswith("| Event | native build | native peak RSS | native written |")
    assert "uvguide" not in header and header.count("|") == 8
    cold = lines[start + 6]
    # native-oci's cold builds: 0.5 s median, 201 MB peak, 900 MB written
    assert cold.startswith("| First build + start |")
    assert cold.endswith("| 0.50 s | 201.0 MB | 900.0 MB |")
    assert lines[start + 7].startswith("| Requirements change (one pin) |")


def test_a_report_without_measured_builds_has_no_cost_table() -> None:
    assert "## What each build costs" not in bench.render_markdown(_report())


#: a stand-in for `wheeldock build --json`: writes 4096 bytes into its cache and reports the
#: deps layer whose digest it is given
FAKE_BUILD = """
import json, os, sys
with open(os.path.join(os.environ["WHEELDOCK_CACHE"], "written"), "wb") as fh:
    fh.write(b"w" * 4096)
layers = [{"kind": "deps", "digest": sys.argv[1]}, {"kind": "app", "digest": "sha256:" + "a" * 64}]
print(json.dumps({"services": [{"service": "api", "layers": layers}]}))
"""


def test_a_native_build_reports_its_peak_rss_bytes_written_and_installed_size(
    tmp_path: Path,
) -> None:
    import gzip

    from wheeldock.bench import cost
    from wheeldock.oci.blobs import BlobStore

    svc = Service("api", "api", ("api/requirements.txt",), ("python3", "main.py"), port=8000)
    work = tmp_path / "work"
    work.mkdir()
    report = bench.BenchReport("s", 1, ("native-oci",), ("cold",), {})
    run = bench._BenchRun(
        work, bench.Stack(work, (svc,), ()), tmp_path, ("cold",), bench.BenchOptions(), report,
        lambda msg: None, ("idna", "3.10", "3.9"),
    )  # fmt: skip
    oci = bench.NativeOci(run.probe, work, ca_file=None, wheeldock=[])
    try:
        deps = BlobStore(oci.cache / "wheeldock" / "blobs").put_bytes(gzip.compress(b"d" * 5000))
        oci.wheeldock = [sys.executable, "-c", FAKE_BUILD, str(deps.digest)]
        before = cost.tree_bytes(oci.written_roots())
        oci.build()
        peak, written = bench._build_cost(run, oci, "cold", before)
    finally:
        shutil.rmtree(oci.cache, ignore_errors=True)
    assert written == 4096
    assert peak is not None and peak > 1_000_000
    assert report.installed_bytes == 5000


def test_a_native_scenario_removes_its_caches_when_discarded(tmp_path: Path) -> None:
    svc = Service("api", "api", ("api/requirements.txt",), ("python3", "main.py"), port=8000)
    native = bench.Native(
        bench.Stack(tmp_path, (svc,), ()), tmp_path, ca_file=None, wheeldock=[sys.executable]
    )
    (native.cache / "uv" / "wheels").mkdir(parents=True)
    native.discard()
    assert not native.cache.exists()


def test_the_bump_event_picks_a_small_pure_python_top_level_pin_over_the_first_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # toplevel-api's shape: only what the service imports is pinned, cryptography first by name
    (tmp_path / "requirements.txt").write_text(
        "cryptography==44.0.0\npillow==13.0.0\npython-multipart==0.0.19\nlxml==5.3.0\n"
    )
    monkeypatch.setattr(bench, "previous_release", lambda name, version: f"before-{version}")
    stack = SimpleNamespace(
        root=tmp_path, services=[SimpleNamespace(requirements=("requirements.txt",))]
    )
    assert bench._choose_bump(stack, None) == ("python-multipart", "0.0.19", "before-0.0.19")  # type: ignore[arg-type]
