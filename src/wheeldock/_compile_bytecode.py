"""Compile .py files to unchecked-hash .pyc files; run as a script by :mod:`wheeldock.install`.

It runs in its own ``python -I`` process on purpose: marshal marks an object for back-reference
when its reference count is above one, so the same source can marshal differently in a process
that has imported more modules. A fresh interpreter that imports only this file gives the same
bytes on every run.

stdin: a JSON list of ``[source path, path recorded in the .pyc]``; stdout: a JSON list of the
sources that did not compile (skipped, as pip does: e.g. Python 2 templates in a package).
"""

import json
import os
import py_compile
import sys
from concurrent.futures import ProcessPoolExecutor


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


def main() -> None:
    pairs = json.load(sys.stdin)
    workers = min(len(pairs) // 64 + 1, os.cpu_count() or 1)
    if workers <= 1:
        failed = [f for f in map(_one, pairs) if f]
    else:
        with ProcessPoolExecutor(workers) as pool:
            failed = [f for f in pool.map(_one, pairs, chunksize=32) if f]
    json.dump(failed, sys.stdout)


if __name__ == "__main__":
    main()
