"""``wheeldock lock``: hash-locked requirements per service (PEP 751 pylock.toml, via uv).

Writes ``wheeldock.lock/pylock.<service>.toml``; a lock whose inputs (requirement files,
platform, Python) have not changed is kept. ``--check`` only reports, and exits 1 when a lock is
missing or stale (for CI).
"""

from __future__ import annotations

import argparse

from rich.table import Table

from wheeldock import lock, project
from wheeldock.output import console, print_json, status


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "lock",
        help="lock each service's requirements with exact versions and sha256 hashes",
        description=__doc__,
    )
    parser.add_argument("services", nargs="*", metavar="SERVICE", help="default: all services")
    parser.add_argument(
        "--platform",
        default=lock.DEFAULT_PLATFORM,
        help=f"target platform ({', '.join(sorted(lock.UV_PLATFORMS))}; default: %(default)s)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="exit 1 if a lock is missing or stale; write nothing"
    )
    mode.add_argument("--upgrade", action="store_true", help="re-resolve to the newest versions")
    mode.add_argument("--force", action="store_true", help="re-resolve even fresh locks")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    proj = project.load(args.project)
    services = proj.select(args.services)
    with status("checking locks" if args.check else "locking requirements (uv)"):
        results = lock.lock_services(
            proj,
            services,
            platform=args.platform,
            check=args.check,
            force=args.force,
            upgrade=args.upgrade,
        )
    failed = args.check and any(r.status != "fresh" for r in results)
    if args.json:
        print_json({"ok": not failed, "locks": results})
        return 1 if failed else 0
    table = Table(box=None, pad_edge=False)
    for col in ("service", "lock", "was", "now", "packages"):
        table.add_column(col)
    for r in results:
        state = {"fresh": "[green]fresh[/]", "stale": "[red]stale[/]", "missing": "[red]missing[/]"}
        table.add_row(
            r.service,
            str(r.path.relative_to(proj.root)),
            state[r.status],
            r.action,
            "" if r.packages is None else str(r.packages),
        )
    console.print(table)
    if failed:
        console.print("[red]locks are out of date[/]: run `wheeldock lock`")
    return 1 if failed else 0
