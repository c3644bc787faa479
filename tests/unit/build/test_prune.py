"""``wheeldock prune``'s selection: a temp cache with entries of known ages, a project whose lock
names some wheels; the engine is left out (its part is in the integration tests)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from wheeldock.build import prune as pruning
from wheeldock.build.prune import PruneOptions, prune
from wheeldock.build.sdists import BaseWheelhouse
from wheeldock.cli.app import main
from wheeldock.deps.pylock import LockedFile
from wheeldock.deps.wheelhouse import Artifact
from wheeldock.oci.blobs import BlobStore

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
    put(root / "check" / "listings" / f"{'11' * 32}.json", idle=5 * DAY)
    put(root / "check" / "listings" / f"{'22' * 32}.json", idle=60 * DAY)
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
        "check listings": {f"check/listings/{'22' * 32}.json"},
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
    assert len(every["check listings"]) == 2


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
    assert totals == {"wheels": 3, "installed trees": 1, "blobs": 2, "blob index": 1, "check listings": 1,
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
