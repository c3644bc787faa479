from __future__ import annotations

import dataclasses
import hashlib
import json
import marshal
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from support.build import make_wheel

from wheeldock.build import install
from wheeldock.errors import InvalidArchive, InvalidConfig

SITE = "usr/local/lib/python3.11/dist-packages"


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            h.update(str(full.relative_to(root)).encode() + b"\0" + full.read_bytes())
            h.update(oct(full.stat().st_mode & 0o111).encode())
    return h.hexdigest()


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return make_wheel(
        tmp_path / "dist",
        "hello-tool",
        "1.0",
        {"hello_tool/__init__.py": "def main():\n    print('hello from the tool')\n"},
        console_scripts={"hello-tool": "hello_tool:main"},
    )


def test_wheel_lands_in_debian_dist_packages_with_a_console_script(
    tmp_path: Path, wheel: Path
) -> None:
    (tree,) = install.InstalledTrees(tmp_path / "trees").ensure(
        [("a" * 64, wheel)], install.debian_scheme()
    )
    assert (tree / SITE / "hello_tool" / "__init__.py").is_file()
    script = tree / "usr/local/bin/hello-tool"
    assert script.read_text().startswith("#!/usr/bin/python3.11\n")
    assert script.stat().st_mode & 0o111
    dist_info = tree / SITE / "hello_tool-1.0.dist-info"
    assert (dist_info / "INSTALLER").read_text() == "wheeldock\n"
    assert "hello_tool/__init__.py" in (dist_info / "RECORD").read_text()


def test_console_script_runs_with_the_installed_package(tmp_path: Path, wheel: Path) -> None:
    (tree,) = install.InstalledTrees(tmp_path / "trees").ensure(
        [("a" * 64, wheel)], install.debian_scheme()
    )
    script = (tree / "usr/local/bin/hello-tool").read_text().split("\n", 1)[1]
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(tree / SITE)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "hello from the tool\n"


def test_bytecode_is_unchecked_hash_and_records_the_image_path(tmp_path: Path, wheel: Path) -> None:
    (tree,) = install.InstalledTrees(tmp_path / "trees").ensure(
        [("a" * 64, wheel)], install.debian_scheme()
    )
    (pyc,) = (tree / SITE / "hello_tool" / "__pycache__").glob("__init__.cpython-311*.pyc")
    data = pyc.read_bytes()
    flags = int.from_bytes(data[4:8], "little")
    assert flags == 0b01  # hash-based, source not checked: no mtime inside
    code = marshal.loads(data[16:])
    assert code.co_filename == f"/{SITE}/hello_tool/__init__.py"


def test_no_bytecode_installs_the_sources_alone_in_a_tree_of_its_own(
    tmp_path: Path, wheel: Path
) -> None:
    trees = install.InstalledTrees(tmp_path / "trees")
    full = install.debian_scheme()
    (compiled,) = trees.ensure([("a" * 64, wheel)], full)
    (bare,) = trees.ensure([("a" * 64, wheel)], dataclasses.replace(full, bytecode="none"))
    assert bare != compiled  # the mode is part of the tree's cache key
    assert (bare / SITE / "hello_tool" / "__init__.py").is_file()
    assert not list(bare.rglob("*.pyc"))
    assert list(compiled.rglob("*.pyc"))


def test_trees_are_byte_identical_in_any_cache_folder(tmp_path: Path, wheel: Path) -> None:
    scheme = install.debian_scheme()
    (one,) = install.InstalledTrees(tmp_path / "a").ensure([("a" * 64, wheel)], scheme)
    (two,) = install.InstalledTrees(tmp_path / "b" / "deeper").ensure([("a" * 64, wheel)], scheme)
    assert _tree_digest(one) == _tree_digest(two)


def test_a_cached_tree_is_not_installed_again(tmp_path: Path, wheel: Path) -> None:
    trees = install.InstalledTrees(tmp_path / "trees")
    (first,) = trees.ensure([("a" * 64, wheel)], install.debian_scheme())
    wheel.unlink()  # a reinstall would fail now
    assert trees.ensure([("a" * 64, wheel)], install.debian_scheme()) == [first]
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".install.")]


def test_the_cache_keeps_one_archive_per_wheel_and_a_new_process_unpacks_the_same_tree(
    tmp_path: Path, wheel: Path
) -> None:
    scheme = install.debian_scheme()
    fresh = install.InstalledTrees(tmp_path / "trees", staging=tmp_path / "ram")
    (installed,) = fresh.ensure([("a" * 64, wheel)], scheme)
    assert installed.is_relative_to(tmp_path / "ram")  # the tree itself is staged, not cached
    assert fresh.has("a" * 64, scheme)  # installed here: not installed again
    digest = _tree_digest(installed)
    fresh.close()  # no layer archived it: it is archived as the staged trees go
    kept = sorted(p.relative_to(tmp_path / "trees") for p in (tmp_path / "trees").rglob("*"))
    archive = fresh.archive("a" * 64, scheme)
    digest_file = archive.with_name(archive.name + ".sha256")
    assert [p for p in kept if p.suffix] == [
        p.relative_to(tmp_path / "trees") for p in (archive, digest_file)
    ]

    later = install.InstalledTrees(tmp_path / "trees", staging=tmp_path / "ram")
    wheel.unlink()  # a reinstall would fail now
    (unpacked,) = later.ensure([("a" * 64, wheel)], scheme)
    assert unpacked != installed
    assert _tree_digest(unpacked) == digest


def test_a_tree_alone_in_its_layer_is_archived_from_the_layers_own_tar(
    tmp_path: Path, wheel: Path
) -> None:
    from wheeldock.oci.blobs import BlobStore
    from wheeldock.oci.layer import build_layer, entries_from_dir

    scheme = install.debian_scheme()
    fresh = install.InstalledTrees(tmp_path / "trees", staging=tmp_path / "ram")
    (installed,) = fresh.ensure([("a" * 64, wheel)], scheme)
    digest = _tree_digest(installed)
    store = BlobStore(tmp_path / "blobs")
    with fresh.archive_writer("a" * 64, scheme) as tee:
        assert tee is not None
        with fresh.archive_writer("a" * 64, scheme) as second:
            assert second is None  # one writer per tree
        layer = build_layer(
            entries_from_dir(installed, prefix=""),
            store=store,
            compression="gzip",
            mtime=1700000000,
            provided=("usr", "usr/lib"),
            tee=tee,
        )
    archive = fresh.archive("a" * 64, scheme).read_bytes()
    assert layer.diff_id.hex == hashlib.sha256(archive).hexdigest()  # the layer's tar itself
    fresh.close()
    assert fresh.archive("a" * 64, scheme).read_bytes() == archive  # not written again

    later = install.InstalledTrees(tmp_path / "trees", staging=tmp_path / "ram")
    wheel.unlink()
    (unpacked,) = later.ensure([("a" * 64, wheel)], scheme)
    assert _tree_digest(unpacked) == digest  # the folders the layer left out are made again


def test_released_trees_are_removed_and_unpacked_again_when_asked_for(
    tmp_path: Path, wheel: Path
) -> None:
    scheme = install.debian_scheme()
    trees = install.InstalledTrees(tmp_path / "trees", staging=tmp_path / "ram")
    (tree,) = trees.ensure([("a" * 64, wheel)], scheme)
    digest = _tree_digest(tree)
    trees.close()
    assert not tree.exists()
    assert list((tmp_path / "ram").iterdir()) == []
    assert _tree_digest(trees.path("a" * 64, scheme)) == digest


def test_a_process_that_never_releases_its_trees_still_leaves_their_archives(
    tmp_path: Path, wheel: Path
) -> None:
    script = (
        "import sys; from pathlib import Path; from wheeldock.build import install\n"
        "trees = install.InstalledTrees(Path(sys.argv[1]), staging=Path(sys.argv[2]))\n"
        "trees.ensure([('a' * 64, Path(sys.argv[3]))], install.debian_scheme())\n"
    )
    ram = tmp_path / "ram"
    argv = [sys.executable, "-c", script, str(tmp_path / "trees"), str(ram), str(wheel)]
    subprocess.run(argv, check=True)
    assert list(ram.iterdir()) == []  # the staged tree went at exit ...
    later = install.InstalledTrees(tmp_path / "trees", staging=ram)
    assert later.has("a" * 64, install.debian_scheme())  # ... archived first
    tree = later.path("a" * 64, install.debian_scheme())
    assert (tree / SITE / "hello_tool" / "__init__.py").is_file()


def test_a_tree_that_ram_has_no_room_for_is_staged_in_the_cache_instead(
    tmp_path: Path, wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WHEELDOCK_STAGING", str(tmp_path / "ram"))
    monkeypatch.setattr(install, "free_bytes", lambda folder: 1 << 20)  # 1 MiB left
    scheme = install.debian_scheme()
    trees = install.InstalledTrees(tmp_path / "trees")
    (tree,) = trees.ensure([("a" * 64, wheel)], scheme)
    assert tree.is_relative_to(tmp_path / "cache" / "staging")
    assert (tree / SITE / "hello_tool" / "__init__.py").is_file()
    trees.close()
    assert list((tmp_path / "cache" / "staging").iterdir()) == []


def _flip_a_byte_of(archive: Path, member: str) -> None:
    """Flip one byte of ``member``'s content in a tar, leaving the tar itself well formed."""
    with tarfile.open(archive) as tf:
        offset = tf.getmember(member).offset_data
    data = bytearray(archive.read_bytes())
    data[offset] ^= 0x01
    archive.chmod(0o644)
    archive.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["cut short", "a flipped byte in a file", "no digest"])
def test_a_damaged_archive_is_removed_with_a_warning_and_an_error_that_says_to_build_again(
    tmp_path: Path, wheel: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    scheme = install.debian_scheme()
    first = install.InstalledTrees(tmp_path / "trees", staging=tmp_path / "ram")
    first.ensure([("a" * 64, wheel)], scheme)
    first.close()
    trees = install.InstalledTrees(tmp_path / "trees", staging=tmp_path / "ram")
    archive = trees.archive("a" * 64, scheme)
    digest_file = archive.with_name(archive.name + ".sha256")
    if damage == "cut short":
        archive.write_bytes(archive.read_bytes()[:1536])  # as by a crash
    elif damage == "no digest":
        digest_file.unlink()
    else:
        with tarfile.open(archive) as tf:
            member = next(m.name for m in tf if m.isfile() and m.name.endswith(".py"))
        _flip_a_byte_of(archive, member)
    with pytest.raises(InvalidArchive, match="damaged") as caught:
        trees.path("a" * 64, scheme)
    assert caught.value.path == archive
    assert "build again" in (caught.value.fix or "")
    assert str(archive) in caplog.text
    assert not archive.exists() and not digest_file.exists()
    assert not trees.has("a" * 64, scheme)
    assert not list((tmp_path / "ram").glob("*/.unpack.*"))  # nothing half-unpacked is left


def test_malformed_wheel_is_reported_with_its_name(tmp_path: Path) -> None:
    bad = tmp_path / "broken-1.0-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(
        InvalidConfig, match=r"cannot install the wheel broken-1\.0-py3-none-any\.whl"
    ):
        install.InstalledTrees(tmp_path / "trees").ensure(
            [("b" * 64, bad)], install.debian_scheme()
        )
    assert not list((tmp_path / "trees").glob("*/*"))


@pytest.mark.parametrize(
    ("env", "site", "interpreter"),
    [
        ((), "/usr/local/lib/python3.11/dist-packages", "/usr/bin/python3.11"),
        (
            ("PYTHON_VERSION=3.11.9",),
            "/usr/local/lib/python3.11/site-packages",
            "/usr/local/bin/python3.11",
        ),
    ],
)
def test_scheme_follows_the_base_image(env: tuple[str, ...], site: str, interpreter: str) -> None:
    scheme = install.scheme_for(env, "3.11")
    assert (scheme.purelib, scheme.interpreter) == (site, interpreter)


def _wheels(tmp_path: Path, n: int) -> list[tuple[str, Path]]:
    return [
        (
            f"{i:064x}",
            make_wheel(
                tmp_path / "dist", f"pkg{i}", "1.0", {f"pkg{i}/__init__.py": f"N = {i}\n" * 50}
            ),
        )
        for i in range(n)
    ]


def test_trees_install_from_wheels_arriving_in_any_order(tmp_path: Path) -> None:
    wheels = _wheels(tmp_path, 3)
    scheme = install.debian_scheme()
    trees = install.InstalledTrees(tmp_path / "trees")
    got = trees.ensure_each([sha for sha, _ in wheels], reversed(wheels), scheme)
    assert got == [trees.path(sha, scheme) for sha, _ in wheels]
    for i, tree in enumerate(got):
        assert (tree / SITE / f"pkg{i}/__pycache__/__init__.cpython-311.pyc").is_file()


def test_streamed_and_one_by_one_installs_give_identical_trees(tmp_path: Path) -> None:
    wheels = _wheels(tmp_path, 3)
    scheme = install.debian_scheme()
    together = install.InstalledTrees(tmp_path / "a").ensure(wheels, scheme)
    alone = [install.InstalledTrees(tmp_path / "b").ensure([w], scheme)[0] for w in wheels]
    assert [_tree_digest(t) for t in together] == [_tree_digest(t) for t in alone]


def test_a_tree_whose_wheel_never_arrives_is_an_error_and_no_half_tree_is_kept(
    tmp_path: Path,
) -> None:
    wheels = _wheels(tmp_path, 2)
    scheme = install.debian_scheme()
    trees = install.InstalledTrees(tmp_path / "trees")
    with pytest.raises(InvalidConfig, match="no wheel was given"):
        trees.ensure_each([sha for sha, _ in wheels], wheels[:1], scheme)
    assert not trees.has(wheels[1][0], scheme)
    assert not list((tmp_path / "trees").glob("*/.install.*"))  # no temporary folder left
    if trees.has(wheels[0][0], scheme):  # the tree that did arrive may be kept, whole
        tree = trees.path(wheels[0][0], scheme)
        assert (tree / SITE / "pkg0/__pycache__/__init__.cpython-311.pyc").is_file()


def test_each_tree_is_handed_over_complete_while_the_others_may_still_compile(
    tmp_path: Path,
) -> None:
    wheels = _wheels(tmp_path, 4)
    scheme = install.debian_scheme()
    trees = install.InstalledTrees(tmp_path / "trees")
    heard: dict[str, bool] = {}

    def ready(sha: str, tree: Path) -> None:
        assert tree == trees.path(sha, scheme)  # already in its final place
        i = int(sha, 16)
        heard[sha] = (tree / SITE / f"pkg{i}/__pycache__/__init__.cpython-311.pyc").is_file()

    trees.ensure_each([sha for sha, _ in wheels], wheels, scheme, ready=ready)
    assert heard == {sha: True for sha, _ in wheels}


def test_trees_already_installed_are_not_handed_over_again(tmp_path: Path) -> None:
    wheels = _wheels(tmp_path, 2)
    scheme = install.debian_scheme()
    trees = install.InstalledTrees(tmp_path / "trees")
    trees.ensure(wheels[:1], scheme)
    heard: list[str] = []
    trees.ensure_each(
        [sha for sha, _ in wheels], wheels, scheme, ready=lambda s, _: heard.append(s)
    )
    assert heard == [wheels[1][0]]


def test_without_bytecode_a_tree_is_handed_over_once_installed(tmp_path: Path) -> None:
    wheels = _wheels(tmp_path, 2)
    scheme = dataclasses.replace(install.debian_scheme(), bytecode="none")
    trees = install.InstalledTrees(tmp_path / "trees")
    heard: list[str] = []
    trees.ensure_each(
        [sha for sha, _ in wheels], wheels, scheme, ready=lambda s, _: heard.append(s)
    )
    assert sorted(heard) == sorted(sha for sha, _ in wheels)


def test_the_compiler_reports_each_tree_with_the_files_it_skipped(tmp_path: Path) -> None:
    good, old = tmp_path / "good.py", tmp_path / "old.py"
    good.write_text("X = 1\n")
    old.write_text("print 'python 2'\n")
    many = [tmp_path / f"m{i}.py" for i in range(60)]  # more than a worker's chunk
    for m in many:
        m.write_text("Y = 2\n")
    trees = [[[str(good), "/good.py"], [str(old), "/old.py"]], [[str(m), "/m.py"] for m in many]]
    stdin = "".join(json.dumps(t) + "\n" for t in trees)
    out = subprocess.run(
        [sys.executable, "-I", str(install._COMPILER), "2"],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    reports = sorted(
        (json.loads(line) for line in out.stdout.splitlines()), key=lambda r: r["tree"]
    )
    assert reports == [{"tree": 0, "failed": [str(old)]}, {"tree": 1, "failed": []}]
    assert all(m.with_name("__pycache__").is_dir() for m in many[:1])


def test_preinstaller_installs_what_it_is_handed_from_several_threads(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    wheels = _wheels(tmp_path, 4)
    scheme = install.debian_scheme()
    trees = install.InstalledTrees(tmp_path / "trees")
    with install.Preinstaller(trees, scheme) as early, ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda w: early.submit(*w), wheels))
    # the same trees as the build's own install step makes, and nothing left for it to do
    assert all(trees.has(sha, scheme) for sha, _ in wheels)
    again = install.InstalledTrees(tmp_path / "again").ensure(wheels, scheme)
    assert [_tree_digest(trees.path(sha, scheme)) for sha, _ in wheels] == [
        _tree_digest(t) for t in again
    ]


def test_a_follower_hears_of_each_tree_still_being_made_as_it_is_ready(tmp_path: Path) -> None:
    import threading

    wheels = _wheels(tmp_path, 3)
    scheme = install.debian_scheme()
    trees = install.InstalledTrees(tmp_path / "trees")
    heard: list[tuple[str, bool]] = []
    gate = threading.Event()
    early = install.Preinstaller(trees, scheme)
    real_install = install.install_wheel

    def slow_install(wheel: Path, root: Path, sch: install.Scheme) -> None:
        gate.wait(10)  # held until the follower is in place
        real_install(wheel, root, sch)

    with pytest.MonkeyPatch.context() as mp, early:
        mp.setattr(install, "install_wheel", slow_install)
        for wheel in wheels[:2]:
            early.submit(*wheel)
        shas = [sha for sha, _ in wheels]
        coming = early.follow(shas, lambda sha, tree: heard.append((sha, tree.is_dir())))
        # the third was never handed over: the caller installs it itself
        assert coming == set(shas[:2])
        gate.set()
        early.wait(coming)
        assert sorted(heard) == sorted((sha, True) for sha in shas[:2])
        assert all(trees.has(sha, scheme) for sha in shas[:2])
    assert not trees.has(shas[2], scheme)


def test_the_preinstaller_installs_the_largest_waiting_wheel_first(tmp_path: Path) -> None:
    import threading

    first, small = _wheels(tmp_path, 2)
    body = "".join(f"V{i} = {i * 7919}\n" for i in range(3000))  # a wheel many times larger
    big = ("b" * 64, make_wheel(tmp_path / "dist", "big", "1.0", {"big/__init__.py": body}))
    assert big[1].stat().st_size > 4 * small[1].stat().st_size
    scheme = install.debian_scheme()
    trees = install.InstalledTrees(tmp_path / "trees")
    order: list[str] = []
    busy, gate = threading.Event(), threading.Event()
    real_install = install.install_wheel

    def held_install(wheel: Path, root: Path, sch: install.Scheme) -> None:
        order.append(wheel.name.split("-")[0])
        busy.set()
        gate.wait(10)  # the first install is held while the others are handed over
        real_install(wheel, root, sch)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(install, "install_wheel", held_install)
        with install.Preinstaller(trees, scheme) as early:
            early.submit(*first)
            assert busy.wait(10)
            early.submit(*small)  # handed over before the big one, installed after it
            early.submit(*big)
            gate.set()
    assert order == ["pkg0", "big", "pkg1"]
    assert all(trees.has(sha, scheme) for sha, _ in (first, small, big))


def test_waiting_on_a_preinstaller_that_gave_up_returns(tmp_path: Path) -> None:
    broken = tmp_path / "broken-1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    scheme = install.debian_scheme()
    trees = install.InstalledTrees(tmp_path / "trees")
    with install.Preinstaller(trees, scheme) as early:
        early.submit("b" * 64, broken)
        coming = early.follow(["b" * 64], lambda sha, tree: None)
        early.wait(coming)  # the failure is only logged: the build's own step reports it
    assert not trees.has("b" * 64, scheme)


def test_preinstaller_failure_is_left_to_the_build_step(tmp_path: Path) -> None:
    broken = tmp_path / "broken-1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    ((sha, good),) = _wheels(tmp_path, 1)
    scheme = install.debian_scheme()
    trees = install.InstalledTrees(tmp_path / "trees")
    with install.Preinstaller(trees, scheme) as early:
        early.submit("b" * 64, broken)
        early.submit(sha, good)
    # no exception escapes; the build's own step installs (and reports) what is missing
    assert not trees.has("b" * 64, scheme)
    with pytest.raises(InvalidConfig, match=r"broken-1\.0"):
        trees.ensure([("b" * 64, broken)], scheme)


def test_preinstaller_given_nothing_starts_nothing(tmp_path: Path) -> None:
    import threading

    before = threading.active_count()
    with install.Preinstaller(install.InstalledTrees(tmp_path / "t"), install.debian_scheme()):
        assert threading.active_count() == before
    assert not (tmp_path / "t").exists()


def test_a_preinstaller_started_early_but_handed_nothing_ends_cleanly(tmp_path: Path) -> None:
    with install.Preinstaller(install.InstalledTrees(tmp_path / "t"), install.debian_scheme()) as e:
        e.start()  # a stale lock that then needed no new wheel (a twin had it)
    assert not any((tmp_path / "t").rglob("*.pyc"))


def _preinstalled(
    tmp_path: Path, compilers: install.Compilers | None = None, count: int = 2
) -> tuple[list[tuple[str, Path]], install.Scheme, install.InstalledTrees]:
    """``count`` wheels handed one by one to a preinstaller (its trees taking a compiler from
    ``compilers``), which has then been left."""
    wheels = _wheels(tmp_path, count)
    scheme = install.debian_scheme()
    trees = install.InstalledTrees(tmp_path / "trees", compilers=compilers)
    with install.Preinstaller(trees, scheme) as early:
        for wheel in wheels:
            early.submit(*wheel)
    return wheels, scheme, trees


def test_a_compiler_started_ahead_is_the_one_the_next_install_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wheeldock.edges import process

    spawned: list[list[str]] = []
    real_spawn = process.spawn

    def spy(argv: Any, **kw: Any) -> Any:
        spawned.append([str(a) for a in argv])
        return real_spawn(argv, **kw)

    monkeypatch.setattr(process, "spawn", spy)
    compilers = install.Compilers()
    compilers.start("3.11")
    compilers.start("3.11")  # once per interpreter and worker count
    assert len(spawned) == 1
    wheels, scheme, trees = _preinstalled(tmp_path, compilers)
    assert len(spawned) == 1  # the install fed the compiler started ahead; none other started
    assert all(trees.has(sha, scheme) for sha, _ in wheels)
    assert compilers.spares() == []


def test_leaving_the_preinstaller_waits_for_the_trees_not_for_the_compiler_to_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exited = tmp_path / "exited"
    slow = tmp_path / "slow_exit.py"  # the real compiler, then a slow interpreter shutdown
    slow.write_text(
        "import runpy, sys, time\n"
        f"sys.argv[0] = {str(install._COMPILER)!r}\n"
        f"runpy.run_path({str(install._COMPILER)!r}, run_name='__main__')\n"
        f"time.sleep(3)\nopen({str(exited)!r}, 'w').close()\n"
    )
    monkeypatch.setattr(install, "_COMPILER", slow)
    wheels, scheme, trees = _preinstalled(tmp_path)
    assert all(trees.has(sha, scheme) for sha, _ in wheels)
    tree = trees.path(wheels[0][0], scheme)
    assert (tree / SITE / "pkg0/__pycache__/__init__.cpython-311.pyc").is_file()
    assert not exited.exists()  # the compiler was still on its way out


def test_a_compiler_started_ahead_and_never_used_ends_with_its_stdin() -> None:
    compilers = install.Compilers()
    compilers.start("3.11")
    (proc,) = compilers.spares()
    compilers.close()
    assert proc.returncode == 0 and compilers.spares() == []


def test_bytecode_does_not_depend_on_which_tree_the_compiler_got_first(tmp_path: Path) -> None:
    # A first tree of a few files is compiled in the compiler's own process, a big one in its
    # pool; string constants the compiler's process also holds (json's C encoder interns "{",
    # "[", "[]", ... on first use) marshal differently unless both start from the same state.
    source = "\n".join(
        f"def f{i}(x):\n    return ['{{', '}}', '[', ']', '{{}}', '[]', 'null', 'true', x]"
        for i in range(5)
    )
    small = ("a" * 64, make_wheel(tmp_path / "d", "small", "1.0", {"small/__init__.py": source}))
    files = {f"big/m{i}.py": source for i in range(60)}  # more than one chunk: the pool at once
    big = ("b" * 64, make_wheel(tmp_path / "d", "big", "1.0", files))
    scheme = install.debian_scheme()
    first_small = install.InstalledTrees(tmp_path / "one").ensure([small, big], scheme)
    first_big = install.InstalledTrees(tmp_path / "two").ensure([big, small], scheme)
    assert [_tree_digest(t) for t in first_small] == [_tree_digest(t) for t in first_big[::-1]]


def _compiler_processes() -> set[int]:
    """Running processes of this checkout's compiler (its pool's workers share its argv)."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(install._COMPILER).encode() in argv:
            found.add(int(proc.name))
    return found


def test_a_failed_install_leaves_no_compiler_processes_behind(tmp_path: Path) -> None:
    from wheeldock.errors import DigestMismatch

    before = _compiler_processes()
    wheels = _wheels(tmp_path, 3)

    def arriving() -> Iterator[tuple[str, Path]]:
        yield from wheels[:2]  # the second starts the compiler's pool of workers
        deadline = time.monotonic() + 15
        while len(_compiler_processes() - before) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # the compiler and its two workers
        raise DigestMismatch("a cached wheel is damaged", expected="sha256:a", actual="sha256:b")

    trees = install.InstalledTrees(tmp_path / "trees", staging=tmp_path / "ram")
    with pytest.raises(DigestMismatch), mock.patch.object(install, "_ALL_CORES", 2):
        trees.ensure_each([sha for sha, _ in wheels], arriving(), install.debian_scheme())
    deadline = time.monotonic() + 15
    while _compiler_processes() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _compiler_processes() - before
