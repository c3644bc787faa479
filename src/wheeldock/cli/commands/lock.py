"""wheeldock lock: hash-locked requirements per service (PEP 751 pylock.toml, via uv).

Writes wheeldock.lock/pylock.<service>.toml (pylock.<service>-<arch>.toml for another
--platform: aarch64, armv7l); a lock whose inputs (requirement files, platform,
Python) have not changed is kept. --check only reports, and exits 1 when a lock is missing
or stale (for CI).

Fully pinned inputs (every requirement name==version, as uv pip compile or pip-compile
write them) are locked without a resolver: only the pins the old lock lacks are asked of PyPI's
JSON API, and the lock is written only if every dependency is pinned and satisfied, so the
result is the one uv would give. --full always resolves with uv.

Requirements that pin only the top level: when they differ from those of the last lock only by
versions moving (a pin bumped), the last lock is updated in place if the new versions'
dependencies are already locked at versions that meet them (action "updated"), else uv
re-resolves keeping the last lock's pins where it can.
"""

from __future__ import annotations

import argparse
import contextlib

from rich.table import Table

from wheeldock import platforms, project
from wheeldock.cli.commands import add_command, add_flags, add_json, add_platforms, add_services
from wheeldock.cli.output import console, print_json, status
from wheeldock.deps import lock, pylock


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "lock", description=__doc__)
    add_services(parser)
    add_platforms(
        parser,
        help="target platform(s), comma-separated or repeated "
        f"({platforms.accepted()}; default: {pylock.DEFAULT_PLATFORM}); uv has no linux/arm/v7 "
        "target, so that one is resolved universally and narrowed to armv7l",
    )
    mode = parser.add_mutually_exclusive_group()
    add_flags(
        mode,
        check="exit 1 if a lock is missing or stale; write nothing",
        upgrade="re-resolve to the newest versions",
        force="re-resolve even fresh locks",
    )
    add_flags(parser, full="resolve with uv even when every requirement is pinned with ==")
    add_json(parser, "results")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    targets = platforms.parse_list(args.platform, default=pylock.DEFAULT_PLATFORM)
    proj = project.load(args.project)
    services = proj.select(args.services)
    if not services:
        if args.json:
            print_json({"ok": True, "locks": [], "docker_only": sorted(proj.docker_only)})
        else:
            console.print(_nothing_to_lock(proj), markup=False)
        return 0
    results = []
    with (
        status("checking locks" if args.check else "locking requirements"),
        contextlib.closing(lock.LockSession()) as session,
    ):
        for target in targets:
            results += lock.lock_services(
                proj,
                services,
                platform=target.name,
                check=args.check,
                force=args.force,
                upgrade=args.upgrade,
                session=session,
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


def _nothing_to_lock(proj: project.Project) -> str:
    """Why no lock is written: every service builds with Docker only (its own Dockerfile's
    install, from the project's own requirement files and lock), or none is listed."""
    config = project.CONFIG_NAME
    if not proj.docker_only:
        return f"nothing to lock: {config} lists no service (`wheeldock init` writes them)"
    names = sorted(proj.docker_only)
    are = "is" if len(names) == 1 else "are"
    return (
        f"nothing to lock: {', '.join(names)} {are} built with Docker only ([docker_only] in "
        f"{config}): the generated Dockerfile installs from the project's own requirement "
        "files and lock, as they are"
    )
