"""Sdists compiled in the image's builder base (chrooted, no engine), never on this host."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from support.build import make_sdist

from wheeldock import platforms
from wheeldock.build import sdists
from wheeldock.debian import bases
from wheeldock.deps.pylock import LockedFile
from wheeldock.deps.wheelhouse import Artifact
from wheeldock.edges import chroot
from wheeldock.errors import CommandFailed, InvalidConfig, SdistNotBuildable, WheeldockError

AMD64 = platforms.parse("linux/amd64")


def _artifact(sdist: Path) -> Artifact:
    sha = hashlib.sha256(sdist.read_bytes()).hexdigest()
    name, version = sdist.name.removesuffix(".tar.gz").rsplit("-", 1)
    return Artifact(name, version, LockedFile(sdist.name, sha, path=sdist), "sdist")


# -- the chroot edge ----------------------------------------------------------------------------


def test_a_chrooted_run_sees_only_its_binds_and_the_environment_given(tmp_path: Path) -> None:
    sdists_dir, out, bundle = tmp_path / "in", tmp_path / "out", tmp_path / "ca.pem"
    sdists_dir.mkdir(), out.mkdir(), bundle.write_text("PEM")
    text = chroot.script(
        tmp_path / "rootfs",
        tmp_path / "scratch",
        ["uv", "build", "/in/x y.tar.gz"],
        env={"HOME": "/root"},
        binds={sdists_dir: "/in", bundle: "/etc/ssl/certs/ca.pem"},
        writable={out: "/out"},
    )
    merged = tmp_path / "scratch" / "merged"
    assert f"lowerdir={tmp_path / 'rootfs'},upperdir={tmp_path / 'scratch' / 'upper'}" in text
    assert f"mount --bind {sdists_dir} {merged}/in\nmount -o remount,bind,ro {merged}/in" in text
    assert f"touch {merged}/etc/ssl/certs/ca.pem" in text
    assert f"mount --bind {out} {merged}/out\n" in text
    assert f"remount,bind,ro {merged}/out" not in text
    last = text.strip().splitlines()[-1]
    assert last.startswith(f"exec chroot {merged} /usr/bin/env -i HOME=/root PATH=")
    assert last.endswith("uv build '/in/x y.tar.gz'")


def test_the_run_is_unshared_and_needs_a_user_namespace_only_without_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert chroot.argv_for("true")[:2] == ["unshare", "--map-root-user"]
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert "--map-root-user" not in chroot.argv_for("true")


# -- the wheelhouse -----------------------------------------------------------------------------


def test_the_build_key_follows_the_builder_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    art = _artifact(make_sdist(tmp_path, "okpkg", "0.1", "from setuptools import setup\n"))
    house = sdists.BaseWheelhouse(tmp_path / "wheels")
    monkeypatch.setattr(bases, "cache_key", lambda recipe, *, suite, arch: f"{recipe.name}-1")
    first = house.build_key(art, platform="linux/amd64", python="3.11")
    assert first == house.build_key(art, platform="linux/amd64", python="3.11")
    assert first != house.build_key(art, platform="linux/arm64", python="3.11")
    monkeypatch.setattr(bases, "cache_key", lambda recipe, *, suite, arch: f"{recipe.name}-2")
    assert first != house.build_key(art, platform="linux/amd64", python="3.11")


def test_a_foreign_platform_is_left_to_emulation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platforms, "host", lambda: AMD64)
    art = _artifact(make_sdist(tmp_path, "okpkg", "0.1", "from setuptools import setup\n"))
    with pytest.raises(WheeldockError, match="cannot run its compiler") as err:
        sdists.BaseWheelhouse(tmp_path / "wheels").compile(
            art, art.file.path or tmp_path, tmp_path, platform="linux/arm64", python="3.11"
        )
    assert err.value.fix is not None and "--emulate-sdists" in err.value.fix


def test_an_sdist_for_a_python_no_builder_base_carries_is_refused_with_the_fix(
    tmp_path: Path,
) -> None:
    art = _artifact(make_sdist(tmp_path, "okpkg", "0.1", "from setuptools import setup\n"))
    with pytest.raises(
        SdistNotBuildable, match=r"no builder base of wheeldock's carries Python 3\.12"
    ):
        sdists.BaseWheelhouse(tmp_path / "wheels").compile(
            art, art.file.path or tmp_path, tmp_path, platform="linux/amd64", python="3.12"
        )


def test_a_builder_base_of_another_python_is_refused(tmp_path: Path) -> None:
    art = _artifact(make_sdist(tmp_path, "okpkg", "0.1", "from setuptools import setup\n"))
    with pytest.raises(InvalidConfig, match=r"bookworm builder base has Python 3\.11"):
        sdists.BaseWheelhouse(tmp_path / "wheels", suite="bookworm").compile(
            art, art.file.path or tmp_path, tmp_path, platform="linux/amd64", python="3.13"
        )


def test_the_builder_base_follows_the_locked_python(tmp_path: Path) -> None:
    house = sdists.BaseWheelhouse(tmp_path / "wheels")
    art = _artifact(make_sdist(tmp_path, "okpkg", "0.1", "from setuptools import setup\n"))
    keys = {py: house.build_key(art, platform="linux/amd64", python=py) for py in ("3.11", "3.13")}
    assert keys["3.11"] != keys["3.13"]


def test_a_failed_build_names_the_package_and_its_last_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rootfs = bases.BaseRootfs(
        "builder", "amd64", "bookworm", tmp_path / "b.tar", (), 0, 0.0, True, "3.11", "k" * 64
    )
    monkeypatch.setattr(bases, "ensure_rootfs", lambda variant, *, arch, suite: rootfs)
    monkeypatch.setattr(bases, "unpacked", lambda r: tmp_path / "rootfs")
    seen: dict[str, object] = {}

    def failing(root: Path, argv: list[str], **kwargs: object) -> None:
        seen.update(kwargs, argv=argv)
        raise CommandFailed(argv, 1, "", "gcc: error\npg_config executable not found.\n")

    monkeypatch.setattr(chroot, "run", failing)
    art = _artifact(make_sdist(tmp_path, "psycopg2", "2.9.10", "from setuptools import setup\n"))
    sdist = art.file.path
    assert sdist is not None
    with pytest.raises(WheeldockError) as err:
        sdists.BaseWheelhouse(tmp_path / "wheels").fetch(
            [art], platform="linux/amd64", python="3.11"
        )
    assert "building psycopg2 2.9.10 from its sdist" in err.value.what
    assert "pg_config executable not found." in err.value.what
    assert err.value.fix is not None and "BUILD_PACKAGES" in err.value.fix
    assert seen["argv"] == [
        bases.UV_PATH,
        "build",
        "--wheel",
        "--python",
        "/usr/bin/python3.11",
        "--out-dir",
        sdists.INSIDE_OUT,
        f"{sdists.INSIDE_IN}/{sdist.name}",
    ]
    assert not list((tmp_path / "wheels" / "built").glob("*/*.whl"))


def test_the_build_environment_is_reproducible_and_carries_the_ca() -> None:
    host = {"SOURCE_DATE_EPOCH": "1700000000", "UV_INDEX_URL": "https://mirror/simple", "X": "1"}
    env = sdists.build_env(Path("/host/ca.pem"), host)
    assert env["SOURCE_DATE_EPOCH"] == "1700000000"
    assert env["SSL_CERT_FILE"] == env["PIP_CERT"] == sdists.INSIDE_CA
    assert env["UV_INDEX_URL"] == "https://mirror/simple" and "X" not in env
    assert "SSL_CERT_FILE" not in sdists.build_env(None, {})
