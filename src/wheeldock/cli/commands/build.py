"""wheeldock build: build services' images natively (no Docker daemon needed).

Layers: the base (wheeldock base's rootfs, or an image), runtime libraries, the locked
dependencies (split so a bump touches one layer) and the app; each is cached, so a code change
rebuilds only the app layer. --output takes skopeo's transport names (oci:DIR[:TAG],
docker-archive:FILE, docker-daemon:NAME:TAG, docker://HOST/REPO:TAG) and may repeat;
with several services put {service} in it. Default: the Docker engine when one answers
(<project>-<service>:wheeldock), else an OCI layout in .wheeldock/oci. --cache
docker://HOST/REPO makes a registry repository the second level of the layer cache, shared by
every machine that builds the same inputs.

A stale lock (requirements changed since `wheeldock lock`) whose versions moved is updated
first, as `uv run` re-locks: in place when the new versions' dependencies are already locked,
else by uv keeping the old pins where it can. --locked refuses a stale lock (for CI), --frozen
uses it as it is, --relock also re-resolves requirements added or removed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from wheeldock import platforms, project
from wheeldock.build.install import BYTECODE_MODES
from wheeldock.build.session import Session
from wheeldock.cli.commands import add_command, add_flags, add_json, add_platforms, add_services
from wheeldock.cli.output import console, err_console, print_json
from wheeldock.deps import pylock
from wheeldock.errors import UsageError

if TYPE_CHECKING:
    from wheeldock.build.builder import BuildOptions, LayerReport, Progress, ServiceBuild
    from wheeldock.deps.lock import LockPolicy


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "build", description=__doc__)
    add_services(parser)
    parser.add_argument(
        "--output",
        "-o",
        action="append",
        default=[],
        metavar="REF",
        help="where the image goes (repeatable); {service} is replaced by the service's name",
    )
    parser.add_argument(
        "--base", default=None, help="slim, minimal or an image REF (default: each service's)"
    )
    parser.add_argument(
        "--compression",
        choices=("gzip", "zstd", "none"),
        default=None,
        help="layer compression (default: none when every output is the Docker engine, which "
        "unpacks layers anyway; else gzip)",
    )
    parser.add_argument(
        "--bytecode",
        choices=BYTECODE_MODES,
        default="full",
        help="full: a .pyc for every dependency file, as pip installs them; none: no .pyc (a "
        "faster cold build, but every container start compiles what it imports)",
    )
    add_platforms(
        parser,
        help=f"target platform(s), comma-separated or repeated ({platforms.accepted()}); "
        f"several make an OCI index (default: {pylock.DEFAULT_PLATFORM})",
    )
    add_flags(
        parser,
        emulate_sdists="build sdists that have no wheel for a foreign platform under qemu (slow, "
        "cached)",
    )
    parser.add_argument(
        "--load-platform",
        default=None,
        metavar="PLATFORM",
        help="which platform's image a docker-daemon:/docker-archive: output gets (the host's)",
    )
    parser.add_argument(
        "--sbom",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each image's CycloneDX SBOM here (default: beside an oci: output)",
    )
    stale = parser.add_mutually_exclusive_group()
    add_flags(
        stale,
        locked="refuse a lock that is missing or stale instead of updating it (for CI, as "
        "`uv sync --locked`)",
        frozen="use the lock as it is, even when its inputs changed since it was written",
        relock="also re-resolve a stale lock whose requirements changed by more than versions "
        "moving (one whose versions moved is updated without it, as `uv run` does)",
    )
    add_cache(parser)
    add_flags(
        parser,
        watch="after building, keep rebuilding each service as its code or requirements change "
        "(a warm process: a code change costs only the rebuild); Ctrl-C stops",
    )
    add_json(parser, "results")
    parser.set_defaults(func=run)


def add_cache(parser: argparse.ArgumentParser) -> None:
    """``--cache docker://HOST/REPO`` and ``--cache-mode`` (``build`` and ``release``)."""
    parser.add_argument(
        "--cache",
        default=None,
        metavar="docker://HOST/REPO",
        help="a registry repository as the second level of the layer cache: each layer is "
        "looked up there before it is built (a hit fetches, installs and compiles nothing), "
        "and pushed there when built",
    )
    parser.add_argument(
        "--cache-mode",
        choices=("read", "readwrite"),
        default="readwrite",
        help="read: only look layers up; readwrite (default): also push the layers built",
    )


def options_from(args: argparse.Namespace, platform: str) -> BuildOptions:
    """The build options the command line gives (``build`` and ``release``)."""
    from wheeldock.build.builder import BuildOptions

    return BuildOptions(
        base=args.base,
        compression=args.compression,
        platform=platform,
        lock_policy=_lock_policy(args),
        bytecode=args.bytecode,
        cache=args.cache,
        cache_mode=args.cache_mode,
    )


def _progress(quiet: bool, verbose: bool = False) -> Progress | None:
    """A line per layer built; cached layers too with ``-v`` (the final table counts them: on
    a code change, 40-odd lines of "cached" would hide the one that matters)."""
    if quiet:
        return None

    def show(service: str, r: LayerReport) -> None:
        if r.cached and not r.remote and not verbose:
            return
        state = "[dim]cached[/]" if r.cached else "[green]built[/] "
        state = "[cyan]remote[/]" if r.remote else state
        err_console.print(
            f"  {service}  {r.kind:<5} {state} {r.size / 1e6:8.2f} MB {r.seconds:6.2f} s  "
            f"{r.title}  [dim]{str(r.digest)[7:19]}[/]"
        )

    return show


def _lock_policy(args: argparse.Namespace) -> LockPolicy:
    """How a stale lock is treated: --locked, --frozen, --relock, or by default updated when only
    versions moved."""
    for policy in ("locked", "frozen", "relock"):
        if getattr(args, policy, False):  # release has --relock only
            return policy
    return "sync"


def run(args: argparse.Namespace) -> int:
    with Session() as session:
        return _run(args, session)


def _run(args: argparse.Namespace, session: Session) -> int:
    targets = platforms.parse_list(args.platform, default=pylock.DEFAULT_PLATFORM)
    proj = project.load(args.project)
    services = proj.buildable(args.services)
    if len(targets) == 1 and args.cache is None:
        # a bumped pin's index requests go out before the builder's modules import, and the
        # compiler for its wheel starts meanwhile (not with a registry cache: it may have
        # every layer, and the wheels would be fetched for nothing)
        coming = session.locks.ask_early(proj, services, platform=targets[0].name)
        if args.bytecode != "none":
            for python in sorted(coming):
                session.compilers.start(python)
    # Imported here: the builder pulls in the whole OCI stack, which other commands do not need.
    from wheeldock.build import builder

    options = options_from(args, targets[0].name)
    multi = len(targets) > 1 or targets[0] != platforms.host() or args.sbom or args.emulate_sdists
    if multi and args.watch:
        raise UsageError(
            "--watch rebuilds images for this machine's platform only",
            fix="drop --watch, or drop --platform/--sbom/--emulate-sdists",
        )
    if multi:
        return _run_multi(args, proj, services, targets, options, session)
    results = builder.build(
        proj,
        services,
        args.output,
        options,
        progress=_progress(quiet=args.json, verbose=args.verbose > 0),
        session=session,
    )
    _render(results, as_json=args.json)
    return _watch(args, proj, services, options, session) if args.watch else 0


def _watch(
    args: argparse.Namespace,
    proj: project.Project,
    services: Sequence[project.Service],
    options: BuildOptions,
    session: Session,
) -> int:
    from wheeldock.build.watch import Rebuild, watch

    def report(done: Rebuild) -> None:
        if args.json:  # one line per rebuild (JSON Lines), so a reader can follow the stream
            event = {
                "rebuilt": list(done.services),
                "seconds": round(done.seconds, 3),
                "error": done.error.message if done.error else None,
                "services": [r.to_json() for r in done.results],
            }
            sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
            sys.stdout.flush()
            return
        names = ", ".join(done.services)
        if done.error is not None:
            err_console.print(f"[bold red]{names}: rebuild failed:[/] {escape(done.error.message)}")
            return
        layers = sorted({lay.kind for r in done.results for lay in r.layers if not lay.cached})
        outputs = ", ".join(o.ref for r in done.results for o in r.outputs)
        err_console.print(
            f"[green]{names}[/] rebuilt in {done.seconds:.2f} s "
            f"({', '.join(layers) or 'nothing new'}) → {outputs}"
        )

    err_console.print("[dim]watching for changes (Ctrl-C stops)…[/]")
    with contextlib.suppress(KeyboardInterrupt):
        watch(proj, services, args.output, options, on_rebuild=report, session=session)
    return 0


def _render(results: Sequence[ServiceBuild], *, as_json: bool) -> None:
    if as_json:
        print_json({"services": [r.to_json() for r in results]})
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("service", "digest", "layers (built/all)", "size", "time", "output"):
        table.add_column(col)
    for r in results:
        built = sum(not lay.cached for lay in r.layers)
        remote = sum(lay.remote for lay in r.layers)
        table.add_row(
            r.service,
            str(r.digest)[:19],
            f"{built}/{len(r.layers)}" + (f" ({remote} from the cache)" if remote else ""),
            f"{r.image.size / 1e6:.1f} MB",
            f"{r.seconds:.2f} s",
            "\n".join(o.ref for o in r.outputs),
        )
    console.print(table)


def _run_multi(
    args: argparse.Namespace,
    proj: project.Project,
    services: Sequence[project.Service],
    targets: Sequence[platforms.Target],
    options: BuildOptions,
    session: Session,
) -> int:
    """Several platforms (or a foreign one): per-platform images, an index, SBOMs."""
    from wheeldock.build import multiarch

    results = multiarch.build(
        proj,
        services,
        targets,
        multiarch.MultiOptions(
            outputs=tuple(args.output),
            emulate_sdists=args.emulate_sdists,
            sbom_dir=args.sbom,
            load_platform=platforms.parse(args.load_platform) if args.load_platform else None,
        ),
        options,
        progress=_progress(quiet=args.json, verbose=args.verbose > 0),
        session=session,
    )
    if args.json:
        print_json({"services": [r.to_json() for r in results]})
        return 0
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("service", "platform", "digest", "layers (built/all)", "size", "time"):
        table.add_column(col)
    for r in results:
        for p in r.images:
            built = sum(not lay.cached for lay in p.layers)
            table.add_row(
                r.service,
                p.target.name,
                str(p.image.digest)[:19],
                f"{built}/{len(p.layers)}",
                f"{p.image.size / 1e6:.1f} MB",
                f"{p.seconds:.2f} s",
            )
    console.print(table)
    for r in results:
        console.print(f"{r.service}: index {str(r.digest)[:19]}")
        for o in r.outputs:
            console.print(f"  → {o.ref}")
        for f in r.sbom_files:
            console.print(f"  sbom {f}")
        for note in r.notes:
            err_console.print(f"[yellow]note:[/] {note}")
    return 0
