"""The one way tests set environment variables for a while (a session fixture cannot use
monkeypatch): ``environ`` sets, or with ``None`` unsets, and restores every name on exit."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """``values`` in the environment for the duration; a ``None`` value unsets that name."""
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
