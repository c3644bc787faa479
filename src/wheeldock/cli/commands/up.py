"""``wheeldock up`` / ``down`` / ``status`` / ``logs``: run the stack ``init`` prepared."""

from __future__ import annotations

import argparse

from rich.table import Table

from wheeldock.cli.output import console, err_console, print_json, status
from wheeldock.compose import up


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "up",
        help="build and start the services, wait until healthy, print the timings",
        description="Build the images (BuildKit), start the services (`docker compose up -d`) and "
        "wait until each answers on 127.0.0.1:<port> and Docker reports it healthy.",
    )
    p.add_argument("services", nargs="*", metavar="SERVICE", help="default: every service")
    p.add_argument("--no-build", action="store_true", help="start the images as they are")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help=f"seconds to wait for health (default {up.Timeouts.health:.0f}; "
        f"{up.EMULATED_HEALTH_TIMEOUT:.0f} under emulation)",
    )
    p.add_argument(
        "--build-timeout",
        type=float,
        default=up.Timeouts.build,
        metavar="S",
        help=f"seconds one service's build may take (default {up.Timeouts.build:.0f})",
    )
    p.add_argument(
        "--platform",
        default=None,
        metavar="PLATFORM",
        help="build and run the services for this platform (e.g. linux/arm64); a foreign one "
        "runs under qemu-user (binfmt). The compose files are not "
        "edited: an override in .wheeldock/ sets `platform:`, a per-platform image tag and "
        "wheeldock's bases for that platform",
    )
    p.add_argument("--json", action="store_true", help="print the timings as JSON")
    p.set_defaults(func=handle_up)

    d = sub.add_parser("down", help="stop and remove the stack's containers")
    d.add_argument("--volumes", action="store_true", help="remove named volumes too")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=handle_down)

    s = sub.add_parser("status", help="each service's container state, Docker health and probe")
    s.add_argument("services", nargs="*", metavar="SERVICE")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=handle_status)

    lg = sub.add_parser("logs", help="the services' logs (docker compose logs)")
    lg.add_argument("services", nargs="*", metavar="SERVICE")
    lg.add_argument("--tail", type=int, default=None, metavar="N", help="only the last N lines")
    lg.add_argument("-f", "--follow", action="store_true", help="keep following")
    lg.set_defaults(func=handle_logs)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def handle_up(args: argparse.Namespace) -> int:
    target = None
    emulated = False
    if args.platform:
        from wheeldock import platforms  # loads the bases' module: only when asked

        target = platforms.parse(args.platform)
        emulated = platforms.needs_emulation(target)
    health = args.timeout
    if health is None:
        health = up.EMULATED_HEALTH_TIMEOUT if emulated else up.Timeouts.health
    timeouts = up.Timeouts(build=args.build_timeout, health=health)
    title = "wheeldock up" + (f" ({target}{', under qemu' if emulated else ''})" if target else "")
    try:
        with status(title, quiet=args.json):
            report = up.up(
                args.project,
                args.services,
                build=not args.no_build,
                timeouts=timeouts,
                platform=target,
                selection=args.compose,
                progress=lambda message: (
                    err_console.print(f"[dim]… {message}[/]") if not args.json else None
                ),
            )
    except up.UpFailed as exc:
        if args.json:
            print_json(
                {
                    "ok": False,
                    "step": exc.step,
                    "service": exc.service,
                    "error": exc.what,
                    "logs": exc.logs,
                }
            )
        else:
            err_console.print(f"[bold red]{exc.step} failed[/] for [bold]{exc.service}[/]")
            if exc.logs:
                err_console.rule(f"last log lines of {exc.service}")
                err_console.print(exc.logs, markup=False)
                err_console.rule()
        err_console.print(f"[bold red]error:[/] {exc.message}")
        return 1
    if args.json:
        print_json({"ok": True, **report.__dict__})
        return 0
    table = Table(title=title, title_justify="left")
    for column in ("service", "build", "answers (200)", "Docker healthy", "probe", "image"):
        table.add_column(column)
    for svc in report.services:
        healthy = _seconds(svc.healthy_s) + (
            "" if svc.docker_health != "none" else " (no HEALTHCHECK)"
        )
        table.add_row(
            svc.name,
            _seconds(svc.build_s),
            _seconds(svc.answer_s),
            healthy,
            svc.probe,
            svc.image or "-",
        )
    console.print(table)
    console.print(
        f"build {report.build_s:.1f} s, `compose up -d` {report.start_s:.1f} s, total {report.total_s:.1f} s "
        "(answers/healthy are counted from `compose up -d`)"
    )
    return 0


def handle_down(args: argparse.Namespace) -> int:
    up.down(args.project, volumes=args.volumes, selection=args.compose)
    if args.json:
        print_json({"ok": True})
    else:
        console.print("stack stopped and removed")
    return 0


def handle_status(args: argparse.Namespace) -> int:
    rows = up.status(args.project, args.services, selection=args.compose)
    if args.json:
        print_json({"services": list(rows)})
        return 0 if all(r.probe_ok for r in rows) else 1
    table = Table(title="wheeldock status", title_justify="left")
    for column in ("service", "state", "Docker health", "probe", "result"):
        table.add_column(column)
    for r in rows:
        mark = "[green]ok[/]" if r.probe_ok else f"[red]{r.probe_detail}[/]"
        table.add_row(r.name, r.state, r.docker_health, r.probe, mark)
    console.print(table)
    return 0 if all(r.probe_ok for r in rows) else 1


def handle_logs(args: argparse.Namespace) -> int:
    up.logs(args.project, args.services, tail=args.tail, follow=args.follow, selection=args.compose)
    return 0
