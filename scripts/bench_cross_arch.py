#!/usr/bin/env python3
"""Cross-architecture figures for a stack (cb-totem by default), in one session on this machine.

Two ``wheeldock bench`` runs (:func:`wheeldock.bench.lifecycle.run_bench`), scenarios ``seed`` and
``native``, with the compiled packages also forced to build from source (``--source-builds``,
the kiosk's real case: its 7-minute compiles):

1. for this machine's platform (linux/amd64 here): every step native;
2. for linux/arm64: the seed's Dockerfile through ``buildx --platform linux/arm64`` (every RUN
   step under qemu), the native builder with ``wheeldock build --platform linux/arm64`` (aarch64
   wheels unpacked on the host; only the forced source builds run under qemu), and every
   container run under qemu.

Prints, and writes with ``--markdown``, both bench tables and a summary: the native builder's
cold build for arm64 against the same build for the host (the issue's target: at most 1.5x) and
the seed's arm64 build under qemu next to it. Run it under the bench lock (cb-totem's ports):

    flock /tmp/wheeldock-bench.lock .venv/bin/python scripts/bench_cross_arch.py \\
        --markdown docs/bench/cross-arch.md --json docs/bench/cross-arch.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wheeldock import platforms
from wheeldock.bench import lifecycle as bench
from wheeldock.cli.output import err_console
from wheeldock.edges import ca

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.5


def _median(report: bench.BenchReport, scenario: str, event: str, metric: str) -> float | None:
    stat = report.stat(scenario, event, metric)
    return stat.median if stat is not None else None


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def summary(host: bench.BenchReport, foreign: bench.BenchReport) -> str:
    """The cross-platform rows: each scenario's build times for both platforms, and the ratio
    of the native builder's foreign cold build to its host one."""
    lines = [
        f"| build time (cold, {host.stack}) | {host.platform} | {foreign.platform} | ratio |",
        "|---|---:|---:|---:|",
    ]
    events = [e for e in ("cold", "cold-src") if e in host.events]
    for scenario in ("native", "seed"):
        for event in events:
            here = _median(host, scenario, event, "build_s")
            there = _median(foreign, scenario, event, "build_s")
            ratio = f"{there / here:.2f}x" if here and there else "–"
            label = {"native": "wheeldock native builder", "seed": "seed's Dockerfile"}[scenario]
            label += ", source builds forced" if event == "cold-src" else ""
            lines.append(f"| {label} | {_cell(here)} | {_cell(there)} | {ratio} |")
    here = _median(host, "native", "cold", "build_s")
    there = _median(foreign, "native", "cold", "build_s")
    if here and there:
        verdict = "met" if there / here <= TARGET_RATIO else "NOT met"
        lines += [
            "",
            f"Native builder, {foreign.platform} / {host.platform} cold build: "
            f"**{there / here:.2f}x** (target ≤ {TARGET_RATIO}x: {verdict}).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stack", type=Path, default=REPO / "examples" / "cb-totem")
    parser.add_argument("--platform", default="linux/arm64", help="the foreign platform")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--source-builds", default="cffi,pyyaml", metavar="PKG,…")
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    reports: list[bench.BenchReport] = []
    for target in (platforms.host(), platforms.parse(args.platform)):
        options = bench.BenchOptions(
            runs=args.runs,
            scenarios=("seed", "native"),
            source_builds=tuple(p for p in args.source_builds.split(",") if p),
            ca_file=ca.find(None),
            platform=target,
        )
        reports.append(
            bench.run_bench(
                args.stack.resolve(), options, lambda msg: err_console.print(msg, highlight=False)
            )
        )
    host, foreign = reports
    text = "\n".join(
        [
            f"# Cross-architecture builds: {host.stack} for {foreign.platform} on this "
            f"{host.platform} machine",
            "",
            "Made by `scripts/bench_cross_arch.py`: two `wheeldock bench` runs in one session, "
            "scenarios seed and native"
            + (f", source builds forced for {args.source_builds}." if args.source_builds else "."),
            "",
            summary(host, foreign),
            bench.render_markdown(host).replace("# wheeldock bench", "## wheeldock bench", 1),
            bench.render_markdown(foreign).replace("# wheeldock bench", "## wheeldock bench", 1),
        ]
    )
    sys.stdout.write(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        data = {r.platform: r.to_dict() for r in reports}
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 1 if any(r.failures for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
