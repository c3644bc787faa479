"""CLI subcommands: each module exposes ``register(subparsers)`` and sets ``func`` on its parser.

A handler takes the parsed ``argparse.Namespace`` and returns an exit code. Handlers only parse,
call the library and render; the work lives in the library modules.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib import import_module

#: Subcommand modules, in the order ``--help`` lists them.
MODULES: list[str] = [
    "base",
    "init",
    "lock",
    "build",
    "libs",
    "check",
    "up",
    "bench",
]

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def register_all(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name in MODULES:
        module = import_module(f"wheeldock.commands.{name}")
        module.register(sub)
