"""``wheeldock prune``'s selection: a temp cache with entries of known ages, a project whose lock
names some wheels; the engine is left out (its part is in the integration test below)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest_oci import EPOCH

from wheeldock.build import prune as pruning
from wheeldock.build.prune import PruneOptions, prune
from wheeldock.build.sdists import BaseWheelhouse
from wheeldock.cli.app import main
from wheeldock.deps.pylock import LockedFile
from wheeldock.deps.wheelhouse import Artifact
from wheeldock.edges import engine
from wheeldock.oci import daemon, image, mutate
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.layer import TarEntry, build_layer

DATA = Path(__file__).parent / "data" / "lock"
NOW = time.time()  # ages are hours and days: the seconds a test takes do not count
HOUR, DAY = 3600.0, 86400.0
IDNA_WHEEL = "946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3"
IDNA_SDIST = "12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13ea9"
OTHER = "ab" * 32


def put(path: Path, data: bytes = b"x" * 100, *, idle: float) -> Path:
    """A file (and its parents) last used ``idle`` seconds before NOW."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (NOW - idle, NOW - idle))
    return path


def aged(path: Path, idle: float) -> Path:
    os.utime(path, (NOW - idle, NOW - idle))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "wheeldock.lock").mkdir(parents=True)
    shutil.copy(DATA / "pylock.x86_64.toml", root / "wheeldock.lock" / "pylock.api.toml")
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """Wheels, installed trees, blobs and temp files of known ages (see the names)."""
    root = tmp_path / "cache"
    wheels = root / "wheels" / "sha256"
    aged(put(wheels / IDNA_WHEEL[:2] / IDNA_WHEEL / "idna.whl", idle=90 * DAY).parent, 90 * DAY)
    aged(put(wheels / OTHER[:2] / OTHER / "old-unnamed.whl", idle=2 * DAY).parent, 2 * DAY)
    young = "cd" * 32
    aged(put(wheels / young[:2] / young / "young-unnamed.whl", idle=60).parent, 60)
    sdist = Artifact("idna", "3.10", LockedFile("idna-3.10.tar.gz", IDNA_SDIST), "sdist")
    built = BaseWheelhouse(root / "wheels").build_key(sdist, platform="linux/amd64", python="3.11")
    aged(put(root / "wheels" / "built" / built / "idna-built.whl", idle=DAY).parent, DAY)
    aged(put(root / "wheels" / "built" / ("ef" * 32) / "gone.whl", idle=DAY).parent, DAY)
    put(root / "installed" / "aa" / "recent.tar", idle=2 * DAY)
    put(root / "installed" / "bb" / "stale.tar", idle=40 * DAY)
    store = BlobStore(root / "blobs")
    kept = store.put_bytes(b"named by a recent entry")
    dropped = store.put_bytes(b"named by a stale entry only")
    pulled = store.put_bytes(b"named by nothing")
    store.set_cached("recent", {"digest": str(kept.digest)})
    store.set_cached("stale", {"digest": str(dropped.digest)})
    for blob in (kept, dropped, pulled):
        aged(store.path(blob.digest), 50 * DAY)
    aged(store._index_path("recent"), 3 * DAY)
    aged(store._index_path("stale"), 45 * DAY)
    put(root / "blobs" / "tmp" / "blob.k9", idle=2 * HOUR)
    put(root / "installed" / "cc" / ".x.tar.abc.tmp", idle=3 * HOUR)
    put(root / "installed" / "cc" / ".y.tar.def.tmp", idle=10 * 60)  # a build writing now
    return root


def chosen(project: Path, cache: Path, **options: object) -> dict[str, set[str]]:
    found, _ = pruning.file_candidates(project, PruneOptions(**options), cache=cache, now=NOW)  # type: ignore[arg-type]
    by_kind: dict[str, set[str]] = {}
    for cand in found:
        by_kind.setdefault(cand.kind, set()).add(cand.path.relative_to(cache).as_posix())
    return by_kind


def test_default_prune_keeps_what_locks_name_and_what_was_used_lately(
    project: Path, cache: Path
) -> None:
    built_gone = f"wheels/built/{'ef' * 32}"
    assert chosen(project, cache) == {
        "wheels": {f"wheels/sha256/ab/{OTHER}", built_gone, f"wheels/sha256/94/{IDNA_WHEEL}"},
        "installed trees": {"installed/bb/stale.tar"},
        "blob index": {f"blobs/index/{_index_name(cache, 'stale')}"},
        "blobs": {f"blobs/sha256/{_blob(b'named by a stale entry only')}",
                  f"blobs/sha256/{_blob(b'named by nothing')}"},
        "temp files": {"blobs/tmp/blob.k9", "installed/cc/.x.tar.abc.tmp"},
    }  # fmt: skip


def test_keep_days_protects_named_wheels_used_within_them(project: Path, cache: Path) -> None:
    wheels = chosen(project, cache, keep_days=120)["wheels"]
    assert f"wheels/sha256/94/{IDNA_WHEEL}" not in wheels  # named, used 90 days ago
    assert f"wheels/sha256/ab/{OTHER}" in wheels  # named by no lock: removed whatever its age
    assert "installed trees" not in chosen(project, cache, keep_days=120)


def test_all_takes_everything_but_the_last_hour(project: Path, cache: Path) -> None:
    every = chosen(project, cache, everything=True)
    assert len(every["wheels"]) == 4  # all but the one written a minute ago
    assert every["installed trees"] == {"installed/aa/recent.tar", "installed/bb/stale.tar"}
    assert len(every["blobs"]) == 3 and len(every["blob index"]) == 2
    assert "installed/cc/.y.tar.def.tmp" not in every["temp files"]


def test_dry_run_removes_nothing_and_a_run_removes_what_it_listed(
    project: Path, cache: Path
) -> None:
    before = sorted(p for p in cache.rglob("*"))
    dry = prune(project, PruneOptions(dry_run=True), cache=cache, now=NOW, images=False)
    assert sorted(p for p in cache.rglob("*")) == before
    done = prune(project, PruneOptions(), cache=cache, now=NOW, images=False)
    assert {c.path for c in done.files} == {c.path for c in dry.files}
    assert not any(c.path.exists() for c in done.files)
    assert done.freed == dry.freed > 0
    assert done.locks == (project / "wheeldock.lock" / "pylock.api.toml",)
    store = BlobStore(cache / "blobs")
    assert store.get_cached("recent") is not None and store.get_cached("stale") is None


def test_prune_json_reports_totals_per_kind(
    project: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(cache))
    monkeypatch.setattr(pruning, "dangling_images", lambda: [])
    assert main(["-C", str(project), "prune", "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    totals = {t["kind"]: t["count"] for t in report["totals"]}
    assert totals == {"wheels": 3, "installed trees": 1, "blobs": 2, "blob index": 1,
                      "temp files": 2, "dangling images": 0}  # fmt: skip
    assert report["dry_run"] is True and report["freed_bytes"] == sum(
        f["bytes"] for f in report["files"]
    )
    assert main(["-C", str(project), "prune", "--keep-days", "-1"]) == 2


def _blob(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _index_name(cache: Path, key: str) -> str:
    path = BlobStore(cache / "blobs")._index_path(key)
    return f"{path.parent.name}/{path.name}"


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
