"""The build context: which files a ``.dockerignore`` leaves out, as Docker reads it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore matching: ``**`` any folders, ``*`` and ``?`` within one."""
    pattern = pattern.strip().lstrip("/")
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out.rstrip("/") + "$")


def excluded(path: str, patterns: Sequence[str]) -> bool:
    """Whether ``.dockerignore`` ``patterns`` keep ``path`` (or a folder above it) out of the
    context; later ``!`` patterns re-include, as Docker reads them."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for raw in patterns:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _pattern_regex(line[1:] if negate else line)
        if any(regex.match(p) for p in prefixes):
            result = not negate
    return result
