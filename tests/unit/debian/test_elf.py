"""The ELF reader: DT_NEEDED, SONAME, RPATH/RUNPATH and machine, from bytes or file objects."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from support.libs import make_elf

from wheeldock.debian import elf
from wheeldock.errors import InvalidElf

DATA = Path(__file__).parents[2] / "data" / "elf"


def test_reads_needed_and_runpath_of_a_gcc_built_library() -> None:
    info = elf.read_elf((DATA / "ext.so").read_bytes(), name="ext.so")
    assert info.needed == ("libvendored.so.1", "libm.so.6")
    assert info.runpath == ("$ORIGIN/../pkg.libs",)
    assert info.rpath == ()
    assert info.soname is None
    assert info.arch == "amd64"
    assert info.elf_type == "ET_DYN"


def test_reads_soname_of_a_gcc_built_library() -> None:
    with (DATA / "libvendored.so.1").open("rb") as fh:
        info = elf.read_elf(fh, name="libvendored.so.1")
    assert info.soname == "libvendored.so.1"
    assert info.needed == ()


def test_symbol_versions_needed_and_defined_are_read() -> None:
    user = elf.read_elf((DATA / "needs-ver2.so").read_bytes(), name="needs-ver2.so")
    assert user.version_needs == (("libver.so.1", ("VER_2",)),)
    new = elf.read_elf((DATA / "libver-new.so.1").read_bytes(), name="new")
    old = elf.read_elf((DATA / "libver-old.so.1").read_bytes(), name="old")
    assert (new.version_defs, old.version_defs) == (("VER_1", "VER_2"), ("VER_1",))


def test_file_object_and_bytes_give_the_same_answer() -> None:
    data = make_elf(needed=["libz.so.1"], soname="libq.so.3", rpath="/opt/q/lib")
    assert elf.read_elf(data, name="x") == elf.read_elf(io.BytesIO(data), name="x")


@pytest.mark.parametrize(
    ("machine", "arch", "elf_class"),
    [("x86_64", "amd64", 64), ("aarch64", "arm64", 64), ("arm", "armhf", 32), ("i386", "i386", 32)],
)
def test_machine_maps_to_the_debian_architecture(machine: str, arch: str, elf_class: int) -> None:
    info = elf.read_elf(make_elf(needed=["libffi.so.8"], machine=machine), name="m.so")
    assert info.arch == arch
    assert info.elf_class == elf_class
    assert info.needed == ("libffi.so.8",)


def test_runpath_wins_over_rpath_and_origin_is_expanded() -> None:
    both = elf.read_elf(make_elf(rpath="/old", runpath="$ORIGIN/../a.libs:/x"), name="b")
    assert both.search_path("/site/pkg") == ("/site/a.libs", "/x")
    only_rpath = elf.read_elf(make_elf(rpath="${ORIGIN}/lib"), name="r")
    assert only_rpath.search_path("/site/pkg") == ("/site/pkg/lib",)


def test_a_file_that_is_not_elf_is_refused_naming_it() -> None:
    with pytest.raises(InvalidElf) as caught:
        elf.read_elf((DATA / "not-elf.so").read_bytes(), name="pkg/not-elf.so")
    assert "pkg/not-elf.so" in caught.value.message
    assert "not an ELF file" in caught.value.message


@pytest.mark.parametrize("cut", [5, 40, 64, 120, 300])
def test_a_truncated_elf_is_refused_naming_it(cut: int) -> None:
    data = (DATA / "ext.so").read_bytes()[:cut]
    with pytest.raises(InvalidElf) as caught:
        elf.read_elf(data, name="trunc.so")
    assert str(caught.value.path) == "trunc.so"
    assert "corrupt or truncated" in caught.value.what


def test_the_truncated_golden_file_is_refused() -> None:
    with pytest.raises(InvalidElf):
        elf.read_elf((DATA / "truncated.so").read_bytes(), name="truncated.so")


@pytest.mark.parametrize(
    ("name", "shared"),
    [
        ("_cffi_backend.cpython-311-x86_64-linux-gnu.so", True),
        ("cffi.libs/libffi-40e1b0ba.so.8.1.2", True),
        ("libz.so.1", True),
        ("pkg/abi3.so", True),
        ("pkg/module.py", False),
        ("pkg/data.so.txt", False),
        ("pkg/README.so.md", False),
    ],
)
def test_shared_library_names_are_recognised(name: str, shared: bool) -> None:
    assert elf.looks_like_shared_library(name) is shared


def _pyelftools_view(path: Path) -> tuple[object, ...]:
    """The same facts read by pyelftools through the section headers (a second opinion)."""
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection

    needed: list[str] = []
    soname = None
    runpath: list[str] = []
    needs: list[tuple[str, tuple[str, ...]]] = []
    defs: list[str] = []
    with path.open("rb") as fh:
        for section in ELFFile(fh).iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags():
                    kind = tag.entry.d_tag
                    if kind == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif kind == "DT_SONAME":
                        soname = tag.soname
                    elif kind == "DT_RUNPATH":
                        runpath += tag.runpath.split(":")
            elif isinstance(section, GNUVerNeedSection):
                for verneed, aux in section.iter_versions():
                    needs.append((verneed.name, tuple(a.name for a in aux)))
            elif isinstance(section, GNUVerDefSection):
                for verdef, aux in section.iter_versions():
                    names = [a.name for a in aux]
                    if names and not verdef["vd_flags"] & 1:
                        defs.append(names[0])
    return (tuple(needed), soname, tuple(runpath), tuple(needs), tuple(defs))


@pytest.mark.parametrize(
    "path",
    [
        DATA / "ext.so",
        DATA / "libver-new.so.1",
        DATA / "needs-ver2.so",
        Path("/lib/x86_64-linux-gnu/libc.so.6"),
        Path("/usr/lib/x86_64-linux-gnu/libz.so.1"),
    ],
    ids=lambda p: p.name,
)
def test_the_reader_agrees_with_pyelftools(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    info = elf.read_elf(path.read_bytes(), name=str(path))
    mine = (info.needed, info.soname, info.runpath, info.version_needs, info.version_defs)
    assert mine == _pyelftools_view(path)
