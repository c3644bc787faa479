"""Python base images made from Debian packages with mmdebstrap (no registry needed).

Three recipes (:data:`VARIANTS`):

* ``slim``: what ``python:3.11-slim`` offers — python3, pip, venv, ``python`` on PATH,
  ca-certificates, netbase, tzdata — on Debian's ``minbase``. Docs, man pages and locales are
  kept out with dpkg ``path-exclude`` (as Debian's own docker images do; the rule stays in the
  image, so later ``apt-get install`` honours it too), and so is the PEP 668
  ``EXTERNALLY-MANAGED`` marker, so ``pip install -r`` works as in the official image.
* ``builder``: slim + build-essential, python3-dev and the ``-dev`` headers of
  :data:`BUILD_PACKAGES` (gcc and headers to compile wheels), and
  the uv binary of the version wheeldock runs at :data:`UV_PATH` (from the host's ``uv`` wheel;
  another architecture's wheel is fetched with pip), so a Dockerfile's builder stage needs no
  step that downloads uv.
* ``minimal``: slim's rootfs pruned to the dependency closure of python3 and ca-certificates:
  no apt, no dpkg, no perl, no pip, no gconv modules. ``var/lib/dpkg/status`` is kept, rewritten
  to list only the packages whose files remain, so other tools can read what the base provides.

``slim`` (and so ``minimal``) has the system account ``app`` (:data:`APP_USER`, uid and gid
10001, no home, no login shell) written into ``/etc/passwd``, ``/etc/group`` and the shadow
files, so an image can run as it without a ``useradd`` step of its own.

The rootfs tars are cached under ``cache_dir("bases")`` keyed by suite, arch, recipe and
:data:`RECIPE_VERSION`; ``SOURCE_DATE_EPOCH`` is fixed so mmdebstrap clamps timestamps and the
output only changes when the archive does. :func:`ensure_rootfs` builds or reuses a tar;
:func:`ensure_image` also imports it into the Docker engine with the image config and tags.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import hashlib
import json
import logging
import os
import posixpath
import re
import shlex
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO

from wheeldock.debian.dpkg import (
    STATUS_PATH,
    Paragraph,
    installed_versions,
    parse_status,
    status_in_tar,
)
from wheeldock.debian.rootfs import SymlinkMap, norm, resolve
from wheeldock.edges import engine, process
from wheeldock.edges.fsutil import file_lock
from wheeldock.edges.paths import cache_dir
from wheeldock.errors import (
    CommandFailed,
    EngineUnavailable,
    InvalidReference,
    NotFound,
    NotWritable,
    ToolNotFound,
)
from wheeldock.oci import layout
from wheeldock.oci.blobs import BlobStore, default_store
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import History, Image, ImageConfig, Platform, rfc3339
from wheeldock.oci.layer import Layer
from wheeldock.platforms import (
    ARCHES,
    WHEEL_MACHINES,
    arch_needs_emulation,
    check_arch,
    native_arch,
)

log = logging.getLogger(__name__)

#: Bump when a recipe's meaning changes, so cached rootfs tars are rebuilt.
RECIPE_VERSION = 3
#: Fixed, so mmdebstrap's output is reproducible given the same archive content
#: (2023-06-10, the day bookworm was released).
SOURCE_DATE_EPOCH = 1686355200
DEFAULT_SUITE = "bookworm"
#: The python3 each Debian suite ships: the Pythons wheeldock's bases can carry.
SUITE_PYTHON: Mapping[str, str] = MappingProxyType({"bookworm": "3.11", "trixie": "3.13"})
DEFAULT_ARCH = "amd64"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
#: Chooses merged-/usr where the suite has usr-is-merged; without it apt pulls in ``usrmerge``
#: and with it all of perl (+46 MB).
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/maybe-merged-usr"
#: Docker's default PATH, as in the official python images.
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

LABEL_BASE = "wheeldock.base"
LABEL_KEY = "wheeldock.base.key"
LABEL_PACKAGES = "wheeldock.base.packages"
LABEL_UV = "wheeldock.base.uv"
#: Where the builder base keeps uv (on PATH; pip's ``--target`` installs elsewhere).
UV_PATH = "/usr/local/bin/uv"
VENDOR = "wheeldock"

#: dpkg path filters, as in Debian's docker images (debuerreotype's slimification), plus the
#: PEP 668 marker: the official python image has none, and ``pip install -r`` must work.
DPKG_EXCLUDES: tuple[str, ...] = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/groff/*",
    "/usr/share/info/*",
    "/usr/share/lintian/*",
    "/usr/share/linda/*",
    "/usr/share/locale/*",
    "/usr/lib/python3*/EXTERNALLY-MANAGED",
)
#: Licences stay: they are small and their presence is a condition of redistribution.
DPKG_INCLUDES: tuple[str, ...] = ("/usr/share/doc/*/copyright",)


@dataclass(frozen=True)
class Prune:
    """How a derived rootfs is cut down from its parent.

    ``keep`` are the root packages; every package in their ``Depends``/``Pre-Depends`` closure
    keeps its files, except the ``drop_packages`` (never kept, their dependencies not followed).
    ``drop_paths`` are globs on member paths (no leading slash; ``*`` stays within one path
    component) removed, with everything under them, whoever owns them; ``keep_paths`` (same
    form) stay whoever owns them.
    """

    keep: tuple[str, ...]
    drop_packages: tuple[str, ...] = ()
    drop_paths: tuple[str, ...] = ()
    keep_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class SystemUser:
    """A system account written into a rootfs at build time (no ``useradd``: see
    :func:`user_hook`). ``home`` need not exist; Debian's convention for "no home" is the
    default."""

    name: str
    uid: int
    gid: int
    home: str = "/nonexistent"
    shell: str = "/usr/sbin/nologin"

    def entries(self, *, epoch: int = SOURCE_DATE_EPOCH) -> dict[str, str]:
        """``etc/<file>`` -> the line this account adds there, as ``useradd --system`` writes
        it; the shadow files' "last changed" day is ``epoch``'s, not today's."""
        return {
            "etc/passwd": f"{self.name}:x:{self.uid}:{self.gid}::{self.home}:{self.shell}",
            "etc/group": f"{self.name}:x:{self.gid}:",
            "etc/shadow": f"{self.name}:!:{epoch // 86400}::::::",
            "etc/gshadow": f"{self.name}:!::",
        }


#: The non-root account services run as (the Dockerfiles' ``USER``, the native builder's user).
APP_USER = SystemUser("app", 10001, 10001)


@dataclass(frozen=True)
class Recipe:
    """One base image: what goes in and what it is called.

    ``tag`` and ``alias`` are templates with ``{python}`` (e.g. ``3.11``). The alias (the
    official image's name) is only applied where that image cannot be had otherwise.
    ``users`` are written into the rootfs (a derived recipe has its parent's: :func:`users`);
    ``uv`` puts the uv binary of :func:`uv_version` at :data:`UV_PATH`.
    """

    name: str
    summary: str
    packages: tuple[str, ...]
    tag: str
    alias: str | None = None
    excludes: tuple[str, ...] = DPKG_EXCLUDES
    includes: tuple[str, ...] = DPKG_INCLUDES
    derive_from: str | None = None
    prune: Prune | None = None
    users: tuple[SystemUser, ...] = ()
    uv: bool = False


_SLIM_PACKAGES = (
    "python3",
    "python3-pip",
    "python3-venv",
    "python-is-python3",
    "ca-certificates",
    "netbase",
    "tzdata",
)

#: What the ``minimal`` base installs, and all its pruning keeps.
_MINIMAL_PACKAGES = (
    "python3",
    "python-is-python3",
    "ca-certificates",
    "netbase",
    "tzdata",
    "base-files",
    "base-passwd",
    # /bin/sh, for `docker run … sh -c` and subprocess(shell=True)
    "dash",
)

#: Debian headers a from-source build of these distributions (an sdist, or ``no_binary``) needs.
#: The ``builder`` base has them all, so the native builder compiles any of them unaided; a
#: Dockerfile whose builder image is not wheeldock's installs the ones it lacks.
BUILD_PACKAGES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "cffi": ("libffi-dev",),
        "pyyaml": ("libyaml-dev",),
        "lxml": ("libxml2-dev", "libxslt1-dev"),
        "psycopg2": ("libpq-dev",),
        "mysqlclient": ("libmariadb-dev", "pkg-config"),
        "pillow": ("libjpeg62-turbo-dev", "zlib1g-dev", "libfreetype-dev"),
        "python-ldap": ("libldap2-dev", "libsasl2-dev"),
        "pycurl": ("libcurl4-openssl-dev",),
    }
)
_HEADER_PACKAGES = tuple(sorted({p for names in BUILD_PACKAGES.values() for p in names}))

VARIANTS: Mapping[str, Recipe] = MappingProxyType(
    {
        "slim": Recipe(
            name="slim",
            summary="python3, pip, venv, ca-certificates on Debian minbase (like python:X-slim)",
            packages=_SLIM_PACKAGES,
            tag="wheeldock/python:{python}-slim",
            alias="python:{python}-slim",
            users=(APP_USER,),
        ),
        "builder": Recipe(
            name="builder",
            summary="slim + build-essential, python3-dev, common -dev headers, uv: compiles wheels",
            packages=(*_SLIM_PACKAGES, "build-essential", "python3-dev", *_HEADER_PACKAGES),
            tag="wheeldock/python:{python}-builder",
            uv=True,
        ),
        "minimal": Recipe(
            name="minimal",
            summary="python3 + stdlib + CA certificates only: no apt, dpkg, perl or pip",
            packages=_MINIMAL_PACKAGES,
            tag="wheeldock/python:{python}-minimal",
            derive_from="slim",
            prune=Prune(
                keep=_MINIMAL_PACKAGES,
                # The certificates are generated at build time; openssl (the binary) and
                # debconf (and through it perl) are only needed to configure packages.
                drop_packages=("apt", "dpkg", "debconf", "perl-base", "openssl", "libc-bin"),
                drop_paths=(
                    # iconv's charset modules: Python's codecs do not use them (-8 MB)
                    "usr/lib/*/gconv",
                    # help()'s topic texts and CPython's own test support (-2.5 MB)
                    "usr/lib/python3.*/pydoc_data",
                    "usr/lib/python3.*/test",
                    "var/cache/*",
                    "var/log/*",
                    # lists libraries that are gone; the loader's search needs no cache
                    "etc/ld.so.cache",
                ),
                # openssl's folder (a package we drop) is where libssl looks for the CA bundle
                # (cert.pem, certs/ -> /etc/ssl/certs) and openssl.cnf
                keep_paths=("usr/lib/ssl", "etc/ssl/openssl.cnf"),
            ),
        ),
    }
)


@dataclass(frozen=True)
class BaseRootfs:
    """A rootfs tar (uncompressed) in the cache, and what it holds.

    ``size_bytes`` is the tar's size; ``seconds`` what this call took; ``cached`` whether the
    tar was already there. ``status_path`` is dpkg's status file inside the tar.
    """

    variant: str
    arch: str
    suite: str
    tar_path: Path
    packages: tuple[str, ...]
    size_bytes: int
    seconds: float
    cached: bool
    python_version: str
    key: str
    status_path: str = STATUS_PATH
    uv_version: str | None = None  # the uv at UV_PATH, for a recipe with uv


@dataclass(frozen=True)
class BaseImage:
    """A base image in the Docker engine. ``size_bytes`` is the engine's (uncompressed) Size."""

    variant: str
    tags: tuple[str, ...]
    image_id: Digest
    size_bytes: int
    seconds: float
    cached: bool
    rootfs: BaseRootfs
    notes: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------- recipes, argv


def recipe(name: str) -> Recipe:
    """The recipe called ``name``, or :class:`NotFound` listing the names there are."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise NotFound(
            f"no base image called {name!r}",
            fix=f"pick one of: {', '.join(VARIANTS)}",
        ) from None


def security_mirror() -> str | None:
    """The security archive: ``WHEELDOCK_DEBIAN_SECURITY_MIRROR`` or deb.debian.org's; ``none``
    leaves it out (only for a mirror whose security index is broken: such a base lacks the
    security fixes, and its cache key says so, so it is never mistaken for a full one)."""
    value = os.environ.get("WHEELDOCK_DEBIAN_SECURITY_MIRROR", SECURITY_MIRROR).strip()
    return None if value.lower() in ("", "none") else value.rstrip("/")


def sources(suite: str, *, canonical: bool = False) -> tuple[str, ...]:
    """APT source lines for ``suite``: the release, its updates and its security fixes.

    ``canonical`` names deb.debian.org whatever the mirror settings say, for the cache key: a
    mirror is transport (the same archive's packages), but leaving the security archive out
    changes what a base holds."""
    if canonical:
        main = MIRROR
    else:
        # the mirror setting is the package index's (the ELF scan reads it from the same
        # mirror); imported here, not at the top: it brings in httpx and pyelftools
        from wheeldock.debian import archive as debian

        main = debian.mirror()
    security = security_mirror()
    if canonical and security is not None:
        security = SECURITY_MIRROR
    lines = [f"deb {main} {suite} main"]
    if suite not in ("sid", "unstable", "experimental"):
        lines.append(f"deb {main} {suite}-updates main")
        if security is not None:
            lines.append(f"deb {security} {suite}-security main")
    return tuple(lines)


#: apt's words for an index that does not match its Release file (a mirror mid-sync or stale).
_INDEX_MISMATCH = ("Hash Sum mismatch", "File has unexpected size", "Mirror sync in progress")


def mmdebstrap_fix(output: str, *, suite: str, arch: str) -> str:
    """The fix to print when mmdebstrap failed with ``output`` (pure)."""
    if any(words in output for words in _INDEX_MISMATCH):
        return (
            f"the Debian mirror serves a {arch} package index that does not match its Release "
            "file (it is mid-sync or stale); retry later, or point WHEELDOCK_DEBIAN_MIRROR / "
            "WHEELDOCK_DEBIAN_SECURITY_MIRROR at a consistent mirror (if only the security "
            "index is broken, WHEELDOCK_DEBIAN_SECURITY_MIRROR=none builds without security "
            "fixes)"
        )
    from wheeldock.debian import archive as debian

    return (
        f"check that {debian.mirror()} answers over http and the package names exist in "
        f"{suite}; mmdebstrap's output above says which step failed"
    )


def mmdebstrap_argv(
    recipe: Recipe, *, suite: str, arch: str, output: Path, uv_binary: Path | None = None
) -> list[str]:
    """The mmdebstrap command that writes ``recipe``'s rootfs as an uncompressed tar.

    ``uv_binary`` (a uv for ``arch``, see :func:`uv_binary`) is required when ``recipe.uv``.
    """
    if recipe.uv and uv_binary is None:
        raise ValueError(f"the {recipe.name} recipe includes uv: pass uv_binary")
    argv = [
        "mmdebstrap",
        "--variant=minbase",
        f"--architectures={arch}",
        "--format=tar",
        f"--include={','.join(recipe.packages)}",
        '--aptopt=APT::Install-Recommends "false"',
        '--aptopt=APT::Install-Suggests "false"',
    ]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in recipe.excludes]
    argv += [f"--dpkgopt=path-include={pattern}" for pattern in recipe.includes]
    argv.append(f"--hook-dir={MERGED_USR_HOOKS}")
    if arch_needs_emulation(arch):
        argv += foreign_bytecode_hooks(SUITE_PYTHON.get(suite, SUITE_PYTHON[DEFAULT_SUITE]))
    if recipe.users:
        argv.append(user_hook(recipe.users))
    if recipe.uv and uv_binary is not None:
        # `upload` names the file inside freely but does not keep the mode
        argv += [
            f"--customize-hook=upload {uv_binary} {UV_PATH}",
            f'--customize-hook=chmod 0755 "$1{UV_PATH}"',
        ]
    # mmdebstrap copies the host's; the engine bind-mounts its own in every container.
    argv.append('--customize-hook=rm -f "$1/etc/resolv.conf" "$1/etc/hostname"')
    argv += [suite, str(output), *sources(suite)]
    return argv


def users(recipe: Recipe) -> tuple[SystemUser, ...]:
    """The accounts a base has beyond Debian's: its own and, when derived, its parent's."""
    inherited = users(VARIANTS[recipe.derive_from]) if recipe.derive_from else ()
    return (*inherited, *recipe.users)


def user_hook(accounts: Sequence[SystemUser]) -> str:
    """An mmdebstrap ``--customize-hook`` appending ``accounts`` to the account files.

    Lines rather than ``useradd``: nothing runs in the chroot (so nothing under emulation for a
    foreign architecture), no lastlog/faillog record is written, and the bytes are the same
    every build (the shadow files' "last changed" day is :data:`SOURCE_DATE_EPOCH`'s).
    """
    commands = [
        f'printf "%s\\n" {shlex.quote(line)} >> "$1/{path}"'
        for account in accounts
        for path, line in account.entries().items()
    ]
    return "--customize-hook=" + " && ".join(commands)


def uv_version() -> str:
    """The version of the ``uv`` package wheeldock runs: the one the builder base gets."""
    import importlib.metadata  # here, not at the top: it slows every build's start-up

    try:
        return importlib.metadata.version("uv")
    except importlib.metadata.PackageNotFoundError:
        raise ToolNotFound(
            "the `uv` Python package is not installed next to wheeldock (the builder base "
            "copies its binary)",
            fix=f"{sys.executable} -m pip install uv",
        ) from None


def uv_binary(version: str, arch: str) -> Path:
    """A uv binary of ``version`` that runs on ``arch``.

    This host's architecture: the binary of the installed ``uv`` package (which is
    :func:`uv_version`). Another one: the binary in uv's manylinux wheel for it, downloaded with
    pip once and cached under ``cache_dir("uv")``.
    """
    if arch == native_arch():
        try:
            from uv import find_uv_bin
        except ImportError:
            raise ToolNotFound(
                "the `uv` Python package is not installed next to wheeldock",
                fix=f"{sys.executable} -m pip install uv=={version}",
            ) from None
        return Path(find_uv_bin())
    folder = cache_dir("uv", f"{version}-{arch}")
    binary = folder / "uv"
    with file_lock(str(folder) + ".lock"):
        if binary.is_file():
            return binary
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            # pip takes each --platform literally (manylinux_2_36 does not admit 2_17 wheels):
            # name every glibc from bookworm's 2.36 down to manylinux2014's 2.17
            machine = WHEEL_MACHINES.get(arch, arch)
            download = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
                tmp,
                f"uv=={version}",
            ]
            for minor in range(36, 16, -1):
                download += ["--platform", f"manylinux_2_{minor}_{machine}"]
            process.run(
                download,
                timeout=600,
                fix=f"check that the package index has a uv {version} wheel for {arch}",
            )
            wheels = sorted(Path(tmp).glob("uv-*.whl"))
            if not wheels:
                raise NotFound(
                    f"pip downloaded no uv {version} wheel for {arch}",
                    fix="check the package index settings (pip config list)",
                )
            wheel = wheels[0]
            member = f"uv-{version}.data/scripts/uv"
            partial = folder / "uv.partial"
            try:
                with (
                    zipfile.ZipFile(wheel) as zf,
                    zf.open(member) as src,
                    partial.open("wb") as dst,
                ):
                    shutil.copyfileobj(src, dst)
            except KeyError:
                raise NotFound(
                    f"uv's wheel has no {member}", path=wheel, fix="report this to wheeldock"
                ) from None
            partial.chmod(0o755)
            os.replace(partial, binary)
    return binary


def suite_for(python: str) -> str | None:
    """The Debian suite whose python3 is ``python`` (``3.13`` → trixie), or None: no wheeldock
    base carries that Python, and the official ``python:X.Y`` image is the base instead."""
    return next((suite for suite, version in SUITE_PYTHON.items() if version == python), None)


def own_images(python: str, variant: str) -> tuple[str, ...]:
    """The engine tags of wheeldock's builder and ``variant`` bases of ``python`` on this
    machine's architecture (none when no suite carries that Python)."""
    if suite_for(python) is None or variant not in VARIANTS:
        return ()
    return tuple(
        image_tags(recipe(name), python_version=python, arch=native_arch())[0]
        for name in dict.fromkeys(("builder", variant))
    )


_OWN_IMAGE = re.compile(
    r"^(?:docker\.io/)?wheeldock/python:(?P<python>3\.\d+)-(?P<variant>[a-z]+)$"
)


def parse_own_image(image: str) -> tuple[str, str] | None:
    """``(variant, suite)`` when ``image`` names one of wheeldock's bases for this machine's
    architecture (``wheeldock/python:3.13-slim`` → ``("slim", "trixie")``), else None."""
    match = _OWN_IMAGE.match(image)
    if match is None or match["variant"] not in VARIANTS:
        return None
    suite = suite_for(match["python"])
    return None if suite is None else (match["variant"], suite)


def foreign_bytecode_hooks(python: str = "3.11") -> list[str]:
    """mmdebstrap hooks that keep byte-compiling out of the emulator.

    Under qemu-user, Debian's ``py3compile`` (run by every Python package's postinst) byte-compiles
    the standard library emulated, which is most of a foreign base's 8-10 minute build. Bytecode
    does not depend on the CPU, so ``py3compile`` is diverted to ``true`` while packages install,
    and the host's CPython of the same minor version (the same magic number) compiles the same
    trees afterwards. The result is the bytecode the emulated run would have written.
    """
    host = shutil.which(f"python{python}") or f"python{python}"
    # where Debian's python3 keeps the bytecode py3compile makes at install time
    compile_dirs = " ".join(
        f'"$1/{d}"' for d in (f"usr/lib/python{python}", "usr/lib/python3/dist-packages")
    )
    return [
        '--essential-hook=chroot "$1" dpkg-divert --quiet --local --rename '
        '--add /usr/bin/py3compile && ln -sf /bin/true "$1/usr/bin/py3compile"',
        '--customize-hook=rm -f "$1/usr/bin/py3compile" && chroot "$1" dpkg-divert --quiet '
        "--local --rename --remove /usr/bin/py3compile",
        f'--customize-hook={host} -m compileall -q -j 0 -s "$1" -p / {compile_dirs} >/dev/null || true',
    ]


def cache_key(recipe: Recipe, *, suite: str, arch: str) -> str:
    """A hex digest of everything that decides a rootfs tar's content."""
    parent = (
        cache_key(VARIANTS[recipe.derive_from], suite=suite, arch=arch)
        if recipe.derive_from
        else None
    )
    material = {
        "recipe_version": RECIPE_VERSION,
        "suite": suite,
        "arch": arch,
        "variant": recipe.name,
        "packages": sorted(recipe.packages),
        "excludes": list(recipe.excludes),
        "includes": list(recipe.includes),
        "sources": list(sources(suite, canonical=True)),
        "source_date_epoch": SOURCE_DATE_EPOCH,
        "prune": asdict(recipe.prune) if recipe.prune else None,
        "parent": parent,
        "users": [asdict(u) for u in recipe.users],
        "uv": uv_version() if recipe.uv else None,
    }
    if arch_needs_emulation(arch):
        material["foreign_bytecode"] = 1  # see foreign_bytecode_hooks
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def packages_digest(packages: Iterable[str]) -> str:
    """``sha256:`` of the sorted package list, for the image label."""
    text = "\n".join(sorted(set(packages))) + "\n"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def image_tags(
    recipe: Recipe, *, python_version: str, arch: str, host_arch: str | None = None
) -> tuple[str, ...]:
    """The wheeldock tag of a base; a foreign architecture gets a ``-ARCH`` suffix, as one
    local tag can only name one platform's image."""
    tag = recipe.tag.format(python=python_version)
    if arch != (host_arch or native_arch()):
        tag += f"-{arch}"
    return (tag,)


def alias_tag(
    recipe: Recipe, *, python_version: str, arch: str, host_arch: str | None = None
) -> str | None:
    """The official image's name this base may stand in for (native architecture only)."""
    if recipe.alias is None or arch != (host_arch or native_arch()):
        return None
    return recipe.alias.format(python=python_version)


def image_labels(recipe: Recipe, rootfs: BaseRootfs, *, title: str) -> dict[str, str]:
    """The labels of a base image: OCI's, plus what wheeldock reads back (variant, cache key,
    package list digest)."""
    return {
        "org.opencontainers.image.vendor": VENDOR,
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.description": (
            f"Python {rootfs.python_version} from Debian {rootfs.suite} packages: {recipe.summary}"
        ),
        "org.opencontainers.image.version": rootfs.python_version,
        "org.opencontainers.image.created": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(SOURCE_DATE_EPOCH)
        ),
        LABEL_BASE: recipe.name,
        LABEL_KEY: rootfs.key,
        LABEL_PACKAGES: packages_digest(recipe.packages),
        "wheeldock.base.suite": rootfs.suite,
        "wheeldock.base.arch": rootfs.arch,
        **({LABEL_UV: rootfs.uv_version} if rootfs.uv_version else {}),
    }


#: The official python image's runtime config (kept to its defaults: no PYTHONDONTWRITEBYTECODE).
IMAGE_ENV: tuple[str, ...] = (f"PATH={IMAGE_PATH}", "LANG=C.UTF-8")
IMAGE_CMD: tuple[str, ...] = ("python3",)


def import_changes(recipe: Recipe, rootfs: BaseRootfs, *, title: str) -> list[str]:
    """``docker import --change`` instructions: the official image's config, plus labels."""
    labels = image_labels(recipe, rootfs, title=title)
    label_args = " ".join(f"{k}={json.dumps(v)}" for k, v in labels.items())
    return [
        *(f"ENV {item}" for item in IMAGE_ENV),
        f"CMD {json.dumps(list(IMAGE_CMD))}",
        f"LABEL {label_args}",
    ]


# --------------------------------------------------------------------------- dpkg status


def _relation_names(value: str) -> list[list[str]]:
    """``a (>= 1) | b:any, c`` -> ``[["a", "b"], ["c"]]``."""
    groups = []
    for group in value.split(","):
        names = []
        for alternative in group.split("|"):
            name = re.sub(r"\(.*?\)|\[.*?\]|<.*?>", "", alternative).strip().split(":")[0]
            if name:
                names.append(name)
        if names:
            groups.append(names)
    return groups


def dependency_closure(
    paragraphs: Sequence[Paragraph], roots: Iterable[str], *, drop: Iterable[str] = ()
) -> frozenset[str]:
    """The installed packages ``roots`` need (Depends and Pre-Depends, transitively).

    Of alternatives the first installed one is taken; a virtual name resolves to an installed
    provider. Packages in ``drop`` are neither taken nor followed.
    """
    dropped = set(drop)
    installed = {p.package: p for p in paragraphs if p.installed and p.package not in dropped}
    providers: dict[str, str] = {}
    for para in installed.values():
        for name, *_ in _relation_names(para.fields.get("Provides", "")):
            providers.setdefault(name, para.package)
    wanted = [r for r in roots if r in installed]
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        para = installed[name]
        relations = para.fields.get("Pre-Depends", "") + "," + para.fields.get("Depends", "")
        for group in _relation_names(relations):
            for alternative in group:
                chosen = alternative if alternative in installed else providers.get(alternative)
                if chosen is not None:
                    wanted.append(chosen)
                    break
            else:
                log.debug("%s: %s is not kept (dropped or not installed)", name, " | ".join(group))
    return frozenset(seen)


# --------------------------------------------------------------------------- tar pruning


@dataclass(frozen=True)
class PruneResult:
    """What :func:`prune_tar` kept: package names and the bytes of file content."""

    packages: frozenset[str]
    members: int
    content_bytes: int


def _list_owners(
    tar: tarfile.TarFile, members: Sequence[tarfile.TarInfo], links: Mapping[str, str]
) -> dict[str, set[str]]:
    """Path -> owning packages, from ``var/lib/dpkg/info/*.list`` in the tar.

    The lists name paths as packaged (``/bin/dash``); on merged-/usr the file is
    ``usr/bin/dash``, so each listed parent folder is resolved through the tar's symlinks.
    """
    owners: dict[str, set[str]] = {}
    tree = SymlinkMap(links)
    for member in members:
        name = norm(member.name)
        if not (name.startswith("var/lib/dpkg/info/") and name.endswith(".list")):
            continue
        package = posixpath.basename(name)[: -len(".list")].split(":")[0]
        fh = tar.extractfile(member)
        if fh is None:
            continue
        for line in fh.read().decode(errors="replace").splitlines():
            listed = norm(line)
            parent = resolve(tree, posixpath.dirname(listed)) if listed else ""
            path = posixpath.join(parent or "", posixpath.basename(listed)) if listed else ""
            owners.setdefault(path, set()).add(package)
    return owners


def _pyc_source(path: str) -> str | None:
    """``x/__pycache__/mod.cpython-311.pyc`` -> ``x/mod.py``."""
    head, tail = posixpath.split(path)
    if posixpath.basename(head) != "__pycache__" or not tail.endswith(".pyc"):
        return None
    return posixpath.join(posixpath.dirname(head), tail.split(".", 1)[0] + ".py")


def _glob_matcher(patterns: Sequence[str]) -> Callable[[str], bool]:
    """Whether a path is, or is under, a path matching one of the ``fnmatch`` globs (matched
    part by part: ``*`` stops at ``/``)."""
    globs = [g.split("/") for g in patterns]

    def matches(path: str) -> bool:
        parts = path.split("/")
        return any(len(parts) >= len(g) and all(map(fnmatch.fnmatchcase, parts, g)) for g in globs)

    return matches


def _kept_by_owner(
    path: str, owners: Mapping[str, set[str]], keep_packages: frozenset[str]
) -> bool:
    """Whether the nearest owned path at or above ``path`` is a kept package's (an unowned
    path under no owned folder is kept)."""

    def owned_by_kept(path: str) -> bool | None:
        pkgs = owners.get(path)
        return None if pkgs is None else bool(pkgs & keep_packages)

    verdict = owned_by_kept(path)
    probe = path
    while verdict is None and probe:
        probe = posixpath.dirname(probe)
        verdict = owned_by_kept(probe)
    return verdict is None or verdict


def _drop_dangling_links(kept: set[str], links: Mapping[str, str]) -> None:
    """Drop the kept symlinks whose target went, until nothing changes (chains through
    alternatives)."""
    changed = True
    while changed:
        changed = False
        kept_links = {k: v for k, v in links.items() if k in kept}
        for path in list(kept_links):
            target = resolve(SymlinkMap(kept_links), path)
            if target is None or (target != "" and target not in kept):
                kept.discard(path)
                changed = True


def _add_parents(kept: set[str]) -> None:
    for path in list(kept):
        parent = posixpath.dirname(path)
        while parent and parent not in kept:
            kept.add(parent)
            parent = posixpath.dirname(parent)


def plan_prune(
    members: Sequence[tarfile.TarInfo],
    owners: Mapping[str, set[str]],
    keep_packages: frozenset[str],
    drop_paths: Sequence[str],
    *,
    keep_paths: Sequence[str] = (),
    always_keep: Iterable[str] = (STATUS_PATH,),
) -> set[str]:
    """The normalised member paths a pruned rootfs keeps.

    A path owned by a kept package stays; an unowned one (written by a maintainer script:
    ``/etc/passwd``, the CA bundle, byte-code) stays if its nearest owned folder is a kept
    package's, a ``.pyc`` only if its ``.py`` stays. Then symlinks that no longer lead to
    anything are dropped and the folders of everything kept are kept.
    """
    by_name = {norm(m.name): m for m in members}
    links = {n: m.linkname for n, m in by_name.items() if m.issym()}
    forced = set(always_keep)
    dropped_by_glob = _glob_matcher(drop_paths)
    kept_by_glob = _glob_matcher(keep_paths)

    kept: set[str] = set()
    pycs = []
    for path in by_name:
        if path in forced or kept_by_glob(path):
            kept.add(path)
        elif dropped_by_glob(path):
            continue
        elif _pyc_source(path) is not None and owners.get(path) is None:
            pycs.append(path)
        elif _kept_by_owner(path, owners, keep_packages):
            kept.add(path)
    kept.update(p for p in pycs if _pyc_source(p) in kept)
    _drop_dangling_links(kept, links)
    _add_parents(kept)
    if "" in by_name:
        kept.add("")
    return kept


def prune_tar(source: Path, dest: IO[bytes], prune: Prune) -> PruneResult:
    """Write ``source`` cut down by ``prune`` to ``dest`` (an uncompressed tar).

    Members keep their order and metadata; dpkg's status is rewritten to the kept packages; a
    hard link whose target is dropped becomes a regular file.
    """
    with tarfile.open(source, "r:") as tar:
        members = tar.getmembers()
        by_name = {norm(m.name): m for m in members}
        links = {n: m.linkname for n, m in by_name.items() if m.issym()}
        status_member = by_name.get(STATUS_PATH)
        if status_member is None:
            raise NotFound(f"{STATUS_PATH} is not in the rootfs", path=source)
        status_fh = tar.extractfile(status_member)
        assert status_fh is not None
        paragraphs = parse_status(status_fh.read().decode())
        keep_packages = dependency_closure(paragraphs, prune.keep, drop=prune.drop_packages)
        owners = _list_owners(tar, members, links)
        kept = plan_prune(
            members, owners, keep_packages, prune.drop_paths, keep_paths=prune.keep_paths
        )
        status = "\n".join(p.text for p in paragraphs if p.package in keep_packages).encode()

        written: dict[str, str] = {}  # dropped hard-link target -> first member standing in
        count = 0
        content = 0
        with tarfile.open(fileobj=dest, mode="w", format=tarfile.PAX_FORMAT) as out:
            for member in members:
                name = norm(member.name)
                if name not in kept:
                    continue
                info = member
                data: IO[bytes] | None = None
                if name == STATUS_PATH:
                    info = _copy_info(member, size=len(status))
                    out.addfile(info, _BytesReader(status))
                    count += 1
                    content += len(status)
                    continue
                if member.islnk():
                    target = norm(member.linkname)
                    if target not in kept:
                        if target in written:
                            info = _copy_info(member, linkname=written[target])
                        else:
                            source_member = by_name[target]
                            info = _copy_info(member, size=source_member.size, regular=True)
                            data = tar.extractfile(source_member)
                            written[target] = member.name
                            content += info.size
                elif member.isreg():
                    data = tar.extractfile(member)
                    content += member.size
                out.addfile(info, data)
                count += 1
    return PruneResult(keep_packages, count, content)


def _copy_info(
    member: tarfile.TarInfo,
    *,
    size: int | None = None,
    linkname: str | None = None,
    regular: bool = False,
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(member.name)
    info.mode, info.uid, info.gid = member.mode, member.uid, member.gid
    info.uname, info.gname, info.mtime = member.uname, member.gname, member.mtime
    info.pax_headers = dict(member.pax_headers)
    info.type = tarfile.REGTYPE if regular else member.type
    info.linkname = "" if regular else (linkname if linkname is not None else member.linkname)
    info.size = size if size is not None else member.size
    if not info.isreg():
        info.size = 0
    return info


class _BytesReader:
    """A minimal readable for ``TarFile.addfile``."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else min(len(self._data), self._pos + n)
        chunk = bytes(self._data[self._pos : end])
        self._pos = end
        return chunk


# --------------------------------------------------------------------------- rootfs


def _python_version(status: str) -> str:
    for para in parse_status(status):
        if para.package == "python3" and para.installed:
            match = re.match(r"(?:\d+:)?(\d+\.\d+)", para.version)
            if match:
                return match.group(1)
    raise NotFound("python3 is not installed in the rootfs (no python3 in dpkg's status)")


def _meta_path(tar_path: Path) -> Path:
    return tar_path.with_suffix(".json")


def _writable_cache() -> Path:
    try:
        folder = cache_dir("bases")
        # a probe of its own: threads of one process may ask at once
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise NotWritable(
            f"the base image cache is not writable ({exc.strerror})",
            path=getattr(exc, "filename", None) or "cache",
            fix="set WHEELDOCK_CACHE to a writable folder",
        ) from exc
    return folder


def ensure_rootfs(
    variant: str,
    *,
    arch: str = DEFAULT_ARCH,
    suite: str = DEFAULT_SUITE,
    rebuild: bool = False,
) -> BaseRootfs:
    """The rootfs tar of ``variant``: from the cache, else built (mmdebstrap, or pruned from
    its parent's tar) and cached. ``rebuild`` builds again (a derived variant's parent too).

    Safe to call from several processes at once: one builds, the others wait and reuse it.
    """
    spec = recipe(variant)
    check_arch(arch)
    started = time.monotonic()
    key = cache_key(spec, suite=suite, arch=arch)
    folder = _writable_cache()
    tar_path = folder / f"{variant}-{suite}-{arch}-{key[:16]}.tar"
    meta_path = _meta_path(tar_path)
    with file_lock(str(tar_path) + ".lock"):
        cached = not rebuild and tar_path.is_file() and meta_path.is_file()
        if cached:
            meta = json.loads(meta_path.read_text())
            python_version = str(meta["python_version"])
        else:
            partial = tar_path.with_name(tar_path.stem + ".partial.tar")
            try:
                if spec.derive_from is not None and spec.prune is not None:
                    parent = ensure_rootfs(
                        spec.derive_from, arch=arch, suite=suite, rebuild=rebuild
                    )
                    with partial.open("wb") as fh:
                        result = prune_tar(parent.tar_path, fh, spec.prune)
                    log.info(
                        "%s: kept %d packages, %d members, %.1f MB of content",
                        variant,
                        len(result.packages),
                        result.members,
                        result.content_bytes / 1e6,
                    )
                else:
                    process.which("mmdebstrap")
                    uv = uv_binary(uv_version(), arch) if spec.uv else None
                    argv = mmdebstrap_argv(
                        spec, suite=suite, arch=arch, output=partial, uv_binary=uv
                    )
                    try:
                        process.run(
                            argv, env={"SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)}, timeout=3600
                        )
                    except CommandFailed as exc:
                        fix = mmdebstrap_fix(exc.stderr + exc.stdout, suite=suite, arch=arch)
                        raise CommandFailed(
                            exc.argv, exc.returncode, exc.stdout, exc.stderr, fix=fix
                        ) from None
                python_version = _python_version(status_in_tar(partial).decode())
                os.replace(partial, tar_path)
            finally:
                partial.unlink(missing_ok=True)
            meta = {
                "variant": variant,
                "suite": suite,
                "arch": arch,
                "key": key,
                "packages": list(spec.packages),
                "python_version": python_version,
                "uv_version": uv_version() if spec.uv else None,
                "build_seconds": round(time.monotonic() - started, 2),
            }
            meta_path.write_text(json.dumps(meta, indent=2) + "\n")
            _remove_stale(folder, f"{variant}-{suite}-{arch}-", keep=tar_path.stem)
    return BaseRootfs(
        variant=variant,
        arch=arch,
        suite=suite,
        tar_path=tar_path,
        packages=spec.packages,
        size_bytes=tar_path.stat().st_size,
        seconds=round(time.monotonic() - started, 3),
        cached=cached,
        python_version=python_version,
        key=key,
        uv_version=uv_version() if spec.uv else None,
    )


def _remove_stale(folder: Path, prefix: str, *, keep: str) -> None:
    """Drop the tars of older recipes for the same variant, suite and arch (they would only
    ever be used again by an older wheeldock)."""
    for path in folder.glob(prefix + "*"):
        finished = path.name.endswith((".tar", ".json")) and not path.name.endswith(".partial.tar")
        if finished and path.stem != keep:
            log.info("removing stale base rootfs %s", path)
            path.unlink(missing_ok=True)


def unpacked(rootfs: BaseRootfs) -> Path:
    """``rootfs``'s tar unpacked into a folder of the cache (once per base key), for commands
    run chrooted into it (:mod:`wheeldock.edges.chroot`, which never writes into it). Device
    nodes are left out: a run gets the host's ``/dev``."""
    folder = _writable_cache() / "unpacked"
    dest = folder / f"{rootfs.variant}-{rootfs.suite}-{rootfs.arch}-{rootfs.key[:16]}"
    if dest.is_dir():
        return dest
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(str(dest) + ".lock"):
        if dest.is_dir():
            return dest
        partial = Path(tempfile.mkdtemp(dir=folder, prefix=".unpacking."))
        try:
            log.info("unpacking the %s base for builds", rootfs.variant)
            process.run(["tar", "-x", "-f", rootfs.tar_path, "-C", partial, "--exclude=./dev/*"])
            os.replace(partial, dest)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    for stale in folder.glob(f"{rootfs.variant}-{rootfs.suite}-{rootfs.arch}-*"):
        if stale.is_dir() and stale != dest:
            shutil.rmtree(stale, ignore_errors=True)
    return dest


@functools.lru_cache(maxsize=16)
def _installed(tar_path: Path, _mtime_ns: int) -> Mapping[str, str]:
    return MappingProxyType(installed_versions(status_in_tar(tar_path).decode()))


def installed_packages(rootfs: BaseRootfs) -> dict[str, str]:
    """Package -> version of everything dpkg's status (inside the tar) says is installed."""
    return dict(_installed(rootfs.tar_path, rootfs.tar_path.stat().st_mtime_ns))


_LIB_RE = re.compile(r"^(lib.*|ld-.*)\.so(\.[0-9.]+)?$")


@functools.lru_cache(maxsize=16)
def _libraries(tar_path: Path, _mtime_ns: int) -> frozenset[str]:
    with tarfile.open(tar_path, "r:") as tar:
        members = tar.getmembers()
        by_name = {norm(m.name): m for m in members}
        links = {n: m.linkname for n, m in by_name.items() if m.issym()}
        conf_dirs: set[str] = set()
        for name, member in by_name.items():
            if name.startswith("etc/ld.so.conf.d/") and name.endswith(".conf") and member.isreg():
                fh = tar.extractfile(member)
                for line in (fh.read().decode(errors="replace") if fh else "").splitlines():
                    line = line.split("#", 1)[0].strip()
                    if line.startswith("/"):
                        conf_dirs.add(resolve(SymlinkMap(links), line) or norm(line))
    lib_dirs = {"usr/lib", "usr/lib64", "usr/local/lib", *conf_dirs}
    for name in list(by_name):
        parts = name.split("/")
        # the multiarch folders: usr/lib/x86_64-linux-gnu, usr/lib/aarch64-linux-gnu, …
        if len(parts) == 3 and parts[:2] == ["usr", "lib"] and parts[2].count("-") >= 2:
            lib_dirs.add(name)
    found = set()
    for name, member in by_name.items():
        folder, base = posixpath.split(name)
        if folder in lib_dirs and _LIB_RE.match(base) and (member.isreg() or member.issym()):
            found.add("/" + name)
    return frozenset(found)


def library_paths(rootfs: BaseRootfs) -> frozenset[str]:
    """Absolute paths of the shared libraries in the rootfs's library folders (the loader's
    default ones, the multiarch ones and those in ``/etc/ld.so.conf.d``).

    Paths are as stored (merged-/usr: ``/usr/lib/x86_64-linux-gnu/libc.so.6``; ``/lib/…``
    names the same file through the ``/lib`` symlink). Symlinks count: sonames are symlinks.
    """
    return _libraries(rootfs.tar_path, rootfs.tar_path.stat().st_mtime_ns)


def library_sonames(rootfs: BaseRootfs) -> frozenset[str]:
    """The file names of :func:`library_paths` (``libssl.so.3``, ``libc.so.6``, …)."""
    return frozenset(posixpath.basename(p) for p in library_paths(rootfs))


# --------------------------------------------------------------------------- images


def _labels(ref: str) -> dict[str, str] | None:
    """The labels of image ``ref``, or None when the engine has no such image."""
    result = engine.docker(
        "image", "inspect", "--format", "{{json .Config.Labels}}", ref, check=False
    )
    if result.returncode != 0:
        return None
    labels = json.loads(result.stdout or "null")
    return dict(labels or {})


def _image_id(ref: str) -> str:
    return engine.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def _pullable(ref: str) -> bool:
    """Whether a registry serves ``ref`` (asks for its manifest; nothing is downloaded)."""
    result = engine.docker("manifest", "inspect", ref, check=False, timeout=30)
    return result.returncode == 0


def _apply_alias(alias: str, image_ref: str) -> str:
    """Tag ``image_ref`` as ``alias`` unless that would shadow an image from elsewhere; returns
    what was done, for the user."""
    labels = _labels(alias)
    if labels is not None and LABEL_BASE not in labels:
        return f"left {alias} alone: it exists and was not made by wheeldock"
    if labels is None and _pullable(alias):
        return f"did not tag {alias}: it can be pulled here (`docker pull {alias}`)"
    engine.tag(image_ref, alias)
    return f"tagged {alias} because it cannot be pulled here"


def ensure_image(
    variant: str,
    *,
    arch: str = DEFAULT_ARCH,
    suite: str = DEFAULT_SUITE,
    rebuild: bool = False,
) -> BaseImage:
    """``variant`` as an image in the Docker engine, tagged (see :func:`image_tags`).

    Reuses the cached rootfs and, when the tag already names an image made from the same
    rootfs key, the image itself (nothing is imported). The official name (``python:3.11-slim``
    for slim) is added only when no such image exists here that wheeldock did not make and
    none can be pulled.
    """
    spec = recipe(variant)
    check_arch(arch)
    engine.require()
    started = time.monotonic()
    rootfs = ensure_rootfs(variant, arch=arch, suite=suite, rebuild=rebuild)
    tags = image_tags(spec, python_version=rootfs.python_version, arch=arch)
    primary = tags[0]
    previous = _labels(primary)
    image_cached = not rebuild and previous is not None and previous.get(LABEL_KEY) == rootfs.key
    old_id = _image_id(primary) if previous is not None and not image_cached else None
    if not image_cached:
        argv: list[str] = ["import", "--platform", ARCHES[arch][1]]
        for change in import_changes(spec, rootfs, title=primary):
            argv += ["--change", change]
        argv += ["--message", f"wheeldock base {variant} ({suite}, {arch})"]
        argv += [str(rootfs.tar_path), primary]
        engine.docker(*argv, timeout=1800)
    image_id = _image_id(primary)
    for extra in tags[1:]:
        engine.tag(primary, extra)
    notes = []
    alias = alias_tag(spec, python_version=rootfs.python_version, arch=arch)
    if alias is not None:
        note = _apply_alias(alias, primary)
        notes.append(note)
        if note.startswith("tagged"):
            tags = (*tags, alias)
    if old_id and old_id != image_id and previous and LABEL_BASE in previous:
        # The replaced image is ours and now untagged; remove it unless something still uses it.
        engine.docker("image", "rm", old_id, check=False)
    return BaseImage(
        variant=variant,
        tags=tags,
        image_id=Digest.parse(image_id),
        size_bytes=engine.image_size(primary),
        seconds=round(time.monotonic() - started, 3),
        cached=image_cached and rootfs.cached,
        rootfs=rootfs,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- other outputs


@dataclass(frozen=True)
class Output:
    """Where ``--output`` sends a base: ``tar:FILE`` or ``oci:DIR[:TAG]``."""

    transport: str
    path: Path
    tag: str | None = None


def parse_output(text: str) -> Output:
    transport, sep, rest = text.partition(":")
    if not sep or not rest or transport not in ("tar", "oci"):
        raise InvalidReference(
            f"cannot use {text!r} as an output",
            fix="write tar:FILE (a rootfs tar) or oci:DIR[:TAG] (an OCI image layout)",
        )
    if transport == "oci":
        folder, _, tag = rest.partition(":")
        return Output("oci", Path(folder), tag or None)
    return Output("tar", Path(rest))


def write_rootfs_tar(rootfs: BaseRootfs, dest: Path) -> Path:
    """Copy the rootfs tar to ``dest`` (atomically: a temp file in the same folder, renamed)."""
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rootfs.tar_path, tmp)
        os.replace(tmp, dest)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise NotWritable(
            f"cannot write the rootfs tar here ({exc.strerror})",
            path=dest.parent,
            fix="make the folder writable, or pick another with --output tar:FILE",
        ) from exc
    return dest


def oci_image(rootfs: BaseRootfs, *, store: BlobStore | None = None) -> Image:
    """The base as a one-layer OCI :class:`~wheeldock.oci.image.Image` (same config and labels as
    the imported one), for the native builder or an ``oci:`` layout.

    The layer is the rootfs tar gzip-compressed into ``store`` (cached by the tar's digest, so a
    second call only hashes the tar).
    """
    spec = recipe(rootfs.variant)
    title = image_tags(spec, python_version=rootfs.python_version, arch=rootfs.arch)[0]
    layer = Layer.from_tar_file(rootfs.tar_path, store or default_store())
    created = rfc3339(SOURCE_DATE_EPOCH)
    return Image(
        layers=(layer,),
        config=ImageConfig(
            cmd=IMAGE_CMD, env=IMAGE_ENV, labels=image_labels(spec, rootfs, title=title)
        ),
        platform=Platform.parse(ARCHES[rootfs.arch][1]),
        history=(
            History(
                created_by=f"wheeldock base {rootfs.variant} ({rootfs.suite}, {rootfs.arch})",
                created=created,
            ),
        ),
        created=created,
    )


def write_oci_layout(
    rootfs: BaseRootfs, dest: Path, *, tag: str | None = None, store: BlobStore | None = None
) -> str:
    """Write the base into the OCI image layout at ``dest``; returns its ``oci:`` reference."""
    result = layout.write(oci_image(rootfs, store=store), dest, tag=tag)
    return result.ref


def require_engine_or_output(output: str | None) -> None:
    """Loading into the engine is the default; without an engine, say how to get a file."""
    if output is not None:
        return
    try:
        engine.require()
    except EngineUnavailable as exc:
        raise EngineUnavailable(
            exc.what,
            fix=f"{exc.fix}; or write the base to a file with --output tar:FILE",
        ) from exc


def iter_variants(names: Sequence[str]) -> Iterator[Recipe]:
    """The recipes named, in order, each once; :class:`NotFound` for an unknown name."""
    seen = set()
    for name in names:
        spec = recipe(name)
        if name not in seen:
            seen.add(name)
            yield spec
