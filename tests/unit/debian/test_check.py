"""``wheeldock check``: images and rootfs folders resolved as ld.so would, without running."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from support.libs import make_elf, write_tree

from wheeldock import cli
from wheeldock.debian import libs, listings, rootfs
from wheeldock.errors import InvalidArchive, InvalidReference, NotFound

SITE = "usr/local/lib/python3.11/site-packages"
MULTIARCH = "usr/lib/x86_64-linux-gnu"

# (path, content): bytes = a file, ("sym", target), ("hard", target), None = a folder
Entry = tuple[str, "bytes | tuple[str, str] | None"]


def layer_tar(entries: Sequence[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, tuple):
                info.type = tarfile.SYMTYPE if content[0] == "sym" else tarfile.LNKTYPE
                info.linkname = content[1]
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o755
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def docker_archive(
    path: Path, layers: Sequence[Sequence[Entry]], *, env: Sequence[str] = (), gzipped: int = -1
) -> Path:
    """A ``docker save``-style tar; layer number ``gzipped`` is stored gzip-compressed."""
    diff_ids = [f"sha256:{hashlib.sha256(layer_tar(e)).hexdigest()}" for e in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": list(env)},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    )
    with tarfile.open(path, "w") as out:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))

        names = []
        for number, entries in enumerate(layers):
            data = layer_tar(entries)
            if number == gzipped:
                data = gzip.compress(data)
            name = f"{hashlib.sha256(data).hexdigest()}/layer.tar"
            add(name, data)
            names.append(name)
        add("config.json", config.encode())
        manifest = [{"Config": "config.json", "RepoTags": ["t/x:1"], "Layers": names}]
        add("manifest.json", json.dumps(manifest).encode())
    return path


def oci_layout(root: Path, layers: Sequence[Sequence[Entry]], *, tag: str) -> Path:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layer_descs = [
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            **put(gzip.compress(layer_tar(e))),
        }
        for e in layers
    ]
    diff_ids = [f"sha256:{hashlib.sha256(layer_tar(e)).hexdigest()}" for e in layers]
    config = put(
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        ).encode()
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": layer_descs,
    }
    desc = put(json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **desc,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return root


def rootfs_entries(*, with_bar: bool) -> list[Entry]:
    """A Debian-like rootfs: an extension needs libfoo, which needs libbar (maybe absent)."""
    entries: list[Entry] = [
        ("etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n"),
        (
            "etc/ld.so.conf.d/x86_64-linux-gnu.conf",
            b"# multiarch\n/usr/local/lib/x86_64-linux-gnu\n"
            b"/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n",
        ),
        ("lib", ("sym", "usr/lib")),
        (f"{MULTIARCH}/libc.so.6", make_elf(soname="libc.so.6")),
        (
            f"{MULTIARCH}/libfoo.so.1.2",
            make_elf(soname="libfoo.so.1", needed=["libbar.so.2", "libc.so.6"]),
        ),
        (f"{MULTIARCH}/libfoo.so.1", ("sym", "libfoo.so.1.2")),
        (
            f"{SITE}/pkg/_ext.cpython-311-x86_64-linux-gnu.so",
            make_elf(needed=["libfoo.so.1", "libc.so.6"]),
        ),
        ("usr/bin/not-python-path.so", make_elf(needed=["libabsent.so.1"])),
    ]
    if with_bar:
        entries.append((f"{MULTIARCH}/libbar.so.2", make_elf(soname="libbar.so.2")))
    return entries


def folder_of(root: Path, entries: Sequence[Entry]) -> Path:
    files: dict[str, bytes | str] = {}
    for name, content in entries:
        if isinstance(content, bytes):
            files[name] = content
        elif isinstance(content, tuple):
            files[name] = content[1]
    return write_tree(root, files)


EXT = f"/{SITE}/pkg/_ext.cpython-311-x86_64-linux-gnu.so"


def test_a_rootfs_folder_with_every_library_passes(tmp_path: Path) -> None:
    report = libs.check(str(folder_of(tmp_path / "fs", rootfs_entries(with_bar=True))))
    assert report.ok
    assert report.checked == (EXT,)  # usr/bin is not a Python path
    assert report.arch == "amd64"
    assert report.libraries == 3


def test_a_missing_library_of_a_library_is_found_transitively(
    tmp_path: Path, libs_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    report = libs.check(str(folder_of(tmp_path / "fs", rootfs_entries(with_bar=False))))
    assert not report.ok
    assert report.missing == (
        libs.MissingLibrary(EXT, "libbar.so.2", f"/{MULTIARCH}/libfoo.so.1.2", None),
    )


def test_runpath_origin_finds_a_vendored_library(tmp_path: Path) -> None:
    root = folder_of(
        tmp_path / "fs",
        [
            (
                "opt/venv/lib/python3.11/site-packages/p/x.so",
                make_elf(needed=["libv-1234.so.3"], runpath="$ORIGIN/../p.libs"),
            ),
            ("opt/venv/lib/python3.11/site-packages/p.libs/libv-1234.so.3", make_elf()),
        ],
    )
    assert libs.check(str(root)).ok


def test_a_vendored_library_is_checked_as_its_loaders_load_it_through_their_rpath(
    tmp_path: Path, libs_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # scipy's wheel: libgfortran in scipy.libs has no RPATH of its own and needs libquadmath
    # next to it; ld.so finds it through the extension's DT_RPATH, which DT_NEEDED libraries
    # without a DT_RUNPATH inherit. Nothing loads libgfortran alone.
    monkeypatch.setenv("WHEELDOCK_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    site = "usr/local/lib/python3.11/dist-packages"
    entries: list[Entry] = [
        (
            f"{site}/scipy/linalg/_fblas.so",
            make_elf(needed=["libgfortran-8f.so.5"], rpath="$ORIGIN/../../scipy.libs"),
        ),
        (f"{site}/scipy.libs/libgfortran-8f.so.5", make_elf(needed=["libquadmath-82.so.0"])),
        (f"{site}/scipy.libs/libquadmath-82.so.0", make_elf()),
    ]
    assert libs.check(str(folder_of(tmp_path / "fs", entries))).ok
    # the same library loaded by an extension that does not point at scipy.libs fails
    entries.append(
        (
            f"{site}/other/_ext.so",
            make_elf(needed=["libgfortran-8f.so.5"], runpath="$ORIGIN/../scipy.libs"),
        )
    )
    report = libs.check(str(folder_of(tmp_path / "fs2", entries)))
    assert [(m.soname, m.needed_by) for m in report.missing] == [
        ("libquadmath-82.so.0", f"/{site}/scipy.libs/libgfortran-8f.so.5")
    ]


def test_a_library_of_another_architecture_is_skipped_as_ld_so_does(tmp_path: Path) -> None:
    entries = rootfs_entries(with_bar=True)
    arm_first = [("usr/local/lib/x86_64-linux-gnu/libbar.so.2", make_elf(machine="aarch64"))]
    assert libs.check(str(folder_of(tmp_path / "a", entries + arm_first))).ok
    only_arm = [e for e in entries if not e[0].endswith("libbar.so.2")] + arm_first
    missing = libs.check(str(folder_of(tmp_path / "b", only_arm)), suggest=False).missing
    assert [m.soname for m in missing] == ["libbar.so.2"]


def test_an_absolute_symlink_never_leaves_the_tree(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "fs", {"x": "/etc/passwd", "loop": "loop2", "loop2": "loop"})
    tree = rootfs.DirTree(root)
    assert rootfs.resolve(tree, "x") is None  # this host's /etc/passwd does not count
    assert rootfs.resolve(tree, "loop") is None


def test_ld_so_conf_includes_are_followed(tmp_path: Path) -> None:
    root = folder_of(tmp_path / "fs", rootfs_entries(with_bar=True))
    (root / "etc/ld.so.conf.d/zz-local.conf").write_text("/opt/lib # comment\n")
    tree = rootfs.DirTree(root)
    assert libs.ld_so_conf_dirs(tree) == (
        "usr/local/lib/x86_64-linux-gnu",
        "lib/x86_64-linux-gnu",
        "usr/lib/x86_64-linux-gnu",
        "opt/lib",
    )


def test_layers_apply_whiteouts_and_opaque_folders(tmp_path: Path) -> None:
    archive = docker_archive(
        tmp_path / "img.tar",
        [
            [*rootfs_entries(with_bar=True), ("opt/d/old", b"1"), ("opt/keep", b"k")],
            [
                (f"{MULTIARCH}/.wh.libbar.so.2", b""),
                ("opt/d", None),
                ("opt/d/.wh..wh..opq", b""),
                ("opt/d/new", b"2"),
                ("opt/hard", ("hard", "opt/keep")),
            ],
        ],
        gzipped=1,
    )
    with libs.open_tree(f"docker-archive:{archive}") as image:
        tree = image.tree
        assert tree.node(f"{MULTIARCH}/libbar.so.2") is None
        assert tree.node("opt/d/old") is None
        assert tree.node("opt/d/new") is not None
        with tree.open("opt/hard") as fh:
            assert fh.read() == b"k"
    report = libs.check(f"docker-archive:{archive}", suggest=False)
    assert [m.soname for m in report.missing] == ["libbar.so.2"]


def test_ld_library_path_from_the_image_config_is_searched(tmp_path: Path) -> None:
    entries = [e for e in rootfs_entries(with_bar=True) if not e[0].endswith("libbar.so.2")]
    entries.append(("opt/lib/libbar.so.2", make_elf()))
    without = docker_archive(tmp_path / "a.tar", [entries])
    assert not libs.check(f"docker-archive:{without}", suggest=False).ok
    with_env = docker_archive(tmp_path / "b.tar", [entries], env=["LD_LIBRARY_PATH=/opt/lib"])
    assert libs.check(f"docker-archive:{with_env}").ok


def test_an_oci_layout_is_read_by_tag(tmp_path: Path) -> None:
    layout = oci_layout(tmp_path / "oci", [rootfs_entries(with_bar=True)], tag="v1")
    assert libs.check(f"oci:{layout}:v1").ok
    assert libs.check(str(layout)).ok  # a layout folder given as a plain path
    with pytest.raises(InvalidReference, match="no image tagged 'v2'"):
        libs.check(f"oci:{layout}:v2")


def test_cli_names_file_soname_and_package_and_exits_1(
    tmp_path: Path, fake_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = folder_of(
        tmp_path / "fs",
        [
            *rootfs_entries(with_bar=True),
            (f"{SITE}/yaml/_yaml.so", make_elf(needed=["libyaml-0.so.2"])),
        ],
    )
    assert cli.main(["check", str(root)]) == 1
    captured = capsys.readouterr()
    assert "libyaml-0.so.2" in captured.out and "libyaml-0-2" in captured.out
    assert "install libyaml-0-2" in captured.err
    assert cli.main(["check", str(root), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert data["missing"] == [
        {
            "file": f"/{SITE}/yaml/_yaml.so",
            "soname": "libyaml-0.so.2",
            "needed_by": f"/{SITE}/yaml/_yaml.so",
            "package": "libyaml-0-2",
            "version": None,
        }
    ]


def test_a_library_lacking_a_needed_symbol_version_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = Path(__file__).parents[2] / "data" / "elf"
    user = (f"{SITE}/new/_built_on_a_newer_host.so", (data / "needs-ver2.so").read_bytes())
    old = folder_of(
        tmp_path / "old",
        [
            *rootfs_entries(with_bar=True),
            user,
            (f"{MULTIARCH}/libver.so.1", (data / "libver-old.so.1").read_bytes()),
        ],
    )
    report = libs.check(str(old), suggest=False)
    assert [(m.soname, m.version) for m in report.missing] == [("libver.so.1", "VER_2")]
    assert cli.main(["check", str(old)]) == 1
    assert "older than the wheels need: libver.so.1 VER_2" in capsys.readouterr().err
    new = folder_of(
        tmp_path / "new",
        [
            *rootfs_entries(with_bar=True),
            user,
            (f"{MULTIARCH}/libver.so.1", (data / "libver-new.so.1").read_bytes()),
        ],
    )
    assert libs.check(str(new)).ok


def test_a_corrupt_extension_module_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = folder_of(
        tmp_path / "fs",
        [*rootfs_entries(with_bar=True), (f"{SITE}/bad/_x.so", b"\x7fELF\x02\x01garbage")],
    )
    report = libs.check(str(root))
    assert [f for f, _ in report.invalid] == [f"/{SITE}/bad/_x.so"]
    assert cli.main(["check", str(root)]) == 1
    assert "_x.so" in capsys.readouterr().err


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _no_image(path: Path, what: str) -> Path:
    if what == "an empty file":
        path.write_bytes(b"")
    elif what == "an empty tar":
        tarfile.open(path, "w").close()
    elif what == "a tar that is no image":
        with tarfile.open(path, "w") as tar:
            info = tarfile.TarInfo("README.md")
            info.size = 5
            tar.addfile(info, io.BytesIO(b"hello"))
    elif what == "a damaged layer":
        docker_archive(path, [rootfs_entries(with_bar=True)])
        with tarfile.open(path) as tar:
            layer = next(m for m in tar if m.name.endswith("layer.tar"))
        data = bytearray(path.read_bytes())
        data[layer.offset_data + layer.size // 2] ^= 0x01
        path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    "what", ["an empty file", "an empty tar", "a tar that is no image", "a damaged layer"]
)
def test_check_of_a_docker_archive_that_holds_no_sound_image_fails_with_the_file_and_fix(
    tmp_path: Path, what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = _no_image(tmp_path / "image.tar", what)
    assert cli.main(["check", f"docker-archive:{archive}"]) == 1
    err = capsys.readouterr().err
    assert str(archive) in err and "fix:" in err and "Traceback" not in err


@pytest.mark.parametrize("damage", ["missing", "a flipped byte"])
@pytest.mark.parametrize("blob", ["layer", "config", "manifest"])
def test_check_of_a_layout_with_a_missing_or_damaged_blob_fails_naming_it(
    tmp_path: Path, damage: str, blob: str, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = oci_layout(tmp_path / "oci", [rootfs_entries(with_bar=True)], tag="v1")
    (desc,) = json.loads((layout / "index.json").read_text())["manifests"]
    manifest_file = layout / "blobs" / "sha256" / desc["digest"].split(":")[1]
    manifest = json.loads(manifest_file.read_text())
    digest = {
        "layer": manifest["layers"][0]["digest"],
        "config": manifest["config"]["digest"],
        "manifest": desc["digest"],
    }[blob]
    target = layout / "blobs" / "sha256" / digest.split(":")[1]
    if damage == "missing":
        target.unlink()
    else:
        _flip_a_byte(target)
    assert cli.main(["check", f"oci:{layout}:v1"]) == 1
    err = capsys.readouterr().err
    assert str(target) in err and "fix:" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("ref", "error"),
    [("/no/such/folder", NotFound), ("floppy:/dev/fd0", InvalidReference)],
)
def test_bad_references_are_explained(ref: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        libs.check(ref)


def test_a_missing_daemon_image_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "docker-daemon:libsc-never-built:nope"]) != 0
    err = capsys.readouterr().err
    assert "libsc-never-built" in err and "Traceback" not in err


# -- the check after a native build: the new layers only ----------------------------------------

GLIBC_236 = tuple(f"GLIBC_2.{n}" for n in (2, 3, 4, 14, 34, 35, 36))
PSYCOPG = f"{SITE}/psycopg2/_psycopg.cpython-311-x86_64-linux-gnu.so"
LOADER = "/lib64/ld-linux-x86-64.so.2"


def _base_layer(tmp_path: Path) -> Path:
    """A bookworm-like base: libc.so.6 defining GLIBC_2.2.5 … GLIBC_2.36, and libpq."""
    libc = make_elf(soname="libc.so.6", version_defs=("GLIBC_2.2.5", *GLIBC_236))
    entries: list[Entry] = [
        *rootfs_entries(with_bar=True)[:3],
        (f"{MULTIARCH}/libc.so.6", libc),
        (f"{MULTIARCH}/libpq.so.5", make_elf(soname="libpq.so.5", needed=["libc.so.6"])),
    ]
    path = tmp_path / "base.tar"
    path.write_bytes(layer_tar(entries))
    return path


def _gzip_layer(path: Path, entries: Sequence[Entry]) -> Path:
    path.write_bytes(gzip.compress(layer_tar(entries)))
    return path


def test_an_extension_built_against_a_newer_glibc_fails_the_new_layers_check(
    tmp_path: Path,
) -> None:
    host_built = make_elf(
        needed=["libpq.so.5", "libc.so.6"],
        version_needs={"libc.so.6": ("GLIBC_2.2.5", "GLIBC_2.38")},
    )
    deps = _gzip_layer(tmp_path / "deps.tar.gz", [(PSYCOPG, host_built)])
    report = libs.check_layers([_base_layer(tmp_path), deps], {1}, suggest=False)
    assert report.checked == (f"/{PSYCOPG}",)
    assert [(m.file, m.soname, m.version) for m in report.missing] == [
        (f"/{PSYCOPG}", "libc.so.6", "GLIBC_2.38")
    ]
    error = libs.missing_error(report)
    assert f"/{PSYCOPG} needs GLIBC_2.38 of libc.so.6" in error.what
    assert error.missing == ((f"/{PSYCOPG}", "libc.so.6", "GLIBC_2.38"),)
    assert error.fix is not None and "sdist" in error.fix


def test_the_same_extension_built_in_the_base_passes(tmp_path: Path) -> None:
    base_built = make_elf(
        needed=["libpq.so.5", "libc.so.6"],
        version_needs={"libc.so.6": ("GLIBC_2.2.5", "GLIBC_2.14")},
    )
    deps = _gzip_layer(tmp_path / "deps.tar.gz", [(PSYCOPG, base_built)])
    report = libs.check_layers([_base_layer(tmp_path), deps], {1}, suggest=False)
    assert report.ok and report.checked == (f"/{PSYCOPG}",)


def test_a_program_lacking_libpython_fails_and_scripts_are_skipped(tmp_path: Path) -> None:
    uwsgi = make_elf(needed=["libpython3.11.so.1.0", "libc.so.6"], interpreter=LOADER)
    deps = _gzip_layer(
        tmp_path / "deps.tar.gz",
        [("usr/local/bin/uwsgi", uwsgi), ("usr/local/bin/flask", b"#!/usr/bin/python3\n")],
    )
    report = libs.check_layers([_base_layer(tmp_path), deps], {1}, suggest=False)
    assert report.checked == ("/usr/local/bin/uwsgi",)
    assert [(m.file, m.soname, m.version) for m in report.missing] == [
        ("/usr/local/bin/uwsgi", "libpython3.11.so.1.0", None)
    ]
    assert "/usr/local/bin/uwsgi needs libpython3.11.so.1.0" in libs.missing_error(report).what


def test_only_the_new_layers_files_are_read(tmp_path: Path) -> None:
    broken = make_elf(needed=["libabsent.so.1", "libc.so.6"])
    cached = _gzip_layer(tmp_path / "cached.tar.gz", [(f"{SITE}/old/_x.so", broken)])
    fine = make_elf(needed=["libc.so.6"])
    new = _gzip_layer(tmp_path / "new.tar.gz", [(f"{SITE}/new/_y.so", fine)])
    report = libs.check_layers([_base_layer(tmp_path), cached, new], {2}, suggest=False)
    assert report.ok and report.checked == (f"/{SITE}/new/_y.so",)


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of each test's own (the check's listings are written there)."""
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The layer files a check reads, in order."""
    seen: list[Path] = []
    real = libs._blob_source

    def counting(path: Path, *args: object) -> tuple[int, int, int]:
        seen.append(path)
        return real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(libs, "_blob_source", counting)
    return seen


def _pure_layer(path: Path, version: str) -> Path:
    # a bump of a pure-Python distribution: its console script sits in bin/ and is text
    return _gzip_layer(
        path,
        [
            (f"{SITE}/flask-{version}.dist-info/METADATA", b""),
            ("usr/local/bin/flask", b"#!/usr/bin/python3\n"),
        ],
    )


def test_a_pure_python_bump_reads_its_new_layer_alone(tmp_path: Path, opened: list[Path]) -> None:
    base = _base_layer(tmp_path)
    for version in ("3.0.2", "3.0.3"):  # with no listing of the base yet, and then
        opened.clear()
        bumped = _pure_layer(tmp_path / f"{version}.tar.gz", version)
        report = libs.check_layers([base, bumped], {1}, suggest=False)
        assert report.ok and report.checked == ()
        assert opened == [bumped]


def test_a_new_extension_opens_only_the_layers_holding_what_it_loads(
    tmp_path: Path, opened: list[Path]
) -> None:
    base = _base_layer(tmp_path)
    unrelated = _gzip_layer(tmp_path / "other.tar.gz", [(f"{SITE}/other/_z.so", make_elf())])
    libs.check_layers([base, unrelated], {1}, suggest=False)
    opened.clear()
    needs_libpq = make_elf(needed=["libpq.so.5", "libc.so.6"])
    new = _gzip_layer(tmp_path / "new.tar.gz", [(PSYCOPG, needs_libpq)])
    report = libs.check_layers([base, unrelated, new], {2}, suggest=False)
    assert report.ok and report.checked == (f"/{PSYCOPG}",)
    assert unrelated not in opened and new in opened


def test_a_listing_that_no_longer_matches_its_tar_stops_the_check_and_is_removed(
    tmp_path: Path, opened: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _base_layer(tmp_path)
    new = _gzip_layer(tmp_path / "new.tar.gz", [(PSYCOPG, make_elf(needed=["libc.so.6"]))])
    libs.check_layers([base, new], {1}, suggest=False)
    folder = tmp_path / "cache" / "check" / "listings"
    key = listings.listing_key(base)
    data = json.loads((folder / f"{key}.json").read_text())
    data["tar_size"] += 512
    (folder / f"{key}.json").write_text(json.dumps(data))
    with pytest.raises(InvalidArchive, match="cached listing") as caught:
        libs.check_layers([base, new], {1}, suggest=False)
    assert caught.value.fix is not None and "again" in caught.value.fix
    assert not (folder / f"{key}.json").exists()
    assert libs.check_layers([base, new], {1}, suggest=False).ok


def test_an_unreadable_listing_is_ignored_and_the_tar_read_again(
    tmp_path: Path, opened: list[Path]
) -> None:
    base = _base_layer(tmp_path)
    new = _gzip_layer(tmp_path / "new.tar.gz", [(PSYCOPG, make_elf(needed=["libc.so.6"]))])
    folder = tmp_path / "cache" / "check" / "listings"
    folder.mkdir(parents=True)
    (folder / f"{listings.listing_key(base)}.json").write_text('{"version": 1, "tar_siz')
    assert libs.check_layers([base, new], {1}, suggest=False).ok
    assert base in opened


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"version": 99, "tar_size": 10, "members": []}',
        '{"version": 1, "tar_size": 10, "members": [["a", "0", "", 512, 10]]}',
        '{"version": 1, "tar_size": 9000, "members": [["a", "00", "", 512, 10]]}',
        '{"version": 1, "tar_size": 9000, "members": [["a", "0", "", -1, 10]]}',
        '{"version": 1, "tar_size": 9000, "members": [["a", "0"]]}',
    ],
)
def test_a_listing_that_is_not_sound_is_not_used(text: str) -> None:
    assert listings.decode(text) is None


def test_a_listing_round_trips_the_members_the_tree_needs(tmp_path: Path) -> None:
    path = tmp_path / "layer.tar"
    path.write_bytes(layer_tar(rootfs_entries(with_bar=True)))
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    decoded = listings.decode(listings.encode(members, path.stat().st_size))
    assert decoded is not None
    again, size = decoded
    assert size == path.stat().st_size
    assert [(m.name, m.type, m.linkname, m.offset_data, m.size) for m in again] == [
        (m.name, m.type, m.linkname, m.offset_data, m.size) for m in members
    ]
