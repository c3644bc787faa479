"""``wheeldock prune`` and the engine: a rebuild leaves no dangling image, and prune removes the
images wheeldock labelled (the selection of cache files is in the unit tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.oci import EPOCH

from wheeldock.build import prune as pruning
from wheeldock.build.prune import PruneOptions, prune
from wheeldock.edges import engine
from wheeldock.oci import daemon, image, mutate
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.layer import TarEntry, build_layer

# -- the engine ----------------------------------------------------------------------------------


def _tiny(store: BlobStore, text: str, labels: dict[str, str]) -> image.Image:
    lay = build_layer([TarEntry.file("app/x", text.encode())], store=store, mtime=EPOCH)
    return mutate.with_config(mutate.append_layers(image.empty(), [lay]), labels=labels)


def _exists(image_id: str) -> bool:
    return engine.docker("image", "inspect", image_id, check=False).returncode == 0


def _untag_previous(store: BlobStore, name: str, text: str, labels: dict[str, str]) -> str:
    """Load a new image as ``name`` while a container uses the old one, then remove the
    container: the old image is left dangling, and free."""
    old = str(engine.image_inspect(name)["Id"])
    container = engine.docker("create", old, "true").stdout.strip()
    try:
        daemon.load(_tiny(store, text, labels), name, store)
        assert _exists(old)  # the container held it
    finally:
        engine.docker("rm", container)
    return old


@pytest.mark.integration
def test_a_rebuild_leaves_no_dangling_image_and_prune_removes_labelled_ones(
    store: BlobStore, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "empty-cache"))
    # only this test's images: the engine is shared
    mark = f"test-{os.getpid()}"
    monkeypatch.setattr(pruning, "IMAGE_LABELS", (f"{pruning.IMAGE_LABELS[0]}={mark}",))
    ours, theirs = {pruning.LABEL_IMAGE: mark}, {"other.tool": mark}
    name, foreign = f"wheeldock-test/prune-{mark}:wheeldock", f"wheeldock-test/other-{mark}:x"
    leftovers: list[str] = []
    made: list[str] = []
    try:
        for n in range(3):  # each rebuild loads a new image under the same name
            daemon.load(_tiny(store, f"v{n}", ours), name, store)
            made.append(str(engine.image_inspect(name)["Id"]))
            assert not any(_exists(old) for old in made[:-1])
        dangling = _untag_previous(store, name, "v3", ours)
        daemon.load(_tiny(store, "f0", theirs), foreign, store)
        not_ours = _untag_previous(store, foreign, "f1", theirs)
        leftovers += [dangling, not_ours]

        dry = prune(project, PruneOptions(dry_run=True))
        assert [i.id for i in dry.images] == [dangling] and _exists(dangling)
        done = prune(project, PruneOptions())
        assert [i.id for i in done.images] == [dangling]
        assert not _exists(dangling) and _exists(not_ours)
    finally:
        engine.docker("image", "rm", name, foreign, *made, *leftovers, check=False)
