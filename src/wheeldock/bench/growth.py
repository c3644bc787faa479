"""How a build's cost grows: the bench reports of several stacks side by side, against the
stack's installed size and against its number of services.

Each point is one scenario of one stack's ``wheeldock bench --json`` report: the medians of its
cold build and one-pin bump (build time alone), and of the cold build's peak RSS and bytes
written where the bench measured them (the native builder's scenarios; see
:mod:`wheeldock.bench.cost`). Points are only read from the reports: nothing is measured here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheeldock.bench import outputs
from wheeldock.compose import files as compose
from wheeldock.errors import UsageError

#: the figures each point carries, with how the table and the chart name them
METRICS = {
    "cold_s": "cold build (s)",
    "bump_s": "one pin bumped (s)",
    "peak_rss": "cold build peak RSS (MB)",
    "written_bytes": "cold build bytes written (MB)",
}


@dataclass(frozen=True)
class GrowthPoint:
    """One scenario of one stack: medians of ``runs`` runs (None: not measured)."""

    stack: str
    scenario: str
    services: int
    installed_bytes: int | None
    runs: int
    date: str
    cold_s: float | None
    bump_s: float | None
    peak_rss: float | None
    written_bytes: float | None

    @property
    def installed_mb(self) -> float | None:
        return self.installed_bytes / 1e6 if self.installed_bytes else None

    @property
    def cold_ms_per_mb(self) -> float | None:
        """Cold build time per installed MB, in milliseconds."""
        mb = self.installed_mb
        return 1000 * self.cold_s / mb if mb and self.cold_s is not None else None


def _median(entry: Mapping[str, Any], metric: str) -> float | None:
    stat = entry.get(metric)
    return float(stat["median"]) if isinstance(stat, Mapping) else None


def points(report: Mapping[str, Any]) -> list[GrowthPoint]:
    """The points of one bench report (the dict ``wheeldock bench --json`` writes), one per
    scenario that has a cold build time, in the report's scenario order (pure)."""
    summary: Mapping[str, Any] = report.get("summary", {})
    found = []
    for scenario in report.get("scenarios", []):
        events = summary.get(scenario, {})
        cold, bump = events.get("cold", {}), events.get("bump", {})
        if _median(cold, "build_s") is None:
            continue
        found.append(
            GrowthPoint(
                stack=str(report.get("stack", "?")),
                scenario=scenario,
                services=int(report.get("services") or 0),
                installed_bytes=report.get("installed_bytes"),
                runs=int(report.get("runs", 0)),
                date=str(report.get("machine", {}).get("date", "")),
                cold_s=_median(cold, "build_s"),
                bump_s=_median(bump, "build_s"),
                peak_rss=_median(cold, "peak_rss"),
                written_bytes=_median(cold, "written_bytes"),
            )
        )
    return found


def load(paths: Iterable[Path]) -> list[GrowthPoint]:
    """The points of every report at ``paths``, in order; :class:`UsageError` for a file that
    is not a bench report."""
    found: list[GrowthPoint] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"cannot read a bench report ({exc})",
                path=path,
                fix="give the JSON files `wheeldock bench --json FILE` wrote",
            ) from exc
        if not isinstance(data, dict) or "summary" not in data:
            raise UsageError(
                "not a bench report (no summary)",
                path=path,
                fix="give the JSON files `wheeldock bench --json FILE` wrote",
            )
        found += points(data)
    return found


def one_service_baseline(point: GrowthPoint, every: Sequence[GrowthPoint]) -> GrowthPoint | None:
    """The point of the same scenario on a one-service stack with the same installed size
    (within 1%): what ``point``'s services cost as one (None: no such point, or ``point`` has
    one service)."""
    if point.services <= 1 or not point.installed_bytes:
        return None
    for other in every:
        if (
            other.scenario == point.scenario
            and other.services == 1
            and other.installed_bytes
            and abs(other.installed_bytes - point.installed_bytes) <= point.installed_bytes / 100
        ):
            return other
    return None


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def _mb(value: float | None) -> str:
    return "–" if value is None else f"{value / 1e6:.1f} MB"


def _times(value: float | None, base: float | None) -> str:
    return "–" if value is None or not base else f"{value / base:.2f}×"


def render_markdown(found: Sequence[GrowthPoint], note: str = "") -> str:
    """The growth tables: every point with its stack's size; then, for stacks of several
    services, their times against the same scenario on one service."""
    dates = sorted({p.date for p in found if p.date})
    lines = [
        "# How cost grows: build time, memory and bytes written against stack size",
        "",
        f"Medians of each report's runs (runs: {', '.join(sorted({str(p.runs) for p in found}))}),"
        f" measured {', '.join(dates) or '?'}; build time alone (the image is ready, nothing "
        "started). Peak RSS is that of the largest process of `wheeldock build`'s tree; bytes "
        "written the net growth of its caches and outputs (`wheeldock.bench.cost`); the "
        "Dockerfile scenarios build inside dockerd, where neither is measured. Installed size: "
        "the stack's dependency layers, uncompressed.",
        "",
    ]
    if note:
        lines += [note, ""]
    lines += [
        "| Stack | Services | Installed | Scenario | Cold build | Cold per installed MB "
        "| One pin bumped | Cold peak RSS | Cold bytes written |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for p in found:
        per_mb = p.cold_ms_per_mb
        lines.append(
            f"| {p.stack} | {p.services} | {_mb(p.installed_bytes)} | {p.scenario} "
            f"| {_s(p.cold_s)} | {'–' if per_mb is None else f'{per_mb:.1f} ms'} "
            f"| {_s(p.bump_s)} | {_mb(p.peak_rss)} | {_mb(p.written_bytes)} |"
        )
    pairs = [(p, base) for p in found if (base := one_service_baseline(p, found)) is not None]
    if pairs:
        lines += [
            "",
            "## Several services sharing one lock, against one",
            "",
            "| Stack | Scenario | Cold build | × one service | One pin bumped | × one service |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for p, base in pairs:
            lines.append(
                f"| {p.stack} ({p.services}) vs {base.stack} (1) | {p.scenario} "
                f"| {_s(p.cold_s)} | {_times(p.cold_s, base.cold_s)} "
                f"| {_s(p.bump_s)} | {_times(p.bump_s, base.bump_s)} |"
            )
    return "\n".join(lines) + "\n"


def _scaled(point: GrowthPoint, metric: str) -> float | None:
    value: float | None = getattr(point, metric)
    if value is None:
        return None
    return value / 1e6 if metric in ("peak_rss", "written_bytes") else value


def render_chart(found: Sequence[GrowthPoint], path: Path) -> Path:
    """A grid of scatter plots: each metric (a row) against installed MB and against the number
    of services (the columns), one series per scenario, each point labelled with its stack."""
    plt = outputs.pyplot()
    scenarios = list(dict.fromkeys(p.scenario for p in found))
    axes_x = (("installed_mb", "installed size (MB)"), ("services", "services"))
    fig, grid = plt.subplots(len(METRICS), len(axes_x), figsize=(11, 3.2 * len(METRICS)))
    for row, (metric, title) in enumerate(METRICS.items()):
        for col, (attr, xlabel) in enumerate(axes_x):
            ax = grid[row][col]
            for scenario in scenarios:
                xy = [
                    (getattr(p, attr), y, p.stack)
                    for p in found
                    if p.scenario == scenario
                    and getattr(p, attr)
                    and (y := _scaled(p, metric)) is not None
                ]
                if not xy:
                    continue
                ax.plot([x for x, _, _ in xy], [y for _, y, _ in xy], "o", label=scenario)
                for x, y, stack in xy:
                    ax.annotate(
                        stack, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points"
                    )
            ax.set_xlabel(xlabel, fontsize=8)
            ax.set_ylabel(title, fontsize=8)
            ax.set_xlim(left=0)
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            if row == 0 and col == 0:
                ax.legend(fontsize=8)
    fig.suptitle("wheeldock bench: how cost grows (medians)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def first_service_copy(source: Path, dest: Path) -> Path:
    """A copy of the stack at ``source`` whose compose file keeps only its first service: the
    one-service stack that :func:`one_service_baseline` compares a fleet with. ``dest`` is
    replaced; the compose file is the first wheeldock finds."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".wheeldock", "__pycache__"))
    path = compose.find_files(dest)[0]
    found = compose.load(path)
    services = found.data["services"]
    for name in list(services)[1:]:
        del services[name]
    path.write_text(compose.dump(found))
    return dest
