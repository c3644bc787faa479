"""Which compose files and project name a command reads, as ``docker compose``'s own global
options give them. Apart from :mod:`wheeldock.compose.files` so the command line can hold one
without loading the YAML reader (``build`` and ``lock`` never read a compose file)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Selection:
    """``-f`` (repeatable, merged in order) and ``-p``. Empty: ``COMPOSE_FILE`` and
    ``COMPOSE_PROJECT_NAME`` decide, else what ``init`` recorded, else compose's defaults."""

    files: tuple[str, ...] = ()
    project_name: str | None = None
