from __future__ import annotations

import gzip
import io
import itertools
import os
import socket
import tarfile
from pathlib import Path

import pytest

from wheeldock.errors import DigestMismatch, InvalidConfig, NotFound, WheeldockError
from wheeldock.oci import layer as layer_mod
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.layer import (
    MEDIA_TYPE_GZIP,
    MEDIA_TYPE_TAR,
    MEDIA_TYPE_ZSTD,
    Layer,
    TarEntry,
    build_layer,
    cached_layer,
    entries_from_dir,
    plan_entries,
)

EPOCH = 1_700_000_000


def tiny_entries() -> list[TarEntry]:
    return [
        TarEntry.file("app/main.py", b"print('hello')\n"),
        TarEntry.file("app/run.sh", b"#!/bin/sh\nexec python3 main.py\n", mode=0o755),
        TarEntry.symlink("app/current", "main.py"),
        TarEntry.directory("tmp", mode=0o1777),
    ]


# Golden values: a change here changes every image wheeldock builds. The uncompressed tar's
# digest depends only on this module; the gzip/zstd digests also on the ISA-L/zstd builds.
GOLDEN_DIFF_ID = "sha256:e1930bef28e8a177fbdd2e568373d451e9122778f88f1c1f54b1012c47f306bb"
GOLDEN = {
    "none": ("sha256:e1930bef28e8a177fbdd2e568373d451e9122778f88f1c1f54b1012c47f306bb", 4608),
    "gzip": ("sha256:2fd588263b104db3a9b2cf7e4e6f0b9f5caa201a52b6cfe6642d3729195955cb", 252),
    "zstd": ("sha256:bef45fdc1fb96e001dd0680c2433f14e0d73bb2ebf46ad858b63a68398198cf7", 216),
}


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_tiny_layer_matches_golden_digest(store: BlobStore, compression: str) -> None:
    lay = build_layer(tiny_entries(), store=store, mtime=EPOCH, compression=compression)  # type: ignore[arg-type]
    assert str(lay.diff_id) == GOLDEN_DIFF_ID
    assert (str(lay.digest), lay.size) == GOLDEN[compression]
    assert lay.uncompressed_size == 4608


@pytest.mark.parametrize("order", list(itertools.permutations(range(4)))[::5])
def test_entry_order_does_not_change_the_digest(store: BlobStore, order: tuple[int, ...]) -> None:
    entries = tiny_entries()
    lay = build_layer([entries[i] for i in order], store=store, mtime=EPOCH)
    assert str(lay.digest) == GOLDEN["gzip"][0]


def members(lay: Layer) -> list[tarfile.TarInfo]:
    with lay.uncompressed() as fh:
        data = fh.read()
    return tarfile.open(fileobj=io.BytesIO(data)).getmembers()


def test_tar_is_sorted_with_parents_fixed_times_and_owners(store: BlobStore) -> None:
    entries = [
        TarEntry.file("usr/lib/python3/site/z.py", b"z"),
        TarEntry.file("usr/lib/python3/site/a.py", b"a", uid=1000, gid=1000),
        TarEntry.file("etc/x.conf", b"x"),
    ]
    infos = members(build_layer(entries, store=store, mtime=EPOCH))
    names = [m.name for m in infos]
    assert names == [
        "etc",
        "etc/x.conf",
        "usr",
        "usr/lib",
        "usr/lib/python3",
        "usr/lib/python3/site",
        "usr/lib/python3/site/a.py",
        "usr/lib/python3/site/z.py",
    ]
    for m in infos:
        assert m.mtime == EPOCH
        assert (m.uname, m.gname) == ("", "")
        assert not {"atime", "ctime", "mtime"} & set(m.pax_headers)
        if m.isdir():
            assert (m.mode, m.uid, m.gid) == (0o755, 0, 0)
    by_name = {m.name: m for m in infos}
    assert (by_name["usr/lib/python3/site/a.py"].uid, by_name["usr/lib/python3/site/a.py"].gid) == (
        1000,
        1000,
    )
    assert by_name["etc/x.conf"].uid == 0


def test_long_and_unicode_names_round_trip(store: BlobStore) -> None:
    long_name = "site-packages/" + "/".join(["d" * 60] * 5) + "/module_with_a_long_name.py"
    entries = [TarEntry.file(long_name, b"long"), TarEntry.file("app/naïve-café.txt", b"u")]
    lay = build_layer(entries, store=store, mtime=EPOCH)
    infos = {m.name: m for m in members(lay)}
    assert long_name in infos and "app/naïve-café.txt" in infos
    assert len(long_name) > 255


def test_gzip_header_has_no_time_or_name(store: BlobStore) -> None:
    lay = build_layer(tiny_entries(), store=store, mtime=EPOCH)
    head = lay.blob_path().read_bytes()[:10]
    assert head[:3] == b"\x1f\x8b\x08"
    assert head[3] == 0  # flags: no FNAME, no FCOMMENT
    assert head[4:8] == b"\0\0\0\0"  # mtime 0
    assert gzip.decompress(lay.blob_path().read_bytes()) == lay.uncompressed().read()


@pytest.mark.parametrize(
    ("compression", "media_type"),
    [("gzip", MEDIA_TYPE_GZIP), ("zstd", MEDIA_TYPE_ZSTD), ("none", MEDIA_TYPE_TAR)],
)
def test_each_compression_has_its_media_type_and_same_tar(
    store: BlobStore, compression: str, media_type: str
) -> None:
    lay = build_layer(tiny_entries(), store=store, mtime=EPOCH, compression=compression)  # type: ignore[arg-type]
    assert lay.media_type == media_type
    assert Digest.of_bytes(lay.uncompressed().read()) == lay.diff_id
    assert Digest.of_bytes(lay.compressed().read()) == lay.digest


def make_tree(root: Path, *, mtime: int, umask_modes: bool) -> None:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("x = 1\n")
    (root / "pkg" / "sub" / "mod.py").write_text("y = 2\n")
    (root / "pkg" / "tool").write_text("#!/bin/sh\n")
    (root / "pkg" / "tool").chmod(0o775 if umask_modes else 0o700)
    (root / "pkg" / "__init__.py").chmod(0o664 if umask_modes else 0o600)
    (root / "pkg" / "link").symlink_to("sub/mod.py")
    os.link(root / "pkg" / "sub" / "mod.py", root / "pkg" / "hard.py")
    for p in root.rglob("*"):
        os.utime(p, (mtime, mtime), follow_symlinks=False)


def test_two_folders_with_other_mtimes_owners_and_umask_give_one_digest(
    store: BlobStore, tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    make_tree(a, mtime=1_000_000, umask_modes=True)
    make_tree(b, mtime=1_600_000_000, umask_modes=False)
    if os.geteuid() == 0:
        for p in b.rglob("*"):
            os.lchown(p, 1234, 5678)
    la = build_layer(entries_from_dir(a, prefix="/usr/lib/site"), store=store, mtime=EPOCH)
    lb = build_layer(entries_from_dir(b, prefix="usr/lib/site/"), store=store, mtime=EPOCH)
    assert la.digest == lb.digest
    infos = {m.name: m for m in members(la)}
    assert infos["usr/lib/site/pkg/link"].issym()
    assert infos["usr/lib/site/pkg/link"].linkname == "sub/mod.py"
    assert infos["usr/lib/site/pkg/tool"].mode == 0o755
    assert infos["usr/lib/site/pkg/__init__.py"].mode == 0o644
    # the first of two hardlinked paths (in sorted order) holds the bytes, the other links to it
    assert infos["usr/lib/site/pkg/hard.py"].isfile()
    assert infos["usr/lib/site/pkg/sub/mod.py"].islnk()
    assert infos["usr/lib/site/pkg/sub/mod.py"].linkname == "usr/lib/site/pkg/hard.py"


def test_entries_from_dir_skips_sockets_and_excluded_folders(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "keep").mkdir(parents=True)
    (root / "keep" / "a.py").write_text("a")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "a.pyc").write_bytes(b"\0")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "daemon.sock"))
        entries = entries_from_dir(root, prefix="app", exclude=lambda p: "__pycache__" in p)
    assert [e.path for e in entries] == ["app/keep", "app/keep/a.py"]


def test_entries_from_dir_keeps_symlinked_folders_as_links(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "real").mkdir(parents=True)
    (root / "real" / "f").write_text("f")
    (root / "alias").symlink_to("real")
    entries = {e.path: e for e in entries_from_dir(root, prefix="")}
    assert entries["alias"].kind == "symlink" and "alias/f" not in entries


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/../../b", "/", ""])
def test_paths_escaping_the_root_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidConfig):
        TarEntry.file(bad, b"x")


def test_two_different_entries_for_one_path_are_an_error(store: BlobStore) -> None:
    with pytest.raises(InvalidConfig, match="two different entries"):
        build_layer([TarEntry.file("a", b"1"), TarEntry.file("/a", b"2")], store=store, mtime=EPOCH)


def test_a_file_cannot_be_a_parent(store: BlobStore) -> None:
    with pytest.raises(InvalidConfig, match="is inside it"):
        build_layer([TarEntry.file("a", b"1"), TarEntry.file("a/b", b"2")], store=store, mtime=0)


def test_file_changing_size_during_build_is_reported(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"12345")
    entry = TarEntry.file("f", src)
    src.write_bytes(b"1234567890")
    with pytest.raises(WheeldockError, match="changed size"):
        build_layer([entry], store=store, mtime=EPOCH)


def test_tar_file_layer_is_cached_by_its_hash(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = build_layer(tiny_entries(), store=store, mtime=EPOCH, compression="none")
    tar = tmp_path / "rootfs.tar"
    tar.write_bytes(plain.compressed().read())
    first = Layer.from_tar_file(tar, store, "gzip")
    assert first.diff_id == plain.diff_id and str(first.digest) == GOLDEN["gzip"][0]

    def no_compressing(*args: object, **kwargs: object) -> None:
        raise AssertionError("compressed again although cached")

    monkeypatch.setattr(layer_mod, "_LayerSink", no_compressing)
    again = Layer.from_tar_file(tar, store, "gzip")
    assert again == first and again.uncompressed_size == first.uncompressed_size


def test_compressed_tar_file_is_refused(store: BlobStore, tmp_path: Path) -> None:
    lay = build_layer(tiny_entries(), store=store, mtime=EPOCH)
    tgz = tmp_path / "rootfs.tar.gz"
    tgz.write_bytes(lay.compressed().read())
    with pytest.raises(WheeldockError, match="is compressed"):
        Layer.from_tar_file(tgz, store)


def test_cached_layer_builds_once(store: BlobStore) -> None:
    calls = []

    def build() -> Layer:
        calls.append(1)
        return build_layer(tiny_entries(), store=store, mtime=EPOCH)

    a = cached_layer(store, "k", build)
    b = cached_layer(store, "k", build)
    assert a == b and len(calls) == 1


def test_lazy_cached_layer_builds_only_when_bytes_are_needed(tmp_path: Path) -> None:
    first_store = BlobStore(tmp_path / "one")
    recorded = build_layer(tiny_entries(), store=first_store, mtime=EPOCH)
    store = BlobStore(tmp_path / "two")  # the index says the digest; the blob is absent
    store.set_cached("k", recorded.to_json())
    calls = []

    def build() -> Layer:
        calls.append(1)
        return build_layer(tiny_entries(), store=store, mtime=EPOCH)

    lazy = cached_layer(store, "k", build, lazy=True)
    assert lazy.digest == recorded.digest and calls == []
    assert Digest.of_bytes(lazy.compressed().read()) == recorded.digest
    assert calls == [1]


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "a flipped byte":
        data[len(data) // 2] ^= 0x01
    else:
        del data[len(data) // 2 :]
    path.chmod(0o644)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["a flipped byte", "cut short"])
def test_a_cached_layer_whose_blob_was_damaged_is_made_again_in_the_same_run(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    def build(store: BlobStore) -> Layer:
        calls.append(1)
        return build_layer(tiny_entries(), store=store, mtime=EPOCH)

    made = cached_layer(BlobStore(tmp_path), "k", lambda: build(BlobStore(tmp_path)))
    _damage(made.blob_path(), how)
    store = BlobStore(tmp_path)  # a later build
    again = cached_layer(store, "k", lambda: build(store))
    assert again.digest == made.digest and calls == [1]  # the index still answers
    assert Digest.of_bytes(again.compressed().read()) == made.digest
    assert calls == [1, 1]
    assert str(store.path(made.digest)) in caplog.text


@pytest.mark.parametrize("how", ["a flipped byte", "cut short"])
def test_a_damaged_blob_that_cannot_be_made_again_is_not_found_not_read(
    store: BlobStore, how: str
) -> None:
    layer = build_layer(tiny_entries(), store=store, mtime=EPOCH)
    _damage(store.path(layer.digest), how)
    with pytest.raises(NotFound, match="damaged"):
        layer.compressed()
    assert not store.has(layer.digest)


def test_lazy_layer_that_rebuilds_differently_is_a_mismatch(store: BlobStore) -> None:
    recorded = build_layer(tiny_entries(), store=BlobStore(store.root.parent / "x"), mtime=EPOCH)
    lazy = Layer.from_json(
        recorded.to_json(),
        store,
        produce=lambda: build_layer(tiny_entries(), store=store, mtime=EPOCH + 1),
    )
    with pytest.raises(DigestMismatch):
        lazy.blob_path()


def test_folders_the_layers_below_provide_are_left_out() -> None:
    site = "usr/local/lib/python3.11/dist-packages"
    entries = [
        TarEntry.directory(site),
        TarEntry.file(f"{site}/pkg/__init__.py", b"X = 1\n"),
    ]
    provided = {"usr", "usr/local", "usr/local/lib", "usr/local/lib/python3.11", site}
    planned = plan_entries(entries, provided=provided)
    assert [e.path for e in planned] == [f"{site}/pkg", f"{site}/pkg/__init__.py"]
    # without it, every parent is written (a layer must be extractable on its own)
    assert len(plan_entries(entries)) == 7


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_a_layers_compressed_bytes_depend_on_the_tar_bytes_alone_not_on_how_they_were_written(
    compression: str,
) -> None:
    class Collect:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, data: bytes) -> int:
            self.data += data
            return len(data)

    tar = os.urandom(3 << 20) + b"x" * (5 << 20) + os.urandom(12345)
    outputs = set()
    for step in (511, 7777, 1 << 20, 3 << 20, len(tar)):  # a file from disk in pieces, or whole
        out = Collect()
        sink = layer_mod._LayerSink(out, compression, None)  # type: ignore[arg-type]
        for i in range(0, len(tar), step):
            sink.write(tar[i : i + step])
        sink.close()
        outputs.add(bytes(out.data))
    assert len(outputs) == 1
