"""Rendering for people (rich, on stderr for progress) and for machines (``--json`` on stdout)."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich Console made on first use: rich is slow to import, and a ``--json`` run
    (what CI and ``wheeldock bench`` call) may print nothing for people at all."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


#: Human output goes to stdout; progress and errors to stderr so ``--json`` stays parseable.
console = cast("Console", _LazyConsole(highlight=False))
err_console = cast("Console", _LazyConsole(stderr=True, highlight=False, soft_wrap=True))


def _default(obj: object) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def to_json(data: object) -> str:
    return json.dumps(data, default=_default, indent=2, sort_keys=False)


def print_json(data: object) -> None:
    sys.stdout.write(to_json(data) + "\n")
    sys.stdout.flush()


@contextmanager
def status(message: str, *, quiet: bool = False) -> Iterator[None]:
    """A spinner on stderr while long work runs (nothing when quiet or not a terminal)."""
    if quiet or not err_console.is_terminal:
        err_console.print(f"[dim]… {message}[/dim]") if not quiet else None
        yield
        return
    with err_console.status(message):
        yield
