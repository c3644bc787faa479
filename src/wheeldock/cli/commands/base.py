"""wheeldock base: Python base images made from Debian packages (mmdebstrap).

base build [slim|builder|minimal]… loads them into the Docker engine (the default) or writes
them with --output tar:FILE / --output oci:DIR[:TAG]; base list shows the recipes.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from wheeldock.cli.commands import add_command, add_flags, add_json, add_platforms
from wheeldock.cli.output import console, err_console, print_json, status
from wheeldock.debian import bases as base
from wheeldock.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "base", description=__doc__)
    actions = parser.add_subparsers(dest="base_command", metavar="ACTION")

    build = actions.add_parser("build", help="build base images (cached) and load or write them")
    build.add_argument(
        "variants",
        nargs="*",
        default=["slim"],
        metavar="VARIANT",
        help=f"which bases ({', '.join(base.VARIANTS)}; default: slim)",
    )
    build.add_argument("--arch", default=base.DEFAULT_ARCH, help="Debian architecture (amd64)")
    add_platforms(
        build,
        help="instead of --arch: OCI platform(s), comma-separated or repeated (linux/amd64, "
        "linux/arm64, linux/arm/v7)",
    )
    build.add_argument("--suite", default=base.DEFAULT_SUITE, help="Debian suite (bookworm)")
    add_flags(build, rebuild="build again, ignoring the cache")
    build.add_argument(
        "--output",
        metavar="REF",
        help="write instead of loading into the engine: tar:FILE (rootfs tar) or oci:DIR[:TAG]",
    )
    add_json(build, "results")
    build.set_defaults(func=_build)

    listing = actions.add_parser("list", help="show the recipes and what they install")
    add_json(listing, "recipes")
    listing.set_defaults(func=_list)

    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _build(args: argparse.Namespace) -> int:
    recipes = list(base.iter_variants(args.variants))
    output = base.parse_output(args.output) if args.output else None
    if output is not None and len(recipes) > 1:
        raise UsageError(
            f"--output {args.output} can take one base, not {len(recipes)}",
            fix="run `wheeldock base build VARIANT --output …` once per base",
        )
    arches = [args.arch]
    if args.platform:
        from wheeldock import platforms

        arches = [t.debian_arch for t in platforms.parse_list(args.platform)]
    if output is not None and len(arches) > 1:
        raise UsageError(
            f"--output {args.output} can take one base, not {len(arches)} platforms",
            fix="run `wheeldock base build VARIANT --platform P --output …` once per platform",
        )
    base.require_engine_or_output(args.output)
    rows: list[dict[str, Any]] = []
    for spec in recipes:
        for arch in arches:
            with status(f"base {spec.name}: building or reusing ({args.suite}, {arch})"):
                if output is None:
                    image = base.ensure_image(
                        spec.name, arch=arch, suite=args.suite, rebuild=args.rebuild
                    )
                    rows.append(_image_row(image))
                else:
                    rootfs = base.ensure_rootfs(
                        spec.name, arch=arch, suite=args.suite, rebuild=args.rebuild
                    )
                    rows.append(_write(rootfs, output))
    if args.json:
        print_json(rows)
        return 0
    table = Table(title="wheeldock base images")
    table.add_column("variant")
    table.add_column("tags / output", overflow="fold")
    for column in ("size MB", "time s", "cached"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row["variant"],
            "\n".join(row["tags"]) or row["output"],
            f"{row['size_bytes'] / 1e6:.1f}",
            f"{row['seconds']:.1f}",
            "yes" if row["cached"] else "no",
        )
    console.print(table)
    for row in rows:
        for note in row["notes"]:
            err_console.print(f"[dim]{row['variant']}:[/] {note}")
    return 0


def _image_row(image: base.BaseImage) -> dict[str, Any]:
    return {
        "variant": image.variant,
        "tags": list(image.tags),
        "output": None,
        "image_id": str(image.image_id),
        "size_bytes": image.size_bytes,
        "rootfs_bytes": image.rootfs.size_bytes,
        "rootfs_tar": str(image.rootfs.tar_path),
        "python_version": image.rootfs.python_version,
        "suite": image.rootfs.suite,
        "arch": image.rootfs.arch,
        "seconds": image.seconds,
        "cached": image.cached,
        "notes": list(image.notes),
    }


def _write(rootfs: base.BaseRootfs, output: base.Output) -> dict[str, Any]:
    if output.transport == "tar":
        written = f"tar:{base.write_rootfs_tar(rootfs, output.path)}"
    else:
        written = base.write_oci_layout(rootfs, output.path, tag=output.tag)
    return {
        "variant": rootfs.variant,
        "tags": [],
        "output": written,
        "image_id": None,
        "size_bytes": rootfs.size_bytes,
        "rootfs_bytes": rootfs.size_bytes,
        "rootfs_tar": str(rootfs.tar_path),
        "python_version": rootfs.python_version,
        "suite": rootfs.suite,
        "arch": rootfs.arch,
        "seconds": rootfs.seconds,
        "cached": rootfs.cached,
        "notes": [],
    }


def _list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = [
        {
            "variant": spec.name,
            "summary": spec.summary,
            "packages": list(spec.packages),
            "tag": spec.tag,
            "alias": spec.alias,
            "derived_from": spec.derive_from,
        }
        for spec in base.VARIANTS.values()
    ]
    if args.json:
        print_json(rows)
        return 0
    table = Table(title="wheeldock base recipes")
    for column in ("variant", "tag", "packages", "what"):
        table.add_column(column)
    for row in rows:
        packages = ", ".join(row["packages"])
        if row["derived_from"]:
            packages = f"(pruned from {row['derived_from']}) " + packages
        table.add_row(row["variant"], row["tag"], packages, row["summary"])
    console.print(table)
    return 0
