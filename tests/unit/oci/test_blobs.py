from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from wheeldock.errors import DigestMismatch, NotFound
from wheeldock.oci.blobs import BlobStore, hash_file
from wheeldock.oci.digest import Digest


def test_put_bytes_stores_under_sha256_read_only(store: BlobStore) -> None:
    blob = store.put_bytes(b"hello")
    assert str(blob.digest) == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert blob.size == 5
    path = store.path(blob.digest)
    assert path == store.root / "sha256" / blob.digest.hex
    assert path.read_bytes() == b"hello"
    assert path.stat().st_mode & 0o777 == 0o444
    assert store.has(blob.digest) and store.read_bytes(blob.digest) == b"hello"


def test_writer_hashes_while_streaming(store: BlobStore) -> None:
    with store.writer() as w:
        for _ in range(3):
            w.write(b"x" * 1000)
    assert w.blob.size == 3000
    assert w.blob.digest == Digest.of_bytes(b"x" * 3000)


def test_writer_with_wrong_expected_digest_stores_nothing(store: BlobStore) -> None:
    wrong = Digest.of_bytes(b"other")
    with pytest.raises(DigestMismatch), store.writer(expected=wrong) as w:
        w.write(b"data")
    assert not store.has(Digest.of_bytes(b"data"))
    assert list((store.root / "tmp").iterdir()) == []


def test_error_inside_writer_commits_nothing(store: BlobStore) -> None:
    with pytest.raises(RuntimeError), store.writer() as w:
        w.write(b"partial")
        raise RuntimeError("boom")
    assert not store.has(Digest.of_bytes(b"partial"))
    assert list((store.root / "tmp").iterdir()) == []


def test_put_file_twice_keeps_one_blob(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(os.urandom(3 << 20))
    a = store.put_file(src)
    b = store.put_file(src)
    assert a == b == hash_file(src)
    assert len(list((store.root / "sha256").iterdir())) == 1


def test_missing_blob_is_not_found_with_fix(store: BlobStore) -> None:
    with pytest.raises(NotFound) as info:
        store.open(Digest.of_bytes(b"nope"))
    assert "rebuild" in (info.value.fix or "")


def test_index_round_trips_and_misses_are_none(store: BlobStore) -> None:
    assert store.get_cached("k1") is None
    store.set_cached("k1", {"digest": "sha256:" + "0" * 64, "n": 1})
    assert store.get_cached("k1") == {"digest": "sha256:" + "0" * 64, "n": 1}
    store.set_cached("k1", {"n": 2})
    assert store.get_cached("k1") == {"n": 2}
    assert store.get_cached("k2") is None


def test_corrupt_index_entry_reads_as_miss(store: BlobStore) -> None:
    store.set_cached("key", {"a": 1})
    path = store._index_path("key")
    os.chmod(path, 0o644)
    path.write_text("{not json")
    assert store.get_cached("key") is None


def _hammer(root: str, worker: int) -> int:
    s = BlobStore(Path(root))
    for i in range(40):
        s.set_cached("shared", {"worker": worker, "i": i})
        s.set_cached(f"own-{worker}-{i}", {"i": i})
        s.put_bytes(b"same bytes for everyone" * 1000)
    return worker


def test_two_processes_writing_at_once_leave_a_consistent_store(tmp_path: Path) -> None:
    root = tmp_path / "store"
    BlobStore(root)
    with ProcessPoolExecutor(2) as pool:
        assert sorted(pool.map(_hammer, [str(root)] * 2, [0, 1])) == [0, 1]
    s = BlobStore(root)
    shared = s.get_cached("shared")
    assert shared is not None and shared["i"] == 39
    assert all(s.get_cached(f"own-{w}-{i}") == {"i": i} for w in (0, 1) for i in range(40))
    blob = Digest.of_bytes(b"same bytes for everyone" * 1000)
    assert s.read_bytes(blob) == b"same bytes for everyone" * 1000


def test_kill_9_while_writing_leaves_no_partial_blob(tmp_path: Path) -> None:
    root = tmp_path / "store"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from wheeldock.oci.blobs import BlobStore\n"
        "s = BlobStore(Path(sys.argv[1]))\n"
        "with s.writer() as w:\n"
        "    w.write(b'a' * 100000)\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    s = BlobStore(root)
    assert list((root / "sha256").iterdir()) == []
    assert not s.has(Digest.of_bytes(b"a" * 100000))
    # the store keeps working; the stale temp file is harmless
    assert s.put_bytes(b"a" * 100000).digest == Digest.of_bytes(b"a" * 100000)


def test_a_blob_is_hashed_again_only_when_its_file_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wheeldock.oci import blobs

    blob = BlobStore(tmp_path).put_bytes(b"layer bytes")
    hashed: list[Path] = []
    real_hash = blobs.hash_file
    monkeypatch.setattr(blobs, "hash_file", lambda p: hashed.append(p) or real_hash(p))
    later = BlobStore(tmp_path)  # another build: written by the first, not hashed again
    assert later.verified(blob.digest, blob.size) == later.path(blob.digest)
    assert hashed == []
    path = later.path(blob.digest)
    path.chmod(0o644)
    path.write_bytes(b"layer bytes")  # the same bytes, but written: hashed again, and kept
    assert BlobStore(tmp_path).verified(blob.digest) == path
    assert hashed == [path]


@pytest.mark.parametrize("how", ["a flipped byte", "cut short", "a flipped byte, mtime kept"])
def test_a_damaged_blob_is_removed_with_a_warning_naming_it(
    store: BlobStore, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    blob = store.put_bytes(b"0123456789" * 100)
    path = store.path(blob.digest)
    before = path.stat()
    data = bytearray(path.read_bytes())
    if how == "cut short":
        del data[500:]
    else:
        data[500] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    if how.endswith("mtime kept"):
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert BlobStore(store.root).verified(blob.digest, blob.size) is None
    assert not path.exists() and str(path) in caplog.text
