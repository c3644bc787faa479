"""Compile .py files to unchecked-hash .pyc files; run as a script by :mod:`wheeldock.install`.

It runs in its own ``python -I`` process on purpose: marshal marks an object for back-reference
when its reference count is above one, so the same source can marshal differently in a process
that has imported more modules. A fresh interpreter that imports only this file gives the same
bytes on every run (and so do the pool's workers, forked from it).

argv[1]: how many worker processes to compile with (1: in this process). stdin: JSON lines, each
a list of ``[source path, path recorded in the .pyc]``; compiling starts with the first line, so
the caller can install the next wheel while the previous one compiles. stdout: a JSON list of
the sources that did not compile (skipped, as pip does: e.g. Python 2 templates in a package).
"""

from __future__ import annotations

import json
import py_compile
import sys

# Imported here even when no pool is made: the modules loaded change which objects marshal
# shares, so inline and pooled compiles must start from the same set to write the same bytes.
from concurrent.futures import Future, ProcessPoolExecutor

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


def main() -> None:
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    failed: list[str] = []
    pool: ProcessPoolExecutor | None = None
    futures: list[Future[list[str]]] = []
    for trees, line in enumerate(sys.stdin, start=1):
        pairs = json.loads(line)
        # A pool pays off from the second tree, or for a big first one; a single small tree
        # (a one-pin bump's) is compiled here before a pool would have started.
        if pool is None and workers > 1 and (trees > 1 or len(pairs) > _CHUNK):
            pool = ProcessPoolExecutor(workers)
        if pool is None:
            failed += _many(pairs)
            continue
        for i in range(0, len(pairs), _CHUNK):
            futures.append(pool.submit(_many, pairs[i : i + _CHUNK]))
    for future in futures:
        failed += future.result()
    if pool is not None:
        pool.shutdown()
    json.dump(failed, sys.stdout)


if __name__ == "__main__":
    main()
