from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from support.oci import EPOCH, tool

from wheeldock.errors import InvalidConfig, InvalidReference
from wheeldock.oci import image, mutate, tarball
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import Image, Platform
from wheeldock.oci.layer import MEDIA_TYPE_TAR, TarEntry, build_layer


def two_layer_image(store: BlobStore) -> Image:
    a = build_layer([TarEntry.file("etc/base", b"base" * 100)], store=store, mtime=EPOCH)
    b = build_layer([TarEntry.file("app/main.py", b"print(1)\n")], store=store, mtime=EPOCH)
    img = mutate.with_config(mutate.append_layers(image.empty(), [a, b]), cmd=["/bin/sh"])
    return mutate.with_created(img, EPOCH)


def read_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        out = {}
        for m in tar.getmembers():
            fh = tar.extractfile(m)
            out[m.name] = fh.read() if fh else b""
        return out


def test_archive_is_byte_for_byte_deterministic(store: BlobStore, tmp_path: Path) -> None:
    img = two_layer_image(store)
    tarball.write(img, tmp_path / "a.tar", "cb/api:1")
    tarball.write(two_layer_image(store), tmp_path / "b.tar", "cb/api:1")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    for info in tarball.members_of(tmp_path / "a.tar"):
        assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (0, 0, 0, "", "")


def test_archive_has_docker_manifest_and_oci_layout(store: BlobStore, tmp_path: Path) -> None:
    img = two_layer_image(store)
    result = tarball.write(img, tmp_path / "x.tar", "cb/api:1")
    files = read_members(tmp_path / "x.tar")
    (entry,) = json.loads(files["manifest.json"])
    assert entry["RepoTags"] == ["cb/api:1"]
    assert entry["Config"] == f"blobs/sha256/{img.config_digest.hex}"
    assert entry["Layers"] == [f"blobs/sha256/{x.digest.hex}" for x in img.layers]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    (desc,) = json.loads(files["index.json"])["manifests"]
    assert desc["digest"] == str(img.digest) == str(result.digest)
    assert desc["annotations"]["io.containerd.image.name"] == "docker.io/cb/api:1"
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == "1"
    for name, data in files.items():
        if name.startswith("blobs/sha256/") and data:
            assert Digest.of_bytes(data).hex == name.rsplit("/", 1)[1]
    assert result.bytes_written == (tmp_path / "x.tar").stat().st_size


def test_uncompressed_archive_keeps_the_config_and_names_layers_by_diff_id(
    store: BlobStore, tmp_path: Path
) -> None:
    img = two_layer_image(store)
    result = tarball.write(img, tmp_path / "u.tar", "cb/api:1", store, compressed=False)
    files = read_members(tmp_path / "u.tar")
    (entry,) = json.loads(files["manifest.json"])
    assert entry["Config"] == f"blobs/sha256/{img.config_digest.hex}"
    assert entry["Layers"] == [f"blobs/sha256/{x.diff_id.hex}" for x in img.layers]
    manifest = json.loads(files[f"blobs/sha256/{result.digest.hex}"])
    assert {d["mediaType"] for d in manifest["layers"]} == {MEDIA_TYPE_TAR}
    assert files[entry["Layers"][1]] == img.layers[1].uncompressed().read()


def test_uncompressed_size_of_foreign_layer_is_counted_once(
    store: BlobStore, tmp_path: Path
) -> None:
    img = two_layer_image(store)
    lay = img.layers[0]
    foreign = type(lay)(lay.digest, lay.diff_id, lay.size, lay.media_type, locate=lay.locate)
    assert foreign.uncompressed_size is None
    assert tarball.uncompressed_size(foreign, store) == lay.uncompressed_size
    assert store.get_cached(f"layer/uncompressed-size/v1/{lay.digest}") == {
        "size": lay.uncompressed_size
    }


def test_read_round_trips_config_and_layers(store: BlobStore, tmp_path: Path) -> None:
    img = two_layer_image(store)
    tarball.write(img, tmp_path / "x.tar", "cb/api:1")
    read = tarball.read(tmp_path / "x.tar", "cb/api:1", BlobStore(tmp_path / "s2"))
    assert read.config_bytes() == img.config_bytes()
    assert read.digest == img.digest
    assert [x.diff_id for x in read.layers] == [x.diff_id for x in img.layers]


def test_read_plain_tar_layers_from_an_uncompressed_archive(
    store: BlobStore, tmp_path: Path
) -> None:
    img = two_layer_image(store)
    tarball.write(img, tmp_path / "u.tar", "cb/api:1", store, compressed=False)
    read = tarball.read(tmp_path / "u.tar", None, BlobStore(tmp_path / "s2"))
    assert [x.media_type for x in read.layers] == [MEDIA_TYPE_TAR] * 2
    assert [x.digest for x in read.layers] == [x.diff_id for x in img.layers]


def test_read_unknown_name_lists_the_names(store: BlobStore, tmp_path: Path) -> None:
    tarball.write(two_layer_image(store), tmp_path / "x.tar", "cb/api:1")
    with pytest.raises(InvalidReference) as info:
        tarball.read(tmp_path / "x.tar", "other:2", store)
    assert "cb/api:1" in (info.value.fix or "")


def test_index_cannot_go_into_an_archive(store: BlobStore, tmp_path: Path) -> None:
    img = two_layer_image(store)
    idx = image.index_of(img, mutate.with_platform(img, Platform("linux", "arm64")))
    with pytest.raises(InvalidConfig, match="one image"):
        tarball.write(idx, tmp_path / "x.tar", "a:b")


def test_stream_writes_the_same_bytes_as_a_file(store: BlobStore, tmp_path: Path) -> None:
    img = two_layer_image(store)
    tarball.write(img, tmp_path / "x.tar", "a:b")
    buf = io.BytesIO()
    tarball.stream(img, buf, "a:b")
    assert buf.getvalue() == (tmp_path / "x.tar").read_bytes()


# -- against skopeo ------------------------------------------------------------------------------


def test_gnu_tar_reads_the_archive_streamed_through_a_pipe(store: BlobStore) -> None:
    from wheeldock.edges import process

    img = two_layer_image(store)
    result = process.run(
        [tool("tar"), "-tvf", "-"],
        streams=process.Streams(feed=lambda pipe: tarball.stream(img, pipe, "a:b")),
    )
    names = [line.split()[-1] for line in result.stdout.splitlines()]
    assert names[:2] == ["blobs/", "blobs/sha256/"]
    assert names[-3:] == ["index.json", "manifest.json", "oci-layout"]
    assert all(" 0/0 " in line for line in result.stdout.splitlines())


def test_several_images_share_one_archive_and_their_common_blobs(
    store: BlobStore, tmp_path: Path
) -> None:
    api = two_layer_image(store)
    other = build_layer([TarEntry.file("app/img.py", b"print(2)\n")], store=store, mtime=EPOCH)
    img = mutate.with_created(mutate.append_layers(image.empty(), [api.layers[0], other]), EPOCH)
    out = io.BytesIO()
    results = tarball.stream_many([(api, "cb/api:1"), (img, "cb/img:1")], out, store)
    assert [str(r.digest) for r in results] == [str(api.digest), str(img.digest)]
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = tar.getnames()
        entries = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert [e["RepoTags"] for e in entries] == [["cb/api:1"], ["cb/img:1"]]
    shared = f"blobs/sha256/{api.layers[0].digest.hex}"
    assert names.count(shared) == 1  # the common base layer travels once
    assert entries[0]["Layers"][0] == entries[1]["Layers"][0] == shared
