from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from support.build import make_sdist, make_wheel

from wheeldock.deps.pylock import Lock, LockedFile, LockedPackage
from wheeldock.deps.wheelhouse import Artifact, Wheelhouse, select
from wheeldock.errors import DigestMismatch, InvalidConfig, NotFound, WheeldockError


def _file(name: str, *, data: bytes = b"", path: Path | None = None) -> LockedFile:
    sha = hashlib.sha256(path.read_bytes() if path else data).hexdigest()
    return LockedFile(name, sha, url=None if path else f"https://example.invalid/{name}", path=path)


def _lock(*packages: LockedPackage, no_binary: tuple[str, ...] = ()) -> Lock:
    return Lock(Path("pylock.x.toml"), packages, None, "linux/amd64", "3.11", "", no_binary)


@pytest.mark.parametrize(
    ("wheels", "chosen"),
    [
        (
            ["x-1-cp311-cp311-musllinux_1_2_x86_64.whl", "x-1-py3-none-any.whl"],
            "x-1-py3-none-any.whl",
        ),
        (
            [
                "x-1-py3-none-any.whl",
                "x-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            ],
            "x-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ),
        (["x-1-cp310-abi3-manylinux_2_28_x86_64.whl"], "x-1-cp310-abi3-manylinux_2_28_x86_64.whl"),
        (
            ["x-1-cp311-cp311-manylinux_2_38_x86_64.whl", "x-1-cp311-cp311-macosx_11_0_arm64.whl"],
            None,
        ),
        (["x-1-cp311-cp311-manylinux_2_17_aarch64.whl"], None),
    ],
)
def test_select_picks_the_best_wheel_bookworm_runs(wheels: list[str], chosen: str | None) -> None:
    sdist = _file("x-1.tar.gz")
    pkg = LockedPackage("x", "1", tuple(_file(w) for w in wheels), sdist)
    (art,) = select(_lock(pkg))
    assert (art.file.filename if art.kind == "wheel" else None) == chosen
    if chosen is None:
        assert art.kind == "sdist" and art.file == sdist


def test_select_builds_no_binary_packages_from_source() -> None:
    pkg = LockedPackage(
        "PyYAML", "6", (_file("pyyaml-6-py3-none-any.whl"),), _file("pyyaml-6.tar.gz")
    )
    (art,) = select(_lock(pkg, no_binary=("pyyaml",)))
    assert art.kind == "sdist"


def test_select_refuses_a_package_with_no_usable_file() -> None:
    pkg = LockedPackage("x", "1", (_file("x-1-cp311-cp311-win_amd64.whl"),), None)
    with pytest.raises(InvalidConfig, match="x 1 has no wheel for linux/amd64"):
        select(_lock(pkg))


def _tiny(tmp_path: Path) -> tuple[Path, Artifact, Wheelhouse]:
    """A local wheel, its locked artifact (with its hash) and an empty wheelhouse."""
    wheel = make_wheel(tmp_path / "dist", "tiny", "1.0", {"tiny.py": "X = 1\n"})
    art = Artifact("tiny", "1.0", _file(wheel.name, path=wheel), "wheel")
    return wheel, art, Wheelhouse(tmp_path / "cache")


def test_local_wheel_is_cached_once_and_verified(tmp_path: Path) -> None:
    wheel, art, house = _tiny(tmp_path)
    (got,) = house.fetch([art], platform="linux/amd64", python="3.11")
    assert got == house.path(art.file) and got.read_bytes() == wheel.read_bytes()
    wheel.unlink()  # the cache is enough from now on
    assert house.fetch([art], platform="linux/amd64", python="3.11") == [got]


@pytest.mark.parametrize("damage", ["a flipped byte", "cut short"])
def test_damaged_wheel_in_the_cache_is_fetched_again_with_a_warning_naming_it(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, art, house = _tiny(tmp_path)
    (cached,) = house.fetch([art], platform="linux/amd64", python="3.11")
    data = bytearray(cached.read_bytes())
    if damage == "cut short":
        del data[len(data) // 2 :]
    else:
        data[len(data) // 2] ^= 0x01
    cached.chmod(0o644)
    cached.write_bytes(bytes(data))
    (again,) = house.fetch([art], platform="linux/amd64", python="3.11")
    assert hashlib.sha256(again.read_bytes()).hexdigest() == art.sha256
    assert str(cached) in caplog.text and f"sha256:{art.sha256}" in caplog.text


def test_tampered_wheel_that_cannot_be_fetched_again_is_refused_naming_both_hashes(
    tmp_path: Path,
) -> None:
    wheel, art, house = _tiny(tmp_path)
    (cached,) = house.fetch([art], platform="linux/amd64", python="3.11")
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0x01
    wheel.write_bytes(bytes(data))  # the source now gives the same wrong bytes
    cached.chmod(0o644)
    cached.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch) as err:
        house.fetch([art], platform="linux/amd64", python="3.11")
    message = str(err.value)
    assert "tiny 1.0" in message and f"sha256:{art.sha256}" in message
    assert f"sha256:{hashlib.sha256(bytes(data)).hexdigest()}" in message


def test_local_file_that_does_not_match_the_lock_is_not_cached(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "dist", "tiny", "1.0", {"tiny.py": "X = 1\n"})
    art = Artifact("tiny", "1.0", LockedFile(wheel.name, "0" * 64, path=wheel), "wheel")
    house = Wheelhouse(tmp_path / "cache")
    with pytest.raises(DigestMismatch, match=r"tiny 1\.0"):
        house.fetch([art], platform="linux/amd64", python="3.11")
    assert not house.path(art.file).exists()


def test_vanished_local_file_says_how_to_fix(tmp_path: Path) -> None:
    art = Artifact(
        "gone", "1", LockedFile("gone-1.tar.gz", "0" * 64, path=tmp_path / "gone-1.tar.gz"), "sdist"
    )
    with pytest.raises(NotFound, match="gone 1 is locked from a local file that is gone"):
        Wheelhouse(tmp_path / "cache").fetch([art], platform="linux/amd64", python="3.11")


# -- network: PyPI and uv build -------------------------------------------------------------------


class _RecordingWheelhouse(Wheelhouse):
    """Compiles an sdist by writing a wheel named after it, and counts the compiles."""

    def __init__(self, root: Path, wheels: int = 1) -> None:
        super().__init__(root)
        self.compiled: list[tuple[str, str]] = []
        self.wheels = wheels

    def compile(
        self, artifact: Artifact, sdist: Path, out: Path, *, platform: str, python: str
    ) -> None:
        self.compiled.append((artifact.name, platform))
        for n in range(self.wheels):
            (out / f"{artifact.name}-{artifact.version}-{n}-py3-none-any.whl").write_bytes(b"w")
        (out / "build-log.txt").write_text("left behind by the backend\n")


def test_sdist_is_compiled_once_per_platform_and_cached(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "dist", "okpkg", "0.1", "from setuptools import setup\n")
    art = Artifact("okpkg", "0.1", _file(sdist.name, path=sdist), "sdist")
    house = _RecordingWheelhouse(tmp_path / "cache")
    (wheel,) = house.fetch([art], platform="linux/amd64", python="3.11")
    assert wheel.name == "okpkg-0.1-0-py3-none-any.whl"
    assert [p.name for p in wheel.parent.iterdir()] == [wheel.name]  # only the wheel is kept
    assert house.fetch([art], platform="linux/amd64", python="3.11") == [wheel]
    house.fetch([art], platform="linux/arm64", python="3.11")
    assert house.compiled == [("okpkg", "linux/amd64"), ("okpkg", "linux/arm64")]


def test_a_compile_giving_two_wheels_is_refused_and_nothing_is_cached(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "dist", "twopkg", "0.1", "from setuptools import setup\n")
    art = Artifact("twopkg", "0.1", _file(sdist.name, path=sdist), "sdist")
    with pytest.raises(WheeldockError, match="gave 2 wheels"):
        _RecordingWheelhouse(tmp_path / "cache", wheels=2).fetch(
            [art], platform="linux/amd64", python="3.11"
        )
    assert not list((tmp_path / "cache" / "built").glob("*/*.whl"))


def test_the_plain_wheelhouse_never_compiles_on_this_host(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "dist", "okpkg", "0.1", "from setuptools import setup\n")
    art = Artifact("okpkg", "0.1", _file(sdist.name, path=sdist), "sdist")
    with pytest.raises(WheeldockError, match="compiles no sdists") as err:
        Wheelhouse(tmp_path / "cache").fetch([art], platform="linux/amd64", python="3.11")
    assert err.value.fix is not None and "builder base" in err.value.fix


def test_fetch_each_yields_cached_wheels_first_and_every_one_once(tmp_path: Path) -> None:
    arts = []
    for name in ("one", "two", "three"):
        wheel = make_wheel(tmp_path / "dist", name, "1.0", {f"{name}.py": "X = 1\n"})
        arts.append(Artifact(name, "1.0", _file(wheel.name, path=wheel), "wheel"))
    house = Wheelhouse(tmp_path / "cache")
    house.fetch([arts[1]], platform="linux/amd64", python="3.11")
    got = list(house.fetch_each(arts, platform="linux/amd64", python="3.11"))
    assert got[0] == (arts[1], house.path(arts[1].file))
    assert sorted(a.name for a, _ in got) == ["one", "three", "two"]
    assert all(path.is_file() for _, path in got)


def test_of_the_downloads_landed_the_first_listed_is_handed_over_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A build lists wheels largest first (its layers' order); the small ones land first, but
    # whenever several are waiting, the installer gets the first listed of them.
    import threading
    import time

    data = {n: n.encode() * 100 for n in ("big", "mid", "small")}
    arts = [Artifact(n, "1", _file(f"{n}-1-py3-none-any.whl", data=data[n]), "wheel") for n in data]
    release = {n: threading.Event() for n in data}

    def download(self: Wheelhouse, client: object, artifact: Artifact) -> None:
        release[artifact.name].wait(5)
        self._store(artifact, [data[artifact.name]], "test")

    monkeypatch.setattr(Wheelhouse, "_download", download)
    house = Wheelhouse(tmp_path / "wheels", workers=3)
    monkeypatch.setattr(house.index, "client", lambda: None)
    by_name = {a.name: a for a in arts}
    landed = house._download_each(arts)

    def land(name: str) -> None:
        release[name].set()
        while not house.path(by_name[name].file).is_file():
            time.sleep(0.01)
        time.sleep(0.2)  # and the download thread reports it

    land("small")
    land("mid")
    first = next(landed)  # both waiting: the one listed first
    land("big")
    assert [first.name, *(a.name for a in landed)] == ["mid", "big", "small"]
