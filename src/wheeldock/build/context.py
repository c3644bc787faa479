"""The build context: which files a ``.dockerignore`` leaves out, as Docker reads it."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from pathlib import PurePosixPath


def _clean(pattern: str) -> str:
    """A pattern as Docker's reader keeps it: trimmed, ``filepath.Clean``-ed (``./a//b/`` is
    ``a/b``), a leading ``/`` dropped: patterns are relative to the context's root."""
    cleaned = posixpath.normpath(pattern.strip())
    cleaned = cleaned.lstrip("/") if len(cleaned) > 1 else cleaned
    return "" if cleaned == "." else cleaned


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore matching: ``**`` any folders, ``*`` and ``?`` within one,
    ``[…]`` a class of characters, ``\\`` escapes the next one."""
    pattern = _clean(pattern)
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
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end + 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out += re.escape(pattern[i + 1])
            i += 2
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + "$")


def excluded(path: str, patterns: Sequence[str]) -> bool:
    """Whether ``.dockerignore`` ``patterns`` keep ``path`` (relative to the context's root,
    or a folder above it) out of the context; later ``!`` patterns re-include, as Docker reads
    them."""
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
