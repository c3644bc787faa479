"""The ``wheeldock`` command: a thin shell over the library.

``main(argv=None) -> int`` parses, dispatches to a subcommand handler and is the one place that
turns library errors into messages and exit codes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from rich.markup import escape

from wheeldock.cli.commands import register_all
from wheeldock.cli.output import err_console, print_json
from wheeldock.compose.selection import Selection
from wheeldock.errors import UsageError, WheeldockError, from_os_error


class _Version(argparse.Action):
    """``--version``, reading the installed version only when asked (it costs start-up time)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=str(kwargs.get("help", "")))

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        import wheeldock

        sys.stdout.write(f"wheeldock {wheeldock.__version__}\n")
        parser.exit()


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wheeldock",
        description="Make Python services start fast in containers.",
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    parser.add_argument(
        "-C",
        dest="directory",
        metavar="DIR",
        type=Path,
        default=None,
        help="run as if started in DIR (the project folder; default: the current folder)",
    )
    parser.add_argument(
        "-f",
        "--file",
        dest="compose_files",
        metavar="FILE",
        action="append",
        default=[],
        help="a compose file, as `docker compose -f` (repeat to merge several, in order; "
        "default: $COMPOSE_FILE, else compose.yaml and its override)",
    )
    parser.add_argument(
        "-p",
        "--project-name",
        dest="project_name",
        metavar="NAME",
        default=None,
        help="the compose project name, as `docker compose -p` (default: "
        "$COMPOSE_PROJECT_NAME, the files' `name:`, else the folder's name)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_all(sub, argv)
    return parser


#: httpx's package ``__init__`` imports its own command-line client (``httpx._main``) whenever
#: click, pygments and rich are installed (uvicorn brings click; we use rich), a cost on every
#: command that asks an index, a one-pin bump's critical path included. The wheeldock command
#: never runs that client: marking the module absent makes httpx fall back to its stub ``main``.
_UNUSED_MODULES = ("httpx._main",)


def main(argv: Sequence[str] | None = None) -> int:
    for name in _UNUSED_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    argv = list(argv) if argv is not None else sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose > 1
        else logging.INFO
        if args.verbose
        else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 2
    project = (args.directory or Path.cwd()).resolve()
    if not project.is_dir():
        err_console.print(f"[bold red]error:[/] -C {args.directory}: no such folder")
        return 2
    args.project = project
    args.compose = Selection(tuple(args.compose_files), args.project_name)
    as_json = bool(getattr(args, "json", False))
    try:
        _require_compose_command(args)
        code: int = args.func(args)
        return code
    except OSError as raw:
        exc = from_os_error(raw)
        if exc is None:
            raise
        return _report(exc, as_json=as_json)
    except WheeldockError as exc:
        return _report(exc, as_json=as_json)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        return 130


def _report(exc: WheeldockError, *, as_json: bool) -> int:
    if as_json:
        print_json(
            {"error": exc.what, "fix": exc.fix, "path": exc.path, "kind": type(exc).__name__}
        )
    # the message is plain text: ``[services.api]`` is no markup
    err_console.print(f"[bold red]error:[/] {escape(exc.message)}")
    return exc.exit_code


#: The commands that read the compose project, and so take -f and -p.
COMPOSE_COMMANDS = frozenset({"init", "up", "down", "status", "logs"})


def _require_compose_command(args: argparse.Namespace) -> None:
    """:class:`UsageError` for -f or -p given to a command that does not read the compose
    project (rather than ignoring them)."""
    if (args.compose_files or args.project_name) and args.command not in COMPOSE_COMMANDS:
        raise UsageError(
            f"-f/--file and -p/--project-name do not apply to `{args.command}`",
            fix=f"use them with {', '.join(sorted(COMPOSE_COMMANDS))}; `{args.command}` reads "
            "wheeldock.toml (bench: the compose files by their default names or COMPOSE_FILE)",
        )


def run() -> None:  # pragma: no cover - console script entry
    leave(main())


def leave(code: int) -> NoReturn:
    """Exit the process with ``code``. What is still alive is frozen first, so the collections
    the interpreter runs on its way out skip it: nothing is left to collect that the exit would
    not free anyway (docs/design/start-up.md)."""
    import gc

    gc.freeze()
    sys.exit(code)


__all__ = ["UsageError", "build_parser", "main"]
