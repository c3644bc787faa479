"""Debian's archive data: Contents → packages, Packages → depends, .deb files."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import tarfile
from pathlib import Path

import httpx
import pytest
import zstandard
from support.libs import FAKE_CONTENTS, FAKE_DEBS, fake_packages_text

from wheeldock.debian import archive as debian
from wheeldock.errors import DigestMismatch, InvalidArchive, NotFound, WheeldockError


def test_contents_keeps_library_files_and_splits_packages() -> None:
    rows = set(debian.parse_contents(io.BytesIO(FAKE_CONTENTS), block_size=97))
    assert ("libyaml-0.so.2", "usr/lib/x86_64-linux-gnu/libyaml-0.so.2", "libyaml-0-2") in rows
    assert ("libshared.so.1", "usr/lib/x86_64-linux-gnu/libshared.so.1", "liba1") in rows
    assert ("libshared.so.1", "usr/lib/x86_64-linux-gnu/libshared.so.1", "libb1") in rows
    packages = {r[2] for r in rows}
    # Python modules, debug symbols and files outside lib folders are not libraries.
    assert not packages & {"python3-cffi-backend", "libgomp1-dbg", "libfoo-doc"}


@pytest.mark.parametrize(
    ("text", "groups"),
    [
        ("libc6 (>= 2.34)", [["libc6"]]),
        ("libssl3 | libssl1.1, zlib1g:any", [["libssl3", "libssl1.1"], ["zlib1g"]]),
        ("a [amd64], b <!nocheck>", [["a"], ["b"]]),
        ("", []),
    ],
)
def test_relations_parse_to_groups_of_alternatives(text: str, groups: list[list[str]]) -> None:
    assert debian.parse_relations(text) == groups


def test_release_sha256_section_is_parsed() -> None:
    text = (
        "Codename: bookworm\nMD5Sum:\n 0123 10 main/Contents-amd64.gz\nSHA256:\n"
        " abcd 11629145 main/Contents-amd64.gz\n ef01 8790396 main/binary-amd64/Packages.xz\n"
    )
    assert debian.parse_release_sha256(text) == {
        "main/Contents-amd64.gz": ("abcd", 11629145),
        "main/binary-amd64/Packages.xz": ("ef01", 8790396),
    }


@pytest.mark.parametrize(
    ("soname", "package"),
    [
        ("libyaml-0.so.2", "libyaml-0-2"),
        ("libgomp.so.1", "libgomp1"),  # the multiarch folder beats lib32, -dbg never wins
        ("libopenblas.so.0", "libopenblas0-pthread"),  # only in a private folder: still found
        ("libnothing.so.9", None),
    ],
)
def test_index_prefers_the_package_in_the_multiarch_folder(
    fake_index: Path, soname: str, package: str | None
) -> None:
    with debian.Index(fake_index, suite="bookworm", arch="amd64") as index:
        assert index.package_for(soname) == package


@pytest.mark.parametrize(
    ("runtime", "dev"),
    [
        ("libyaml-0-2", "libyaml-dev"),
        ("libpq5", "libpq-dev"),  # of postgresql-15's -dev packages, the one with libpq.so
        ("libgomp1", "libgcc-12-dev"),  # "Source: gcc-12 (12.2.0-14)": the version is dropped
        ("libc6", None),
        ("not-a-package", None),
    ],
)
def test_dev_package_comes_from_the_source_package(
    fake_index: Path, runtime: str, dev: str | None
) -> None:
    with debian.Index(fake_index, suite="bookworm", arch="amd64") as index:
        assert index.dev_package(runtime) == dev


def test_closure_orders_dependencies_first_and_skips_what_the_base_has(fake_index: Path) -> None:
    with debian.Index(fake_index, suite="bookworm", arch="amd64") as index:
        names = [p.name for p in index.closure(["libpq5"], installed=["libc6"])]
        # libgssapi-krb5-2 is virtual: its provider is taken; dpkg (Essential) never is.
        assert names == ["libssl3", "libkrb5-gssapi", "libpq5"]
        assert [
            p.name
            for p in index.closure(["libpq5"], installed=["libc6", "libssl3", "libkrb5-gssapi"])
        ] == ["libpq5"]


def test_closure_names_a_missing_package_and_the_chain(fake_index: Path) -> None:
    with (
        debian.Index(fake_index, suite="bookworm", arch="amd64") as index,
        pytest.raises(NotFound) as caught,
    ):
        index.closure(["libyaml-0-2", "libnope1"], installed=["libc6"])
    assert "libnope1" in caught.value.what


def _mirror(files: dict[str, bytes], log: list[str]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        log.append(request.url.path)
        path = request.url.path.removeprefix("/debian/")
        if path in files:
            return httpx.Response(200, content=files[path])
        return httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(handler))


def _archive_files(*, corrupt_contents: bool = False) -> dict[str, bytes]:
    contents = gzip.compress(FAKE_CONTENTS)
    packages = lzma.compress(fake_packages_text().encode())
    sums = {
        "main/Contents-amd64.gz": contents,
        "main/binary-amd64/Packages.xz": packages,
    }
    release = "Codename: bookworm\nDate: Sat, 11 Jul 2026 10:16:37 UTC\nSHA256:\n" + "".join(
        f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}\n" for name, data in sums.items()
    )
    files = {f"dists/bookworm/{k}": v for k, v in sums.items()}
    files["dists/bookworm/Release"] = release.encode()
    if corrupt_contents:
        files["dists/bookworm/main/Contents-amd64.gz"] = gzip.compress(b"tampered\n")
    files["pool/main/liby/libyaml/libyaml-0-2_0.2.5-1_amd64.deb"] = FAKE_DEBS["yaml_sha"]
    files["pool/main/o/openssl/libssl3_3.0.11-1_amd64.deb"] = FAKE_DEBS["ssl_sha"]
    files["pool/main/p/postgresql-15/libpq5_15.5-0+deb12u1_amd64.deb"] = b"wrong bytes"
    return files


def test_index_is_downloaded_once_checked_and_cached(libs_cache: Path) -> None:
    log: list[str] = []
    with _mirror(_archive_files(), log) as client:
        with debian.open_index("bookworm", "amd64", client=client) as index:
            assert index.package_for("libpq.so.5") == "libpq5"
            assert index.meta()["release_date"].startswith("Sat, 11 Jul 2026")
        downloads = len(log)
        with debian.open_index("bookworm", "amd64", client=client) as index:
            assert index.package_for("libyaml-0.so.2") == "libyaml-0-2"
    assert downloads == 3
    assert len(log) == 3  # the second open used the cache


def test_index_download_that_does_not_match_release_is_refused(libs_cache: Path) -> None:
    with (
        _mirror(_archive_files(corrupt_contents=True), []) as client,
        pytest.raises(DigestMismatch) as caught,
    ):
        debian.open_index("bookworm", "amd64", client=client)
    assert "Contents-amd64.gz" in caught.value.what
    assert not debian.index_path("bookworm", "amd64").exists()


def test_unknown_architecture_is_reported_with_the_fix(libs_cache: Path) -> None:
    with _mirror(_archive_files(), []) as client, pytest.raises(NotFound) as caught:
        debian.open_index("bookworm", "sparc", client=client)
    assert "Contents-sparc.gz" in caught.value.what


def test_download_debs_resolves_depends_verifies_and_caches(
    fake_index: Path, tmp_path: Path
) -> None:
    log: list[str] = []
    with _mirror(_archive_files(), log) as client:
        debs = debian.download_debs(
            ["libyaml-0-2"], dest=tmp_path / "a", installed=["libc6"], client=client
        )
        assert [d.name for d in debs] == ["libyaml-0-2_0.2.5-1_amd64.deb"]
        assert debs[0].read_bytes() == FAKE_DEBS["yaml_sha"]
        again = debian.download_debs(
            ["libyaml-0-2"], dest=tmp_path / "b", installed=["libc6"], client=client
        )
    assert again[0].read_bytes() == FAKE_DEBS["yaml_sha"]
    assert sum(p.endswith(".deb") for p in log) == 1  # the second time came from the cache


def test_download_debs_refuses_a_file_whose_sha256_differs(
    fake_index: Path, tmp_path: Path
) -> None:
    with _mirror(_archive_files(), []) as client, pytest.raises(DigestMismatch) as caught:
        debian.download_debs(
            ["libpq5"],
            dest=tmp_path,
            installed=["libc6", "libssl3", "libkrb5-gssapi"],
            client=client,
        )
    assert "libpq5" in caught.value.what


def test_download_debs_of_nothing_touches_nothing(tmp_path: Path) -> None:
    assert debian.download_debs([], dest=tmp_path / "x") == []


def _tar(entries: list[tuple[str, bytes | None, str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data, link in entries:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return out


def make_deb(path: Path, compression: str) -> Path:
    data = _tar(
        [
            ("./", None, ""),
            ("./usr/lib/x86_64-linux-gnu/", None, ""),
            ("./usr/lib/x86_64-linux-gnu/libyaml-0.so.2.0.9", b"\x7fELF-ish", ""),
            ("./usr/lib/x86_64-linux-gnu/libyaml-0.so.2", None, "libyaml-0.so.2.0.9"),
            ("./usr/share/doc/libyaml-0-2/.keep", b"", ""),
        ]
    )
    packed = {
        "xz": lzma.compress(data),
        "gz": gzip.compress(data),
        "zst": zstandard.ZstdCompressor().compress(data),
    }[compression]
    control = lzma.compress(_tar([("./control", b"Package: libyaml-0-2\n", "")]))
    path.write_bytes(
        _ar(
            [
                ("debian-binary", b"2.0\n"),
                ("control.tar.xz", control),
                (f"data.tar.{compression}", packed),
            ]
        )
    )
    return path


@pytest.mark.parametrize("compression", ["xz", "gz", "zst"])
def test_deb_data_members_reads_each_compression(tmp_path: Path, compression: str) -> None:
    deb = make_deb(tmp_path / "x.deb", compression)
    members = {m.path: m for m in debian.deb_data_members(deb)}
    lib = members["usr/lib/x86_64-linux-gnu/libyaml-0.so.2.0.9"]
    assert (lib.kind, lib.data, lib.mode) == ("file", b"\x7fELF-ish", 0o644)
    link = members["usr/lib/x86_64-linux-gnu/libyaml-0.so.2"]
    assert (link.kind, link.linkname, link.data) == ("symlink", "libyaml-0.so.2.0.9", None)
    assert members["usr/share/doc/libyaml-0-2/.keep"].kind == "file"  # dot files keep their dot
    assert members["usr/lib/x86_64-linux-gnu"].kind == "dir"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"PK\x03\x04 a zip, not a deb", "no ar archive header"),
        (
            b"!<arch>\n" + b"debian-binary   0           0     0     100644  4         `\n2.0\n",
            "no data.tar",
        ),
        (
            b"!<arch>\n" + b"data.tar.xz     0           0     0     100644  9999      `\nxx",
            "truncated",
        ),
    ],
)
def test_a_broken_deb_is_refused_naming_it(tmp_path: Path, content: bytes, why: str) -> None:
    deb = tmp_path / "broken.deb"
    deb.write_bytes(content)
    with pytest.raises(InvalidArchive) as caught:
        list(debian.deb_data_members(deb))
    assert why in caught.value.what
    assert caught.value.path == deb


# --------------------------------------------------------------------------- the real archive


def test_an_unreachable_mirror_is_reported_with_the_fix(
    libs_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    with pytest.raises(WheeldockError) as caught:
        debian.open_index("bookworm", "amd64")
    assert "cannot download http://127.0.0.1:9/debian/dists/bookworm/Release" in caught.value.what
    assert caught.value.fix and "WHEELDOCK_DEBIAN_MIRROR" in caught.value.fix


@pytest.mark.parametrize("block_size", [1, 7, 64, 1 << 20])
def test_the_packages_index_read_in_blocks_gives_the_stanzas_of_the_whole_text(
    block_size: int,
) -> None:
    text = fake_packages_text() + "\nPackage: zé-ünicode\nVersion: 1\nDescription: ñ ü ø\n"
    whole = list(debian.parse_packages(text))
    streamed = list(debian.parse_packages_stream(io.BytesIO(text.encode()), block_size=block_size))
    assert streamed == whole and whole[-1].name == "zé-ünicode"
