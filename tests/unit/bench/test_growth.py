"""The growth report: points read from bench reports, the tables, the chart, the one-service
copy of a fleet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wheeldock.bench import growth
from wheeldock.bench import lifecycle as bench
from wheeldock.errors import UsageError

FLEET = Path(__file__).resolve().parents[3] / "examples" / "fleet10"


def _report(stack: str, services: int, installed: int, cold: float, bump: float) -> dict[str, Any]:
    report = bench.BenchReport(
        stack, 3, ("native-oci", "uvguide"), ("cold", "restart", "bump"), {"date": "2026-12-07"}
    )
    report.services, report.installed_bytes = services, installed
    for run, spread in enumerate((1.0, 1.1, 0.9)):
        for event, seconds in (("cold", cold), ("bump", bump)):
            report.measurements += [
                bench.Measurement(
                    "native-oci", event, run, seconds * spread, None, None,
                    peak_rss=int(150e6 * spread), written_bytes=int(2 * installed),
                ),
                bench.Measurement("uvguide", event, run, 10 * seconds * spread, 1.0, 1.0),
            ]  # fmt: skip
    return report.to_dict()


def test_a_report_gives_one_point_per_scenario_with_its_medians() -> None:
    native, uv = growth.points(_report("data-api", 1, 430_000_000, 8.0, 0.4))
    assert (native.stack, native.scenario, native.services, native.runs) == (
        "data-api", "native-oci", 1, 3,
    )  # fmt: skip
    assert (native.cold_s, native.bump_s) == (8.0, 0.4)
    assert (native.peak_rss, native.written_bytes) == (150e6, 860e6)
    assert native.installed_mb == 430.0
    assert native.cold_ms_per_mb == pytest.approx(8000 / 430)
    assert (uv.cold_s, uv.peak_rss, uv.written_bytes) == (80.0, None, None)


def test_a_fleet_is_compared_with_the_same_scenario_on_one_service_of_the_same_size() -> None:
    found = [
        *growth.points(_report("fleet10", 10, 41_700_000, 3.0, 1.0)),
        *growth.points(_report("data-api", 1, 430_000_000, 8.0, 0.4)),
        *growth.points(_report("fleet1", 1, 41_700_000, 2.5, 0.8)),
    ]
    fleet_oci, fleet_uv = found[0], found[1]
    assert growth.one_service_baseline(fleet_oci, found) == found[4]
    assert growth.one_service_baseline(fleet_uv, found) == found[5]
    assert growth.one_service_baseline(found[4], found) is None  # one service itself
    text = growth.render_markdown(found, note="Load: 3.1")
    assert "| fleet10 (10) vs fleet1 (1) | native-oci | 3.00 s | 1.20× | 1.00 s | 1.25× |" in text
    assert "Load: 3.1" in text and "2026-12-07" in text
    row = next(line for line in text.splitlines() if line.startswith("| data-api | 1 |"))
    assert row == (
        "| data-api | 1 | 430.0 MB | native-oci | 8.00 s | 18.6 ms | 0.40 s | 150.0 MB | 860.0 MB |"
    )


def test_without_a_one_service_stack_there_is_no_fleet_table() -> None:
    text = growth.render_markdown(growth.points(_report("fleet10", 10, 41_700_000, 3.0, 1.0)))
    assert "against one" not in text


def test_a_file_that_is_not_a_bench_report_is_refused(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(_report("cb-totem", 2, 60_000_000, 2.0, 0.2)))
    bad.write_text(json.dumps({"stack": "x"}))
    assert len(growth.load([good])) == 2
    with pytest.raises(UsageError, match="not a bench report"):
        growth.load([good, bad])
    with pytest.raises(UsageError, match="cannot read a bench report"):
        growth.load([tmp_path / "missing.json"])


def test_the_chart_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    found = growth.points(_report("data-api", 1, 430_000_000, 8.0, 0.4))
    chart = growth.render_chart(found, tmp_path / "out" / "growth.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_one_service_copy_keeps_the_first_service_only(tmp_path: Path) -> None:
    dest = growth.first_service_copy(FLEET, tmp_path / "fleet1")
    stack = bench.Stack.load(dest)
    assert [s.name for s in stack.services] == ["fleet-01"]
    assert stack.services[0].port == 8110
    assert (dest / "app" / "requirements.txt").read_bytes() == (
        FLEET / "app" / "requirements.txt"
    ).read_bytes()
    assert [s.name for s in bench.Stack.load(FLEET).services][-1] == "fleet-10"
