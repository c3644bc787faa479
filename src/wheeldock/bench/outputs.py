"""The files a bench run writes, checked before the first scenario runs.

A bench run takes many minutes; an output that cannot be written (matplotlib missing for the
chart, a folder that refuses files) must fail before the run, not after it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from wheeldock.edges.fsutil import temp_file
from wheeldock.errors import ExtraNotFound, UsageError

BENCH_EXTRA_FIX = (
    "install the bench extra: pip install 'wheeldock[bench]' (or uv tool install "
    "'wheeldock[bench]'; it adds matplotlib), or drop --chart"
)


@dataclass(frozen=True)
class BenchOutputs:
    """The files asked for on the command line; None: not asked (``json`` "-" is stdout)."""

    json: Path | None = None
    markdown: Path | None = None
    chart: Path | None = None

    def files(self) -> list[tuple[str, Path]]:
        """(option, path) of every file to write, in the order they are written: the JSON
        first, so the measurements survive a later output that fails."""
        named = (("--json", self.json), ("--markdown", self.markdown), ("--chart", self.chart))
        return [(option, path) for option, path in named if path is not None]


def pyplot() -> ModuleType:
    """matplotlib's ``pyplot`` on the non-interactive Agg backend; :class:`ExtraNotFound`
    naming the ``bench`` extra when matplotlib cannot be imported."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ExtraNotFound(f"--chart needs matplotlib ({exc})", fix=BENCH_EXTRA_FIX) from exc
    return plt


def check(outputs: BenchOutputs) -> None:
    """Raise if any output asked for cannot be written: matplotlib for ``--chart``
    (:class:`ExtraNotFound`), a path that is a folder (:class:`UsageError`), a folder that
    cannot be made or takes no new file (:class:`~wheeldock.errors.NotWritable`). Missing
    folders are made (the run would make them anyway); nothing else is left behind."""
    if outputs.chart is not None:
        pyplot()
    for option, path in outputs.files():
        _check_writable(option, path)


def _check_writable(option: str, path: Path) -> None:
    if path.is_dir():
        raise UsageError(
            f"{option} names a folder, not a file",
            path=path,
            fix=f"give {option} a file name, e.g. {path / ('bench' + _suffix(option))}",
        )
    fd, probe = temp_file(
        path.parent,
        prefix=f".{path.name}.",
        suffix=".probe",
        what=f"the {option} output",
        fix=f"make the folder writable, or point {option} at another folder",
        shown=path,
    )
    os.close(fd)
    Path(probe).unlink()


def _suffix(option: str) -> str:
    return {"--json": ".json", "--markdown": ".md", "--chart": ".png"}[option]
