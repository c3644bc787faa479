"""wheeldock: make Python services start fast in containers."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Looked up on first use: importlib.metadata costs every command's start-up ~50 ms.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("wheeldock")
        except PackageNotFoundError:  # running from a source tree without installing
            return "0.0.0"
    raise AttributeError(f"module 'wheeldock' has no attribute {name!r}")


__all__ = ["__version__"]
