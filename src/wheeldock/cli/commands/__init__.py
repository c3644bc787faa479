"""CLI subcommands: each module exposes ``register(subparsers)`` and sets ``func`` on its parser.

A handler takes the parsed ``argparse.Namespace`` and returns an exit code. Handlers only parse,
call the library and render; the work lives in the library modules.

Modules are imported lazily: only the chosen command's module is loaded, the others appear in
``--help`` through the summaries below. That keeps start-up at a fraction of a second, which
matters for a tool that is timed end to end by ``wheeldock bench`` (and by its users).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import import_module
from typing import Any

#: command -> (module, one-line help), in the order ``--help`` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "base": ("base", "make Python base images from Debian packages (no registry needed)"),
    "init": ("init", "turn a compose stack that pip-installs at start into prebuilt-wheel images"),
    "lock": ("lock", "lock each service's requirements with exact versions and sha256 hashes"),
    "build": ("build", "build images natively: locked wheels + code as cached OCI layers"),
    "release": (
        "release",
        "push every service's image and write compose.release.yaml, pinned by digest",
    ),
    "libs": ("libs", "find the Debian packages the wheels' native code needs (ELF scan)"),
    "check": ("check", "check that an image has every native library its Python packages load"),
    "up": ("up", "build and start the services, wait until healthy, print the timings"),
    "down": ("up", "stop and remove the stack's containers"),
    "status": ("up", "each service's container state, Docker health and probe"),
    "logs": ("up", "the services' logs (docker compose logs)"),
    "bench": (
        "bench",
        "measure build/start/code-change/bump times against the hand-made Dockerfiles",
    ),
    "prune": ("prune", "remove cached wheels, layers and dangling images no build needs any more"),
}

#: The command modules, each once, in ``COMMANDS`` order (all are registered without ``argv``).
MODULES: list[str] = list(dict.fromkeys(module for module, _ in COMMANDS.values()))


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, **options: Any
) -> argparse.ArgumentParser:
    """The parser of command ``name``; its help line is its summary in :data:`COMMANDS`, so the
    help of a command loaded and of one only listed are the same text."""
    return sub.add_parser(name, help=COMMANDS[name][1], **options)


def add_services(
    parser: argparse.ArgumentParser, help: str | None = "default: all services"
) -> None:
    parser.add_argument("services", nargs="*", metavar="SERVICE", help=help)


def add_platforms(parser: argparse.ArgumentParser, help: str) -> None:
    """``--platform``, repeatable, each comma-separated (``platforms.parse_list`` reads them)."""
    parser.add_argument("--platform", action="append", default=[], metavar="PLATFORMS", help=help)


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, **flags: str) -> None:
    """An option that takes no value (``store_true``) for each ``name=help``; ``dry_run`` is
    ``--dry-run``."""
    for name, help in flags.items():
        parser.add_argument(f"--{name.replace('_', '-')}", action="store_true", help=help)


def add_number(
    parser: argparse.ArgumentParser, option: str, default: float | None, metavar: str, help: str
) -> None:
    """``option`` taking a number (a float: seconds, days), ``default`` when not given."""
    parser.add_argument(option, type=float, default=default, metavar=metavar, help=help)


def add_json(parser: argparse.ArgumentParser, what: str | None = None) -> None:
    """``--json``: print ``what`` as JSON instead of tables."""
    parser.add_argument(
        "--json", action="store_true", help=f"print the {what} as JSON" if what else None
    )


#: Global options that take a value (so their value is not taken for the command name).
_VALUED_GLOBALS = {"-C", "-f", "--file", "-p", "--project-name"}


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line, if any."""
    skip = False
    for token in argv:
        if skip:
            skip = False
            continue
        if token in _VALUED_GLOBALS:
            skip = True
            continue
        if token.startswith("-"):
            continue
        return token if token in COMMANDS else None
    return None


def register_all(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], argv: Sequence[str] | None = None
) -> None:
    """Register every command; only the chosen one's module is imported (all when ``argv`` is
    None, e.g. for documentation)."""
    chosen = chosen_command(argv) if argv is not None else None
    wanted = {COMMANDS[chosen][0]} if chosen else (set(MODULES) if argv is None else set())
    loaded: set[str] = set()
    for name, (module_name, summary) in COMMANDS.items():
        if module_name in wanted:
            if module_name not in loaded:
                import_module(f"wheeldock.cli.commands.{module_name}").register(sub)
                loaded.add(module_name)
        else:
            sub.add_parser(name, help=summary, add_help=False)
