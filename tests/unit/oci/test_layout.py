from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.oci import EPOCH

from wheeldock.errors import InvalidReference, NotFound, WheeldockError
from wheeldock.oci import image, layout, mutate
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import ANNOTATION_REF_NAME, Image, Index, Platform
from wheeldock.oci.layer import Layer, TarEntry, build_layer


def small_image(store: BlobStore, text: bytes = b"v1") -> Image:
    lay = build_layer([TarEntry.file("app/v.txt", text)], store=store, mtime=EPOCH)
    return mutate.with_config(mutate.append_layers(image.empty(), [lay]), cmd=["/bin/true"])


def test_write_makes_a_layout_with_tagged_index(store: BlobStore, tmp_path: Path) -> None:
    img = small_image(store)
    out = tmp_path / "lay"
    result = layout.write(img, out, "v1")
    assert json.loads((out / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((out / "index.json").read_text())
    (desc,) = index["manifests"]
    assert desc["digest"] == str(img.digest)
    assert desc["annotations"] == {ANNOTATION_REF_NAME: "v1"}
    for blob in (out / "blobs" / "sha256").iterdir():
        assert Digest.of_bytes(blob.read_bytes()).hex == blob.name
    assert result.digest == img.digest and result.blobs_written == 3
    assert result.bytes_written == img.size


def test_layer_blobs_are_copies_so_damage_to_the_store_leaves_the_layout_valid(
    store: BlobStore, tmp_path: Path
) -> None:
    img = small_image(store)
    layout.write(img, tmp_path / "lay", "v1")
    lay = img.layers[0]
    cached = store.path(lay.digest)
    assert layout.blob_path(tmp_path / "lay", lay.digest).stat().st_ino != cached.stat().st_ino
    cached.chmod(0o644)
    cached.write_bytes(b"\0" + cached.read_bytes()[1:])
    assert layout.read(tmp_path / "lay", "v1").digest == img.digest  # every blob checked


def test_a_damaged_store_blob_is_not_written_to_a_layout(store: BlobStore, tmp_path: Path) -> None:
    img = small_image(store)
    cached = store.path(img.layers[0].digest)
    cached.chmod(0o644)
    cached.write_bytes(cached.read_bytes()[:-1])
    with pytest.raises(NotFound, match="damaged"):
        layout.write(img, tmp_path / "lay", "v1")
    assert not layout.blob_path(tmp_path / "lay", img.layers[0].digest).exists()
    assert not cached.exists()  # removed: the next build makes it again


def test_two_concurrent_writes_into_one_new_folder_both_succeed(
    store: BlobStore, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    images = [small_image(store, bytes([i])) for i in range(8)]
    out = tmp_path / "new"
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda im: layout.write(im[1], out, f"t{im[0]}"), enumerate(images))
        )
    assert [r.digest for r in results] == [im.digest for im in images]
    assert sorted(layout.tags(out)) == sorted(f"t{i}" for i in range(8))


def test_same_tag_replaces_other_tags_stay(store: BlobStore, tmp_path: Path) -> None:
    out = tmp_path / "lay"
    one, two = small_image(store, b"1"), small_image(store, b"2")
    layout.write(one, out, "a")
    layout.write(one, out, "b")
    layout.write(two, out, "a")
    assert sorted(layout.tags(out)) == ["a", "b"]
    assert layout.read(out, "a").digest == two.digest
    assert layout.read(out, "b").digest == one.digest


def test_second_write_skips_blobs_without_building_lazy_layers(
    store: BlobStore, tmp_path: Path
) -> None:
    img = small_image(store)
    out = tmp_path / "lay"
    layout.write(img, out, "v1")

    def explode() -> Path:
        raise AssertionError("a blob already in the layout was read")

    lay = img.layers[0]
    lazy = Layer(lay.digest, lay.diff_id, lay.size, lay.media_type, locate=explode)
    again = Image(layers=(lazy,), config=img.config, platform=img.platform, history=img.history)
    result = layout.write(again, out, "v2")
    assert (result.blobs_written, result.blobs_skipped) == (0, 3)
    assert result.digest == img.digest


def test_read_round_trips_digest_and_bytes(store: BlobStore, tmp_path: Path) -> None:
    img = small_image(store)
    layout.write(img, tmp_path / "lay", "v1")
    read = layout.read(tmp_path / "lay", "v1")
    assert isinstance(read, Image)
    assert read.digest == img.digest and read.config_bytes() == img.config_bytes()
    assert read.layers[0].diff_id == img.layers[0].diff_id
    assert read.layers[0].uncompressed().read() == img.layers[0].uncompressed().read()


def test_read_into_a_store_survives_the_layout(store: BlobStore, tmp_path: Path) -> None:
    img = small_image(store)
    out = tmp_path / "lay"
    layout.write(img, out, "v1")
    other = BlobStore(tmp_path / "other")
    read = layout.read(out, "v1", other)
    for blob in (out / "blobs" / "sha256").iterdir():
        blob.unlink()
    assert isinstance(read, Image)
    assert Digest.of_bytes(read.layers[0].compressed().read()) == img.layers[0].digest


def test_unknown_tag_lists_the_tags_there(store: BlobStore, tmp_path: Path) -> None:
    layout.write(small_image(store), tmp_path / "lay", "v1")
    with pytest.raises(InvalidReference) as info:
        layout.read(tmp_path / "lay", "nope")
    assert "v1" in (info.value.fix or "")


def test_non_empty_foreign_folder_is_refused(store: BlobStore, tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("mine")
    with pytest.raises(WheeldockError, match="not an OCI image layout"):
        layout.write(small_image(store), tmp_path / "stuff", "v1")


def test_index_round_trips_through_a_layout(store: BlobStore, tmp_path: Path) -> None:
    amd = small_image(store)
    arm = mutate.with_platform(small_image(store, b"arm"), Platform("linux", "arm64"))
    idx = image.index_of(amd, arm)
    layout.write(idx, tmp_path / "lay", "multi")
    read = layout.read(tmp_path / "lay", "multi")
    assert isinstance(read, Index) and read.digest == idx.digest
    assert read.image(Platform("linux", "arm64")).digest == arm.digest


# -- against the reference tools -----------------------------------------------------------------


def test_a_blob_copy_the_disk_has_no_room_for_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import shutil

    src = tmp_path / "blob"
    src.write_bytes(b"x" * 4096)
    dest = tmp_path / "out" / "blobs" / "sha256" / "ab"

    def half_copied(a: Path, b: Path) -> None:
        Path(b).write_bytes(b"x" * 1024)
        raise OSError(errno.ENOSPC, "No space left on device", str(b))

    monkeypatch.setattr(shutil, "copyfile", half_copied)
    with pytest.raises(OSError, match="No space left"):
        layout._copy(src, dest)
    assert list(dest.parent.iterdir()) == []
