"""Native runtime libraries: which Debian packages a set of wheels needs (:func:`scan`), and
whether an image has every library its Python extension modules and installed programs load
(:func:`check`; :func:`check_layers` for the layers a build just made).

The scan reads the ELF files inside the wheels (no extraction, no container) and removes from
their DT_NEEDED what the wheels vendor themselves (auditwheel's ``<pkg>.libs/`` folders,
``$ORIGIN``-relative RPATH/RUNPATH, other ELF files of the same wheel by soname), what glibc and
the interpreter provide, and what the base image already has; what is left is mapped to the
Debian packages that ship it (:mod:`wheeldock.debian.archive`). The check walks an image's file system
as ``ld.so`` would (RPATH, LD_LIBRARY_PATH, RUNPATH, ``/etc/ld.so.conf``, default folders),
transitively, and names every library that would be missing at ``import`` time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import json
import logging
import posixpath
import re
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wheeldock import platforms
from wheeldock.debian import archive as debian
from wheeldock.debian import bases, dpkg, elf
from wheeldock.debian.listings import Listings
from wheeldock.debian.rootfs import DirTree, FileTree, LayeredTree, norm, resolve
from wheeldock.edges.fsutil import atomic_write_text
from wheeldock.edges.paths import cache_dir
from wheeldock.errors import (
    InvalidArchive,
    InvalidConfig,
    InvalidElf,
    LibraryNotFound,
    NotFound,
    WheeldockError,
)
from wheeldock.oci import reference
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.layer import (
    MAGIC_SIZE,
    Compression,
    Layer,
    open_uncompressed,
    sniff_compression,
)
from wheeldock.oci.open import open_image

log = logging.getLogger(__name__)

#: What every glibc base has (package libc6) and what the interpreter brings: never packages
#: to install. libpython is listed because extension modules built against a shared libpython
#: get it from the interpreter that imports them.
_ALWAYS_PROVIDED = re.compile(
    r"^(?:ld-linux[-\w.]*\.so\.\d+|ld64\.so\.\d+|ld\.so\.\d+"
    r"|lib(?:c|m|dl|rt|pthread|util|resolv|anl|mvec|nsl|BrokenLocale|thread_db|c_malloc_debug)"
    r"\.so\.\d+|libnss_\w+\.so\.\d+|libpython3\.\d+m?\.so(?:\.[\d.]+)?)$"
)
#: Runtime packages that never need a ``-dev`` package in a builder stage (glibc's is part of
#: build-essential).
_NO_DEV = frozenset({"libc6", "libgcc-s1"})

#: Where ``check`` looks for the ELF files Python loads (regexes on paths without leading "/").
PYTHON_PATHS: tuple[str, ...] = (
    r"(?:^|/)(?:site|dist)-packages/",
    r"(?:^|/)lib-dynload/",
    r"^usr/(?:local/)?lib/python[0-9.]+/",
    r"^opt/",
    r"^app/",
    r"^srv/",
    r"^home/",
)

_BASE_VARIANTS = ("slim", "minimal", "builder")


# =========================================================================== result types


@dataclass(frozen=True)
class ElfReport:
    """One ELF file of the scanned wheels and where each of its DT_NEEDED comes from.

    ``file`` is its path in the wheel (or the site-packages folder); ``resolved`` pairs a
    soname with the Debian package the base lacks and that must be installed.
    """

    file: str
    wheel: str | None
    arch: str | None
    needed: tuple[str, ...]
    vendored: tuple[str, ...] = ()
    provided_by_base: tuple[str, ...] = ()
    resolved: tuple[tuple[str, str], ...] = ()
    unresolved: tuple[str, ...] = ()

    @property
    def resolved_packages(self) -> tuple[str, ...]:
        return tuple(sorted({package for _, package in self.resolved}))


@dataclass(frozen=True)
class Unresolved:
    """A soname no Debian package ships (in the base's suite and arch), and who needs it."""

    soname: str
    file: str
    wheel: str | None


@dataclass(frozen=True)
class LibsReport:
    """What :func:`scan` found. Packages are sorted; ``elfs`` follow the wheels' order."""

    path: Path
    kind: str  # "wheel" | "wheelhouse" | "site-packages"
    base: str
    arch: str
    suite: str
    runtime_packages: tuple[str, ...]
    build_packages: tuple[str, ...]
    elfs: tuple[ElfReport, ...]
    unresolved: tuple[Unresolved, ...]
    wheels: int
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.unresolved

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "base": self.base,
            "arch": self.arch,
            "suite": self.suite,
            "ok": self.ok,
            "runtime_packages": list(self.runtime_packages),
            "build_packages": list(self.build_packages),
            "unresolved": [vars(u) for u in self.unresolved],
            "wheels": self.wheels,
            "seconds": round(self.seconds, 3),
            "elfs": [
                {
                    "file": e.file,
                    "wheel": e.wheel,
                    "arch": e.arch,
                    "needed": list(e.needed),
                    "vendored": list(e.vendored),
                    "provided_by_base": list(e.provided_by_base),
                    "resolved": dict(e.resolved),
                    "unresolved": list(e.unresolved),
                }
                for e in self.elfs
            ],
        }


@dataclass(frozen=True)
class MissingLibrary:
    """``file`` (an ELF under a Python path) cannot be loaded: ``needed_by`` (``file`` itself
    or a library it loads) needs ``soname`` and no searched folder has it, or, with
    ``version``, the one found lacks that symbol version (a wheel built against a newer
    glibc). ``package`` is the Debian package that ships a missing library, when known."""

    file: str
    soname: str
    needed_by: str
    package: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check` found in an image: ``checked`` are the ELF files examined."""

    ref: str
    arch: str | None
    checked: tuple[str, ...]
    libraries: int
    missing: tuple[MissingLibrary, ...]
    invalid: tuple[tuple[str, str], ...]  # (file, why)
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.missing and not self.invalid

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(sorted({m.package for m in self.missing if m.package}))

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "arch": self.arch,
            "ok": self.ok,
            "checked": len(self.checked),
            "libraries": self.libraries,
            "missing": [vars(m) for m in self.missing],
            "invalid": [{"file": f, "why": w} for f, w in self.invalid],
            "packages": list(self.packages),
            "seconds": round(self.seconds, 3),
        }


# =========================================================================== file trees


def ld_so_conf_dirs(tree: FileTree) -> tuple[str, ...]:
    """The folders ``/etc/ld.so.conf`` names, following ``include`` globs (as ldconfig)."""
    all_paths: list[str] | None = None
    found: list[str] = []
    seen: set[str] = set()

    def read(conf: str, depth: int) -> None:
        nonlocal all_paths
        real = resolve(tree, conf)
        if real is None or depth > 8 or real in seen:
            return
        seen.add(real)
        node = tree.node(real)
        if node is None or node.kind != "file":
            return
        with tree.open(real) as fh:
            text = fh.read(1 << 20).decode(errors="replace")
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("include"):
                pattern = norm(line.split(None, 1)[1]) if " " in line or "\t" in line else ""
                if all_paths is None:
                    all_paths = sorted(tree.paths())
                for match in fnmatch.filter(all_paths, pattern):
                    read(match, depth + 1)
            elif line.startswith("/"):
                folder = norm(line)
                if folder not in found:
                    found.append(folder)

    read("etc/ld.so.conf", 0)
    return tuple(found)


def system_dirs(tree: FileTree, arch: str | None) -> tuple[str, ...]:
    """Where the loader looks after RPATH/RUNPATH: ld.so.conf's folders, then glibc's
    defaults (the multiarch folders on Debian, then /lib and /usr/lib)."""
    dirs = list(ld_so_conf_dirs(tree))
    triplet = elf.TRIPLETS.get(arch or "")
    defaults = [f"lib/{triplet}", f"usr/lib/{triplet}"] if triplet else []
    defaults += ["lib", "usr/lib", "lib64", "usr/lib64"]
    for folder in defaults:
        if folder not in dirs:
            dirs.append(folder)
    return tuple(dirs)


# =========================================================================== base profiles


@dataclass(frozen=True)
class BaseProfile:
    """What a base image provides: the library file names in its loader's folders and the
    Debian packages dpkg lists as installed."""

    name: str
    suite: str
    arch: str
    sonames: frozenset[str] = frozenset()
    packages: frozenset[str] = frozenset()


def profile_from_tree(tree: FileTree, *, name: str, arch: str | None) -> BaseProfile:
    """Read a base's libraries and installed packages from its file system."""
    real_dirs = {resolve(tree, d) for d in system_dirs(tree, arch)}
    sonames = frozenset(
        posixpath.basename(p)
        for p in tree.paths()
        if posixpath.dirname(p) in real_dirs and ".so" in posixpath.basename(p)
    )
    suite = debian.DEFAULT_SUITE
    os_release = resolve(tree, "etc/os-release")
    if os_release is not None:
        with tree.open(os_release) as fh:
            text = fh.read(1 << 16).decode(errors="replace")
        match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.M)
        if match:
            suite = match.group(1)
    return BaseProfile(
        name=name,
        suite=suite,
        arch=arch or platforms.native_arch(),
        sonames=sonames,
        packages=dpkg.packages_in_tree(tree),
    )


def _variant_profile(variant: str, arch: str) -> BaseProfile:
    """A ``wheeldock base`` variant's profile, from its rootfs tar (built on first use) and
    cached under ``cache_dir("bases", "profiles")`` keyed by the tar's path, size and mtime.

    The native architecture's rootfs answers for every architecture: a suite has the same
    packages and library file names on each, and a foreign rootfs would need minutes of
    emulation to build.
    """
    rootfs = bases.ensure_rootfs(variant, arch=platforms.native_arch())
    st = rootfs.tar_path.stat()
    key = hashlib.sha256(f"{rootfs.tar_path}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
    # Kept with the base tars (not with the per-wheel scans), so an emptied build cache that
    # still has its bases does not read the 150 MB tar again.
    cached = cache_dir("bases", "profiles") / f"{variant}-{key[:24]}.json"
    if cached.is_file():
        data = json.loads(cached.read_text())
    else:
        data = {
            "suite": rootfs.suite,
            "sonames": sorted(bases.library_sonames(rootfs)),
            "packages": sorted(bases.installed_packages(rootfs)),
        }
        atomic_write_text(cached, json.dumps(data))
    return BaseProfile(
        name=variant,
        suite=str(data["suite"]),
        arch=arch,
        sonames=frozenset(data["sonames"]),
        packages=frozenset(data["packages"]),
    )


def base_profile(base: str, *, arch: str) -> BaseProfile:
    """``slim``/``minimal``/``builder`` (a ``wheeldock base`` rootfs), ``none`` (only glibc
    and the interpreter count as present), or an image reference / rootfs folder."""
    if base == "none":
        return BaseProfile(name="none", suite=debian.DEFAULT_SUITE, arch=arch)
    if base in _BASE_VARIANTS:
        return _variant_profile(base, arch)
    with open_tree(base) as image:
        return profile_from_tree(image.tree, name=base, arch=image.arch or arch)


# =========================================================================== images


@dataclass
class OpenTree:
    """An image's (or a rootfs's) merged file system, plus what its config says (env,
    architecture)."""

    ref: str
    tree: FileTree
    arch: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def _tar_source(
    path: Path, compression: Compression, stack: contextlib.ExitStack, tmp: Path
) -> tuple[int, int, int]:
    """The tar in the blob file ``path`` as (file descriptor, offset, size): the file in place
    when uncompressed, else decompressed into a temp file in ``tmp`` first."""
    if compression != "none":
        out_path = tmp / f"layer-{len(list(tmp.iterdir()))}.tar"
        with open_uncompressed(path.open("rb"), compression) as src, out_path.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        path = out_path
    return (stack.enter_context(path.open("rb")).fileno(), 0, path.stat().st_size)


def _layer_source(layer: Layer, stack: contextlib.ExitStack, tmp: Path) -> tuple[int, int, int]:
    """A layer's tar (see :func:`_tar_source`), compressed as its media type says."""
    return _tar_source(layer.blob_path(), layer.compression, stack, tmp)


def _blob_source(path: Path, stack: contextlib.ExitStack, tmp: Path) -> tuple[int, int, int]:
    """A layer blob file (or plain tar) of unknown compression (see :func:`_tar_source`)."""
    with path.open("rb") as fh:
        compression = sniff_compression(fh.read(MAGIC_SIZE))
    return _tar_source(path, compression, stack, tmp)


def _image_tree(
    ref: str | reference.Reference, shown: str, stack: contextlib.ExitStack, tmp: Path
) -> OpenTree:
    """Image ``ref`` (opened by :func:`wheeldock.oci.open.open_image`, its blobs in ``tmp``)
    with its layers merged."""
    image = open_image(ref, BlobStore(tmp / "blobs"))
    layers_dir = tmp / "layers"
    layers_dir.mkdir(exist_ok=True)
    tree = LayeredTree([_layer_source(layer, stack, layers_dir) for layer in image.layers])
    arch = (
        platforms.debian_arch(image.platform) if image.config_json().get("architecture") else None
    )
    return OpenTree(shown, tree, arch, image.env())


def _path_tree(path: Path, stack: contextlib.ExitStack, tmp: Path) -> OpenTree:
    """A plain path: an OCI layout or rootfs folder, a docker-archive or rootfs tar."""
    if path.is_dir():
        if (path / "oci-layout").is_file():
            return _image_tree(reference.OciRef(path), f"oci:{path}", stack, tmp)
        return OpenTree(str(path), DirTree(path))
    try:
        with tarfile.open(path, "r:") as tar:
            is_image = any(norm(m.name) == "manifest.json" for m in tar)
    except tarfile.TarError as exc:
        raise InvalidArchive(f"is not a tar file ({exc})", path=path) from exc
    if is_image:
        return _image_tree(reference.ArchiveRef(path), f"docker-archive:{path}", stack, tmp)
    # Not an image archive: a plain rootfs tar (e.g. a `wheeldock base` rootfs).
    fh = stack.enter_context(path.open("rb"))
    return OpenTree(str(path), LayeredTree([(fh.fileno(), 0, path.stat().st_size)]))


@contextlib.contextmanager
def open_tree(ref: str) -> Iterator[OpenTree]:
    """Open ``ref`` read-only as a file tree: any image reference
    (:func:`wheeldock.oci.open.open_image`: ``oci:DIR[:TAG]``, ``docker-archive:FILE[:NAME:TAG]``,
    ``docker-daemon:NAME:TAG``, ``docker://…``), a rootfs folder, or a rootfs tar. Temp files
    (blobs, decompressed layers) go when the context ends."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wheeldock-check-")))
        as_path = Path(ref)
        if ":" not in ref or as_path.exists():
            if not (as_path.is_dir() or as_path.is_file()):
                raise NotFound(
                    f"no such image, folder or file: {ref!r}",
                    fix="give oci:DIR[:TAG], docker-archive:FILE, docker-daemon:NAME:TAG, or a "
                    "rootfs folder",
                )
            yield _path_tree(as_path, stack, tmp)
            return
        parsed = reference.parse(ref)
        shown = ref
        if isinstance(parsed, reference.OciRef):
            shown = str(parsed)
        elif isinstance(parsed, reference.ArchiveRef):
            shown = f"docker-archive:{parsed.path}"
        yield _image_tree(parsed, shown, stack, tmp)


# =========================================================================== wheels


@dataclass(frozen=True)
class _Elf:
    unit: str  # the wheel (file name) or the scanned folder it came from
    wheel: str | None
    path: str  # relative to the site-packages root
    info: elf.ElfInfo


def _site_path(member: str) -> str:
    """A wheel member's path once installed, relative to site-packages (``.data/purelib`` and
    ``.data/platlib`` land there too)."""
    match = re.match(r"^[^/]+\.data/(purelib|platlib)/(.*)$", member)
    return match.group(2) if match else member


_PROGRAM = re.compile(r"(?:^|/)(?:bin|[^/]+\.data/scripts)/[^/]+$")


def _is_candidate(path: str) -> bool:
    return elf.looks_like_shared_library(path) or ".libs/" in path or bool(_PROGRAM.search(path))


def _provided(soname: str, info: elf.ElfInfo) -> bool:
    """Whether every image has ``soname`` for ``info``: glibc's libraries always; libpython
    only for what the interpreter loads (a program such as ``uwsgi`` that embeds Python needs
    the ``libpython3.X`` package)."""
    if not _ALWAYS_PROVIDED.match(soname):
        return False
    return not (soname.startswith("libpython") and info.interpreter is not None)


#: Bumped when what a cached wheel entry holds changes.
_WHEEL_CACHE_VERSION = 2


def _wheel_cache_key(members: Sequence[zipfile.ZipInfo]) -> str:
    """A wheel's ELF candidates as its central directory describes them (names, CRC-32s and
    sizes): reading the directory costs nothing, and changed content changes a CRC."""
    hasher = hashlib.sha256(f"v{_WHEEL_CACHE_VERSION}\n".encode())
    for member in members:
        hasher.update(f"{member.filename}\0{member.CRC}\0{member.file_size}\n".encode())
    return hasher.hexdigest()


def _info_from_json(data: Mapping[str, Any]) -> elf.ElfInfo:
    fields = dict(data)
    for key in ("needed", "rpath", "runpath", "version_defs"):
        fields[key] = tuple(fields[key])
    fields["version_needs"] = tuple((f, tuple(v)) for f, v in fields["version_needs"])
    return elf.ElfInfo(**fields)


def _read_wheel(wheel: Path) -> tuple[list[_Elf], set[str]]:
    """The ELF files of ``wheel`` and the site-packages paths of all its files.

    The ELF headers read are cached under ``cache_dir("libs", "wheels")``, keyed by the
    candidates' CRC-32s from the zip's central directory: a wheel scanned before is not
    decompressed again.
    """
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidArchive(
            f"is not a wheel: {exc} (a wheel is a zip file)",
            path=wheel,
            fix="download or build it again (`pip wheel`/`pip download`), or remove it",
        ) from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        paths = {_site_path(m.filename) for m in members}
        candidates = [m for m in members if _is_candidate(m.filename)]
        if not candidates:
            return [], paths
        cached = cache_dir("libs", "wheels") / f"{_wheel_cache_key(candidates)}.json"
        if cached.is_file():
            entries = json.loads(cached.read_text())
            found = [
                _Elf(wheel.name, wheel.name, e["path"], _info_from_json(e["info"])) for e in entries
            ]
            return found, paths
        found = []
        for member in candidates:
            name = f"{wheel}!/{member.filename}"
            try:
                data = archive.read(member)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise InvalidArchive(
                    f"cannot read {member.filename} ({exc})", path=wheel, fix="download it again"
                ) from exc
            if not elf.is_elf(data) and not elf.looks_like_shared_library(member.filename):
                continue  # a script or data file that is not a program
            info = elf.read_elf(data, name=name)
            found.append(_Elf(wheel.name, wheel.name, _site_path(member.filename), info))
    entries_out = [{"path": item.path, "info": dataclasses.asdict(item.info)} for item in found]
    atomic_write_text(cached, json.dumps(entries_out))
    return found, paths


def _read_folder(root: Path) -> tuple[list[_Elf], set[str]]:
    found: list[_Elf] = []
    paths: set[str] = set()
    tree = DirTree(root)
    for rel in tree.paths():
        node = tree.node(rel)
        if node is None or node.kind != "file":
            continue
        paths.add(rel)
        if not _is_candidate(rel):
            continue
        with tree.open(rel) as fh:
            head = fh.read(4)
            fh.seek(0)
            if not elf.is_elf(head) and not elf.looks_like_shared_library(rel):
                continue
            found.append(_Elf(root.name, None, rel, elf.read_elf(fh, name=str(root / rel))))
    return found, paths


def locate(path: Path) -> tuple[str, list[Path]]:
    """What ``path`` is: ("wheel", [it]), ("wheelhouse", [wheels]) or ("site-packages",
    [folder]); a project folder leads to its wheelhouse. :class:`NotFound` explains the rest."""
    if path.is_file():
        if path.suffix != ".whl":
            raise InvalidConfig(
                "is not a wheel (a .whl file), a folder of wheels, or a site-packages folder",
                path=path,
                fix="give a .whl, a wheelhouse folder, or an installed site-packages folder",
            )
        return "wheel", [path]
    if not path.is_dir():
        raise NotFound(f"no such file or folder: {path}", fix="check the path")
    wheels = sorted(path.glob("*.whl"))
    if wheels:
        return "wheelhouse", wheels
    if path.name in ("site-packages", "dist-packages") or any(path.glob("*.dist-info")):
        return "site-packages", [path]
    venv = sorted(path.glob("lib/python3*/site-packages"))
    if venv:
        return "site-packages", [venv[0]]
    if any(path.glob("usr/local/lib/python3*/*-packages")):
        # an installed tree laid out as the image's root (wheeldock's per-wheel trees): scanned
        # whole, so libraries a wheel puts outside site-packages (its .data) count too
        return "site-packages", [path]
    for sub in ("wheelhouse", "wheels", ".wheeldock/wheelhouse", "dist"):
        if sorted((path / sub).glob("*.whl")):
            return "wheelhouse", sorted((path / sub).glob("*.whl"))
    project_like = any(
        (path / n).exists()
        for n in ("wheeldock.toml", "compose.yaml", "docker-compose.yml", "requirements.txt")
    )
    what = "a project folder without a wheelhouse" if project_like else "an empty folder"
    raise NotFound(
        f"{path} is {what}: no .whl files, no site-packages, no wheelhouse/ or wheels/ folder",
        fix="build the wheels first, e.g. `pip wheel -r requirements.txt -w wheelhouse` (or "
        "`pip download --only-binary :all: --platform manylinux_2_36_x86_64 -r requirements.txt "
        "-d wheelhouse`), then run `wheeldock libs wheelhouse`",
    )


# =========================================================================== scan


def _vendored_by(item: _Elf, soname: str, tree_paths: set[str], unit_sonames: set[str]) -> bool:
    origin = "/@/" + posixpath.dirname(item.path)
    for entry in item.info.runpath or item.info.rpath:
        if "$ORIGIN" not in entry and "${ORIGIN}" not in entry:
            continue  # absolute entries name the build host's folders, not the image's
        folder = elf.expand_origin(entry, origin)
        if folder.startswith("/@/") and f"{folder[3:]}/{soname}".lstrip("/") in tree_paths:
            return True
        if folder == "/@" and soname in tree_paths:
            return True
    return soname in unit_sonames


def _read_items(kind: str, sources: Sequence[Path]) -> tuple[list[_Elf], set[str]]:
    """The ELF files of ``sources`` and every path in their trees."""
    items: list[_Elf] = []
    tree_paths: set[str] = set()
    for source in sources:
        found, paths = _read_wheel(source) if kind != "site-packages" else _read_folder(source)
        items += found
        tree_paths |= paths
    return items, tree_paths


def _scan_arch(path: Path, items: Sequence[_Elf], arch: str | None) -> str:
    """The Debian architecture to scan for: the ELF files' (all one), which ``arch`` must
    match, else ``arch``, else this machine's; :class:`InvalidConfig` otherwise."""
    arches = {i.info.arch or i.info.machine for i in items}
    if len(arches) > 1:
        detail = ", ".join(
            sorted({f"{i.info.arch or i.info.machine} ({i.wheel or i.path})" for i in items})
        )
        raise InvalidConfig(
            f"holds ELF files for several architectures: {detail}",
            path=path,
            fix="scan one architecture's wheels at a time",
        )
    elf_arch = next(iter(arches)) if arches else None
    if arch is not None and elf_arch is not None and arch != elf_arch:
        raise InvalidConfig(
            f"its ELF files are for {elf_arch}, not {arch}",
            path=path,
            fix=f"drop --arch, or scan {arch} wheels",
        )
    arch = arch or elf_arch or platforms.native_arch()
    if arch not in elf.TRIPLETS:
        raise InvalidConfig(
            f"its ELF files are for {arch}, which Debian does not build for", path=path
        )
    return arch


def _unit_sonames(items: Sequence[_Elf]) -> dict[str, set[str]]:
    """The sonames each unit (a wheel, a distribution's tree) carries itself."""
    unit_sonames: dict[str, set[str]] = {}
    for item in items:
        names = unit_sonames.setdefault(item.unit, set())
        if item.info.soname:
            names.add(item.info.soname)
        if ".libs/" in item.path:
            names.add(posixpath.basename(item.path))
    return unit_sonames


def _sort_needed(
    items: Sequence[_Elf], tree_paths: set[str]
) -> tuple[list[ElfReport], dict[int, list[str]]]:
    """Each ELF file's report with its vendored and glibc libraries, and (by its number) the
    sonames left to find in the base or a Debian package."""
    unit_sonames = _unit_sonames(items)
    pending: dict[int, list[str]] = {}
    partial: list[ElfReport] = []
    for number, item in enumerate(items):
        vendored, system, rest = [], [], []
        for soname in item.info.needed:
            if _vendored_by(item, soname, tree_paths, unit_sonames[item.unit]):
                vendored.append(soname)
            elif _provided(soname, item.info):
                system.append(soname)
            else:
                rest.append(soname)
        pending[number] = rest
        partial.append(
            ElfReport(
                file=item.path,
                wheel=item.wheel,
                arch=item.info.arch,
                needed=item.info.needed,
                vendored=tuple(vendored),
                provided_by_base=tuple(system),
            )
        )
    return partial, pending


def _look_up(
    lookup: Sequence[str], suite: str, arch: str
) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """The Debian package shipping each soname, and each such package's ``-dev`` package
    (the index is opened only when there is something to look up)."""
    package_of: dict[str, str | None] = {}
    dev_of: dict[str, str | None] = {}
    if lookup:
        with debian.open_index(suite, arch) as index:
            for soname in lookup:
                package_of[soname] = index.package_for(soname)
            for name in sorted({p for p in package_of.values() if p}):
                dev_of[name] = None if name in _NO_DEV else index.dev_package(name)
    return package_of, dev_of


@dataclass
class _Resolution:
    """What the scan found the ELF files need: the reports, the runtime and build packages,
    the sonames nothing ships."""

    reports: list[ElfReport] = field(default_factory=list)
    runtime: set[str] = field(default_factory=set)
    build: set[str] = field(default_factory=set)
    unresolved: list[Unresolved] = field(default_factory=list)

    def resolve(
        self,
        report: ElfReport,
        pending: Sequence[str],
        profile: BaseProfile,
        package_of: Mapping[str, str | None],
        dev_of: Mapping[str, str | None],
    ) -> None:
        """Settle one file's pending sonames: in the base, in a package, or nowhere."""
        provided = list(report.provided_by_base)
        resolved: list[tuple[str, str]] = []
        missing: list[str] = []
        for soname in pending:
            package = package_of.get(soname)
            if package is not None and dev_of.get(package):
                self.build.add(str(dev_of[package]))
            if soname in profile.sonames or (package is not None and package in profile.packages):
                provided.append(soname)
            elif package is not None:
                resolved.append((soname, package))
                self.runtime.add(package)
            else:
                missing.append(soname)
                self.unresolved.append(Unresolved(soname, report.file, report.wheel))
        self.reports.append(
            dataclasses.replace(
                report,
                provided_by_base=tuple(provided),
                resolved=tuple(resolved),
                unresolved=tuple(missing),
            )
        )


def scan(
    path: Path,
    *,
    base: str = "slim",
    arch: str | None = None,
    suite: str | None = None,
    build_packages: bool = True,
) -> LibsReport:
    """The Debian packages the ELF files under ``path`` need at run time on ``base``.

    ``path``: a wheel, a folder of wheels, an installed site-packages (or venv) folder, or a
    project folder with a ``wheelhouse/``. ``base``: ``slim``, ``minimal``, ``builder``,
    ``none``, an image reference or a rootfs folder. ``arch`` defaults to the ELF files'
    (a wheelhouse for another architecture needs no emulation). The Debian index is
    downloaded only when some library is neither vendored nor glibc's; with
    ``build_packages=False`` (no ``-dev`` packages wanted) only when some library is not in
    the base either, which spares a build the index's download and parse (seconds) when the
    base has every library, as for most manylinux wheels on the slim base.
    """
    started = time.monotonic()
    path = Path(path)
    kind, sources = locate(path)
    items, tree_paths = _read_items(kind, sources)
    arch = _scan_arch(path, items, arch)
    partial, pending = _sort_needed(items, tree_paths)

    wanted = sorted({s for rest in pending.values() for s in rest})
    profile = base_profile(base, arch=arch) if wanted else BaseProfile(base, "", arch)
    suite = suite or profile.suite or debian.DEFAULT_SUITE
    lookup = wanted if build_packages else [s for s in wanted if s not in profile.sonames]
    package_of, dev_of = _look_up(lookup, suite, arch)

    found = _Resolution()
    for number, report in enumerate(partial):
        found.resolve(report, pending[number], profile, package_of, dev_of)
    for gap in found.unresolved:
        log.warning(
            "%s needs %s, which no Debian %s/%s package ships",
            f"{gap.wheel}: {gap.file}" if gap.wheel else gap.file,
            gap.soname,
            suite,
            arch,
        )
    return LibsReport(
        path=path,
        kind=kind,
        base=base,
        arch=arch,
        suite=suite,
        runtime_packages=tuple(sorted(found.runtime)),
        build_packages=tuple(sorted(found.build)),
        elfs=tuple(found.reports),
        unresolved=tuple(found.unresolved),
        wheels=len(sources) if kind != "site-packages" else 0,
        seconds=time.monotonic() - started,
    )


def runtime_packages(path: Path, *, base: str = "slim", arch: str | None = None) -> tuple[str, ...]:
    """The Debian packages to install on ``base`` so the ELF files under ``path`` load (see
    :func:`scan`). Sonames no package ships are logged as warnings, not raised: some come
    from the host at run time (``libcuda.so.1``)."""
    return scan(path, base=base, arch=arch, build_packages=False).runtime_packages


# =========================================================================== check


def _header_key(head: bytes) -> tuple[str, int, bool] | None:
    """(machine, class, little endian) from an ELF header's first 20 bytes."""
    if len(head) < 20 or not elf.is_elf(head):
        return None
    little = head[5] == 1
    machine = int.from_bytes(head[18:20], "little" if little else "big")
    return (str(elf.MACHINE_NAMES.get(machine, machine)), 64 if head[4] == 2 else 32, little)


def _is_python_path(path: str, patterns: Sequence[re.Pattern[str]]) -> bool:
    return any(p.search(path) for p in patterns)


class _Loader:
    """``ld.so``'s search, over a file tree; memoises what it has resolved."""

    def __init__(self, tree: FileTree, arch: str | None, env: Mapping[str, str]) -> None:
        self.tree = tree
        self.system = system_dirs(tree, arch)
        self.ld_library_path = tuple(
            norm(p) for p in env.get("LD_LIBRARY_PATH", "").split(":") if p.startswith("/")
        )
        self._infos: dict[str, elf.ElfInfo] = {}
        self._missing: dict[tuple[str, tuple[str, ...]], list[tuple[str, str, str | None]]] = {}
        self.libraries: set[str] = set()

    def info(self, path: str) -> elf.ElfInfo:
        known = self._infos.get(path)
        if known is None:
            with self.tree.open(path) as fh:
                known = self._infos[path] = elf.read_elf(fh, name="/" + path)
        return known

    def _find(self, soname: str, dirs: Iterable[str], want: tuple[str, int, bool]) -> str | None:
        for folder in dirs:
            real = resolve(self.tree, f"{folder}/{soname}")
            if real is None:
                continue
            node = self.tree.node(real)
            if node is None or node.kind != "file":
                continue
            with self.tree.open(real) as fh:
                if _header_key(fh.read(20)) == want:
                    return real
        return None

    def missing(
        self, path: str, info: elf.ElfInfo, inherited: tuple[str, ...] = (), depth: int = 0
    ) -> list[tuple[str, str, str | None]]:
        """(soname, needed_by, version) for what does not resolve, for ``path`` and what it
        loads; ``version`` names a symbol version the library found lacks (GLIBC_2.38 of a
        wheel built on a newer system), None when the library itself is missing."""
        key = (path, inherited)
        if key in self._missing:
            return self._missing[key]
        self._missing[key] = []  # a cycle (libA ↔ libB) ends here
        origin = "/" + posixpath.dirname(path)
        own_rpath = (
            ()
            if info.runpath
            else tuple(norm(elf.expand_origin(e, origin)) for e in info.rpath if e)
        )
        runpath = tuple(norm(elf.expand_origin(e, origin)) for e in info.runpath if e)
        rpath_chain = () if info.runpath else own_rpath + inherited
        order = (*rpath_chain, *self.ld_library_path, *runpath, *self.system)
        result: list[tuple[str, str, str | None]] = []
        versions = dict(info.version_needs)
        for soname in info.needed:
            if "/" in soname:
                found = resolve(self.tree, soname)
            else:
                found = self._find(soname, order, info.compat_key)
            if found is None:
                result.append((soname, "/" + path, None))
                continue
            self.libraries.add(found)
            if depth > 32:
                continue
            try:
                child = self.info(found)
            except InvalidElf:
                result.append((soname, "/" + path, None))
                continue
            # ld.so refuses a library that lacks a needed symbol version; one without any
            # version definitions only earns a warning.
            if child.version_defs:
                result += [
                    (soname, "/" + path, v)
                    for v in versions.get(soname, ())
                    if v not in child.version_defs
                ]
            result += self.missing(found, child, own_rpath + inherited, depth + 1)
        self._missing[key] = result
        return result


#: Programs ``check`` reads besides Python's files: what pip and uv install into ``bin``.
PROGRAM_PATHS: tuple[str, ...] = (r"^usr/local/bin/[^/]+$", r"^(?:opt|app|srv|home)/.*/bin/[^/]+$")


def check(
    ref: str,
    *,
    python_paths: Sequence[str] = PYTHON_PATHS,
    suggest: bool = True,
) -> CheckReport:
    """Open image ``ref`` (see :func:`open_tree`) and report every ELF file under the Python
    paths (and every program under :data:`PROGRAM_PATHS`) whose libraries (transitively) do
    not resolve inside the image. With ``suggest``, each missing soname is mapped to the Debian
    package that ships it (index permitting)."""
    started = time.monotonic()
    patterns = [re.compile(p) for p in python_paths]
    programs = [re.compile(p) for p in PROGRAM_PATHS]
    with open_tree(ref) as image:
        candidates = [
            p
            for p in image.tree.paths()
            if (elf.looks_like_shared_library(p) and _is_python_path(p, patterns))
            or _is_python_path(p, programs)
        ]
        return _check_tree(
            ref, image.tree, candidates, image.arch, image.env, suggest=suggest, started=started
        )


def check_layers(
    layers: Sequence[Path],
    new: Collection[int],
    *,
    arch: str | None = None,
    env: Mapping[str, str] | None = None,
    ref: str = "the image",
    suggest: bool = True,
) -> CheckReport:
    """:func:`check` of the image whose layers are the blobs (or plain tars) ``layers``, base
    first, limited to the files the layers numbered ``new`` (0-based) hold: after a build, only
    what it added is read, while libraries resolve against every layer."""
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wheeldock-check-")))
        # the layers as their cached listings: a layer's bytes are read (and a compressed
        # one decompressed) only when a file of it is opened, so after a bump the unchanged
        # layers are not read at all, or only for the few libraries the new files load
        listings = Listings(cache_dir("check", "listings"), lambda p: _blob_source(p, stack, tmp))
        made = {i: listings.layer(layers[i]) for i in sorted(new)}
        # the new layers alone first: with no library or program in them (a bump of a pure
        # Python package) there is nothing to resolve, and no other layer is looked at
        alone = LayeredTree(list(made.values()))
        if not _any_elf(alone, _candidates(alone, range(len(made)))):
            empty = LayeredTree([])
            return _check_tree(ref, empty, [], arch, env or {}, suggest=suggest, started=started)
        tree = LayeredTree([made.get(i) or listings.layer(p) for i, p in enumerate(layers)])
        candidates = _candidates(tree, new)
        report = _check_tree(
            ref, tree, candidates, arch, env or {}, suggest=suggest, started=started
        )
        log.debug("check: %d of %d layer files read", listings.read, len(layers))
        return report


def _any_elf(tree: LayeredTree, candidates: Iterable[str]) -> bool:
    """Whether one of ``candidates`` is an ELF object (a console script in ``bin/`` is a
    candidate by its place, and is text)."""
    for path in candidates:
        node = tree.node(path)
        if node is None or node.kind != "file":
            continue
        with tree.open(path) as f:
            if f.read(4) == b"\x7fELF":
                return True
    return False


def _candidates(tree: LayeredTree, new: Collection[int]) -> list[str]:
    """The files of the layers numbered ``new`` that may be ELF objects to check."""
    return [
        p
        for p in tree.paths()
        if tree.layer_of(p) in new
        and (elf.looks_like_shared_library(p) or _PROGRAM.search(p) is not None)
    ]


def _read_candidates(
    tree: FileTree, candidates: Iterable[str]
) -> tuple[list[tuple[str, elf.ElfInfo]], list[tuple[str, str]]]:
    """The ELF files among ``candidates`` (regular files only; a program that is not an ELF
    file, a script, is skipped) and the shared libraries that are unreadable."""
    infos: list[tuple[str, elf.ElfInfo]] = []
    invalid: list[tuple[str, str]] = []
    for path in sorted(candidates):
        node = tree.node(path)
        if node is None or node.kind != "file":
            continue
        try:
            with tree.open(path) as fh:
                if not elf.looks_like_shared_library(path) and not elf.is_elf(fh.read(4)):
                    continue
                fh.seek(0)
                infos.append((path, elf.read_elf(fh, name="/" + path)))
        except InvalidElf as exc:
            invalid.append(("/" + path, exc.what))
    return infos, invalid


def _tree_suite(tree: FileTree) -> str:
    os_release = resolve(tree, "etc/os-release")
    if os_release is None:
        return debian.DEFAULT_SUITE
    with tree.open(os_release) as fh:
        text = fh.read().decode(errors="replace")
    match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.M)
    return match.group(1) if match else debian.DEFAULT_SUITE


def _check_tree(
    ref: str,
    tree: FileTree,
    candidates: Iterable[str],
    arch: str | None,
    env: Mapping[str, str],
    *,
    suggest: bool,
    started: float,
) -> CheckReport:
    infos, invalid = _read_candidates(tree, candidates)
    for _, info in infos:
        arch = arch or info.arch
    loader = _Loader(tree, arch, env)
    found = [(path, dict.fromkeys(loader.missing(path, info))) for path, info in infos]
    # A library that another file loads is checked as that file loads it (with the DT_RPATH
    # it inherits from its loaders, as scipy.libs' libgfortran finds its libquadmath), not
    # alone: nothing loads it alone.
    pairs: list[tuple[str, str, str, str | None]] = [
        ("/" + path, soname, needed_by, version)
        for path, missing in found
        if path not in loader.libraries
        for soname, needed_by, version in missing
    ]
    suite = _tree_suite(tree)
    packages: dict[str, str | None] = {}
    if pairs and suggest and arch is not None and arch in elf.TRIPLETS:
        try:
            with debian.open_index(suite, arch) as index:
                packages = {s: index.package_for(s) for _, s, _, v in pairs if v is None}
        except WheeldockError as exc:
            log.warning("cannot suggest packages (%s)", exc.what)
    missing = tuple(
        MissingLibrary(file, soname, needed_by, packages.get(soname), version)
        for file, soname, needed_by, version in pairs
    )
    return CheckReport(
        ref=ref,
        arch=arch,
        checked=tuple("/" + p for p, _ in infos),
        libraries=len(loader.libraries),
        missing=missing,
        invalid=tuple(invalid),
        seconds=time.monotonic() - started,
    )


def _missing_line(m: MissingLibrary) -> str:
    via = "" if m.needed_by == m.file else f" (through {m.needed_by})"
    if m.version is not None:
        return (
            f"{m.file} needs {m.version} of {m.soname}{via}, which the image's {m.soname} lacks: "
            "it was compiled against a newer system than the base"
        )
    ships = f" (Debian package {m.package})" if m.package else ""
    return f"{m.file} needs {m.soname}{via}, which the image lacks{ships}"


def missing_error(report: CheckReport, *, config: str = "wheeldock.toml") -> LibraryNotFound:
    """:class:`LibraryNotFound` naming each file of ``report`` that cannot load, what it lacks,
    and the fix."""
    fixes = []
    if any(m.version is not None for m in report.missing):
        fixes.append(
            "compile it in the base it runs on: from its sdist (`no_binary` in "
            f"{config}; the native build compiles in the builder base), or pin a release "
            "whose wheel targets the base's glibc"
        )
    if report.packages:
        fixes.append(
            f"add {', '.join(report.packages)} to the service's runtime_packages in {config}"
        )
    if any(m.version is None and m.package is None for m in report.missing):
        fixes.append("vendor the library into its wheel (auditwheel repair)")
    lines = [_missing_line(m) for m in report.missing]
    return LibraryNotFound(
        f"{report.ref}: {len(lines)} file(s) would fail to load:\n  " + "\n  ".join(lines),
        missing=[(m.file, m.soname, m.version) for m in report.missing],
        fix="; or ".join(fixes) or None,
    )
