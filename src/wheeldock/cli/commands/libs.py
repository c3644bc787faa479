"""wheeldock libs PATH: the Debian packages a set of wheels needs at run time.

PATH is a wheel, a folder of wheels, an installed site-packages (or venv) folder, or a project
folder with a wheelhouse. The ELF files in it are read without installing anything; what the
wheels vendor and what the base already has are left out. Exits 1 when some library is shipped
by no Debian package.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from wheeldock.cli.commands import add_command, add_flags, add_json
from wheeldock.cli.output import console, err_console, print_json, status
from wheeldock.debian import libs


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "libs", description=__doc__)
    parser.add_argument(
        "path",
        nargs="?",
        default=".",
        type=Path,
        metavar="PATH",
        help="a .whl, a wheelhouse folder, a site-packages folder or a project (default: .)",
    )
    parser.add_argument(
        "--base",
        default="slim",
        metavar="BASE",
        help="what the image starts from: slim, minimal, builder, none, or an image "
        "reference (oci:DIR, docker-daemon:NAME:TAG, docker-archive:FILE) or rootfs folder "
        "(default: slim)",
    )
    parser.add_argument(
        "--arch", default=None, help="Debian architecture (default: the ELF files')"
    )
    add_flags(parser, all="list every ELF file, not only those that need a package")
    add_json(parser, "report")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    path = args.path if args.path.is_absolute() else args.project / args.path
    with status(f"scanning {path}", quiet=args.json):
        report = libs.scan(path, base=args.base, arch=args.arch)
    if args.json:
        print_json(report.to_json())
        return 0 if report.ok else 1
    table = Table(
        title=f"ELF files in {report.path} ({report.kind}, {report.arch}, base {report.base})"
    )
    table.add_column("wheel / file", overflow="fold")
    table.add_column("needs", no_wrap=True)
    table.add_column("from", no_wrap=True)
    shown = 0
    for item in report.elfs:
        rows: list[tuple[str, str]] = [(s, f"[green]{p}[/]") for s, p in item.resolved]
        rows += [(s, "[bold red]no Debian package[/]") for s in item.unresolved]
        if args.all:
            rows += [(s, "[dim]vendored[/]") for s in item.vendored]
            rows += [(s, "[dim]base[/]") for s in item.provided_by_base]
        if not rows:
            continue
        label = f"{item.wheel}\n  {item.file}" if item.wheel else item.file
        for number, (soname, source) in enumerate(rows):
            table.add_row(label if number == 0 else "", soname, source)
        shown += 1
    if shown:
        console.print(table)
    console.print(
        f"{len(report.elfs)} ELF files in {report.wheels or 1} "
        f"{'wheel' if report.kind != 'site-packages' else 'folder'}(s), {report.seconds:.2f} s"
    )
    runtime = " ".join(report.runtime_packages) or "(none: the base and the wheels have them all)"
    console.print(f"[bold]runtime packages:[/] {runtime}")
    console.print(f"[bold]build packages:[/]   {' '.join(report.build_packages) or '(none)'}")
    for gap in report.unresolved:
        where = f"{gap.wheel}: {gap.file}" if gap.wheel else gap.file
        err_console.print(
            f"[bold red]error:[/] {where} needs {gap.soname}, which no Debian "
            f"{report.suite}/{report.arch} package ships\n"
            "  fix: install a wheel that vendors it (a manylinux wheel), or add the library to "
            "the image yourself"
        )
    return 0 if report.ok else 1
