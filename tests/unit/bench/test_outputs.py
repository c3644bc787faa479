"""bench's outputs: checked before the run, the JSON written before anything that can fail."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pytest

from wheeldock.bench import lifecycle as bench
from wheeldock.bench import outputs
from wheeldock.cli.app import main
from wheeldock.errors import ExtraNotFound, NotWritable, UsageError

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """matplotlib as if it were not installed: a None entry makes its import raise."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def _report() -> bench.BenchReport:
    report = bench.BenchReport(
        stack="s", runs=1, scenarios=("native",), events=("cold",), machine={"cores": "2"}
    )
    report.measurements.append(bench.Measurement("native", "cold", 0, 1.0, 2.0, 2.5))
    return report


def test_a_chart_without_matplotlib_names_the_bench_extra(no_matplotlib: None) -> None:
    with pytest.raises(ExtraNotFound) as err:
        outputs.check(outputs.BenchOutputs(chart=Path("chart.png")))
    assert "matplotlib" in err.value.what
    assert "wheeldock[bench]" in (err.value.fix or "")


def test_the_bench_extra_the_message_names_exists_and_brings_matplotlib() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["bench"]
    assert any(req.startswith("matplotlib") for req in extra)


def test_no_chart_needs_no_matplotlib(no_matplotlib: None, tmp_path: Path) -> None:
    outputs.check(outputs.BenchOutputs(json=tmp_path / "r.json", markdown=tmp_path / "r.md"))


def test_missing_output_folders_are_made_and_no_probe_is_left(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "bench.json"
    outputs.check(outputs.BenchOutputs(json=target))
    assert target.parent.is_dir()
    assert list(target.parent.iterdir()) == []


def test_an_output_under_a_file_is_not_writable_and_named(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    target = tmp_path / "a-file" / "bench.md"
    with pytest.raises(NotWritable) as err:
        outputs.check(outputs.BenchOutputs(markdown=target))
    assert err.value.path == target
    assert "--markdown" in err.value.message


def test_an_output_that_names_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        outputs.check(outputs.BenchOutputs(json=tmp_path))
    assert err.value.path == tmp_path
    assert "bench.json" in (err.value.fix or "")


def test_outputs_are_written_json_first() -> None:
    asked = outputs.BenchOutputs(json=Path("a"), markdown=Path("b"), chart=Path("c"))
    assert [option for option, _ in asked.files()] == ["--json", "--markdown", "--chart"]


def test_the_cli_refuses_a_chart_it_cannot_draw_before_any_scenario_runs(
    no_matplotlib: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran: list[Path] = []
    monkeypatch.setattr(bench, "run_bench", lambda root, *a, **k: ran.append(root))
    code = main(["-C", str(tmp_path), "bench", "--chart", str(tmp_path / "c.png")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1
    assert ran == []
    assert "wheeldock[bench]" in err


def test_the_json_is_written_when_the_chart_fails_after_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken_chart(report: bench.BenchReport, path: Path) -> Path:
        raise NotWritable("cannot write the chart (disk full)", path=path)

    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: _report())
    monkeypatch.setattr(bench, "render_chart", broken_chart)
    argv = ["-C", str(tmp_path), "bench", "--json", str(tmp_path / "out" / "r.json")]
    argv += ["--markdown", str(tmp_path / "out" / "r.md"), "--chart", str(tmp_path / "c.png")]
    assert main(argv) == 1
    assert "disk full" in capsys.readouterr().err
    saved = json.loads((tmp_path / "out" / "r.json").read_text())
    assert saved["measurements"][0]["scenario"] == "native"
    assert (tmp_path / "out" / "r.md").read_text().startswith("#")
