"""wheeldock: make Python services start fast in containers."""

from __future__ import annotations

import sys

# httpx's package imports its command-line tool whenever click, pygments and rich are installed,
# a start-up cost for a tool wheeldock never runs (docs/design/start-up.md). With this entry the
# import fails quietly, as httpx expects when they are absent.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def __getattr__(name: str) -> str:
    # Looked up on first use: importing importlib.metadata would slow every command's start-up.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("wheeldock")
        except PackageNotFoundError:  # running from a source tree without installing
            return "0.0.0"
    raise AttributeError(f"module 'wheeldock' has no attribute {name!r}")


__all__ = ["__version__"]
