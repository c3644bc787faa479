from __future__ import annotations

import io
import json
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from wheeldock import platforms
from wheeldock.cli.app import main
from wheeldock.debian import bases as base
from wheeldock.debian import dpkg
from wheeldock.debian.rootfs import SymlinkMap, norm, resolve
from wheeldock.edges import engine
from wheeldock.errors import (
    EngineUnavailable,
    InvalidReference,
    NotFound,
    ToolNotFound,
    UsageError,
    WheeldockError,
)

# --------------------------------------------------------------------------- recipes and argv


def test_unknown_variant_names_the_known_ones() -> None:
    with pytest.raises(NotFound) as err:
        base.recipe("fat")
    assert "'fat'" in err.value.what
    assert err.value.fix is not None
    for name in ("slim", "builder", "minimal"):
        assert name in err.value.fix


def test_slim_has_what_the_official_slim_image_has() -> None:
    slim = base.VARIANTS["slim"]
    for package in (
        "python3",
        "python3-pip",
        "python3-venv",
        "python-is-python3",
        "ca-certificates",
    ):
        assert package in slim.packages
    assert "/usr/lib/python3*/EXTERNALLY-MANAGED" in slim.excludes


def test_builder_is_slim_plus_compilers() -> None:
    slim, builder = base.VARIANTS["slim"], base.VARIANTS["builder"]
    assert set(slim.packages) < set(builder.packages)
    assert {"build-essential", "python3-dev", "libffi-dev"} <= set(builder.packages)


def test_mmdebstrap_argv_names_packages_filters_suite_output_and_sources(tmp_path: Path) -> None:
    out = tmp_path / "slim.tar"
    argv = base.mmdebstrap_argv(base.VARIANTS["slim"], suite="bookworm", arch="arm64", output=out)
    assert argv[0] == "mmdebstrap"
    assert "--variant=minbase" in argv
    assert "--architectures=arm64" in argv
    assert "--format=tar" in argv
    include = next(a for a in argv if a.startswith("--include="))
    assert include.split("=", 1)[1].split(",") == list(base.VARIANTS["slim"].packages)
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in argv
    assert "--dpkgopt=path-include=/usr/share/doc/*/copyright" in argv
    assert "--dpkgopt=path-exclude=/usr/lib/python3*/EXTERNALLY-MANAGED" in argv
    position = argv.index("bookworm")
    assert argv[position + 1] == str(out)
    assert argv[position + 2 :] == list(base.sources("bookworm"))


def test_slim_and_minimal_have_the_app_account_and_builder_does_not_need_it() -> None:
    assert base.users(base.VARIANTS["slim"]) == (base.APP_USER,)
    assert base.users(base.VARIANTS["minimal"]) == (base.APP_USER,)  # from slim, its parent
    assert base.users(base.VARIANTS["builder"]) == ()
    assert (base.APP_USER.uid, base.APP_USER.gid) == (10001, 10001)


def test_account_lines_are_what_useradd_system_writes_dated_by_source_date_epoch() -> None:
    assert base.APP_USER.entries() == {
        "etc/passwd": "app:x:10001:10001::/nonexistent:/usr/sbin/nologin",
        "etc/group": "app:x:10001:",
        "etc/shadow": "app:!:19518::::::",  # 2023-06-10 is day 19518 of the epoch
        "etc/gshadow": "app:!::",
    }


def test_user_hook_appends_the_account_lines_to_the_rootfs_files(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    before = {
        "passwd": "root:x:0:0:root:/root:/bin/bash\n",
        "group": "root:x:0:\n",
        "shadow": "root:*:19518:0:99999:7:::\n",
        "gshadow": "root:*::\n",
    }
    for name, text in before.items():
        (root / "etc" / name).write_text(text)
    hook = base.user_hook([base.APP_USER])
    assert hook.startswith("--customize-hook=")
    # mmdebstrap runs a hook with shell metacharacters under sh, the rootfs as $1
    subprocess.run(["sh", "-c", hook.split("=", 1)[1], "sh", str(root)], check=True)
    for path, line in base.APP_USER.entries().items():
        name = path.removeprefix("etc/")
        assert (root / path).read_text() == before[name] + line + "\n"


def test_slim_argv_writes_the_account_and_only_builder_argv_uploads_uv(tmp_path: Path) -> None:
    out = tmp_path / "x.tar"
    slim = base.mmdebstrap_argv(base.VARIANTS["slim"], suite="bookworm", arch="amd64", output=out)
    assert base.user_hook([base.APP_USER]) in slim
    assert not any(base.UV_PATH in a for a in slim)
    uv = tmp_path / "bin" / "uv"
    builder = base.mmdebstrap_argv(
        base.VARIANTS["builder"], suite="bookworm", arch="amd64", output=out, uv_binary=uv
    )
    assert f"--customize-hook=upload {uv} {base.UV_PATH}" in builder
    assert f'--customize-hook=chmod 0755 "$1{base.UV_PATH}"' in builder
    assert not any("etc/passwd" in a for a in builder)
    # the hooks run before the positional suite/output/sources
    assert builder.index(f"--customize-hook=upload {uv} {base.UV_PATH}") < builder.index("bookworm")
    with pytest.raises(ValueError, match="uv_binary"):
        base.mmdebstrap_argv(base.VARIANTS["builder"], suite="bookworm", arch="amd64", output=out)


def test_builder_key_follows_the_uv_version_and_slim_key_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slim, builder = base.VARIANTS["slim"], base.VARIANTS["builder"]
    monkeypatch.setattr(base, "uv_version", lambda: "0.13.9")
    keys = (
        base.cache_key(slim, suite="bookworm", arch="amd64"),
        base.cache_key(builder, suite="bookworm", arch="amd64"),
    )
    monkeypatch.setattr(base, "uv_version", lambda: "0.14.0")
    assert base.cache_key(slim, suite="bookworm", arch="amd64") == keys[0]
    assert base.cache_key(builder, suite="bookworm", arch="amd64") != keys[1]


def test_uv_version_is_the_installed_uv_package() -> None:
    from importlib.metadata import version

    assert base.uv_version() == version("uv")


def test_native_uv_binary_is_the_installed_packages_own(tmp_path: Path) -> None:
    from uv import find_uv_bin

    binary = base.uv_binary(base.uv_version(), platforms.native_arch())
    assert binary == Path(find_uv_bin())
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.split()[:2] == ["uv", base.uv_version()]


def _fake_pip_download(calls: list[list[str]], version: str) -> object:
    """A ``process.run`` that writes a uv wheel with a stand-in binary where pip would."""

    def run(argv: list[str], **_: object) -> None:
        calls.append([str(a) for a in argv])
        dest = Path(argv[argv.index("--dest") + 1])
        wheel = dest / f"uv-{version}-py3-none-manylinux_2_17_aarch64.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"uv-{version}.data/scripts/uv", b"\x7fELF aarch64 uv")
            zf.writestr(f"uv-{version}.dist-info/METADATA", "Name: uv\n")

    return run


@pytest.fixture
def pip_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """On an amd64 host, with pip faked to download uv 0.13.9's aarch64 wheel: its argv."""
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    calls: list[list[str]] = []
    monkeypatch.setattr(base.process, "run", _fake_pip_download(calls, "0.13.9"))
    monkeypatch.setattr(base, "native_arch", lambda machine=None: "amd64")
    return calls


def test_foreign_uv_binary_comes_from_that_arch_wheel_once(pip_calls: list[list[str]]) -> None:
    calls = pip_calls
    binary = base.uv_binary("0.13.9", "arm64")
    assert binary.read_bytes() == b"\x7fELF aarch64 uv"
    assert binary.stat().st_mode & 0o777 == 0o755
    (argv,) = calls
    platforms = [argv[i + 1] for i, a in enumerate(argv) if a == "--platform"]
    # bookworm's glibc down to manylinux2014's: pip does not widen a tag by itself
    assert platforms[0] == "manylinux_2_36_aarch64" and platforms[-1] == "manylinux_2_17_aarch64"
    assert len(platforms) == 20
    assert "uv==0.13.9" in argv and "--no-deps" in argv and "--only-binary=:all:" in argv
    again = base.uv_binary("0.13.9", "arm64")
    assert again == binary and len(calls) == 1  # cached: pip is not asked again
    assert not list(binary.parent.glob("*.partial")) and not list(binary.parent.glob("tmp*"))


def test_foreign_uv_wheel_without_the_binary_is_reported(
    pip_calls: list[list[str]], tmp_path: Path
) -> None:
    with pytest.raises(NotFound) as err:
        base.uv_binary("0.14.0", "riscv64")  # the fake wheel holds 0.13.9's path
    assert "uv-0.14.0.data/scripts/uv" in err.value.what
    assert not (tmp_path / "cache" / "uv" / "0.14.0-riscv64" / "uv").exists()


@pytest.mark.parametrize(
    ("suite", "lines"),
    [
        ("bookworm", 3),
        ("trixie", 3),
        ("sid", 1),
    ],
)
def test_sources_add_updates_and_security_except_for_unstable(
    suite: str, lines: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WHEELDOCK_DEBIAN_MIRROR", raising=False)
    monkeypatch.delenv("WHEELDOCK_DEBIAN_SECURITY_MIRROR", raising=False)
    found = base.sources(suite)
    assert len(found) == lines
    assert found[0] == f"deb http://deb.debian.org/debian {suite} main"


def test_mirrors_come_from_the_environment_and_security_can_be_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slim = base.VARIANTS["slim"]
    full = base.cache_key(slim, suite="bookworm", arch="armhf")
    monkeypatch.setenv("WHEELDOCK_DEBIAN_MIRROR", "http://mirror.example/debian/")
    # another mirror of the same archive: the same base
    assert base.cache_key(slim, suite="bookworm", arch="armhf") == full
    monkeypatch.setenv("WHEELDOCK_DEBIAN_SECURITY_MIRROR", "none")
    assert base.sources("bookworm") == (
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
    )
    # a base without security fixes is never taken for a full one
    assert base.cache_key(slim, suite="bookworm", arch="armhf") != full


def test_a_mirror_index_out_of_sync_gets_its_own_fix() -> None:
    apt = (
        "E: Failed to fetch http://deb.debian.org/debian-security/dists/bookworm-security/main/"
        "binary-armhf/Packages.xz  File has unexpected size (334084 != 354092)."
    )
    fix = base.mmdebstrap_fix(apt, suite="bookworm", arch="armhf")
    assert "does not match its Release" in fix and "WHEELDOCK_DEBIAN_SECURITY_MIRROR=none" in fix
    other = base.mmdebstrap_fix("E: Unable to locate package nope", suite="bookworm", arch="amd64")
    assert "package names exist in bookworm" in other


def test_cache_key_depends_on_suite_arch_and_variant() -> None:
    slim = base.VARIANTS["slim"]
    key = base.cache_key(slim, suite="bookworm", arch="amd64")
    assert key == base.cache_key(slim, suite="bookworm", arch="amd64")
    assert key != base.cache_key(slim, suite="trixie", arch="amd64")
    assert key != base.cache_key(slim, suite="bookworm", arch="arm64")
    assert key != base.cache_key(base.VARIANTS["builder"], suite="bookworm", arch="amd64")


def test_derived_variant_key_follows_its_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    minimal = base.VARIANTS["minimal"]
    before = base.cache_key(minimal, suite="bookworm", arch="amd64")
    changed = dict(base.VARIANTS)
    changed["slim"] = base.Recipe(**{**base.VARIANTS["slim"].__dict__, "packages": ("python3",)})
    monkeypatch.setattr(base, "VARIANTS", changed)
    assert base.cache_key(minimal, suite="bookworm", arch="amd64") != before


def test_packages_digest_ignores_order_and_duplicates() -> None:
    assert base.packages_digest(["b", "a", "a"]) == base.packages_digest(["a", "b"])
    assert base.packages_digest(["a"]) != base.packages_digest(["a", "b"])
    assert base.packages_digest(["a"]).startswith("sha256:")


@pytest.mark.parametrize(
    ("variant", "arch", "tags", "alias"),
    [
        ("slim", "amd64", ("wheeldock/python:3.11-slim",), "python:3.11-slim"),
        ("slim", "arm64", ("wheeldock/python:3.11-slim-arm64",), None),
        ("builder", "amd64", ("wheeldock/python:3.11-builder",), None),
        ("minimal", "amd64", ("wheeldock/python:3.11-minimal",), None),
    ],
)
def test_tags_get_an_arch_suffix_and_only_native_slim_gets_the_official_name(
    variant: str, arch: str, tags: tuple[str, ...], alias: str | None
) -> None:
    spec = base.VARIANTS[variant]
    assert base.image_tags(spec, python_version="3.11", arch=arch, host_arch="amd64") == tags
    assert base.alias_tag(spec, python_version="3.11", arch=arch, host_arch="amd64") == alias


def _rootfs(tmp_path: Path, variant: str = "slim", tar_path: Path | None = None) -> base.BaseRootfs:
    return base.BaseRootfs(
        variant=variant,
        arch="amd64",
        suite="bookworm",
        tar_path=tar_path or tmp_path / "rootfs.tar",
        packages=base.VARIANTS[variant].packages,
        size_bytes=0,
        seconds=0.0,
        cached=False,
        python_version="3.11",
        key="k" * 64,
    )


def test_import_changes_set_the_official_config_and_wheeldock_labels(tmp_path: Path) -> None:
    rootfs = _rootfs(tmp_path)
    changes = base.import_changes(base.VARIANTS["slim"], rootfs, title="wheeldock/python:3.11-slim")
    assert f"ENV PATH={base.IMAGE_PATH}" in changes
    assert "ENV LANG=C.UTF-8" in changes
    assert 'CMD ["python3"]' in changes
    assert not any("PYTHONDONTWRITEBYTECODE" in c for c in changes)
    label = next(c for c in changes if c.startswith("LABEL "))
    assert 'wheeldock.base="slim"' in label
    assert f'wheeldock.base.key="{"k" * 64}"' in label
    assert 'org.opencontainers.image.vendor="wheeldock"' in label
    assert base.packages_digest(base.VARIANTS["slim"].packages) in label


def test_unknown_arch_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as err:
        platforms.check_arch("vax")
    assert err.value.fix is not None and "arm64" in err.value.fix


def test_native_and_compatible_arches_need_no_binfmt(tmp_path: Path) -> None:
    platforms.check_arch("amd64", binfmt_dir=tmp_path, host="amd64")
    platforms.check_arch("i386", binfmt_dir=tmp_path, host="amd64")


def test_foreign_arch_without_binfmt_says_how_to_register_it(tmp_path: Path) -> None:
    with pytest.raises(ToolNotFound) as err:
        platforms.check_arch("arm64", binfmt_dir=tmp_path, host="amd64")
    assert "qemu-aarch64" in err.value.what
    assert err.value.fix is not None
    assert "qemu-user-static" in err.value.fix and "update-binfmts --enable" in err.value.fix


def test_foreign_arch_with_a_disabled_handler_is_refused(tmp_path: Path) -> None:
    (tmp_path / "qemu-aarch64").write_text("disabled\ninterpreter /usr/bin/qemu-aarch64\n")
    with pytest.raises(ToolNotFound):
        platforms.check_arch("arm64", binfmt_dir=tmp_path, host="amd64")


def test_foreign_arch_with_an_enabled_handler_passes(tmp_path: Path) -> None:
    if base.shutil.which("arch-test") is None:
        pytest.fail("arch-test is not installed: run scripts/setup.sh")
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64\n")
    platforms.check_arch("arm64", binfmt_dir=tmp_path, host="amd64")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tar:/tmp/x.tar", base.Output("tar", Path("/tmp/x.tar"))),
        ("oci:out", base.Output("oci", Path("out"), None)),
        ("oci:out:3.11-slim", base.Output("oci", Path("out"), "3.11-slim")),
    ],
)
def test_parse_output(text: str, expected: base.Output) -> None:
    assert base.parse_output(text) == expected


@pytest.mark.parametrize("text", ["out.tar", "docker:x", "tar:", "oci"])
def test_parse_output_rejects_other_forms(text: str) -> None:
    with pytest.raises(InvalidReference):
        base.parse_output(text)


# --------------------------------------------------------------------------- dpkg status

STATUS = """\
Package: python3
Status: install ok installed
Version: 3.11.2-1+b1
Depends: python3.11 (>= 3.11.2-1~), libpython3-stdlib (= 3.11.2-1+b1)
Description: interactive high-level object-oriented language
 Python, the high-level, interactive object oriented language,
 includes an extensive class library.

Package: python3.11
Status: install ok installed
Version: 3.11.2-6
Pre-Depends: libc6 (>= 2.36)
Depends: libpython3.11-stdlib (= 3.11.2-6) | libpython3.11-other, media-types | mime-support

Package: libpython3-stdlib
Status: install ok installed
Version: 3.11.2-1+b1
Depends: libpython3.11-stdlib

Package: libpython3.11-stdlib
Status: install ok installed
Version: 3.11.2-6
Depends: libc6, awk

Package: media-types
Status: install ok installed
Version: 10.0.0

Package: mawk
Status: install ok installed
Version: 1.3.4
Provides: awk

Package: libc6
Status: install ok installed
Version: 2.36-9
Depends: libgcc-s1

Package: libgcc-s1
Status: install ok installed
Version: 12.2.0-14

Package: base-files
Status: install ok installed
Version: 12.4

Package: dash
Status: install ok installed
Version: 0.5.12-2
Depends: dpkg (>= 1.19.1)

Package: dpkg
Status: install ok installed
Version: 1.21.22
Depends: perl-base

Package: perl-base
Status: install ok installed
Version: 5.36.0-7

Package: python3-pip
Status: install ok installed
Version: 23.0.1
Depends: python3

Package: removed-one
Status: deinstall ok config-files
Version: 1.0
"""


def test_parse_status_reads_fields_and_continuation_lines() -> None:
    paragraphs = dpkg.parse_status(STATUS)
    assert [p.package for p in paragraphs][:3] == ["python3", "python3.11", "libpython3-stdlib"]
    assert "extensive class library" in paragraphs[0].fields["Description"]
    assert not paragraphs[-1].installed
    assert paragraphs[0].text.startswith("Package: python3\n")


def test_closure_follows_depends_alternatives_and_provides_but_not_dropped() -> None:
    closure = base.dependency_closure(
        dpkg.parse_status(STATUS), ["python3", "dash", "base-files"], drop=["dpkg"]
    )
    assert closure == {
        "python3",
        "python3.11",
        "libpython3-stdlib",
        "libpython3.11-stdlib",
        "media-types",
        "mawk",  # provides awk
        "libc6",
        "libgcc-s1",
        "dash",
        "base-files",
    }


def test_closure_ignores_roots_that_are_not_installed() -> None:
    assert base.dependency_closure(dpkg.parse_status(STATUS), ["removed-one", "nope"]) == set()


# --------------------------------------------------------------------------- pruning


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("bin/dash", "usr/bin/dash"),
        ("usr/bin/awk", "usr/bin/mawk"),
        ("lib/../bin/sh", "usr/bin/dash"),
        ("usr/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libc.so.6"),
        ("loop/a", None),
    ],
)
def test_resolve_follows_symlinks_inside_the_tree(path: str, expected: str | None) -> None:
    links = {
        "bin": "usr/bin",
        "lib": "usr/lib",
        "usr/bin/sh": "dash",
        "usr/bin/awk": "/etc/alternatives/awk",
        "etc/alternatives/awk": "/usr/bin/mawk",
        "loop": "loop2",
        "loop2": "/loop",
    }
    assert resolve(SymlinkMap(links), path) == expected


def _add(
    tar: tarfile.TarFile,
    name: str,
    *,
    data: bytes | None = None,
    symlink: str | None = None,
    hardlink: str | None = None,
    mode: int = 0o644,
) -> None:
    info = tarfile.TarInfo("./" + name if name else "./")
    info.mtime = base.SOURCE_DATE_EPOCH
    info.mode = mode
    if symlink is not None:
        info.type, info.linkname = tarfile.SYMTYPE, symlink
        tar.addfile(info)
    elif hardlink is not None:
        info.type, info.linkname = tarfile.LNKTYPE, "./" + hardlink
        tar.addfile(info)
    elif data is None:
        info.type, info.mode = tarfile.DIRTYPE, mode if mode != 0o644 else 0o755
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


#: What each package's .list says it installed (as packaged: /bin, not /usr/bin).
LISTS = {
    "python3": ["/.", "/usr", "/usr/bin", "/usr/bin/python3"],
    "python3.11": ["/.", "/usr", "/usr/bin", "/usr/bin/python3.11", "/usr/bin/py-hard"],
    "libpython3.11-stdlib": [
        "/.",
        "/usr",
        "/usr/lib",
        "/usr/lib/python3.11",
        "/usr/lib/python3.11/json",
        "/usr/lib/python3.11/json/__init__.py",
        "/usr/lib/python3.11/pydoc_data",
        "/usr/lib/python3.11/pydoc_data/topics.py",
    ],
    "libc6": [
        "/.",
        "/usr",
        "/usr/lib",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/gconv",
        "/usr/lib/x86_64-linux-gnu/gconv/UTF-16.so",
    ],
    "base-files": ["/.", "/etc", "/tmp", "/var", "/var/lib", "/usr", "/usr/share"],
    "dash": ["/.", "/bin", "/bin/dash", "/bin/sh"],
    "dpkg": ["/.", "/var/lib/dpkg", "/usr/bin/dpkg"],
    "perl-base": ["/.", "/usr/bin/perl", "/usr/lib/x86_64-linux-gnu/libperl.so.5.36"],
    "mawk": ["/.", "/usr/bin/mawk"],
    "python3-pip": [
        "/.",
        "/usr/lib/python3",
        "/usr/lib/python3/dist-packages",
        "/usr/lib/python3/dist-packages/pip",
        "/usr/lib/python3/dist-packages/pip/__init__.py",
    ],
    "openssl": ["/.", "/usr/lib/ssl", "/usr/lib/ssl/cert.pem", "/usr/bin/openssl"],
}


def _synthetic_rootfs(path: Path) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "")
        for folder in ("etc", "etc/alternatives", "etc/ssl", "etc/ssl/certs", "usr", "usr/bin"):
            _add(tar, folder)
        _add(tar, "tmp", mode=0o1777)
        _add(tar, "bin", symlink="usr/bin")
        _add(tar, "lib", symlink="usr/lib")
        _add(tar, "usr/bin/perl", data=b"perl binary")
        _add(tar, "usr/bin/python3.11", data=b"python binary")
        _add(tar, "usr/bin/py-hard", hardlink="usr/bin/perl")
        _add(tar, "usr/bin/python3", symlink="python3.11")
        _add(tar, "usr/bin/dash", data=b"dash binary")
        _add(tar, "usr/bin/sh", symlink="dash")
        _add(tar, "usr/bin/mawk", data=b"mawk binary")
        _add(tar, "usr/bin/openssl", data=b"openssl binary")
        _add(tar, "usr/bin/dpkg", data=b"dpkg binary")
        _add(tar, "usr/bin/awk", symlink="/etc/alternatives/awk")
        _add(tar, "etc/alternatives/awk", symlink="/usr/bin/mawk")
        _add(tar, "etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "etc/ssl/certs/ca-certificates.crt", data=b"-----BEGIN CERTIFICATE-----\n")
        for folder in ("usr/lib", "usr/lib/ssl", "usr/lib/x86_64-linux-gnu"):
            _add(tar, folder)
        _add(tar, "usr/lib/ssl/cert.pem", symlink="/etc/ssl/certs/ca-certificates.crt")
        _add(tar, "usr/lib/x86_64-linux-gnu/libc.so.6", data=b"\x7fELF libc")
        _add(tar, "usr/lib/x86_64-linux-gnu/libperl.so.5.36", data=b"\x7fELF perl")
        _add(tar, "usr/lib/x86_64-linux-gnu/gconv")
        _add(tar, "usr/lib/x86_64-linux-gnu/gconv/UTF-16.so", data=b"\x7fELF gconv")
        py = "usr/lib/python3.11"
        for folder in (py, f"{py}/json", f"{py}/json/__pycache__", f"{py}/pydoc_data"):
            _add(tar, folder)
        _add(tar, f"{py}/json/__init__.py", data=b"# json\n")
        _add(tar, f"{py}/json/__pycache__/__init__.cpython-311.pyc", data=b"pyc json")
        _add(tar, f"{py}/pydoc_data/topics.py", data=b"topics = {}\n")
        pip = "usr/lib/python3/dist-packages/pip"
        for folder in ("usr/lib/python3", "usr/lib/python3/dist-packages", pip):
            _add(tar, folder)
        _add(tar, f"{pip}/__pycache__")
        _add(tar, f"{pip}/__init__.py", data=b"# pip\n")
        _add(tar, f"{pip}/__pycache__/__init__.cpython-311.pyc", data=b"pyc pip")
        for folder in ("var", "var/lib", "var/lib/dpkg", "var/lib/dpkg/info"):
            _add(tar, folder)
        _add(tar, "var/lib/dpkg/status", data=STATUS.encode())
        for package, paths in LISTS.items():
            _add(tar, f"var/lib/dpkg/info/{package}:amd64.list", data="\n".join(paths).encode())
    return path


PRUNE = base.Prune(
    keep=("python3", "dash", "base-files"),
    drop_packages=("dpkg", "perl-base", "openssl"),
    drop_paths=("usr/lib/*/gconv", "usr/lib/python3.*/pydoc_data"),
    keep_paths=("usr/lib/ssl",),
)


def _names(path: Path) -> set[str]:
    with tarfile.open(path) as tar:
        return {norm(m.name) for m in tar.getmembers()}


@pytest.fixture
def pruned(
    tmp_path: Path,
) -> Iterator[tuple[base.PruneResult, dict[str, tarfile.TarInfo], tarfile.TarFile]]:
    source = _synthetic_rootfs(tmp_path / "full.tar")
    out = tmp_path / "pruned.tar"
    with out.open("wb") as fh:
        result = base.prune_tar(source, fh, PRUNE)
    with tarfile.open(out) as tar:
        yield result, {norm(m.name): m for m in tar.getmembers()}, tar


def test_prune_keeps_the_closure_files_and_what_scripts_generated(pruned: tuple) -> None:  # type: ignore[type-arg]
    result, members, _ = pruned
    assert result.packages == {
        "python3",
        "python3.11",
        "libpython3-stdlib",
        "libpython3.11-stdlib",
        "media-types",
        "mawk",
        "libc6",
        "libgcc-s1",
        "dash",
        "base-files",
    }
    for kept in (
        "usr/bin/python3.11",
        "usr/bin/python3",
        "usr/bin/dash",  # listed as /bin/dash: found through the merged-/usr symlink
        "usr/bin/sh",
        "usr/lib/x86_64-linux-gnu/libc.so.6",
        "usr/lib/python3.11/json/__init__.py",
        "usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc",
        "etc/passwd",  # unowned, in base-files' /etc
        "etc/ssl/certs/ca-certificates.crt",
        "usr/lib/ssl/cert.pem",  # openssl's, but kept by keep_paths
        "bin",
        "lib",
    ):
        assert kept in members, kept
    assert members["tmp"].mode == 0o1777


def test_prune_drops_other_packages_globs_their_bytecode_and_dpkg_lists(pruned: tuple) -> None:  # type: ignore[type-arg]
    _, members, _ = pruned
    for dropped in (
        "usr/bin/perl",
        "usr/bin/openssl",
        "usr/bin/dpkg",
        "usr/lib/x86_64-linux-gnu/libperl.so.5.36",
        "usr/lib/x86_64-linux-gnu/gconv",
        "usr/lib/x86_64-linux-gnu/gconv/UTF-16.so",
        "usr/lib/python3.11/pydoc_data/topics.py",
        "usr/lib/python3/dist-packages/pip/__init__.py",
        "usr/lib/python3/dist-packages/pip/__pycache__/__init__.cpython-311.pyc",
        "var/lib/dpkg/info/dash:amd64.list",
    ):
        assert dropped not in members, dropped


def test_prune_keeps_the_awk_alternative_only_while_its_target_stays(tmp_path: Path) -> None:
    source = _synthetic_rootfs(tmp_path / "full.tar")
    no_mawk = base.Prune(keep=("python3",), drop_packages=("mawk",))
    with (tmp_path / "a.tar").open("wb") as fh:
        base.prune_tar(source, fh, no_mawk)
    names = _names(tmp_path / "a.tar")
    assert "usr/bin/awk" not in names and "etc/alternatives/awk" not in names
    with (tmp_path / "b.tar").open("wb") as fh:
        base.prune_tar(source, fh, PRUNE)
    names = _names(tmp_path / "b.tar")
    assert {"usr/bin/awk", "etc/alternatives/awk", "usr/bin/mawk"} <= names


def test_prune_turns_a_hard_link_to_a_dropped_file_into_a_file(pruned: tuple) -> None:  # type: ignore[type-arg]
    _, members, tar = pruned
    link = members["usr/bin/py-hard"]
    assert link.isreg()
    fh = tar.extractfile(link)
    assert fh is not None and fh.read() == b"perl binary"


def test_prune_rewrites_dpkg_status_to_the_kept_packages(pruned: tuple) -> None:  # type: ignore[type-arg]
    result, members, tar = pruned
    fh = tar.extractfile(members[dpkg.STATUS_PATH])
    assert fh is not None
    listed = {p.package for p in dpkg.parse_status(fh.read().decode())}
    assert listed == result.packages
    assert "dpkg" not in listed and "perl-base" not in listed


def test_prune_is_deterministic(tmp_path: Path) -> None:
    source = _synthetic_rootfs(tmp_path / "full.tar")
    outputs = []
    for name in ("one.tar", "two.tar"):
        with (tmp_path / name).open("wb") as fh:
            base.prune_tar(source, fh, PRUNE)
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]


def test_installed_packages_and_libraries_are_read_from_the_tar(tmp_path: Path) -> None:
    rootfs = _rootfs(tmp_path, tar_path=_synthetic_rootfs(tmp_path / "full.tar"))
    installed = base.installed_packages(rootfs)
    assert installed["python3"] == "3.11.2-1+b1"
    assert "removed-one" not in installed
    assert base.library_paths(rootfs) == {
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libperl.so.5.36",
    }
    assert base.library_sonames(rootfs) == {"libc.so.6", "libperl.so.5.36"}


# --------------------------------------------------------------------------- errors, no engine


def test_missing_mmdebstrap_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ToolNotFound) as err:
        base.ensure_rootfs("slim")
    assert "mmdebstrap" in err.value.what
    assert err.value.fix is not None and "apt-get install mmdebstrap" in err.value.fix


def test_a_new_build_removes_older_recipes_tars_for_the_same_variant(tmp_path: Path) -> None:
    for name in (
        "slim-bookworm-amd64-old.tar",
        "slim-bookworm-amd64-old.json",
        "slim-bookworm-amd64-new.tar",
        "slim-bookworm-amd64-new.json",
        "slim-bookworm-amd64-other.partial.tar",
        "slim-bookworm-amd64-old.tar.lock",
        "slim-bookworm-arm64-old.tar",
        "builder-bookworm-amd64-old.tar",
    ):
        (tmp_path / name).write_text("")
    base._remove_stale(tmp_path, "slim-bookworm-amd64-", keep="slim-bookworm-amd64-new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "builder-bookworm-amd64-old.tar",
        "slim-bookworm-amd64-new.json",
        "slim-bookworm-amd64-new.tar",
        "slim-bookworm-amd64-old.tar.lock",
        "slim-bookworm-amd64-other.partial.tar",
        "slim-bookworm-arm64-old.tar",
    ]


def test_unwritable_cache_is_reported_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("WHEELDOCK_CACHE", str(blocker / "cache"))
    with pytest.raises(WheeldockError) as err:
        base.ensure_rootfs("slim")
    assert err.value.fix is not None and "WHEELDOCK_CACHE" in err.value.fix


def test_unwritable_tar_output_is_reported(tmp_path: Path) -> None:
    source = _synthetic_rootfs(tmp_path / "full.tar")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(WheeldockError) as err:
        base.write_rootfs_tar(_rootfs(tmp_path, tar_path=source), blocker / "out.tar")
    assert "cannot write" in err.value.what
    assert not list(tmp_path.glob(".out.tar.*"))


def test_tar_output_copies_the_rootfs(tmp_path: Path) -> None:
    source = _synthetic_rootfs(tmp_path / "full.tar")
    dest = base.write_rootfs_tar(_rootfs(tmp_path, tar_path=source), tmp_path / "o" / "x.tar")
    assert dest.read_bytes() == source.read_bytes()


def test_no_engine_suggests_starting_one_or_writing_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/wheeldock-base.sock")
    with pytest.raises(EngineUnavailable) as err:
        base.require_engine_or_output(None)
    assert err.value.fix is not None
    assert "dockerd.sh start" in err.value.fix and "--output tar:FILE" in err.value.fix
    base.require_engine_or_output("tar:/tmp/x.tar")


def test_cli_build_without_engine_fails_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/wheeldock-base.sock")
    assert main(["base", "build", "slim", "--json"]) == 1
    error = json.loads(capsys.readouterr().out)
    assert error["kind"] == "EngineUnavailable"


def test_cli_unknown_variant_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["base", "build", "fat"]) == 1
    err = capsys.readouterr().err
    assert "'fat'" in err and "slim, builder, minimal" in err


def test_cli_output_takes_one_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["base", "build", "slim", "minimal", "--output", "tar:x.tar"]) == 2


def test_cli_list_json_shows_every_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["base", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in rows] == list(base.VARIANTS)
    assert rows[2]["derived_from"] == "slim"


# --------------------------------------------------------------------------- the alias


def _fake_engine(
    monkeypatch: pytest.MonkeyPatch, *, labels: dict[str, str] | None, pullable: bool
) -> list[tuple[str, str]]:
    tagged: list[tuple[str, str]] = []
    monkeypatch.setattr(base, "_labels", lambda ref: labels)
    monkeypatch.setattr(base, "_pullable", lambda ref: pullable)
    monkeypatch.setattr(engine, "tag", lambda src, dst: tagged.append((src, dst)))
    return tagged


def test_alias_is_tagged_when_it_cannot_be_pulled(monkeypatch: pytest.MonkeyPatch) -> None:
    tagged = _fake_engine(monkeypatch, labels=None, pullable=False)
    note = base._apply_alias("python:3.11-slim", "wheeldock/python:3.11-slim")
    assert tagged == [("wheeldock/python:3.11-slim", "python:3.11-slim")]
    assert note == "tagged python:3.11-slim because it cannot be pulled here"


def test_alias_is_not_tagged_when_it_can_be_pulled(monkeypatch: pytest.MonkeyPatch) -> None:
    tagged = _fake_engine(monkeypatch, labels=None, pullable=True)
    note = base._apply_alias("python:3.11-slim", "wheeldock/python:3.11-slim")
    assert tagged == []
    assert "can be pulled" in note


def test_alias_never_overwrites_an_image_wheeldock_did_not_make(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tagged = _fake_engine(monkeypatch, labels={"maintainer": "someone"}, pullable=False)
    note = base._apply_alias("python:3.11-slim", "wheeldock/python:3.11-slim")
    assert tagged == []
    assert "not made by wheeldock" in note


def test_alias_made_by_wheeldock_is_updated(monkeypatch: pytest.MonkeyPatch) -> None:
    tagged = _fake_engine(monkeypatch, labels={base.LABEL_BASE: "slim"}, pullable=True)
    base._apply_alias("python:3.11-slim", "wheeldock/python:3.11-slim")
    assert tagged == [("wheeldock/python:3.11-slim", "python:3.11-slim")]


def test_each_python_a_base_carries_has_its_debian_suite() -> None:
    assert base.suite_for("3.11") == "bookworm"
    assert base.suite_for("3.13") == "trixie"
    assert base.suite_for("3.12") is None  # the official python:3.12 images serve it


def test_wheeldocks_own_base_names_are_told_apart_from_other_images() -> None:
    assert base.parse_own_image("wheeldock/python:3.13-slim") == ("slim", "trixie")
    assert base.parse_own_image("wheeldock/python:3.11-builder") == ("builder", "bookworm")
    assert base.parse_own_image("wheeldock/python:3.12-slim") is None  # no suite carries it
    assert base.parse_own_image("wheeldock/python:3.11-fancy") is None
    assert base.parse_own_image("python:3.11-slim") is None


def test_the_bases_a_service_needs_follow_its_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "native_arch", lambda: "amd64")
    assert base.own_images("3.13", "slim") == (
        "wheeldock/python:3.13-builder",
        "wheeldock/python:3.13-slim",
    )
    assert base.own_images("3.12", "slim") == ()
