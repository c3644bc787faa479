#!/usr/bin/env python3
"""How cost grows across stacks (``make bench-growth``): the growth report from bench reports.

    python scripts/bench_growth.py report docs/bench/growth/*.json \\
        --markdown docs/bench/growth.md --chart docs/bench/growth.png
    python scripts/bench_growth.py one-service examples/fleet10 .wheeldock/growth/fleet1

``report`` reads the JSON files ``wheeldock bench --json`` wrote (one per stack) and writes the
table (:func:`wheeldock.bench.growth.render_markdown`) and the chart (matplotlib: the ``bench``
extra). ``one-service`` copies a stack keeping only its first service, the stack a fleet's
times are compared with.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wheeldock.bench import growth
from wheeldock.bench.outputs import BenchOutputs
from wheeldock.bench.outputs import check as check_outputs
from wheeldock.edges.fsutil import atomic_write_text
from wheeldock.errors import WheeldockError


def _report(args: argparse.Namespace) -> None:
    check_outputs(BenchOutputs(markdown=args.markdown, chart=args.chart))
    found = growth.load(args.reports)
    text = growth.render_markdown(found, note=args.note)
    if args.markdown is not None:
        atomic_write_text(args.markdown, text)
    else:
        sys.stdout.write(text)
    if args.chart is not None:
        growth.render_chart(found, args.chart)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="the growth table and chart from bench reports")
    report.add_argument("reports", nargs="+", type=Path, metavar="JSON")
    report.add_argument("--markdown", type=Path, help="write the table here (default: stdout)")
    report.add_argument("--chart", type=Path, help="write the PNG chart here")
    report.add_argument("--note", default="", help="a paragraph under the heading")
    cut = sub.add_parser("one-service", help="a copy of a stack with its first service only")
    cut.add_argument("source", type=Path)
    cut.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "report":
            _report(args)
        else:
            growth.first_service_copy(args.source, args.dest)
    except WheeldockError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
