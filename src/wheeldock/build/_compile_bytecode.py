"""Compile .py files to unchecked-hash .pyc files; run as a script by :mod:`wheeldock.build.install`.

It runs in its own ``python -I`` process on purpose: marshal marks an object for back-reference
when its reference count is above one, so the same source can marshal differently in a process
that has imported more modules. A fresh interpreter that imports only this file gives the same
bytes on every run (and so do the pool's workers, forked from it).

argv[1]: how many worker processes to compile with (1: in this process). stdin: JSON lines, each
a list of ``[source path, path recorded in the .pyc]`` (one line per tree); compiling starts with
the first line, so the caller can install the next wheel while the previous one compiles.
stdout: one JSON line per tree as soon as all its files are compiled, ``{"tree": N, "failed":
[...]}`` with N the tree's line number from 0 and the sources that did not compile (skipped, as
pip does: e.g. Python 2 templates in a package). Trees may finish out of order; the caller can
use each tree (tar it) while the others still compile.
"""

from __future__ import annotations

import json
import py_compile
import sys
import threading

# Imported here even when no pool is made: the modules loaded change which objects marshal
# shares, so inline and pooled compiles must start from the same set to write the same bytes.
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

# The reports below are JSON, and json's C encoder interns some strings on first use ("{",
# "[", "[]", "null", ...). A string a source also holds then has a second reference, which
# makes marshal write it differently. Encoding once now, before any compile or fork, gives
# every compile the same strings whether or not a report was written before the pool's
# workers were forked.
json.dumps({"tree": 0, "failed": ["x"], "null": None, "bools": [True, False], "real": 0.5})

#: Files per task sent to a worker: large enough to amortise the pickling, small enough to
#: balance two workers on one big package.
_CHUNK = 24


def _one(pair: list[str]) -> str | None:
    source, recorded = pair
    try:
        py_compile.compile(
            source,
            dfile=recorded,
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    except (py_compile.PyCompileError, SyntaxError, ValueError):
        return source
    return None


def _many(pairs: list[list[str]]) -> list[str]:
    return [f for f in map(_one, pairs) if f]


class _Reports:
    """Writes a tree's line once its last chunk is compiled (chunks finish on the pool's thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._left: dict[int, int] = {}
        self._failed: dict[int, list[str]] = {}

    def expect(self, tree: int, chunks: int) -> None:
        with self._lock:
            self._left[tree] = chunks
            self._failed[tree] = []

    def done(self, tree: int, failed: list[str]) -> None:
        with self._lock:
            self._failed[tree] += failed
            self._left[tree] -= 1
            if self._left[tree] == 0:
                sys.stdout.write(
                    json.dumps({"tree": tree, "failed": self._failed.pop(tree)}) + "\n"
                )
                sys.stdout.flush()

    def chunk_done(self, tree: int) -> Callable[[Future[list[str]]], None]:
        return lambda future: self.done(tree, future.result())


def main() -> None:
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    reports = _Reports()
    pool: ProcessPoolExecutor | None = None
    futures: list[Future[list[str]]] = []
    for tree, line in enumerate(sys.stdin):
        pairs = json.loads(line)
        # A pool pays off from the second tree, or for a big first one; a single small tree
        # (a one-pin bump's) is compiled here before a pool would have started.
        if pool is None and workers > 1 and (tree > 0 or len(pairs) > _CHUNK):
            pool = ProcessPoolExecutor(workers)
        if pool is None:
            reports.expect(tree, 1)
            reports.done(tree, _many(pairs))
            continue
        chunks = range(0, len(pairs), _CHUNK)
        reports.expect(tree, max(1, len(chunks)))
        if not chunks:
            reports.done(tree, [])
        for i in chunks:
            future = pool.submit(_many, pairs[i : i + _CHUNK])
            future.add_done_callback(reports.chunk_done(tree))
            futures.append(future)
    for future in futures:
        future.result()  # a worker's crash surfaces here, as a non-zero exit
    if pool is not None:
        pool.shutdown()


if __name__ == "__main__":
    main()
