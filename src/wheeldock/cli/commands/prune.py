"""wheeldock prune: free the disk the caches and the engine hold for nothing.

Removes wheels no lock under the project names (and named ones unused for --keep-days),
installed-tree archives and blob-index entries unused for --keep-days, the blobs no entry
names any more, temp files left by builds that stopped (ENOSPC, kill -9), and the dangling
images wheeldock made in the engine. Anything used in the last hour stays, and an image a
container still uses is kept. --dry-run only lists what would go.
"""

from __future__ import annotations

import argparse

from rich.table import Table

from wheeldock.build.prune import PruneOptions, PruneReport, prune
from wheeldock.cli.commands import add_command, add_flags, add_json, add_number
from wheeldock.cli.output import console, err_console, print_json, status
from wheeldock.edges.sweep import KEEP_DAYS
from wheeldock.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        sub,
        "prune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_flags(parser, dry_run="list what would be removed, remove nothing")
    keep_help = f"keep what is still wanted for N days after its last use (default: {KEEP_DAYS:g})"
    add_number(parser, "--keep-days", KEEP_DAYS, "N", keep_help)
    add_flags(parser, all="empty the caches (everything not used in the last hour)")
    add_json(parser, "report")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.keep_days < 0:
        raise UsageError(f"--keep-days must be 0 or more, not {args.keep_days:g}")
    options = PruneOptions(keep_days=args.keep_days, everything=args.all, dry_run=args.dry_run)
    with status("finding what no build needs", quiet=args.json):
        report = prune(args.project, options)
    if args.json:
        print_json(report.to_json())
    else:
        _render(report)
    return 0 if not report.failed else 1


def _render(report: PruneReport) -> None:
    verb = "would free" if report.dry_run else "freed"
    table = Table(title=f"wheeldock prune{' (dry run)' if report.dry_run else ''}")
    table.add_column("what")
    table.add_column("entries", justify="right")
    table.add_column(verb, justify="right")
    for kind, count, size in report.totals():
        table.add_row(kind, str(count), _human(size))
    table.add_row("[bold]total[/]", "", f"[bold]{_human(report.freed)}[/]")
    console.print(table)
    if not report.locks:
        err_console.print(
            "[yellow]note:[/] no lock under this folder: every cached wheel counts as unused "
            "(run it in the project, or `wheeldock lock` first)"
        )
    if not report.engine:
        err_console.print("[yellow]note:[/] no Docker engine answered: images left as they are")
    for image_id, why in report.kept_images.items():
        err_console.print(f"kept image {image_id[:19]}: {why}")
    for cand, why in report.failed:
        err_console.print(f"[bold red]error:[/] cannot remove {cand.path}: {why}")


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover
