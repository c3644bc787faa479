"""ELF files as the dynamic loader sees them: machine, DT_NEEDED, DT_SONAME, RPATH/RUNPATH.

Pure: reads bytes or a seekable binary file object, so it works on members of a wheel (zip)
or an image layer (tar) without extracting them. Only the program headers and the dynamic
segment are read (what ``ld.so`` reads), so stripped files and files without section headers
work too.
"""

from __future__ import annotations

import io
import logging
import posixpath
import re
import struct
from dataclasses import dataclass
from typing import IO, Any

from elftools.common.exceptions import ELFError
from elftools.construct import ConstructError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection
from elftools.elf.segments import InterpSegment

from wheeldock.errors import InvalidElf

log = logging.getLogger(__name__)

MAGIC = b"\x7fELF"

#: (e_machine, ELF class, little endian) -> Debian architecture.
_DEBIAN_ARCH: dict[tuple[str, int, bool], str] = {
    ("EM_X86_64", 64, True): "amd64",
    ("EM_386", 32, True): "i386",
    ("EM_AARCH64", 64, True): "arm64",
    ("EM_ARM", 32, True): "armhf",
    ("EM_PPC64", 64, True): "ppc64el",
    ("EM_S390", 64, False): "s390x",
    ("EM_RISCV", 64, True): "riscv64",
}

#: Debian architecture -> GNU multiarch triplet (the loader's per-architecture folders).
TRIPLETS: dict[str, str] = {
    "amd64": "x86_64-linux-gnu",
    "i386": "i386-linux-gnu",
    "arm64": "aarch64-linux-gnu",
    "armhf": "arm-linux-gnueabihf",
    "armel": "arm-linux-gnueabi",
    "ppc64el": "powerpc64le-linux-gnu",
    "s390x": "s390x-linux-gnu",
    "riscv64": "riscv64-linux-gnu",
}

#: What pyelftools raises on truncated or corrupt input (bugs such as AttributeError stay bugs).
_PARSE_ERRORS = (ELFError, ConstructError, struct.error, ValueError, LookupError, EOFError)

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


def _parse(stream: IO[bytes], name: str) -> ElfInfo:
    elf = ELFFile(stream)
    header = elf.header
    needed: list[str] = []
    soname: str | None = None
    rpath: list[str] = []
    runpath: list[str] = []
    interpreter: str | None = None
    for segment in elf.iter_segments():
        if isinstance(segment, InterpSegment):
            interpreter = segment.get_interp_name()
        elif isinstance(segment, DynamicSegment):
            tag: Any  # pyelftools adds needed/soname/rpath/runpath per tag kind at run time
            for tag in segment.iter_tags():
                entry = tag.entry.d_tag
                if entry == "DT_NEEDED":
                    needed.append(tag.needed)
                elif entry == "DT_SONAME":
                    soname = tag.soname
                elif entry == "DT_RPATH":
                    rpath.extend(tag.rpath.split(":"))
                elif entry == "DT_RUNPATH":
                    runpath.extend(tag.runpath.split(":"))
    needs: list[tuple[str, tuple[str, ...]]] = []
    defs: list[str] = []
    # Version sections are allocated, so even stripped libraries keep them.
    for section in elf.iter_sections():
        if isinstance(section, GNUVerNeedSection):
            for verneed, auxiliaries in section.iter_versions():
                needs.append((str(verneed.name), tuple(str(a.name) for a in auxiliaries)))
        elif isinstance(section, GNUVerDefSection):
            for verdef, auxiliaries in section.iter_versions():
                names = [str(a.name) for a in auxiliaries]
                if names and not verdef["vd_flags"] & _VER_FLG_BASE:  # BASE names the file
                    defs.append(names[0])
    return ElfInfo(
        name=name,
        machine=str(header.e_machine),
        elf_class=int(elf.elfclass),
        little_endian=bool(elf.little_endian),
        elf_type=str(header.e_type),
        needed=tuple(needed),
        soname=soname,
        rpath=tuple(rpath),
        runpath=tuple(runpath),
        interpreter=interpreter,
        version_needs=tuple(needs),
        version_defs=tuple(defs),
    )
