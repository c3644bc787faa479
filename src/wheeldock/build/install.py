"""Locked wheels → staging trees that become the image's ``site-packages``, without a container.

Where things go (Debian's own layout, because the bases are Debian's ``python3``): packages in
``/usr/local/lib/python3.11/dist-packages`` — on the Debian interpreter's ``sys.path`` already,
no venv and no ``PYTHONPATH`` needed — console scripts in ``/usr/local/bin`` (on ``PATH``) with
``#!/usr/bin/python3.11``, data files under ``/usr/local``. :func:`scheme_for` gives the
``/usr/local/lib/python3.11/site-packages`` layout for python.org-style bases instead.

Each wheel is installed by pypa ``installer`` (scripts, RECORD, INSTALLER written correctly)
into its own tree, laid out as the image's root, and cached per wheel sha256 × scheme ×
compiling interpreter under ``cache_dir("installed")``: a one-pin bump installs one wheel, and a
dependency layer is a union of trees. Bytecode is compiled as unchecked-hash .pyc files (no
source mtimes inside) recording the in-image paths, so the trees are the same in any folder.
The compiling interpreter must be the image's minor version (same magic number).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import heapq
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import IO, Literal, cast

from wheeldock.debian import bases
from wheeldock.debian.bases import BaseRootfs
from wheeldock.edges import chroot, process
from wheeldock.edges.fsutil import atomic_write_bytes, atomic_writer
from wheeldock.edges.paths import cache_dir, cache_root, free_bytes, staging_dir
from wheeldock.edges.sweep import Age, Candidate, size_of
from wheeldock.errors import InvalidArchive, InvalidConfig, ToolNotFound, WheeldockError
from wheeldock.oci.blobs import CHUNK, BlobWriter
from wheeldock.oci.digest import Digest
from wheeldock.platforms import native_arch

log = logging.getLogger(__name__)

#: Bumped when the tree layout or compilation changes, so old cached trees are not reused
#: (3: an sdist's tree is keyed by the sdist, and its wheel is now compiled in the builder base,
#: not on the host).
_TREE_FORMAT = "wheeldock-installed-3"
_COMPILER = Path(__file__).with_name("_compile_bytecode.py")


#: Whether the installed .py files get bytecode. ``full``: a .pyc for every file, as pip writes
#: them (and uv with ``--compile-bytecode``). ``none``: no .pyc, uv's default: a cold build skips
#: compiling, but every container start then compiles what it imports, in memory (site-packages
#: belongs to root and the app runs as another user), each time (docs/design/bytecode.md).
Bytecode = Literal["full", "none"]
BYTECODE_MODES: tuple[Bytecode, ...] = ("full", "none")


@dataclass(frozen=True)
class Scheme:
    """Absolute in-image folders for each wheel scheme, the scripts' interpreter, and how the
    files get bytecode (part of every installed tree's and dependency layer's cache key)."""

    purelib: str
    platlib: str
    scripts: str
    data: str
    headers: str  # the distribution's name is appended
    interpreter: str
    bytecode: Bytecode = "full"

    @property
    def python_version(self) -> str:
        return self.purelib.split("/python")[1].split("/")[0]

    def for_dist(self, dist: str) -> dict[str, str]:
        return {
            "purelib": self.purelib,
            "platlib": self.platlib,
            "scripts": self.scripts,
            "data": self.data,
            "headers": f"{self.headers}/{dist}",
        }


def debian_scheme(python: str = "3.11") -> Scheme:
    """Debian's python3: ``/usr/local/lib/pythonX.Y/dist-packages``, scripts in /usr/local/bin."""
    return _usr_local_scheme(python, "dist-packages", interpreter=f"/usr/bin/python{python}")


def python_org_scheme(python: str = "3.11") -> Scheme:
    """python.org builds (the ``python:3.x`` images): ``/usr/local/lib/pythonX.Y/site-packages``."""
    return _usr_local_scheme(python, "site-packages", interpreter=f"/usr/local/bin/python{python}")


def _usr_local_scheme(python: str, site_dir: str, *, interpreter: str) -> Scheme:
    """Everything under /usr/local, packages in ``lib/pythonX.Y/<site_dir>``."""
    site = f"/usr/local/lib/python{python}/{site_dir}"
    return Scheme(
        purelib=site,
        platlib=site,
        scripts="/usr/local/bin",
        data="/usr/local",
        headers=f"/usr/local/include/python{python}",
        interpreter=interpreter,
    )


def python_org_version(env: Sequence[str]) -> str | None:
    """``X.Y`` of a python.org image, from the ``PYTHON_VERSION`` its config ``Env`` sets;
    None for any other image."""
    for entry in env:
        if entry.startswith("PYTHON_VERSION="):
            return ".".join(entry.split("=", 1)[1].split(".")[:2])
    return None


def scheme_for(env: Sequence[str], python: str = "3.11") -> Scheme:
    """The scheme for a base image from its config ``Env``: python.org images set
    ``PYTHON_VERSION``; anything else is taken to be Debian's python3."""
    if python_org_version(env) is not None:
        return python_org_scheme(python)
    return debian_scheme(python)


@cache
@cache
def host_interpreter(python: str) -> str | None:
    """This machine's interpreter of ``python`` (``X.Y``), or None. A candidate on PATH is
    asked its version: a pyenv shim answers to ``python3.13`` without having that version."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python:
        return sys.executable
    path = shutil.which(f"python{python}")
    if path is None:
        return None
    asked = process.run(
        [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], check=False, timeout=60
    )
    return path if asked.returncode == 0 and asked.stdout.strip() == python else None


def compiler_id(python: str) -> str:
    """What identifies the bytecode :func:`_compiler_argv` makes: this interpreter's build,
    another interpreter's path, or the base whose python3 compiles it."""
    host = host_interpreter(python)
    if host == sys.executable:
        return sys.version
    if host is not None:
        return host
    return "base:" + _base_rootfs(python).key


def _base_rootfs(python: str) -> BaseRootfs:
    """The slim base whose python3 is ``python``, to compile with when this machine has no
    such interpreter (a Python 3.13 image built on a bookworm host)."""
    return _base_rootfs_in(python, str(cache_root()))


@cache
def _base_rootfs_in(python: str, _cache: str) -> BaseRootfs:
    """:func:`_base_rootfs`, asked once per cache folder (each tree's compile asks)."""
    suite = bases.suite_for(python)
    if suite is None:
        raise ToolNotFound(
            f"Python {python} is needed on this machine to compile the image's bytecode",
            fix=f'install python{python} (the image\'s version), or set bytecode = "none" '
            "for the service",
        )
    return bases.ensure_rootfs("slim", arch=native_arch(), suite=suite)


#: Where the compiler script is bound inside a base's rootfs.
_INSIDE_COMPILER = "/run/wheeldock/compile_bytecode.py"


def _base_compiler_argv(python: str, workers: int) -> tuple[str, ...]:
    """The base's own python3 running the compiler, chrooted into its rootfs (no engine). The
    cache and the staging folder are bound at their own paths, so the trees' paths read the
    same inside; the overlay's scratch is a tmpfs that goes with the process."""
    root = bases.unpacked(_base_rootfs(python))
    writable = {cache_root(): str(cache_root())}
    staging = os.environ.get("WHEELDOCK_STAGING")
    if staging:
        writable[Path(staging)] = staging
    text = chroot.script(
        root,
        cache_dir("chroot"),
        ("python3", "-I", _INSIDE_COMPILER, str(workers)),
        env={},
        binds={_COMPILER: _INSIDE_COMPILER},
        writable=writable,
        scratch_tmpfs=True,
    )
    return tuple(chroot.argv_for(text))


def _rel(path: str) -> str:
    return path.lstrip("/")


def install_wheel(wheel: Path, root: Path, scheme: Scheme) -> None:
    """Unpack ``wheel`` under ``root`` as though ``root`` were ``/``; no bytecode (see
    :func:`compile_bytecode`). ``root`` must not hold another copy of the distribution."""
    # imported on first install: a build whose trees are all cached never needs it
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.exceptions import InstallerError
    from installer.sources import WheelFile

    try:
        with WheelFile.open(wheel) as source:
            destination = SchemeDictionaryDestination(
                scheme.for_dist(source.distribution),
                interpreter=scheme.interpreter,
                script_kind="posix",
                destdir=str(root),
            )
            install(source, destination, additional_metadata={"INSTALLER": b"wheeldock\n"})
    except (InstallerError, zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
        raise InvalidConfig(
            f"cannot install the wheel {wheel.name} ({exc})",
            path=wheel,
            fix="the wheel is malformed: pin another version of it, or report it upstream",
        ) from exc


def _sources(root: Path, scheme: Scheme) -> list[list[str]]:
    """[file, in-image path] of every .py under ``root``'s site-packages, in a stable order."""
    pairs: list[list[str]] = []
    for dirpath, dirnames, filenames in os.walk(root / _rel(scheme.purelib)):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".py"):
                full = Path(dirpath) / name
                pairs.append([str(full), "/" + full.relative_to(root).as_posix()])
    return pairs


def _compile_while(
    scheme: Scheme,
    workers: int,
    produce: Callable[[Callable[[Path], None]], None],
    compiled: Callable[[Path], None] | None = None,
    spares: Compilers | None = None,
) -> None:
    """Run ``produce``, which calls its argument with each tree as soon as the tree is installed,
    while a compiler process (``workers`` processes; one of ``spares`` when it holds one that
    matches) compiles the trees already handed over.
    ``compiled`` is called with each tree once its bytecode is written (from another thread, in
    the order trees finish), so a caller can use it while the others compile."""
    done = compiled or (lambda root: None)
    if scheme.bytecode == "none":
        produce(done)
        return
    sent: list[Path] = []
    skipped: list[str] = []

    def feed(pipe: IO[bytes]) -> None:
        def compile_tree(root: Path) -> None:
            pairs = _sources(root, scheme)
            if not pairs:
                done(root)  # nothing to compile (e.g. a wheel of data files only)
                return
            sent.append(root)  # before the line: its report may come back at once
            pipe.write(json.dumps(pairs).encode() + b"\n")
            pipe.flush()

        produce(compile_tree)

    def report(line: bytes) -> None:
        message = json.loads(line)
        skipped.extend(message["failed"])
        done(sent[message["tree"]])

    argv = _compiler_argv(scheme.python_version, workers)
    process.run(
        argv,
        fix="report this: compiling bytecode should not fail as a whole",
        streams=process.Streams(
            feed=feed, on_line=report, started=spares.take(argv) if spares is not None else None
        ),
    )
    if skipped:
        log.debug(
            "left %d file(s) without bytecode (syntax not Python 3): %s", len(skipped), skipped
        )


def _compiler_argv(python: str, workers: int) -> tuple[str, ...]:
    host = host_interpreter(python)
    if host is None:
        return _base_compiler_argv(python, workers)
    return (host, "-I", str(_COMPILER), str(workers))


#: Compiler workers for more than one wheel (the argv a spare compiler must match, too).
_ALL_CORES = os.cpu_count() or 1


class Compilers:
    """Compiler processes started ahead of need (:meth:`start`), by their argv: the next
    install of wheels with the same interpreter and worker count takes one (:meth:`take`)
    instead of starting its own. One per command; :meth:`close` ends those nobody took."""

    def __init__(self) -> None:
        self._spares: dict[tuple[str, ...], subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def start(self, python: str) -> None:
        """Start, now, the compiler process the next install of wheels will use (one worker
        per core, as :class:`Preinstaller` runs it). A build calls this as soon as it knows
        wheels are coming (a stale lock): the interpreter's start-up and imports then
        overlap the index requests instead of following the first wheel."""
        argv = _compiler_argv(python, _ALL_CORES)
        with self._lock:
            if argv not in self._spares:
                self._spares[argv] = process.spawn(argv)

    def take(self, argv: tuple[str, ...]) -> subprocess.Popen[bytes] | None:
        """The spare started with ``argv`` (no longer a spare), or None."""
        with self._lock:
            return self._spares.pop(argv, None)

    def spares(self) -> list[subprocess.Popen[bytes]]:
        """The compilers started and not taken yet."""
        with self._lock:
            return list(self._spares.values())

    def close(self) -> None:
        """Close the stdin of the compilers nobody took (they then exit, having compiled
        nothing) and wait for them."""
        with self._lock:
            spares = list(self._spares.values())
            self._spares.clear()
        for proc in spares:
            proc.communicate()


def compile_bytecode(trees: Sequence[Path], scheme: Scheme) -> None:
    """Compile every .py in the trees' site-packages, recording in-image paths."""

    def produce(compile_tree: Callable[[Path], None]) -> None:
        for root in trees:
            compile_tree(root)

    _compile_while(scheme, _ALL_CORES, produce)


class InstalledTrees:
    """Per-wheel installed trees: one archive per wheel in the cache, by wheel sha256 × scheme ×
    compiler, unpacked for use into a staging folder (:func:`wheeldock.edges.paths.staging_dir`, in
    RAM when it can be).

    The cache holds one file per wheel, not the ~80 files of its tree: making files is what a
    cold build spends most kernel time on, on a disk. A new tree is installed and compiled in the
    staging folder, archived (a temp file renamed into place, so ``kill -9`` leaves at most a
    temp file and two processes installing the same wheel both succeed), and used from there;
    a cached one is unpacked there when first asked for (a bump's layer needs the trees of the
    wheels beside the new one). :meth:`release` removes the staged trees.

    A tree goes to the cache's own staging folder instead when RAM has too little room left for
    it (a stack of several GB, a small machine): the build is slower then, not broken.
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        staging: Path | None = None,
        compilers: Compilers | None = None,
    ) -> None:
        self.root = Path(root) if root is not None else cache_dir("installed")
        #: compilers started ahead of need: installs here take one that matches
        self.compilers = compilers if compilers is not None else Compilers()
        self._staging_parent = staging
        self._staging: Path | None = None  # RAM, or wherever staging_dir chose
        self._spill: Path | None = None  # the cache's, for trees RAM has no room for
        self._where: dict[str, Path] = {}  # key -> staged tree
        #: keys of trees installed here whose archive is not written yet: the layer that holds
        #: the tree writes it (:meth:`archive_writer`), so the tree is not tarred twice
        self._unarchived: set[str] = set()
        self._lock = threading.RLock()
        self._cleanups: list[threading.Thread] = []

    def key(self, wheel_sha256: str, scheme: Scheme) -> str:
        # The .pyc bytes depend on the compiling interpreter's build, so it is part of the key.
        ident = json.dumps(
            [_TREE_FORMAT, wheel_sha256, asdict(scheme), compiler_id(scheme.python_version)],
            sort_keys=True,
        )
        return hashlib.sha256(ident.encode()).hexdigest()

    def archive(self, wheel_sha256: str, scheme: Scheme) -> Path:
        """Where the tree's archive is kept in the cache."""
        return self._archive_path(self.key(wheel_sha256, scheme))

    def _archive_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.tar"

    def has(self, wheel_sha256: str, scheme: Scheme) -> bool:
        """Whether the tree is staged here (its archive may still be being written) or in the
        cache."""
        key = self.key(wheel_sha256, scheme)
        return key in self._where or self.archive(wheel_sha256, scheme).is_file()

    @contextmanager
    def archive_writer(self, wheel_sha256: str, scheme: Scheme) -> Iterator[IO[bytes] | None]:
        """A file for the tree's archive when it still needs one (else None): the caller
        writes the tree's entries as a tar (a layer of this tree alone: its bytes), and the
        archive is put in place, with its digest, when the block ends without an error."""
        key = self.key(wheel_sha256, scheme)
        with self._lock:
            if key not in self._unarchived:
                claimed = False
            else:
                self._unarchived.discard(key)  # one writer; another thread gets None
                claimed = True
        if not claimed:
            yield None
            return
        try:
            # a concurrent build's identical archive may be replaced
            with _archiving(self.archive(wheel_sha256, scheme)) as out:
                yield out
        except BaseException:
            with self._lock:
                self._unarchived.add(key)  # written by someone else, or at release
            raise

    def write_archive(self, wheel_sha256: str, scheme: Scheme) -> None:
        """Archive the staged tree if it still needs it (a layer holding several trees)."""
        with self.archive_writer(wheel_sha256, scheme) as out:
            if out is not None:
                self._write_tree(self._where[self.key(wheel_sha256, scheme)], out)

    def path(self, wheel_sha256: str, scheme: Scheme) -> Path:
        """The tree, as a folder laid out as the image's root; unpacked from the cache if it is
        not staged yet (it must be in the cache: see :meth:`has`)."""
        with self._lock:
            key = self.key(wheel_sha256, scheme)
            tree = self._where.get(key)
            if tree is None or not tree.is_dir():
                archive = self.archive(wheel_sha256, scheme)
                size = archive.stat().st_size if archive.is_file() else 0
                tree = self._stage(size) / key
                self._unpack(archive, tree)
                self._where[key] = tree
            return tree

    def release(self) -> None:
        """Remove the staged trees (on a thread: :meth:`close` waits for it). Trees asked for
        later are unpacked again."""
        with self._lock:
            self._archive_the_rest()
            stagings = [d for d in (self._staging, self._spill) if d is not None]
            self._staging = self._spill = None
            self._where.clear()
        for staging in stagings:
            _unreleased.discard(staging)
            cleanup = threading.Thread(
                target=shutil.rmtree, args=(staging, True), name="release-trees", daemon=True
            )
            cleanup.start()
            self._cleanups.append(cleanup)

    def _archive_the_rest(self) -> None:
        """Archive the trees installed here that no layer archived (call with the lock held)."""
        for key in sorted(self._unarchived):
            with _archiving(self._archive_path(key)) as out:
                self._write_tree(self._where[key], out)
        self._unarchived.clear()

    def close(self) -> None:
        """Release the staged trees and wait until they are gone."""
        self.release()
        while self._cleanups:
            self._cleanups.pop().join()

    def prune_candidates(self, age: Age, *, everything: bool = False) -> list[Candidate]:
        """What a prune removes: archives not used within ``age.keep_seconds`` (``everything``:
        all but those younger than :data:`~wheeldock.edges.sweep.GRACE`). An archive is made
        again from its wheel when a build needs it."""
        return [
            Candidate("installed trees", archive, size_of(archive), "not used lately")
            for archive in sorted(self.root.glob("*/*.tar"))
            if not age.young(archive) and (everything or not age.kept(archive))
        ]

    def _stage(self, need: int) -> Path:
        """The staging folder for a tree of about ``need`` bytes (call with the lock held)."""
        if self._staging is None:
            self._staging = staging_dir(self._staging_parent)
            _unreleased.add(self._staging)
            _staging_trees.add(self)
        if self._staging_parent is not None or free_bytes(self._staging) >= need + _HEADROOM:
            return self._staging
        spill_parent = cache_dir("staging")
        if self._staging.parent == spill_parent:
            return self._staging
        if self._spill is None:
            log.debug("staging trees in %s: RAM is short of room", spill_parent)
            self._spill = staging_dir(spill_parent)
            _unreleased.add(self._spill)
        return self._spill

    def _unpack(self, archive: Path, tree: Path) -> None:
        """Unpack ``archive`` into ``tree``, hashing it while it is read: an archive whose bytes
        are not the digest recorded beside it is removed (with a warning naming it) and
        :class:`InvalidArchive` raised, so the caller installs the wheel again."""
        import tarfile

        tmp = Path(tempfile.mkdtemp(dir=tree.parent, prefix=".unpack."))
        try:
            expected = _recorded_digest(archive)
            if not _ends_whole(archive):
                raise tarfile.ReadError("the archive is cut short")
            with archive.open("rb") as raw:
                reader = _HashingReader(raw)
                with tarfile.open(fileobj=reader, mode="r|") as tf:  # type: ignore[call-overload]
                    # our own archive; the filter (where this Python has it) guards the folder
                    if hasattr(tarfile, "tar_filter"):
                        tf.extractall(tmp, filter="tar")
                    else:  # pragma: no cover - Python 3.11 before 3.11.4
                        tf.extractall(tmp)
                reader.drain()
            if reader.digest != expected:
                raise tarfile.ReadError(f"its bytes hash to {reader.digest}, not {expected}")
            os.rename(tmp, tree)
        except (OSError, ValueError, tarfile.TarError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            archive.unlink(missing_ok=True)
            _digest_path(archive).unlink(missing_ok=True)
            log.warning("installed tree %s in the cache is damaged (%s); removed", archive, exc)
            raise InvalidArchive(
                f"an installed tree in the cache is damaged ({exc}); it was removed",
                path=archive,
                fix="run the build again: the wheel is installed anew",
            ) from exc

    @staticmethod
    def _write_tree(tree: Path, out: IO[bytes]) -> None:
        """``tree`` as a tar: sorted members, fixed owners and times, as a layer."""
        from wheeldock.oci.layer import entries_from_dir, write_tar

        write_tar(entries_from_dir(tree, prefix=""), out, mtime=0)

    def ensure(self, wheels: Sequence[tuple[str, Path]], scheme: Scheme) -> list[Path]:
        """The tree of each (sha256, wheel file), installing and compiling the missing ones."""
        return self.ensure_each([sha for sha, _ in wheels], wheels, scheme)

    def ensure_each(
        self,
        shas: Sequence[str],
        arriving: Iterable[tuple[str, Path]],
        scheme: Scheme,
        *,
        installed: Callable[[str, Path], None] | None = None,
        ready: Callable[[str, Path], None] | None = None,
    ) -> list[Path]:
        """The tree of each sha256 in ``shas``. The missing ones are installed from the wheels
        ``arriving`` yields (in any order, e.g. as downloads finish; others are skipped), each
        tree's bytecode compiling in other processes while the next wheel installs.

        For each tree installed here, ``installed`` hears (sha256, temporary folder) once its
        files are unpacked, before it compiles (the folder is renamed afterwards: read it
        there and then), and ``ready`` hears (sha256, tree) as soon as it is complete, from
        another thread, while the others may still be compiling.
        """
        missing = {sha for sha in shas if not self.has(sha, scheme)}
        if missing:
            self._install(missing, arriving, scheme, installed, ready)
        return [self.path(sha, scheme) for sha in shas]

    def install_arriving(
        self,
        arriving: Iterable[tuple[str, Path]],
        scheme: Scheme,
        ready: Callable[[str, Path], None] | None = None,
    ) -> None:
        """Install each (sha256, wheel) ``arriving`` yields whose tree is missing, as it comes;
        ``ready`` as in :meth:`ensure_each`."""
        self._install(None, arriving, scheme, ready=ready)

    def _install(
        self,
        missing: set[str] | None,
        arriving: Iterable[tuple[str, Path]],
        scheme: Scheme,
        installed: Callable[[str, Path], None] | None = None,
        ready: Callable[[str, Path], None] | None = None,
    ) -> None:
        """Install the ``missing`` trees (None: any tree not there yet) from ``arriving``. Each
        tree is built in a temporary folder, and archived into the cache once compiled, so the
        cache never holds half a tree (a killed build leaves only temporary files)."""
        staged: dict[Path, tuple[str, Path]] = {}  # temporary folder -> (sha256, staged tree)
        # one wheel (a bump) compiles faster in one process than a pool starts
        workers = 1 if missing is not None and len(missing) == 1 else _ALL_CORES

        def produce(compile_tree: Callable[[Path], None]) -> None:
            taken: set[str] = set()
            for sha, wheel in arriving:
                wanted = sha in missing if missing is not None else not self.has(sha, scheme)
                if not wanted or sha in taken:
                    continue
                taken.add(sha)
                with self._lock:
                    staging = self._stage(_GROWTH * wheel.stat().st_size)
                tmp = Path(tempfile.mkdtemp(dir=staging, prefix=".install."))
                staged[tmp] = (sha, staging / self.key(sha, scheme))
                install_wheel(wheel, tmp, scheme)
                if installed is not None:
                    installed(sha, tmp)
                compile_tree(tmp)
            absent = missing - taken if missing is not None else None
            if absent:
                raise InvalidConfig(
                    f"no wheel was given for {len(absent)} tree(s) to install",
                    fix="report this: the wheels fetched do not match the lock",
                )

        def finish(tmp: Path) -> None:
            sha, tree = staged[tmp]
            with self._lock:
                try:
                    os.rename(tmp, tree)
                except OSError:
                    if not tree.is_dir():  # else the same tree was unpacked here meanwhile
                        raise
                else:
                    self._unarchived.add(tree.name)  # archived by its layer, or at release
                self._where[tree.name] = tree
            if ready is not None:
                ready(sha, tree)

        try:
            _compile_while(scheme, workers, produce, finish, self.compilers)
        finally:
            for tmp in staged:
                shutil.rmtree(tmp, ignore_errors=True)


#: A wheel's installed tree with its bytecode, as a multiple of the wheel's size (zip-deflated
#: sources, plus .pyc files): what staging a tree may take. Generous: most are 2-3x.
_GROWTH = 5
#: Room left in RAM after a tree is staged there, for everything else the machine runs.
_HEADROOM = 256 << 20


#: Staging folders not released yet: removed when the process exits (the trees a caller was
#: given stay usable until then, even when it dropped the :class:`InstalledTrees`).
_unreleased: set[Path] = set()


#: Every :class:`InstalledTrees` that staged a tree: at exit, what they installed and did not
#: archive yet is archived before the staging folders go (a caller that never released them).
_staging_trees: weakref.WeakSet[InstalledTrees] = weakref.WeakSet()


@atexit.register
def _remove_unreleased() -> None:
    for trees in list(_staging_trees):
        with trees._lock, contextlib.suppress(OSError, WheeldockError):
            trees._archive_the_rest()
    for staging in list(_unreleased):
        shutil.rmtree(staging, ignore_errors=True)
    _unreleased.clear()


def _digest_path(archive: Path) -> Path:
    """Where the digest of an installed tree's archive is kept: beside it."""
    return archive.with_name(archive.name + ".sha256")


def _recorded_digest(archive: Path) -> Digest:
    """The digest recorded when ``archive`` was written (ValueError: none, or unreadable)."""
    try:
        return Digest.parse(_digest_path(archive).read_text().strip())
    except (OSError, WheeldockError) as exc:
        raise ValueError("no digest was recorded with it") from exc


@contextmanager
def _archiving(archive: Path) -> Iterator[IO[bytes]]:
    """A file to write a tree's archive into, hashed as it is written: put in place with its
    digest beside it when the block ends without an error (the digest first, so an archive
    in place always has one)."""
    with atomic_writer(archive) as out:
        hashed = BlobWriter(out)
        yield cast(IO[bytes], hashed)  # write() is all a tar writer uses
        # not fsynced: a torn digest file reads as none, and the tree is installed again
        atomic_write_bytes(_digest_path(archive), f"{hashed.digest}\n".encode(), durable=False)


class _HashingReader:
    """Reads a file through, hashing every byte read (:attr:`digest`)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._hasher = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._hasher.update(data)
        return data

    def drain(self) -> None:
        """Read what is left (a tar reader stops at the end-of-archive blocks)."""
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> Digest:
        return Digest.from_hasher(self._hasher)


def _ends_whole(archive: Path) -> bool:
    """Whether a tar ends with its two zero blocks: a file cut short (a crash before the page
    cache reached the disk) usually does not, even where it is cut between members."""
    with archive.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() < 1024:
            return False
        fh.seek(-1024, os.SEEK_END)
        return fh.read() == bytes(1024)


class Preinstaller:
    """Installs wheels on a thread as they are handed over, into an :class:`InstalledTrees`.

    A cold build's lock downloads the wheels one by one while it waits on the index for the
    others; handing each over as it lands lets the installs (and their bytecode compiling)
    overlap that network time instead of following it. Of the wheels waiting, the largest is
    installed first: installs run one at a time, and a big wheel that landed behind a dozen
    small ones (cb-totem's pillow) would otherwise be installed last, its layer then made
    after everything else. Best effort: a failure is logged and left to the build's own install
    step, which installs whatever is still missing and reports errors properly. Use as a
    context manager; leaving it waits for the installs to finish.
    """

    def __init__(self, trees: InstalledTrees, scheme: Scheme) -> None:
        self._trees = trees
        self._scheme = scheme
        #: the wheels handed over and not taken yet: (-size, order, sha256, wheel), a heap
        self._waiting: list[tuple[int, int, str, Path]] = []
        self._closed = False  # no more wheels will come
        self._order = itertools.count()  # ties in size: first handed, first installed
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._changed = threading.Condition()
        self._handed: set[str] = set()  # sha256s submitted whose trees are not known ready
        self._announcing: set[str] = set()  # of those, the trees whose followers are being told
        self._ended = False
        #: (sha256s still awaited, hook) of each :meth:`follow`
        self._followers: list[tuple[set[str], Callable[[str, Path], None]]] = []

    def start(self) -> None:
        """Start the thread and its compiler process now, before the first wheel: when wheels
        are sure to come (a stale lock), their start-up then overlaps the index requests."""
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="preinstall", daemon=True)
                self._thread.start()

    def submit(self, sha256: str, wheel: Path) -> None:
        """Hand over one verified wheel (thread-safe: downloads land on several threads)."""
        self.start()  # if not started: the thread (and its compiler) only once there is work
        try:
            size = wheel.stat().st_size
        except OSError:
            size = 0  # the install reports it
        with self._changed:
            if not self._trees.has(sha256, self._scheme):
                self._handed.add(sha256)
            heapq.heappush(self._waiting, (-size, next(self._order), sha256, wheel))
            self._changed.notify_all()

    def _arriving(self) -> Iterator[tuple[str, Path]]:
        """The wheels handed over, largest waiting first, until :meth:`__exit__`."""
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._waiting) or self._closed)
                if not self._waiting:
                    return
                _, _, sha256, wheel = heapq.heappop(self._waiting)
            yield sha256, wheel

    def follow(self, shas: Iterable[str], hook: Callable[[str, Path], None]) -> set[str]:
        """The sha256s of ``shas`` handed over whose trees are still being made; ``hook`` hears
        (sha256, tree) for each of them once it is ready (from the compiler's reader thread),
        so a caller can use each tree while the others compile. The rest are either in the
        trees already or were never handed over."""
        with self._changed:
            # a tree being announced has its hooks taken already: the caller finds it in place
            coming = {sha for sha in shas if sha in self._handed and sha not in self._announcing}
            if coming:
                self._followers.append((coming, hook))
            return coming

    def wait(self, shas: Iterable[str]) -> None:
        """Until each of ``shas`` is ready, its followers told, or the thread gave up (its trees
        are then missing: the caller installs them)."""
        wanted = set(shas)
        with self._changed:
            while not self._ended and wanted & self._handed:
                if not self._changed.wait(0.1):
                    # the thread skips, unannounced, a wheel whose tree another build made
                    wanted = {
                        sha
                        for sha in wanted
                        if sha in self._announcing or not self._trees.has(sha, self._scheme)
                    }

    def _ready(self, sha256: str, tree: Path) -> None:
        # The tree counts as ready (for wait) only once its followers have heard of it: a
        # caller that waits and then finishes its own work must not miss a late hook.
        with self._changed:
            self._announcing.add(sha256)
            hooks = [hook for left, hook in self._followers if sha256 in left]
            for left, _ in self._followers:
                left.discard(sha256)
        try:
            for hook in hooks:
                try:
                    hook(sha256, tree)
                except Exception as exc:  # the build's own steps redo the work and report it
                    log.debug("a follower of %s failed (%s); the build's step retries", sha256, exc)
        finally:
            with self._changed:
                self._handed.discard(sha256)
                self._announcing.discard(sha256)
                self._changed.notify_all()

    def _run(self) -> None:
        try:
            import installer.sources  # noqa: F401  (what install_wheel needs, loaded while we wait)

            self._trees.install_arriving(self._arriving(), self._scheme, ready=self._ready)
        except Exception as exc:  # the build's install step retries and reports
            log.debug("early install stopped (%s); the build installs what is missing", exc)
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def __enter__(self) -> Preinstaller:
        return self

    def __exit__(self, *exc: object) -> None:
        """Wait until every tree handed over is in place (or the thread gave up), not for the
        compiler process to exit: its interpreter's shutdown then overlaps the
        build's next steps. A tree another build put in place meanwhile counts as ready."""
        with self._start:
            thread = self._thread
        if thread is None:
            return
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            self._changed.wait_for(
                lambda: (
                    self._ended
                    or (
                        not self._announcing
                        and all(self._trees.has(sha, self._scheme) for sha in self._handed)
                    )
                )
            )


def installed_size(tree: Path) -> int:
    """Bytes of regular files in a tree (for splitting dependency layers by size)."""
    total = 0
    for dirpath, _, filenames in os.walk(tree):
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            total += st.st_size
    return total


def console_scripts(tree: Path, scheme: Scheme) -> list[str]:
    """Names of the scripts a tree installs into the scheme's scripts folder."""
    folder = tree / _rel(scheme.scripts)
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


__all__ = [
    "BYTECODE_MODES",
    "Bytecode",
    "Compilers",
    "InstalledTrees",
    "Preinstaller",
    "Scheme",
    "compile_bytecode",
    "console_scripts",
    "debian_scheme",
    "install_wheel",
    "installed_size",
    "python_org_scheme",
    "scheme_for",
]
