"""ELF files as the dynamic loader sees them: machine, DT_NEEDED, DT_SONAME, RPATH/RUNPATH.

Pure: reads bytes or a seekable binary file object, so it works on members of a wheel (zip)
or an image layer (tar) without extracting them. Only the program headers, the dynamic segment
and the symbol-version tables are read (what ``ld.so`` reads), so stripped files and files
without section headers work too. Machine names are pyelftools' (``EM_X86_64``).
"""

from __future__ import annotations

import io
import logging
import posixpath
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from elftools.elf.enums import ENUM_E_MACHINE

from wheeldock import platforms
from wheeldock.errors import InvalidElf

log = logging.getLogger(__name__)

MAGIC = b"\x7fELF"

#: (e_machine, ELF class, little endian) -> Debian architecture; Debian architecture -> GNU
#: multiarch triplet (the loader's per-architecture folders). Both from the platforms table.
_DEBIAN_ARCH = platforms.ELF_ARCHES
TRIPLETS = platforms.TRIPLETS

#: What reading a truncated or corrupt file raises (bugs such as TypeError stay bugs).
_PARSE_ERRORS = (struct.error, ValueError, OverflowError, OSError)

_VER_FLG_BASE = 0x1

_SHARED_NAME = re.compile(r"\.so(\.[0-9][0-9A-Za-z.]*)?$")


@dataclass(frozen=True)
class ElfInfo:
    """What the dynamic loader needs to know about one ELF file.

    ``name`` is where the file was found (for messages). ``rpath``/``runpath`` are the raw
    search entries (``$ORIGIN`` not yet expanded), split at ``:``.
    """

    name: str
    machine: str
    elf_class: int
    little_endian: bool
    elf_type: str
    needed: tuple[str, ...] = ()
    soname: str | None = None
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    interpreter: str | None = None
    #: Symbol versions this file needs, per library (DT_VERNEED: ``libc.so.6`` → GLIBC_2.34…).
    version_needs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Symbol versions this file defines (DT_VERDEF: libc.so.6 defines GLIBC_2.2.5…GLIBC_2.36).
    version_defs: tuple[str, ...] = ()

    @property
    def arch(self) -> str | None:
        """The Debian architecture (``amd64``, ``arm64``…), None for machines Debian lacks."""
        return _DEBIAN_ARCH.get((self.machine, self.elf_class, self.little_endian))

    @property
    def compat_key(self) -> tuple[str, int, bool]:
        """Two ELF files can be loaded into one process only when these are equal."""
        return (self.machine, self.elf_class, self.little_endian)

    def search_path(self, origin: str) -> tuple[str, ...]:
        """This file's own search folders, ``$ORIGIN`` expanded against ``origin`` (the folder
        holding the file, absolute). As ``ld.so``: DT_RUNPATH wins and DT_RPATH is ignored
        when both are present."""
        entries = self.runpath or self.rpath
        return tuple(expand_origin(e, origin) for e in entries if e)


def expand_origin(entry: str, origin: str) -> str:
    """Replace ``$ORIGIN``/``${ORIGIN}`` in an RPATH entry and normalise the path."""
    text = entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
    return posixpath.normpath(text) if text else text


def is_elf(head: bytes) -> bool:
    return head[:4] == MAGIC


def looks_like_shared_library(name: str) -> bool:
    """Named like a shared object (``x.so``, ``libz.so.1.2.13``, ``_cffi.cpython-311-….so``)."""
    return _SHARED_NAME.search(posixpath.basename(name)) is not None


def read_elf(source: bytes | IO[bytes], *, name: str) -> ElfInfo:
    """Parse an ELF file from bytes or a seekable binary file; :class:`InvalidElf` naming
    ``name`` when it is not one or is truncated/corrupt."""
    stream: IO[bytes] = io.BytesIO(source) if isinstance(source, bytes) else source
    head = stream.read(4)
    stream.seek(0)
    if not is_elf(head):
        raise InvalidElf(
            f"is not an ELF file (starts with {head!r}, not b'\\x7fELF')",
            path=name,
            fix="rebuild the wheel that holds it, or delete the stray file; a shared library "
            "must be an ELF file",
        )
    try:
        return _parse(stream, name)
    except _PARSE_ERRORS as exc:
        raise InvalidElf(
            f"is a corrupt or truncated ELF file ({type(exc).__name__}: {exc})",
            path=name,
            fix="rebuild or re-download the wheel that holds it",
        ) from exc


class _Truncated(ValueError):
    pass


_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_DT_NEEDED, _DT_STRTAB, _DT_STRSZ, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 1, 5, 10, 14, 15, 29
_DT_VERDEF, _DT_VERDEFNUM = 0x6FFFFFFC, 0x6FFFFFFD
_DT_VERNEED, _DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF
_E_TYPES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
#: e_machine number -> its name (``EM_X86_64``).
MACHINE_NAMES: dict[int, str] = {v: k for k, v in ENUM_E_MACHINE.items() if isinstance(v, int)}
#: Bounds that a sane file stays far below; a corrupt one must not loop for ever.
_MAX_ENTRIES = 100_000


class _Image:
    """An ELF file being read: its layout (class, byte order), its loaded segments (to turn
    addresses into file offsets) and its dynamic string table once found."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        ident = self.read_at(0, 16)
        elf_class = {1: 32, 2: 64}.get(ident[4])
        endian = {1: "<", 2: ">"}.get(ident[5])
        if elf_class is None or endian is None:
            raise _Truncated(f"unknown ELF class/data bytes {ident[4]}/{ident[5]}")
        self.elf_class: int = elf_class
        self.endian: str = endian
        self.wide = elf_class == 64
        self.loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
        self.strtab = b""

    def read_at(self, offset: int, size: int) -> bytes:
        self.stream.seek(offset)
        data = self.stream.read(size)
        if len(data) != size:
            raise _Truncated(f"needs {size} bytes at offset {offset}, the file ends first")
        return data

    def unpack_at(self, fmt: str, offset: int) -> tuple[Any, ...]:
        """``fmt`` (without byte order) unpacked from the file at ``offset``."""
        fmt = self.endian + fmt
        return struct.unpack(fmt, self.read_at(offset, struct.calcsize(fmt)))

    def file_offset(self, vaddr: int) -> int:
        for start, offset, size in self.loads:
            if start <= vaddr < start + size:
                return offset + vaddr - start
        raise _Truncated(f"address {vaddr:#x} lies in no loaded segment")

    def string(self, index: int) -> str:
        if index >= len(self.strtab):
            raise _Truncated(f"string index {index} is past the string table")
        return self.strtab[index : self.strtab.index(b"\0", index)].decode(errors="replace")


def _program_headers(elf: _Image) -> tuple[int, int, tuple[int, int] | None, str | None]:
    """The ELF header's type and machine; the program headers' loaded segments (kept on
    ``elf``), dynamic segment (offset, size) and interpreter."""
    header_fmt = "HHIQQQIHHHHHH" if elf.wide else "HHIIIIIHHHHHH"
    (e_type, e_machine, _, _, e_phoff, _, _, _, e_phentsize, e_phnum, *_rest) = elf.unpack_at(
        header_fmt, 16
    )
    ph_fmt = elf.endian + ("IIQQQQQQ" if elf.wide else "IIIIIIII")
    ph_size = struct.calcsize(ph_fmt)
    if e_phnum and e_phentsize < ph_size:
        raise _Truncated(f"program header entries of {e_phentsize} bytes are too small")
    dynamic: tuple[int, int] | None = None  # (offset, filesz)
    interpreter: str | None = None
    for index in range(e_phnum):
        fields = struct.unpack(ph_fmt, elf.read_at(e_phoff + index * e_phentsize, ph_size))
        if elf.wide:
            p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = fields
        else:
            p_type, p_offset, p_vaddr, _, p_filesz, _, _, _ = fields
        if p_type == _PT_LOAD:
            elf.loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == _PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
        elif p_type == _PT_INTERP:
            raw = elf.read_at(p_offset, p_filesz)
            interpreter = raw.split(b"\0", 1)[0].decode(errors="replace")
    return e_type, e_machine, dynamic, interpreter


def _dynamic_tags(elf: _Image, dynamic: tuple[int, int] | None) -> list[tuple[int, int]]:
    """The dynamic segment's (tag, value) entries, up to its DT_NULL."""
    tags: list[tuple[int, int]] = []
    if dynamic is None:
        return tags
    dyn_fmt = elf.endian + ("qQ" if elf.wide else "iI")
    dyn_size = struct.calcsize(dyn_fmt)
    raw = elf.read_at(dynamic[0], dynamic[1] - dynamic[1] % dyn_size)
    for offset in range(0, len(raw), dyn_size):
        tag, value = struct.unpack_from(dyn_fmt, raw, offset)
        if tag == 0:
            break
        tags.append((tag, value))
    return tags


def _version_needs(elf: _Image, values: Mapping[int, int]) -> list[tuple[str, tuple[str, ...]]]:
    """The symbol versions needed (DT_VERNEED), per library file."""
    needs: list[tuple[str, tuple[str, ...]]] = []
    if _DT_VERNEED not in values:
        return needs
    offset = elf.file_offset(values[_DT_VERNEED])
    for _ in range(min(values.get(_DT_VERNEEDNUM, 0), _MAX_ENTRIES)):
        _, count, file_name, aux, following = elf.unpack_at("HHIII", offset)
        versions = []
        aux_offset = offset + aux
        for _ in range(min(count, _MAX_ENTRIES)):
            _, _, _, vna_name, vna_next = elf.unpack_at("IHHII", aux_offset)
            versions.append(elf.string(vna_name))
            aux_offset += vna_next
        needs.append((elf.string(file_name), tuple(versions)))
        if not following:
            break
        offset += following
    return needs


def _version_defs(elf: _Image, values: Mapping[int, int]) -> list[str]:
    """The symbol versions the file defines (DT_VERDEF), its BASE entry left out."""
    defs: list[str] = []
    if _DT_VERDEF not in values:
        return defs
    offset = elf.file_offset(values[_DT_VERDEF])
    for _ in range(min(values.get(_DT_VERDEFNUM, 0), _MAX_ENTRIES)):
        _, flags, _, count, _, aux, following = elf.unpack_at("HHHHIII", offset)
        if count and not flags & _VER_FLG_BASE:  # the BASE entry names the file itself
            vda_name, _ = elf.unpack_at("II", offset + aux)
            defs.append(elf.string(vda_name))
        if not following:
            break
        offset += following
    return defs


def _parse(stream: IO[bytes], name: str) -> ElfInfo:
    """Read what ``ld.so`` reads: ELF header, program headers, the dynamic segment and the
    symbol-version tables it points to.

    Done with ``struct`` on purpose: pyelftools builds every section (hash tables included)
    to find the dynamic string table, which made checking an image's ~1,000 libraries take
    over a minute; this takes milliseconds per file.
    """
    elf = _Image(stream)
    e_type, e_machine, dynamic, interpreter = _program_headers(elf)
    tags = _dynamic_tags(elf, dynamic)
    values = dict(tags)
    if _DT_STRTAB in values:
        elf.strtab = elf.read_at(elf.file_offset(values[_DT_STRTAB]), values.get(_DT_STRSZ, 0))
    needs = _version_needs(elf, values)
    defs = _version_defs(elf, values)
    string = elf.string
    return ElfInfo(
        name=name,
        machine=str(MACHINE_NAMES.get(e_machine, e_machine)),
        elf_class=elf.elf_class,
        little_endian=elf.endian == "<",
        elf_type=_E_TYPES.get(e_type, str(e_type)),
        needed=tuple(string(v) for t, v in tags if t == _DT_NEEDED),
        soname=string(values[_DT_SONAME]) if _DT_SONAME in values else None,
        rpath=tuple(p for t, v in tags if t == _DT_RPATH for p in string(v).split(":")),
        runpath=tuple(p for t, v in tags if t == _DT_RUNPATH for p in string(v).split(":")),
        interpreter=interpreter,
        version_needs=tuple(needs),
        version_defs=tuple(defs),
    )
