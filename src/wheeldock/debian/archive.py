"""Debian's archive as data: which package ships a shared library, what a package depends
on, and its ``.deb`` files.

The source of truth is the archive itself: ``dists/<suite>/main/Contents-<arch>.gz`` (file →
package) and ``dists/<suite>/main/binary-<arch>/Packages.xz`` (package → version, source,
depends, file name, SHA256), both checked against the SHA256 sums in the suite's ``Release``
file. They are downloaded once per (suite, arch) and reduced to a small SQLite index under
``cache_dir("debian", suite)``, so a lookup costs a millisecond. The network goes to the
Debian mirror only (``WHEELDOCK_DEBIAN_MIRROR`` overrides ``http://deb.debian.org/debian``).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import logging
import lzma
import os
import posixpath
import re
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
from isal import igzip

from wheeldock.debian.elf import TRIPLETS
from wheeldock.edges.fsutil import atomic_writer, file_lock
from wheeldock.edges.paths import cache_dir
from wheeldock.errors import DigestMismatch, DownloadFailed, InvalidArchive, NotFound

log = logging.getLogger(__name__)

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SUITE = "bookworm"
#: Bumped when the derived index's schema or content rules change (old indexes are rebuilt).
INDEX_VERSION = 1

#: Library files: ``libz.so.1``, ``ld-linux-x86-64.so.2``, ``libpq.so`` (the -dev symlink).
_LIB_FILE = re.compile(
    rb"((?:usr/)?(?:local/)?lib[^/ ]*/(?:[^ ]*/)?([^/ ]+\.so(?:\.[0-9][^/ ]*)?))[ \t]+(\S+)$"
)
_SO_LINE_END = re.compile(rb"\.so(?:\.[0-9][^\s/]*)?[ \t]+\S+$", re.M)
_PACKAGES_FIELD = re.compile(
    r"^(Package|Source|Version|Architecture|Depends|Pre-Depends|Provides|Filename|SHA256|Size"
    r"|Essential|Priority): *(.*)$",
    re.M,
)
#: Files under these never answer a DT_NEEDED (Python/Perl modules, debug symbols).
_NOT_LIBRARIES = re.compile(r"/(?:python[0-9.]*|perl[0-9.]*|debug)/")


def mirror() -> str:
    return os.environ.get("WHEELDOCK_DEBIAN_MIRROR", DEFAULT_MIRROR).rstrip("/")


# --------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class Candidate:
    """A package that ships a file with the wanted name, and where it puts it."""

    package: str
    path: str  # in the package, without a leading "/"


@dataclass(frozen=True)
class PackageInfo:
    """One binary package's stanza in the Packages index (the fields wheeldock uses)."""

    name: str
    version: str
    architecture: str
    source: str
    depends: str = ""
    pre_depends: str = ""
    provides: str = ""
    filename: str = ""
    sha256: str = ""
    size: int = 0
    essential: bool = False
    priority: str = ""

    def relations(self) -> list[list[str]]:
        """Pre-Depends then Depends, as groups of alternatives (names only)."""
        return parse_relations(self.pre_depends) + parse_relations(self.depends)


@dataclass(frozen=True)
class DebMember:
    """One entry of a ``.deb``'s ``data.tar``. ``path`` has no leading ``./`` or ``/``;
    ``data`` holds a regular file's bytes (None for other kinds)."""

    path: str
    kind: str  # "file" | "dir" | "symlink" | "hardlink" | "other"
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    linkname: str = ""
    data: bytes | None = None


# --------------------------------------------------------------------------- parsing (pure)


def parse_relations(value: str) -> list[list[str]]:
    """``"libc6 (>= 2.34), libssl3 | libssl1.1, foo:any"`` → ``[["libc6"], ["libssl3",
    "libssl1.1"], ["foo"]]``. Versions and architecture qualifiers are dropped: one suite has
    one version of each package."""
    groups: list[list[str]] = []
    for group in value.split(","):
        names = []
        for alternative in group.split("|"):
            name = re.split(r"[\s(\[<]", alternative.strip(), maxsplit=1)[0]
            name = name.split(":", 1)[0]
            if name:
                names.append(name)
        if names:
            groups.append(names)
    return groups


def parse_stanzas(text: str) -> Iterator[dict[str, str]]:
    """Deb822 paragraphs (Packages, dpkg status) as dicts; continuation lines are joined."""
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if not line:
                continue
            if line[0] in " \t":
                if key is not None:
                    fields[key] += "\n" + line.strip()
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        if fields:
            yield fields


def package_info(fields: dict[str, str]) -> PackageInfo:
    name = fields["Package"]
    source = fields.get("Source", name).split(" ", 1)[0]
    return PackageInfo(
        name=name,
        version=fields.get("Version", ""),
        architecture=fields.get("Architecture", ""),
        source=source,
        depends=fields.get("Depends", ""),
        pre_depends=fields.get("Pre-Depends", ""),
        provides=fields.get("Provides", ""),
        filename=fields.get("Filename", ""),
        sha256=fields.get("SHA256", ""),
        size=int(fields.get("Size", "0") or 0),
        essential=fields.get("Essential", "no") == "yes",
        priority=fields.get("Priority", ""),
    )


def parse_contents(
    stream: IO[bytes], *, block_size: int = 4 << 20
) -> Iterator[tuple[str, str, str]]:
    """Library entries of a Contents index as (soname, path, package); one row per package
    when a path lists several (``libs/a,libs/b``). Reads ``stream`` in blocks: a regex finds
    the few ``.so`` lines among 1.6 million at C speed, Python only looks at those."""
    for buf in _whole_blocks(stream, b"\n", block_size):
        for hit in _SO_LINE_END.finditer(buf):
            start = buf.rfind(b"\n", 0, hit.start()) + 1
            match = _LIB_FILE.match(buf, start, hit.end())
            if match is None:
                continue
            path = match.group(1).decode(errors="replace")
            if _NOT_LIBRARIES.search("/" + path):
                continue
            soname = match.group(2).decode(errors="replace")
            for qualified in match.group(3).decode(errors="replace").split(","):
                yield soname, path, qualified.rsplit("/", 1)[-1]


def _whole_blocks(stream: IO[bytes], end: bytes, block_size: int) -> Iterator[bytes]:
    """``stream`` in blocks of about ``block_size`` bytes, each cut after the last ``end`` in it
    and the rest carried into the next, so no record that ``end`` closes is split (nor, ``end``
    being ASCII, a UTF-8 character); the last block is what follows the last ``end``."""
    tail = b""
    while block := stream.read(block_size):
        buf = tail + block
        cut = buf.rfind(end)
        cut = 0 if cut < 0 else cut + len(end)
        if cut:
            yield buf[:cut]
        tail = buf[cut:]
    if tail:
        yield tail


def parse_packages(text: str) -> Iterator[PackageInfo]:
    """The stanzas of a Packages index. Only single-line fields are read, with one regex per
    stanza (several times faster than a general deb822 parser on 60,000 stanzas)."""
    for block in text.split("\n\n"):
        fields = dict(_PACKAGES_FIELD.findall(block))
        if "Package" in fields:
            yield package_info(fields)


def parse_packages_stream(stream: IO[bytes], *, block_size: int = 4 << 20) -> Iterator[PackageInfo]:
    """:func:`parse_packages` of the uncompressed index read from ``stream`` in blocks, so the
    whole text (bookworm's is 45 MB) is never held at once."""
    for block in _whole_blocks(stream, b"\n\n", block_size):
        yield from parse_packages(block.decode("utf-8", errors="replace"))


def parse_release_sha256(text: str) -> dict[str, tuple[str, int]]:
    """The ``SHA256:`` section of a Release file: path → (hex digest, size)."""
    sums: dict[str, tuple[str, int]] = {}
    in_section = False
    for line in text.splitlines():
        if not line.startswith(" "):
            in_section = line.strip() == "SHA256:"
            continue
        if in_section:
            parts = line.split()
            if len(parts) == 3:
                sums[parts[2]] = (parts[0], int(parts[1]))
    return sums


def _package_rank(candidate: Candidate, soname: str, arch: str) -> tuple[int, int, int, int, str]:
    """Sort key: lower is preferred when several packages ship one file name."""
    folder = posixpath.dirname(candidate.path)
    triplet = TRIPLETS.get(arch, "")
    if folder in (f"usr/lib/{triplet}", f"lib/{triplet}"):
        place = 0
    elif folder in ("usr/lib", "lib", "usr/lib64", "lib64"):
        place = 1
    else:
        place = 2  # private folders (usr/lib/<triplet>/gforth/…) need an RPATH to be found
    name = candidate.package
    unwanted = int(name.endswith(("-dbg", "-dbgsym", "-dev")) or "-dbg-" in name)
    stem = re.sub(r"[^a-z0-9]", "", soname.split(".so", 1)[0].lower())
    alike = 0 if re.sub(r"[^a-z0-9]", "", name).startswith(stem) else 1
    return (place, unwanted, alike, len(name), name)


# --------------------------------------------------------------------------- the index


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (soname TEXT NOT NULL, path TEXT NOT NULL, package TEXT NOT NULL);
CREATE TABLE packages (
  name TEXT PRIMARY KEY, version TEXT, architecture TEXT, source TEXT, depends TEXT,
  pre_depends TEXT, provides TEXT, filename TEXT, sha256 TEXT, size INTEGER,
  essential INTEGER, priority TEXT);
CREATE TABLE provides (virtual TEXT NOT NULL, package TEXT NOT NULL);
"""
_INDEXES = """
CREATE INDEX files_soname ON files (soname);
CREATE INDEX files_package ON files (package);
CREATE INDEX packages_source ON packages (source);
CREATE INDEX provides_virtual ON provides (virtual);
"""


def _package_rows(
    infos: Iterable[PackageInfo], provides: list[tuple[str, str]]
) -> Iterator[tuple[object, ...]]:
    """The packages table's rows of ``infos``, one at a time; their virtual packages are
    appended to ``provides`` on the way."""
    for info in infos:
        for group in parse_relations(info.provides):
            provides.extend((virtual, info.name) for virtual in group)
        yield (
            info.name,
            info.version,
            info.architecture,
            info.source,
            info.depends,
            info.pre_depends,
            info.provides,
            info.filename,
            info.sha256,
            info.size,
            int(info.essential),
            info.priority,
        )


def build_index(
    db_path: Path,
    *,
    contents: IO[bytes],
    packages: IO[bytes],
    suite: str,
    arch: str,
    release_date: str = "",
) -> None:
    """Write the derived SQLite index (atomically: a temp file renamed over ``db_path``)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{db_path.name}.", suffix=".tmp", dir=db_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()
        conn = sqlite3.connect(tmp)
        try:
            conn.executescript(_SCHEMA)
            conn.executemany("INSERT INTO files VALUES (?, ?, ?)", parse_contents(contents))
            provides: list[tuple[str, str]] = []
            conn.executemany(
                "INSERT OR REPLACE INTO packages VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                _package_rows(parse_packages_stream(packages), provides),
            )
            conn.executemany("INSERT INTO provides VALUES (?, ?)", provides)
            conn.executescript(_INDEXES)
            meta = {
                "version": str(INDEX_VERSION),
                "suite": suite,
                "arch": arch,
                "release_date": release_date,
                "built": str(int(time.time())),
            }
            conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            conn.commit()
        finally:
            conn.close()
        os.replace(tmp, db_path)
    finally:
        tmp.unlink(missing_ok=True)


class Index:
    """Read-only queries over one (suite, arch) index. Cheap to open; close when done (or use
    it as a context manager)."""

    def __init__(self, db_path: Path, *, suite: str, arch: str) -> None:
        self.path = db_path
        self.suite = suite
        self.arch = arch
        self._conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def meta(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())

    def candidates(self, soname: str) -> list[Candidate]:
        """Every package shipping a library file named ``soname``, the preferred first."""
        rows = self._conn.execute(
            "SELECT package, path FROM files WHERE soname = ?", (soname,)
        ).fetchall()
        found = {Candidate(package, path) for package, path in rows}
        return sorted(found, key=lambda c: _package_rank(c, soname, self.arch))

    def package_for(self, soname: str) -> str | None:
        """The package to install for ``soname`` (the preferred candidate: see
        :func:`_package_rank`); None when no package ships a library of that name."""
        found = self.candidates(soname)
        return found[0].package if found else None

    def package(self, name: str) -> PackageInfo | None:
        row = self._conn.execute(
            "SELECT name, version, architecture, source, depends, pre_depends, provides, "
            "filename, sha256, size, essential, priority FROM packages WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            return None
        name, version, architecture, source, depends, pre_depends, provides, filename = row[:8]
        return PackageInfo(
            name=name,
            version=version,
            architecture=architecture,
            source=source,
            depends=depends,
            pre_depends=pre_depends,
            provides=provides,
            filename=filename,
            sha256=row[8],
            size=int(row[9]),
            essential=bool(row[10]),
            priority=row[11],
        )

    def providers(self, virtual: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT package FROM provides WHERE virtual = ? ORDER BY package", (virtual,)
        ).fetchall()
        return [r[0] for r in rows]

    def files_of(self, package: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT path FROM files WHERE package = ? ORDER BY path", (package,)
        ).fetchall()
        return [r[0] for r in rows]

    def binaries_of_source(self, source: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT name FROM packages WHERE source = ? ORDER BY name", (source,)
        ).fetchall()
        return [r[0] for r in rows]

    def dev_package(self, runtime: str) -> str | None:
        """The ``-dev`` package to build against ``runtime`` (libffi8 → libffi-dev).

        Found through the source package: its ``-dev`` binaries; when several, the one that
        ships the unversioned ``.so`` link of one of ``runtime``'s libraries (libpq5's source
        postgresql-15 builds libpq-dev, libecpg-dev, …; only libpq-dev ships ``libpq.so``).
        """
        info = self.package(runtime)
        if info is None:
            return None
        devs = [b for b in self.binaries_of_source(info.source) if b.endswith("-dev")]
        if len(devs) <= 1:
            return devs[0] if devs else None

        # Rank by the unversioned link: next to the runtime library (zlib1g's lib/…/libz.so.1
        # and zlib1g-dev's usr/lib/…/libz.so: merged /usr makes them one folder), else of
        # the same name anywhere (gcc's private folders); multilib variants (lib32…) last.
        def merged(path: str) -> str:
            return path if path.startswith("usr/") else "usr/" + path

        links = {re.sub(r"\.so\.[^/]*$", ".so", merged(p)) for p in self.files_of(runtime)}
        names = {posixpath.basename(p) for p in links}

        def rank(dev: str) -> tuple[int, bool, bool, int, str]:
            files = {merged(p) for p in self.files_of(dev)}
            place = (
                0 if links & files else 1 if names & {posixpath.basename(f) for f in files} else 2
            )
            multilib = re.match(r"lib(?:32|64|x32|n32)", dev) is not None
            return (place, multilib, not dev.startswith("lib"), len(dev), dev)

        return min(devs, key=rank)

    def closure(
        self, packages: Iterable[str], *, installed: Collection[str] = ()
    ) -> list[PackageInfo]:
        """``packages`` and what they depend on (Pre-Depends and Depends, recursively), minus
        what is ``installed`` (and what installed packages provide) and Essential packages;
        dependencies come before their dependents. :class:`NotFound` names a missing one."""
        have = set(installed)
        for name in installed:
            info = self.package(name)
            if info is not None:
                have.update(v for group in parse_relations(info.provides) for v in group)
        order: list[PackageInfo] = []
        chosen: set[str] = set()

        def real(name: str) -> PackageInfo | None:
            info = self.package(name)
            if info is None:
                providers = self.providers(name)
                info = self.package(providers[0]) if providers else None
            return info

        def visit(name: str, chain: tuple[str, ...]) -> None:
            info = real(name)
            if info is None:
                via = " → ".join((*chain, name))
                raise NotFound(
                    f"no package {name!r} in Debian {self.suite}/{self.arch} (needed: {via})",
                    fix="check the package name (`apt-cache show NAME`), or the suite/arch",
                )
            if info.name in chosen or info.name in have or info.essential:
                return
            chosen.add(info.name)
            for group in info.relations():
                if any(alt in have or alt in chosen for alt in group):
                    continue
                pick = next((alt for alt in group if real(alt) is not None), group[0])
                visit(pick, (*chain, info.name))
            order.append(info)

        for name in packages:
            visit(name, ())
        return order


def index_path(suite: str, arch: str) -> Path:
    return cache_dir("debian", suite) / f"index-{arch}-v{INDEX_VERSION}.sqlite"


def open_index(
    suite: str = DEFAULT_SUITE,
    arch: str = "amd64",
    *,
    refresh: bool = False,
    client: httpx.Client | None = None,
) -> Index:
    """The (suite, arch) index: from the cache, else downloaded and built (about 20 MB from
    the mirror, once). ``refresh`` downloads again. Safe with several processes at once."""
    db_path = index_path(suite, arch)
    with file_lock(str(db_path) + ".lock"):
        if refresh or not db_path.is_file():
            started = time.monotonic()
            _download_and_build(db_path, suite=suite, arch=arch, client=client)
            log.info("debian index %s/%s built in %.1f s", suite, arch, time.monotonic() - started)
    return Index(db_path, suite=suite, arch=arch)


@contextlib.contextmanager
def _http(client: httpx.Client | None) -> Iterator[httpx.Client]:
    if client is not None:
        yield client
        return
    with httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=True) as c:
        yield c


def _fetch_to(client: httpx.Client, url: str, dest: IO[bytes]) -> str:
    """Stream ``url`` into ``dest``; returns the SHA256 hex digest of what was written."""
    hasher = hashlib.sha256()
    try:
        with client.stream("GET", url) as response:
            if response.status_code == 404:
                raise NotFound(
                    f"{url} does not exist on the mirror (HTTP 404)",
                    fix="the suite or architecture may be wrong, or the index is out of date: "
                    "run again (wheeldock refreshes it)",
                )
            response.raise_for_status()
            for chunk in response.iter_bytes(1 << 20):
                hasher.update(chunk)
                dest.write(chunk)
    except httpx.HTTPError as exc:
        raise DownloadFailed(
            f"cannot download {url} ({type(exc).__name__}: {exc})",
            fix="check the network to the Debian mirror, or set WHEELDOCK_DEBIAN_MIRROR",
        ) from exc
    return hasher.hexdigest()


def _download_and_build(
    db_path: Path, *, suite: str, arch: str, client: httpx.Client | None
) -> None:
    base = f"{mirror()}/dists/{suite}"
    with _http(client) as http, tempfile.TemporaryDirectory(dir=db_path.parent) as tmp:
        release_buf = io.BytesIO()
        _fetch_to(http, f"{base}/Release", release_buf)
        release = release_buf.getvalue().decode(errors="replace")
        sums = parse_release_sha256(release)
        date = next((ln[5:].strip() for ln in release.splitlines() if ln.startswith("Date:")), "")
        files = {}
        for rel in (f"main/Contents-{arch}.gz", f"main/binary-{arch}/Packages.xz"):
            if rel not in sums:
                raise NotFound(
                    f"Debian {suite} has no {rel} (not listed in {base}/Release)",
                    fix=f"use an architecture Debian {suite} supports (amd64, arm64, armhf, …)",
                )
            local = Path(tmp) / posixpath.basename(rel)
            with local.open("wb") as fh:
                actual = _fetch_to(http, f"{base}/{rel}", fh)
            if actual != sums[rel][0]:
                raise DigestMismatch(
                    f"{base}/{rel} does not match the Release file",
                    expected=sums[rel][0],
                    actual=actual,
                    fix="download again (a proxy or mirror may be serving a stale copy)",
                )
            files[rel] = local
        contents_gz = files[f"main/Contents-{arch}.gz"]
        with (
            lzma.open(files[f"main/binary-{arch}/Packages.xz"], "rb") as packages,
            igzip.open(contents_gz, "rb") as contents,  # type: ignore[no-untyped-call]
        ):
            build_index(
                db_path,
                contents=contents,
                packages=packages,
                suite=suite,
                arch=arch,
                release_date=date,
            )


# --------------------------------------------------------------------------- .deb files


def download_debs(
    packages: Iterable[str],
    *,
    suite: str = DEFAULT_SUITE,
    arch: str = "amd64",
    dest: Path,
    installed: Collection[str] = (),
    client: httpx.Client | None = None,
) -> list[Path]:
    """Fetch the ``.deb`` files of ``packages`` and of their dependencies that are not in
    ``installed`` (pass the base's, e.g. ``base.installed_packages(rootfs)``) into ``dest``.

    Each file is checked against the SHA256 in the Packages index and cached (per file name,
    which carries name, version and architecture) under ``cache_dir("debian", suite, "debs")``.
    Returns the paths in ``dest``, dependencies first (the order to unpack them in).
    """
    names = list(packages)
    if not names:
        return []
    dest.mkdir(parents=True, exist_ok=True)
    with open_index(suite, arch, client=client) as index:
        wanted = index.closure(names, installed=installed)
    store = cache_dir("debian", suite, "debs")
    out: list[Path] = []
    with _http(client) as http:
        for info in wanted:
            cached = store / posixpath.basename(info.filename)
            if not (cached.is_file() and _sha256_file(cached) == info.sha256):
                try:
                    _download_deb(http, info, cached)
                except NotFound:
                    # The archive dropped this version at a point release: refresh and retry.
                    with open_index(suite, arch, refresh=True, client=http) as index:
                        fresh = index.package(info.name)
                    if fresh is None or fresh.filename == info.filename:
                        raise
                    info = fresh
                    cached = store / posixpath.basename(info.filename)
                    _download_deb(http, info, cached)
            target = dest / cached.name
            if not target.exists():
                try:
                    os.link(cached, target)
                except OSError:
                    shutil.copy2(cached, target)
            out.append(target)
    return out


def _download_deb(http: httpx.Client, info: PackageInfo, cached: Path) -> None:
    url = f"{mirror()}/{info.filename}"
    with atomic_writer(cached) as fh:
        actual = _fetch_to(http, url, fh)
        if actual != info.sha256:
            raise DigestMismatch(
                f"{url} does not match the Packages index",
                expected=info.sha256,
                actual=actual,
                fix="download again (a proxy or mirror may be serving a stale copy)",
            )


def _sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _ar_members(data: bytes, name: str) -> Iterator[tuple[str, bytes]]:
    if not data.startswith(b"!<arch>\n"):
        raise InvalidArchive(
            "is not a .deb (no ar archive header)", path=name, fix="download it again"
        )
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        if header[58:60] != b"`\n":
            raise InvalidArchive(f"has a corrupt ar header at byte {pos}", path=name)
        member = header[:16].decode(errors="replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode().strip())
        except ValueError as exc:
            raise InvalidArchive(f"has a corrupt ar member size at byte {pos}", path=name) from exc
        start = pos + 60
        if start + size > len(data):
            raise InvalidArchive(
                f"is truncated (member {member!r})", path=name, fix="download it again"
            )
        yield member, data[start : start + size]
        pos = start + size + (size & 1)


def _decompressed(member: str, payload: bytes) -> IO[bytes]:
    if member.endswith(".xz"):
        return lzma.LZMAFile(io.BytesIO(payload))
    if member.endswith(".gz"):
        return io.BytesIO(gzip.decompress(payload))
    if member.endswith(".bz2"):
        return bz2.BZ2File(io.BytesIO(payload))
    if member.endswith(".zst"):
        import zstandard

        try:
            return io.BytesIO(zstandard.ZstdDecompressor().decompressobj().decompress(payload))
        except zstandard.ZstdError as exc:
            raise InvalidArchive(f"its {member} is not valid zstd data ({exc})") from exc
    return io.BytesIO(payload)


_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
}


def deb_data_members(deb_path: Path) -> Iterator[DebMember]:
    """The entries of ``deb_path``'s ``data.tar`` (gz, xz, zst, bz2 or plain), in archive
    order. Each call reads the file again, so the iterator can be made more than once."""
    data = deb_path.read_bytes()
    for member, payload in _ar_members(data, str(deb_path)):
        if not member.startswith("data.tar"):
            continue
        try:
            with (
                _decompressed(member, payload) as stream,
                tarfile.open(fileobj=stream, mode="r|") as tar,
            ):
                for info in tar:
                    path = info.name.removeprefix("./").lstrip("/")
                    if not path:
                        continue
                    kind = _KINDS.get(info.type, "other")
                    content = None
                    if kind == "file":
                        fh = tar.extractfile(info)
                        content = fh.read() if fh is not None else b""
                    yield DebMember(
                        path=path,
                        kind=kind,
                        mode=info.mode,
                        uid=info.uid,
                        gid=info.gid,
                        size=info.size,
                        mtime=int(info.mtime),
                        linkname=info.linkname.removeprefix("./")
                        if kind == "hardlink"
                        else info.linkname,
                        data=content,
                    )
        except (tarfile.TarError, lzma.LZMAError, EOFError, OSError) as exc:
            raise InvalidArchive(
                f"its {member} cannot be read ({exc})", path=deb_path, fix="download it again"
            ) from exc
        return
    raise InvalidArchive("has no data.tar member", path=deb_path, fix="download it again")
