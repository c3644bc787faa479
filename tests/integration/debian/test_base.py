from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from wheeldock.cli.app import main
from wheeldock.debian import bases as base
from wheeldock.debian import dpkg
from wheeldock.debian.rootfs import norm
from wheeldock.edges import engine
from wheeldock.errors import (
    CommandFailed,
)


def _names(path: Path) -> set[str]:
    with tarfile.open(path) as tar:
        return {norm(m.name) for m in tar.getmembers()}


# --------------------------------------------------------------------------- real builds


def _run(image: str, *argv: str, volumes: tuple[str, ...] = ()) -> str:
    args = ["run", "--rm", "--network", "host"]
    for volume in volumes:
        args += ["-v", volume]
    return engine.docker(*args, image, *argv, timeout=300).stdout


def _tiny_wheel(folder: Path) -> Path:
    """A pure-Python wheel written by hand, so installing it needs no index."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "wdbasetiny-1.0-py3-none-any.whl"
    dist = "wdbasetiny-1.0.dist-info"
    files = {
        "wdbasetiny.py": "ANSWER = 42\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: wdbasetiny\nVersion: 1.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr(f"{dist}/RECORD", record)
    return wheel


@pytest.mark.integration
def test_slim_runs_python_and_pip_installs_a_local_wheel_as_root(
    base_images: dict[str, base.BaseImage], tmp_path: Path
) -> None:
    slim = base_images["slim"].tags[0]
    assert slim == "wheeldock/python:3.11-slim"
    _tiny_wheel(tmp_path / "wheels")
    script = (
        "set -e; python --version; pip --version; "
        "test ! -e /usr/lib/python3.11/EXTERNALLY-MANAGED; "
        "pip install -q --no-index --find-links /wheels wdbasetiny; "
        'python -c "import wdbasetiny, ssl, json, sqlite3, ctypes, venv; print(wdbasetiny.ANSWER)"'
    )
    out = _run(slim, "sh", "-c", script, volumes=(f"{tmp_path / 'wheels'}:/wheels:ro",))
    assert "Python 3.11" in out
    assert out.strip().endswith("42")


@pytest.mark.integration
def test_slim_image_config_matches_the_official_one(base_images: dict[str, base.BaseImage]) -> None:
    config = engine.image_inspect(base_images["slim"].tags[0])["Config"]
    assert config["Cmd"] == ["python3"]
    assert f"PATH={base.IMAGE_PATH}" in config["Env"] and "LANG=C.UTF-8" in config["Env"]
    assert config["Labels"][base.LABEL_BASE] == "slim"
    assert config["Labels"][base.LABEL_KEY] == base_images["slim"].rootfs.key


@pytest.mark.integration
def test_slim_stands_in_for_python_slim_where_it_cannot_be_pulled(
    base_images: dict[str, base.BaseImage],
) -> None:
    labels = engine.image_inspect("python:3.11-slim")["Config"]["Labels"] or {}
    if labels.get(base.LABEL_BASE) == "slim":
        assert "python:3.11-slim" in base_images["slim"].tags
        assert "cannot be pulled here" in base_images["slim"].notes[0]
    else:
        assert "python:3.11-slim" not in base_images["slim"].tags


@pytest.mark.integration
def test_builder_compiles_against_python_and_libffi(base_images: dict[str, base.BaseImage]) -> None:
    # PyObject needs Python.h; ffi_type_sint is a libffi symbol, so linking needs libffi.
    source = (
        "#include <Python.h>\n#include <ffi.h>\n"
        "int main(void){return sizeof(PyObject) > 0 && ffi_type_sint.size == 4 ? 0 : 1;}\n"
    )
    script = (
        f"set -e; printf '{source}' > /tmp/t.c; "
        "gcc /tmp/t.c $(python3-config --includes) -lffi -o /tmp/t; /tmp/t; echo compiled"
    )
    assert _run(base_images["builder"].tags[0], "sh", "-c", script).strip() == "compiled"


@pytest.mark.integration
def test_minimal_runs_the_stdlib_with_certificates_and_is_smallest(
    base_images: dict[str, base.BaseImage], base_minimal: base.BaseImage
) -> None:
    script = (
        "import ssl, json, sqlite3, ctypes, zoneinfo\n"
        "ctx = ssl.create_default_context()\n"
        "print(ctx.cert_store_stats()['x509_ca'] > 0 or len(ctx.get_ca_certs()) > 0 or"
        " __import__('os').path.getsize(ssl.get_default_verify_paths().cafile) > 1000)\n"
        "print(zoneinfo.ZoneInfo('Europe/Lisbon'))\n"
    )
    out = _run(base_minimal.tags[0], "python3", "-c", script).split()
    assert out == ["True", "Europe/Lisbon"]
    assert (
        base_minimal.size_bytes < base_images["slim"].size_bytes < base_images["builder"].size_bytes
    )
    # python:3.11-alpine is ~57 MB uncompressed
    assert base_minimal.size_bytes < 57_000_000


@pytest.mark.integration
def test_minimal_has_no_package_tools_but_keeps_dpkg_status(base_minimal: base.BaseImage) -> None:
    installed = base.installed_packages(base_minimal.rootfs)
    assert {"python3", "libc6", "libssl3", "ca-certificates"} <= set(installed)
    assert not {"apt", "dpkg", "perl-base", "python3-pip", "openssl"} & set(installed)
    sonames = base.library_sonames(base_minimal.rootfs)
    assert {"libc.so.6", "libssl.so.3", "libffi.so.8", "libsqlite3.so.0"} <= sonames
    assert not any(name.startswith("libperl") for name in sonames)
    names = _names(base_minimal.rootfs.tar_path)
    assert dpkg.STATUS_PATH in names
    assert not {"usr/bin/apt", "usr/bin/dpkg", "usr/bin/perl", "usr/bin/pip"} & names


@pytest.mark.integration
@pytest.mark.parametrize("variant", ["slim", "minimal"])
def test_slim_and_minimal_run_as_the_app_account_by_name(
    base_images: dict[str, base.BaseImage], base_minimal: base.BaseImage, variant: str
) -> None:
    image = {**base_images, "minimal": base_minimal}[variant]
    script = "import os, pwd, grp; u = pwd.getpwuid(os.getuid()); print(os.getuid(), os.getgid(), u.pw_name, grp.getgrgid(os.getgid()).gr_name, u.pw_dir, u.pw_shell)"
    out = engine.docker("run", "--rm", "--user", "app", image.tags[0], "python3", "-c", script)
    assert out.stdout.split() == [
        "10001",
        "10001",
        "app",
        "app",
        "/nonexistent",
        "/usr/sbin/nologin",
    ]


@pytest.mark.integration
def test_slim_account_files_hold_the_fixed_lines(base_images: dict[str, base.BaseImage]) -> None:
    # fixed lines, dated by SOURCE_DATE_EPOCH: the same rootfs bytes on every build
    with tarfile.open(base_images["slim"].rootfs.tar_path) as tar:
        for path, line in base.APP_USER.entries().items():
            member = next(m for m in tar.getmembers() if norm(m.name) == path)
            fh = tar.extractfile(member)
            assert fh is not None
            assert fh.read().decode().splitlines()[-1] == line
            assert member.mtime <= base.SOURCE_DATE_EPOCH


@pytest.mark.integration
def test_builder_has_the_uv_wheeldock_runs_on_path(base_images: dict[str, base.BaseImage]) -> None:
    builder = base_images["builder"]
    assert _run(builder.tags[0], "uv", "--version").split()[:2] == ["uv", base.uv_version()]
    labels = engine.image_inspect(builder.tags[0])["Config"]["Labels"]
    assert labels[base.LABEL_UV] == base.uv_version()
    with tarfile.open(builder.rootfs.tar_path) as tar:
        member = next(m for m in tar.getmembers() if norm(m.name) == base.UV_PATH[1:])
    assert member.mode & 0o777 == 0o755 and (member.uid, member.gid) == (0, 0)
    assert member.mtime <= base.SOURCE_DATE_EPOCH
    assert (
        base.LABEL_UV not in (engine.image_inspect(base_images["slim"].tags[0])["Config"]["Labels"])
    )


@pytest.mark.integration
def test_slim_rootfs_reports_python_and_pip(base_images: dict[str, base.BaseImage]) -> None:
    rootfs = base_images["slim"].rootfs
    assert rootfs.python_version == "3.11"
    assert base.installed_packages(rootfs)["python3-pip"]
    assert "/usr/lib/x86_64-linux-gnu/libffi.so.8" in base.library_paths(rootfs)


@pytest.mark.integration
def test_a_cached_rerun_builds_nothing_and_gives_the_same_image(
    base_images: dict[str, base.BaseImage], base_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(base_cache))
    again = base.ensure_image("slim")
    assert again.cached and again.rootfs.cached
    assert again.image_id == base_images["slim"].image_id


@pytest.mark.integration
def test_cli_writes_tar_and_oci_outputs_from_the_cache(
    base_minimal: base.BaseImage,
    base_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(base_cache))
    assert main(["base", "build", "minimal", "--output", f"tar:{tmp_path}/m.tar", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["cached"] is True
    assert (tmp_path / "m.tar").stat().st_size == base_minimal.rootfs.size_bytes
    layout = tmp_path / "layout"
    assert main(["base", "build", "minimal", "--output", f"oci:{layout}:min", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["output"] == f"oci:{layout}:min"
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "min"


@pytest.mark.integration
def test_cli_table_shows_each_variant(
    base_images: dict[str, base.BaseImage],
    base_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(base_cache))
    assert main(["base", "build", "slim", "builder"]) == 0
    out = capsys.readouterr().out
    assert "wheeldock/python:3.11-slim" in out and "wheeldock/python:3.11-builder" in out
    assert "yes" in out


@pytest.mark.integration
def test_mmdebstrap_failure_shows_its_last_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CommandFailed) as err:
        base.ensure_rootfs("slim", suite="wheeldock-no-such-suite")
    assert err.value.argv[0] == "mmdebstrap"
    assert "its last lines" in err.value.what
    assert not list((tmp_path / "cache" / "bases").glob("*.tar"))
