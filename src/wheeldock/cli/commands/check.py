"""wheeldock check REF: would every Python extension module in an image load?

REF is an image (oci:DIR[:TAG], docker-archive:FILE, docker-daemon:NAME:TAG,
docker://HOST/REPO:TAG) or a rootfs folder. Every ELF file under the Python paths
(site-/dist-packages, lib-dynload, /usr/local/lib/python*, /opt, /app…) is resolved as ld.so
would, transitively; a library that is not there is reported with the Debian package that ships
it. Exits 1 when any is missing. Nothing is run: foreign-architecture images work too.
"""

from __future__ import annotations

import argparse

from rich.table import Table

from wheeldock.cli.commands import add_command, add_json
from wheeldock.cli.output import console, err_console, print_json, status
from wheeldock.debian import libs


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "check", description=__doc__)
    parser.add_argument("ref", metavar="REF", help="an image reference or a rootfs folder")
    parser.add_argument(
        "--platform",
        default=None,
        metavar="PLATFORM",
        help="which image of a multi-platform index to check (default: the host's)",
    )
    add_json(parser, "report")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    with status(f"checking {args.ref}", quiet=args.json):
        if args.platform:
            from wheeldock import platforms
            from wheeldock.build import multiarch

            with multiarch.platform_image(args.ref, platforms.parse(args.platform)) as ref:
                report = libs.check(ref)
        else:
            report = libs.check(args.ref)
    if args.json:
        print_json(report.to_json())
        return 0 if report.ok else 1
    if report.missing:
        table = Table(title=f"missing libraries in {report.ref}")
        table.add_column("file", overflow="fold")
        table.add_column("needs", no_wrap=True)
        table.add_column("needed by", overflow="fold")
        table.add_column("Debian package", no_wrap=True)
        for gap in report.missing:
            needs = f"{gap.soname} {gap.version}" if gap.version else gap.soname
            table.add_row(
                gap.file,
                f"[bold red]{needs}[/]",
                "" if gap.needed_by == gap.file else gap.needed_by,
                gap.package or "[dim]none ships it[/]",
            )
        console.print(table)
    for file, why in report.invalid:
        err_console.print(f"[bold red]error:[/] {file}: {why}")
    console.print(
        f"{len(report.checked)} ELF files checked, {report.libraries} libraries resolved "
        f"({report.arch or 'unknown arch'}), {report.seconds:.2f} s"
    )
    if report.ok:
        console.print("[green]ok:[/] every library resolves")
        return 0
    too_new = sorted({f"{m.soname} {m.version}" for m in report.missing if m.version})
    if too_new:
        err_console.print(
            f"[bold red]error:[/] the image's libraries are older than the wheels need: "
            f"{', '.join(too_new)}\n"
            "  fix: build the wheels on the image's own distribution (a builder stage FROM the "
            "same base), not on a newer host"
        )
    if report.packages:
        err_console.print(
            f"[bold red]error:[/] {len(report.missing)} missing "
            f"({len({m.soname for m in report.missing})} libraries)\n"
            f"  fix: install {' '.join(report.packages)} in the image "
            "(`wheeldock libs` on its wheels lists them for the Dockerfile)"
        )
    else:
        err_console.print(
            f"[bold red]error:[/] {len(report.missing) + len(report.invalid)} problems"
        )
    return 1
