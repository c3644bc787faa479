"""The ``wheeldock`` command: argument parsing, one handler per subcommand, rendering."""

from __future__ import annotations

from wheeldock.cli.app import build_parser, leave, main, run

__all__ = ["build_parser", "leave", "main", "run"]
