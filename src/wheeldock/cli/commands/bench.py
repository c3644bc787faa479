"""``wheeldock bench``: measure the stack's lifecycle, scenario against scenario, in one run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from wheeldock.bench import lifecycle as bench
from wheeldock.bench.outputs import BenchOutputs
from wheeldock.bench.outputs import check as check_outputs
from wheeldock.cli.commands import add_command
from wheeldock.cli.output import err_console, print_json, to_json
from wheeldock.edges import ca
from wheeldock.edges.fsutil import atomic_write_text
from wheeldock.errors import UsageError

if TYPE_CHECKING:
    from wheeldock.platforms import Target


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        sub,
        "bench",
        description=bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (default 3)")
    parser.add_argument(
        "--scenarios",
        type=_csv,
        default=bench.SCENARIOS,
        help=f"comma-separated, from {','.join(bench.SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--source-builds",
        type=_csv,
        default=(),
        metavar="PKG,…",
        help="also time a cold build and a bump with these packages built from source",
    )
    parser.add_argument("--bump", metavar="NAME==VERSION", help="the pin the bump event sets")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for healthy")
    parser.add_argument(
        "--platform",
        default=None,
        metavar="PLATFORM",
        help="build and run every scenario for this platform (e.g. linux/arm64); a foreign one "
        "runs under qemu-user (binfmt): the Dockerfiles through "
        "buildx --platform, the native builder with `wheeldock build --platform`",
    )
    parser.add_argument(
        "--ca-cert", type=Path, help="the proxy CA for builds (default: SSL_CERT_FILE)"
    )
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON (- for stdout)")
    parser.add_argument("--markdown", metavar="FILE", help="write the Markdown table to FILE")
    parser.add_argument(
        "--chart",
        metavar="FILE",
        type=Path,
        help="write a PNG chart (needs the bench extra: wheeldock[bench])",
    )
    parser.set_defaults(func=_run)


def _platform(text: str | None) -> Target | None:
    if not text:
        return None
    from wheeldock import platforms  # the bases' module: only when asked

    return platforms.parse(text)


def _run(args: argparse.Namespace) -> int:
    if args.runs < 1:
        raise UsageError("--runs must be at least 1", fix="e.g. --runs 3")
    options = bench.BenchOptions(
        runs=args.runs,
        scenarios=tuple(args.scenarios),
        source_builds=tuple(args.source_builds),
        bump=args.bump,
        timeout=args.timeout,
        ca_file=ca.find(args.ca_cert),
        platform=_platform(args.platform),
    )
    outputs = BenchOutputs(
        json=None if args.json in (None, "-") else Path(args.json),
        markdown=Path(args.markdown) if args.markdown else None,
        chart=args.chart,
    )
    check_outputs(outputs)  # before the run: a missing extra must not cost the whole run
    report = bench.run_bench(
        args.project, options, progress=lambda msg: err_console.print(msg, highlight=False)
    )
    markdown = bench.render_markdown(report)
    # The JSON first: the measurements survive an output written after it that fails.
    if outputs.json is not None:
        atomic_write_text(outputs.json, to_json(report.to_dict()) + "\n")
    if outputs.markdown is not None:
        atomic_write_text(outputs.markdown, markdown)
    if args.json == "-":
        print_json(report.to_dict())
    else:
        sys.stdout.write(markdown)
    if outputs.chart is not None:
        bench.render_chart(report, outputs.chart)
    return 1 if report.failures else 0
