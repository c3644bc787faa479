"""``wheeldock up`` / ``down`` / ``status`` / ``logs``: run the stack ``init`` prepared."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from wheeldock.cli.commands import add_command, add_flags, add_json, add_number, add_services
from wheeldock.cli.output import console, err_console, print_json, status
from wheeldock.compose import up


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "up",
        description="Build the images (BuildKit), start the services (`docker compose up -d`) and "
        "wait until each answers on the port compose publishes it on and Docker reports it "
        "healthy (a worker: keeps running; a one-shot job: exits 0). What this machine's engine "
        "needs (builds on host networking without a default bridge, the proxy CA) goes into "
        ".wheeldock/compose.override.yaml, never into your compose file.",
    )
    add_services(p, help="default: every service")
    add_flags(p, no_build="start the images as they are")
    health_help = (
        f"seconds to wait for health (default {up.Timeouts.health:.0f}; "
        f"{up.EMULATED_HEALTH_TIMEOUT:.0f} under emulation)"
    )
    add_number(p, "--timeout", None, "S", health_help)
    build_help = f"seconds one service's build may take (default {up.Timeouts.build:.0f})"
    add_number(p, "--build-timeout", up.Timeouts.build, "S", build_help)
    p.add_argument(
        "--platform",
        default=None,
        metavar="PLATFORM",
        help="build and run the services for this platform (e.g. linux/arm64); a foreign one "
        "runs under qemu-user (binfmt). The compose files are not "
        "edited: an override in .wheeldock/ sets `platform:`, a per-platform image tag and "
        "wheeldock's bases for that platform",
    )
    p.add_argument(
        "--ca-cert",
        type=Path,
        default=None,
        metavar="PATH",
        help="the proxy CA bundle handed to builds as a secret "
        "(default: $SSL_CERT_FILE, $PIP_CERT or $REQUESTS_CA_BUNDLE when the file exists)",
    )
    add_json(p, "timings")
    p.set_defaults(func=handle_up)

    d = add_command(sub, "down")
    add_flags(d, volumes="remove named volumes too")
    add_json(d)
    d.set_defaults(func=handle_down)

    s = add_command(sub, "status")
    add_services(s, help=None)
    add_json(s)
    s.set_defaults(func=handle_status)

    lg = add_command(sub, "logs")
    add_services(lg, help=None)
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
                ca_cert=args.ca_cert,
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
