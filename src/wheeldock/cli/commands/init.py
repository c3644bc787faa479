"""``wheeldock init``: find the Python services, write Dockerfiles and patch the compose file."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from wheeldock.cli.commands import add_command, add_flags, add_json
from wheeldock.cli.output import console, err_console, print_json, status
from wheeldock.compose import plan as init
from wheeldock.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        sub,
        "init",
        description="Find the Python services that pip-install their dependencies at every start "
        "(`pip install -r requirements.txt`, packages named inline, `pip install .` of a "
        "pyproject.toml project, `uv pip install`, a project installed from its lock by "
        "`uv sync`/`uv run` (a workspace member's too), `poetry install`, `pipenv install`/"
        "`sync` or `pdm install`/`sync`, in the command or a "
        "start script it runs), "
        "write a multi-stage Dockerfile.<service> for each, merge a .dockerignore, patch the "
        "compose file (originals kept in .wheeldock/backup) and record the decisions in "
        "wheeldock.toml. Services passed over are listed with the reason.",
    )
    add_flags(
        parser,
        dry_run="show the diff; write nothing",
        revert="undo init byte for byte",
        force="replace a Dockerfile.<service> you wrote (init did not; the original is kept in "
        ".wheeldock/backup); with --revert: revert files edited since init too",
    )
    parser.add_argument(
        "--ca-cert",
        type=Path,
        default=None,
        metavar="PATH",
        help="the proxy CA bundle the builds need, checked and shown in the plan; it is never "
        "written into the compose file: `wheeldock up` hands it to builds as a secret through "
        ".wheeldock/compose.override.yaml (`up --ca-cert`, or $SSL_CERT_FILE, $PIP_CERT or "
        "$REQUESTS_CA_BUNDLE when the file exists)",
    )
    parser.add_argument(
        "--no-binary",
        default="",
        metavar="PKG,…",
        help="build these distributions from source (pip's --no-binary) in new services",
    )
    parser.add_argument(
        "--python",
        default=None,
        metavar="X.Y",
        help="move the services found to this Python (by default each keeps the one its "
        "image names; wheeldock's Debian bases carry 3.11 and 3.13, any other version is "
        "built on the official python:X.Y images)",
    )
    parser.add_argument(
        "--convert",
        default="",
        metavar="SERVICE,…",
        help="convert these services built from their own Dockerfile even where that "
        "Dockerfile already builds its dependencies apart from its code (a stage whose venv "
        "the image copies, a cache-mounted install): left alone otherwise",
    )
    add_json(parser, "result")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    root: Path = args.project
    if args.revert:
        if args.dry_run:
            raise UsageError("--revert cannot be combined with --dry-run")
        result = init.revert(root, force=args.force)
        if args.json:
            print_json({"reverted": True, **result.__dict__})
            return 0
        for rel in result.restored:
            console.print(f"[green]restored[/] {rel}")
        for rel in result.removed:
            console.print(f"[yellow]removed[/]  {rel}")
        for rel in result.forced:
            err_console.print(
                f"[yellow]warning:[/] {rel} had been edited; reverted anyway (--force)"
            )
        console.print("init reverted: the compose file is as it was before init")
        return 0

    no_binary = tuple(n.strip() for n in args.no_binary.split(",") if n.strip())
    with status("finding the Python services and the libraries their wheels need", quiet=args.json):
        p = init.plan(
            root,
            ca_cert=args.ca_cert,
            no_binary=no_binary,
            selection=args.compose,
            python=_python_version(args.python),
            convert=tuple(n.strip() for n in args.convert.split(",") if n.strip()),
        )
    if not args.json:  # before writing: a file init would refuse to replace is named first
        _render_services(p)
        if args.dry_run:
            _render_diff(p.diff())
        _render_files(p, dry_run=args.dry_run)
        for note in p.notes:
            console.print(f"[dim]{escape(note)}[/]")
        for warning in p.warnings:
            err_console.print(f"[yellow]warning:[/] {escape(warning)}")
    written: tuple[str, ...] = ()
    if not args.dry_run and not p.nothing_to_do:
        written = init.apply(p, force=args.force).written
    if args.json:
        print_json({**p.summary(), "dry_run": args.dry_run, "written": list(written)})
        return 0
    if p.nothing_to_do:
        console.print("[green]nothing to do:[/] every file is already as init would write it")
    elif args.dry_run:
        console.print("dry run: nothing was written (run without --dry-run to apply)")
    else:
        console.print(
            f"[green]done:[/] wrote {len(written)} file(s); originals kept in {init.BACKUP_DIR} "
            f"(`wheeldock init --revert` restores them). Next: {_next_step(p)}"
        )
    return 0


def _next_step(p: init.InitPlan) -> str:
    """What to run after init: the services of wheeldock.toml start with ``wheeldock up``; the
    ones built from their own Dockerfile that the native builder cannot carry out are not
    among them, so compose builds those."""
    others = ", ".join(sorted(p.project.docker_only))
    if not p.project.services:
        return "`docker compose up --build`"
    if others:
        return f"`wheeldock up` (and `docker compose up --build {others}`)"
    return "`wheeldock up`"


def _render_built(p: init.InitPlan) -> None:
    """The services built from their own Dockerfile: where they install, and the path taken."""
    if not p.built:
        return
    table = Table(title="Python services built from their own Dockerfile", title_justify="left")
    for column in ("service", "shape", "installs", "requirements", "path"):
        table.add_column(column)
    for built in p.built:
        reading = built.reading
        names = ", ".join((built.name, *built.shared_with))
        table.add_row(
            escape(names),
            built.shape,
            escape("\n".join(reading.where(i.instruction) for i in reading.installs)),
            escape("\n".join(built.requirement_files) or " ".join(reading.packages)),
            escape(
                f"Docker: Dockerfile.{built.name} (wheel stage, then your steps); native: "
                + ("no (below)" if built.name in p.project.docker_only else "yes")
            ),
        )
    console.print(table)
    for built in p.built:
        for note in built.reading.notes:
            console.print(f"[dim]{escape(f'{built.name}: {note}')}[/]")
        why = p.project.docker_only.get(built.name)
        if why:
            console.print(f"[dim]{escape(f'{built.name}: not built natively: {why}')}[/]")


def _render_services(p: init.InitPlan) -> None:
    _render_built(p)
    if not p.findings:
        return
    table = Table(title="Python services", title_justify="left")
    for column in (
        "service",
        "shape",
        "code",
        "requirements",
        "command",
        "port",
        "health",
        "runtime packages",
    ):
        table.add_column(column)
    for f in p.findings:
        svc = f.service
        table.add_row(
            svc.name,
            "image + install at start",
            escape(f"{svc.source} → {svc.source_target or svc.workdir}"),
            escape("\n".join((*svc.requirements, *(f"-c {c}" for c in svc.constraints)))),
            escape(" ".join(svc.command)),
            str(svc.port) if svc.port else "-",
            svc.health,
            (", ".join(svc.runtime_packages) or "none") + f" ({svc.runtime_packages_source})",
        )
    console.print(table)
    for f in p.findings:
        for note in f.notes:
            warning = note.removeprefix("warning: ")
            if warning != note:  # a kept step that cannot work in the image
                err_console.print(f"[yellow]warning:[/] {escape(f'{f.service.name}: {warning}')}")
            else:
                console.print(f"[dim]{escape(f'{f.service.name}: {note}')}[/]")


def _render_files(p: init.InitPlan, *, dry_run: bool) -> None:
    table = Table(title="files (would change)" if dry_run else "files", title_justify="left")
    table.add_column("file")
    table.add_column("action")
    table.add_column("note")
    colors = {"create": "green", "update": "yellow", "delete": "red", "unchanged": "dim"}
    for c in p.changes:
        table.add_row(escape(c.path), f"[{colors[c.action]}]{c.action}[/]", escape(c.note))
    console.print(table)


def _render_diff(diff: str) -> None:
    for line in diff.splitlines():
        style = (
            "bold"
            if line.startswith(("+++", "---"))
            else "green"
            if line.startswith("+")
            else "red"
            if line.startswith("-")
            else "cyan"
            if line.startswith("@@")
            else ""
        )
        console.print(Text(line, style=style), soft_wrap=True)


def _python_version(text: str | None) -> str | None:
    """``--python``'s value as ``X.Y``; :class:`UsageError` for anything else."""
    if text is None:
        return None
    if re.fullmatch(r"3\.\d{1,2}", text) is None:
        raise UsageError(
            f"--python {text}: not a Python version", fix="give it as X.Y, e.g. --python 3.13"
        )
    return text
