"""Fixtures for the ELF scan and the image check (``wheeldock libs`` / ``check``).

* :func:`make_elf` writes small, valid ELF shared objects (any machine, any DT_NEEDED,
  SONAME, RPATH, RUNPATH) so unit tests need no compiler; :func:`make_wheel` zips files into a
  wheel; :func:`fake_index` builds a tiny Debian index from hand-written Contents/Packages text.
* Session fixtures build real wheels once: cffi, pyyaml and psycopg2 from source (in parallel,
  about a minute), manylinux wheels that vendor their libraries, and aarch64 wheels fetched
  with ``uv`` for a foreign-architecture scan.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from wheeldock.debian import archive as debian

_MACHINES = {"x86_64": 62, "aarch64": 183, "arm": 40, "i386": 3}
_DT = {"NULL": 0, "NEEDED": 1, "STRTAB": 5, "STRSZ": 10, "SONAME": 14, "RPATH": 15, "RUNPATH": 29}


def make_elf(
    *,
    needed: Iterable[str] = (),
    soname: str | None = None,
    rpath: str | None = None,
    runpath: str | None = None,
    machine: str = "x86_64",
    version_needs: Mapping[str, Sequence[str]] | None = None,
    version_defs: Sequence[str] = (),
    interpreter: str | None = None,
) -> bytes:
    """A minimal ELF shared object: one PT_LOAD over the whole file and a PT_DYNAMIC whose
    DT_STRTAB points into it; no section headers (as ``ld.so`` needs none). ``version_needs``
    (library → symbol versions, DT_VERNEED) and ``version_defs`` (DT_VERDEF) are written for
    64-bit machines, as the linker writes them (a libc.so.6 defining GLIBC_2.2.5…GLIBC_2.36, an
    extension needing GLIBC_2.38). With ``interpreter`` (``/lib64/ld-linux-x86-64.so.2``) a
    PT_INTERP makes it a program (64-bit only)."""
    elf32 = machine in ("arm", "i386")
    needs = dict(version_needs or {})
    assert not (elf32 and (needs or version_defs or interpreter)), "64-bit only"
    strings = b"\0"
    offsets: dict[str, int] = {}
    versions = [v for vs in needs.values() for v in vs]
    names = [*needed, *(n for n in (soname, rpath, runpath) if n is not None), *needs]
    for name in [*names, *versions, *version_defs, *([interpreter] if interpreter else [])]:
        if name not in offsets:
            offsets[name] = len(strings)
            strings += name.encode() + b"\0"
    dyn: list[tuple[int, int]] = [(_DT["NEEDED"], offsets[n]) for n in needed]
    for tag, value in (("SONAME", soname), ("RPATH", rpath), ("RUNPATH", runpath)):
        if value is not None:
            dyn.append((_DT[tag], offsets[value]))
    ehsize, phentsize = (52, 32) if elf32 else (64, 56)
    phoff = ehsize
    phnum = 3 if interpreter else 2
    str_off = phoff + phnum * phentsize
    dyn_off = (str_off + len(strings) + 7) & ~7
    count = len(dyn) + 3 + (2 if needs else 0) + (2 if version_defs else 0)
    tables_off = dyn_off + count * (8 if elf32 else 16)
    tables = _version_tables(needs, version_defs, offsets)
    if needs:
        dyn += [(0x6FFFFFFE, tables_off), (0x6FFFFFFF, len(needs))]
    if version_defs:
        dyn += [(0x6FFFFFFC, tables_off + 16 * len(needs) + 16 * len(versions))]
        dyn += [(0x6FFFFFFD, len(version_defs))]
    dyn.append((_DT["STRTAB"], str_off))
    dyn.append((_DT["STRSZ"], len(strings)))
    dyn.append((_DT["NULL"], 0))
    dyn_fmt = "<ii" if elf32 else "<qQ"
    dyn_bytes = b"".join(struct.pack(dyn_fmt, t, v) for t, v in dyn)
    total = dyn_off + len(dyn_bytes) + len(tables)
    ident = b"\x7fELF" + bytes([1 if elf32 else 2, 1, 1, 0]) + bytes(8)
    if elf32:
        fields = (3, _MACHINES[machine], 1, 0, phoff, 0, 0, ehsize, phentsize, 2, 40, 0, 0)
        header = ident + struct.pack("<HHIIIIIHHHHHH", *fields)
        load = struct.pack("<IIIIIIII", 1, 0, 0, 0, total, total, 6, 0x1000)
        dynamic = struct.pack(
            "<IIIIIIII", 2, dyn_off, dyn_off, dyn_off, len(dyn_bytes), len(dyn_bytes), 6, 4
        )
    else:
        fields = (3, _MACHINES[machine], 1, 0, phoff, 0, 0, ehsize, phentsize, phnum, 64, 0, 0)
        header = ident + struct.pack("<HHIQQQIHHHHHH", *fields)
        load = struct.pack("<IIQQQQQQ", 1, 6, 0, 0, 0, total, total, 0x1000)
        dynamic = struct.pack(
            "<IIQQQQQQ", 2, 6, dyn_off, dyn_off, dyn_off, len(dyn_bytes), len(dyn_bytes), 8
        )
        if interpreter:
            at, size = str_off + offsets[interpreter], len(interpreter) + 1
            dynamic += struct.pack("<IIQQQQQQ", 3, 4, at, at, at, size, size, 1)
    body = header + load + dynamic + strings
    return body + bytes(dyn_off - len(body)) + dyn_bytes + tables


def _version_tables(
    needs: Mapping[str, Sequence[str]], defs: Sequence[str], offsets: Mapping[str, int]
) -> bytes:
    """Verneed entries (16 bytes, each followed by its 16-byte Vernaux entries), then Verdef
    entries (20 bytes, one 8-byte Verdaux and 4 bytes of padding). Offsets inside are relative
    to each entry, as in the ELF spec."""
    out = b""
    for number, (library, versions) in enumerate(needs.items()):
        size = 16 + 16 * len(versions)
        following = size if number + 1 < len(needs) else 0
        out += struct.pack("<HHIII", 1, len(versions), offsets[library], 16, following)
        for index, version in enumerate(versions):
            last = index + 1 == len(versions)
            out += struct.pack("<IHHII", 0, 0, 2 + index, offsets[version], 0 if last else 16)
    for number, version in enumerate(defs):
        following = 32 if number + 1 < len(defs) else 0
        out += struct.pack("<HHHHIII", 1, 0, 2 + number, 1, 0, 20, following)
        out += struct.pack("<II", offsets[version], 0) + bytes(4)
    return out


def make_wheel(path: Path, files: Mapping[str, bytes]) -> Path:
    """A wheel (a zip) holding ``files`` plus a minimal dist-info."""
    name, version = path.name.split("-")[:2]
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
        archive.writestr(f"{name}-{version}.dist-info/METADATA", f"Name: {name}\n")
    return path


def write_tree(root: Path, files: Mapping[str, bytes | str]) -> Path:
    """Files under ``root``; a ``str`` value makes a symlink with that target."""
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            target.symlink_to(content)
        else:
            target.write_bytes(content)
    return root


#: Hand-written archive data: enough to exercise preferences, -dev lookup and closures.
FAKE_CONTENTS = b"""\
usr/lib/x86_64-linux-gnu/libyaml-0.so.2                     libs/libyaml-0-2
usr/lib/x86_64-linux-gnu/libyaml.so                         libdevel/libyaml-dev
usr/lib/x86_64-linux-gnu/libpq.so.5                         libs/libpq5
usr/lib/x86_64-linux-gnu/libpq.so                           libdevel/libpq-dev
usr/lib/x86_64-linux-gnu/libecpg.so                         libdevel/libecpg-dev
usr/lib/x86_64-linux-gnu/libgomp.so.1                       libs/libgomp1
usr/lib32/libgomp.so.1                                      libs/lib32gomp1
usr/lib/debug/usr/lib/x86_64-linux-gnu/libgomp.so.1         debug/libgomp1-dbg
usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0  libs/libopenblas0-pthread
usr/lib/python3/dist-packages/_cffi_backend.so              python/python3-cffi-backend
usr/share/doc/libfoo/libfoo.so.1                            doc/libfoo-doc
usr/lib/x86_64-linux-gnu/libshared.so.1                     libs/liba1,libs/libb1
usr/lib/x86_64-linux-gnu/libssl.so.3                        libs/libssl3
usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0               libs/libpython3.11
"""
FAKE_PACKAGES = """\
Package: libyaml-0-2
Source: libyaml
Version: 0.2.5-1
Architecture: amd64
Depends: libc6 (>= 2.14)
Filename: pool/main/liby/libyaml/libyaml-0-2_0.2.5-1_amd64.deb
Size: 5
SHA256: {yaml_sha}

Package: libyaml-dev
Source: libyaml
Version: 0.2.5-1
Architecture: amd64
Depends: libyaml-0-2 (= 0.2.5-1)

Package: libpq5
Source: postgresql-15
Version: 15.5-0+deb12u1
Architecture: amd64
Depends: libc6 (>= 2.33), libssl3 (>= 3.0.0), libgssapi-krb5-2 | heimdal-gssapi
Filename: pool/main/p/postgresql-15/libpq5_15.5-0+deb12u1_amd64.deb
Size: 5
SHA256: {pq_sha}

Package: libpq-dev
Source: postgresql-15
Version: 15.5-0+deb12u1
Architecture: amd64

Package: libecpg-dev
Source: postgresql-15
Version: 15.5-0+deb12u1
Architecture: amd64

Package: libssl3
Source: openssl
Version: 3.0.11-1
Architecture: amd64
Depends: libc6 (>= 2.34)
Filename: pool/main/o/openssl/libssl3_3.0.11-1_amd64.deb
Size: 5
SHA256: {ssl_sha}

Package: libkrb5-gssapi
Version: 1.0
Architecture: amd64
Provides: libgssapi-krb5-2

Package: libc6
Source: glibc
Version: 2.36-9
Architecture: amd64
Priority: required

Package: libgomp1
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14
Architecture: amd64

Package: libgcc-12-dev
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14
Architecture: amd64

Package: dpkg
Version: 1.21
Architecture: amd64
Essential: yes
"""
FAKE_DEBS = {"yaml_sha": b"yaml!", "pq_sha": b"pq!!!", "ssl_sha": b"ssl!!"}


def fake_packages_text() -> str:
    import hashlib

    return FAKE_PACKAGES.format(**{k: hashlib.sha256(v).hexdigest() for k, v in FAKE_DEBS.items()})


@pytest.fixture
def libs_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty WHEELDOCK_CACHE for one test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("WHEELDOCK_CACHE", str(folder))
    return folder


@pytest.fixture
def fake_index(libs_cache: Path) -> Path:
    """The hand-written index, in place for (bookworm, amd64) in the test's cache."""
    path = debian.index_path("bookworm", "amd64")
    debian.build_index(
        path,
        contents=io.BytesIO(FAKE_CONTENTS),
        packages=io.BytesIO(fake_packages_text().encode()),
        suite="bookworm",
        arch="amd64",
    )
    return path


# --------------------------------------------------------------------------- real wheels


@pytest.fixture(scope="session")
def libs_shared_cache(base_cache: Path) -> Path:
    """The session's cache shared with the base fixtures (so the slim rootfs is built once)
    and holding the real Debian indexes (downloaded once per session)."""
    return base_cache


@pytest.fixture
def shared_cache(libs_shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WHEELDOCK_CACHE", str(libs_shared_cache))
    return libs_shared_cache


def _pip(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"{proc.args} failed:\n{out.decode(errors='replace')[-3000:]}")


#: Builds the three from source in the builder base, in parallel; build dependencies come
#: as wheels, only the three compile. The dev packages come from Debian's archive.
_BUILD_SCRIPT = """
set -e
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
    libpq-dev libyaml-dev >/dev/null
pids=""
for name in cffi pyyaml psycopg2; do
    python3 -m pip wheel --quiet --no-deps --no-cache-dir --no-binary "$name" \\
        --wheel-dir "/out/$name" "$name" &
    pids="$pids $!"
done
for pid in $pids; do wait "$pid"; done
chmod -R a+rwX /out
"""


@pytest.fixture(scope="session")
def source_wheels(
    base_images: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """cffi, pyyaml and psycopg2 built from source in ``wheeldock/python:3.11-builder``
    (Debian bookworm), as a multi-stage build's builder stage does: they link bookworm's
    libffi, libyaml and libpq. (Built on this host instead, they could need a newer glibc
    than the bases have, which ``wheeldock check`` reports.) The proxy CA is mounted for
    pip, never copied into an image."""
    folder = tmp_path_factory.mktemp("source-wheels")
    ca = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    inside = "/etc/ssl/certs/wheeldock-ca.pem"
    subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "host",
            "-v",
            f"{ca}:{inside}:ro",
            "-e",
            f"PIP_CERT={inside}",
            "-e",
            f"SSL_CERT_FILE={inside}",
            "-v",
            f"{folder}:/out",
            base_images["builder"].tags[0],
            "sh",
            "-c",
            _BUILD_SCRIPT,
        ],
        check=True,
        capture_output=True,
        timeout=1200,
    )
    return {name: next((folder / name).glob("*.whl")) for name in ("cffi", "pyyaml", "psycopg2")}


@pytest.fixture(scope="session")
def manylinux_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheelhouse of manylinux x86_64 wheels that vendor their libraries."""
    folder = tmp_path_factory.mktemp("manylinux-wheels")
    _wait(
        [
            _pip(
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary",
                ":all:",
                # pip takes platform tags literally: list the manylinux levels a glibc 2.36
                # base accepts that wheels are published for
                *(f"--platform=manylinux_{v}_x86_64" for v in ("2_17", "2_28", "2_34", "2_36")),
                "--platform=manylinux2014_x86_64",
                "--implementation",
                "cp",
                "--python-version",
                "3.11",
                "--dest",
                str(folder),
                "pillow",
                "cffi",
                "psycopg2-binary",
            )
        ]
    )
    return folder


@pytest.fixture(scope="session")
def arm64_site_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cffi and pyyaml for aarch64, installed with uv into a folder (no emulation)."""
    folder = tmp_path_factory.mktemp("arm64-site-packages")
    uv = Path(sys.executable).with_name("uv")
    subprocess.run(
        [
            str(uv),
            "pip",
            "install",
            "--quiet",
            "--target",
            str(folder),
            "--python-platform",
            "aarch64-manylinux_2_36",
            "--python-version",
            "3.11",
            "--only-binary",
            ":all:",
            "--no-deps",
            "cffi",
            "pyyaml",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return folder
