"""``build --watch``: a change to a service's inputs rebuilds its image in the warm process."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from support.build import CbtBuild, make_cbt_project

from wheeldock.build import builder, watch
from wheeldock.build.builder import BuildOptions


def _touch(path: Path, text: str) -> None:
    path.write_text(text)
    # a later mtime even on coarse-grained file systems
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


@pytest.mark.integration
def test_a_code_change_rebuilds_only_the_app_layer_in_the_warm_process(
    cbt_built: CbtBuild, build_env: Path, tmp_path: Path
) -> None:
    proj = make_cbt_project(tmp_path / "p", lock_from=cbt_built.root)
    layout = tmp_path / "oci"
    first = builder.build(proj, proj.services, [f"oci:{layout}"])
    reports: list[watch.Rebuild] = []
    main = proj.root / "vcc-totem" / "main.py"
    watching = threading.Event()  # set once the baseline fingerprints are taken

    def edit() -> None:
        watching.wait(60)
        time.sleep(0.1)
        _touch(main, main.read_text() + "\n# watched\n")

    def stop() -> bool:
        watching.set()
        return bool(reports) or time.monotonic() > deadline

    editor = threading.Thread(target=edit)
    editor.start()
    deadline = time.monotonic() + 120
    watch.watch(
        proj,
        proj.services,
        [f"oci:{layout}"],
        BuildOptions(),
        on_rebuild=reports.append,
        polling=watch.Polling(interval=0.05, should_stop=stop),
    )
    editor.join()
    (done,) = reports
    assert done.error is None and set(done.services) == {"calidda-api", "srv-img"}
    # the two services share the source folder: the first rebuilds the app layer, the second
    # finds it built
    assert [[lay.kind for lay in r.layers if not lay.cached] for r in done.results] == [["app"], []]
    for before, after in zip(first, done.results, strict=True):
        assert after.digest != before.digest
        assert [lay.digest for lay in after.layers[:-1]] == [
            lay.digest for lay in before.layers[:-1]
        ]
