"""What a build costs: the peak RSS of a process tree, the bytes left on disk, installed size."""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import pytest
import zstandard

from wheeldock.bench import cost
from wheeldock.oci.blobs import BlobStore

#: a child that starts a grandchild holding ~120 MB, then prints more than a pipe holds
TREE = """
import subprocess, sys
subprocess.run([sys.executable, "-c", "b = bytearray(120 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"], check=True)
sys.stdout.write("o" * 300_000)
sys.stderr.write("done")
sys.exit(3)
"""


def test_the_peak_rss_of_a_build_counts_the_descendants_it_waited_for() -> None:
    done = cost.run_measured([sys.executable, "-c", TREE], os.environ)
    assert done.returncode == 3
    assert done.stdout == "o" * 300_000 and done.stderr == "done"  # no pipe filled up
    assert done.peak_rss >= 120 * 1024 * 1024


def test_a_small_child_reports_its_own_peak_not_an_earlier_childs() -> None:
    cost.run_measured([sys.executable, "-c", TREE], os.environ)
    small = cost.run_measured([sys.executable, "-c", "pass"], os.environ)
    assert 0 < small.peak_rss < 100 * 1024 * 1024


def test_tree_bytes_counts_each_file_once_and_follows_no_symlink(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "one").write_bytes(b"x" * 1000)
    (tmp_path / "a" / "b" / "two").write_bytes(b"y" * 24)
    os.link(tmp_path / "a" / "one", tmp_path / "a" / "b" / "hardlink")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"z" * 5000)
    (tmp_path / "a" / "link").symlink_to(outside)
    assert cost.tree_bytes([tmp_path / "a"]) == 1024
    assert cost.tree_bytes([tmp_path / "a", tmp_path / "a" / "b"]) == 1024
    assert cost.tree_bytes([tmp_path / "missing"]) == 0


def test_the_deps_layers_of_a_build_result_are_listed_once_in_order() -> None:
    result = {
        "services": [
            {
                "layers": [
                    {"kind": "base", "digest": "sha256:b"},
                    {"kind": "deps", "digest": "sha256:d2"},
                    {"kind": "deps", "digest": "sha256:d1"},
                    {"kind": "app", "digest": "sha256:a1"},
                ]
            },
            {"layers": [{"kind": "deps", "digest": "sha256:d2"}, {"kind": "app", "digest": "x"}]},
        ]
    }
    assert cost.deps_layers(result) == ["sha256:d2", "sha256:d1"]
    assert cost.deps_layers({}) == []
    assert cost.deps_layers([]) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("compress", [gzip.compress, zstandard.ZstdCompressor().compress])
def test_installed_size_is_the_uncompressed_size_of_the_deps_layers(
    tmp_path: Path, compress: object
) -> None:
    store = BlobStore(tmp_path / "blobs")
    assert callable(compress)
    one = store.put_bytes(compress(b"a" * 300_000))
    two = store.put_bytes(compress(b"b" * 1234))
    assert cost.installed_bytes(store, [str(one.digest), str(two.digest)]) == 301_234
    assert cost.installed_bytes(store, []) is None
    missing = "sha256:" + "0" * 64
    assert cost.installed_bytes(store, [str(one.digest), missing]) is None
