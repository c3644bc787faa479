"""Where wheeldock keeps its caches: ``$WHEELDOCK_CACHE`` or ``$XDG_CACHE_HOME/wheeldock``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    explicit = os.environ.get("WHEELDOCK_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "wheeldock"


def cache_dir(*parts: str) -> Path:
    """A sub-folder of the cache, created on first use."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
