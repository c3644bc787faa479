"""Wheels compiled from sdists inside the image's ``builder`` base, never with this host's compiler.

A wheel compiled on the host links the host's glibc and libraries: on a newer host its
extension modules need symbol versions the image's glibc lacks (``GLIBC_2.38`` on bookworm's
2.36), and its programs link a ``libpython`` the image may not have. So an sdist (or a
``no_binary`` package) is built in the ``builder`` base of the image's Debian suite, Python and
architecture (gcc, python3-dev, the headers of :data:`wheeldock.debian.bases.BUILD_PACKAGES`,
uv): its rootfs is unpacked once and each build runs chrooted into a fresh overlay of it
(:mod:`wheeldock.edges.chroot`), so no container engine is needed. The network is the host's;
the proxy's CA (:func:`wheeldock.edges.ca.find`) is bound read-only for that run and is in no
wheel or layer.

Each wheel is cached per (sdist sha256, builder base key, platform, Python).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from wheeldock import platforms
from wheeldock.debian import bases
from wheeldock.deps.index import Index
from wheeldock.deps.wheelhouse import DOWNLOAD_WORKERS, Artifact, Wheelhouse
from wheeldock.edges import ca, chroot
from wheeldock.errors import CommandFailed, InvalidConfig, SdistNotBuildable, WheeldockError

log = logging.getLogger(__name__)

#: Where a build sees its input, output and the proxy's CA inside the builder base.
INSIDE_IN = "/wheeldock/in"
INSIDE_OUT = "/wheeldock/out"
INSIDE_CA = "/etc/ssl/certs/wheeldock-ca.pem"
#: Host settings that say where packages come from; they reach the build's uv unchanged.
INDEX_ENV = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "PIP_INDEX_URL")
#: A build that takes longer than this is stopped.
BUILD_TIMEOUT = 3600


def build_env(bundle: Path | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of a build inside the base (pure): reproducible timestamps, no Python
    downloads, the CA when there is one, and the host's index settings."""
    env = {
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "SOURCE_DATE_EPOCH": environ.get("SOURCE_DATE_EPOCH", "315532800"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_CACHE_DIR": "/tmp/uv-cache",
        "UV_NO_CONFIG": "1",
    }
    if bundle is not None:
        env |= {"SSL_CERT_FILE": INSIDE_CA, "PIP_CERT": INSIDE_CA}
    env |= {k: environ[k] for k in INDEX_ENV if environ.get(k)}
    return env


def build_argv(sdist_name: str, python: str) -> list[str]:
    """uv building one sdist into a wheel with the base's interpreter (pure)."""
    return [
        bases.UV_PATH,
        "build",
        "--wheel",
        "--python",
        f"/usr/bin/python{python}",
        "--out-dir",
        INSIDE_OUT,
        f"{INSIDE_IN}/{sdist_name}",
    ]


class BaseWheelhouse(Wheelhouse):
    """A :class:`Wheelhouse` whose sdists are compiled in the target's ``builder`` base (see the
    module doc). Only the host's architecture is built here: another one needs emulation
    (:class:`wheeldock.build.multiarch.EmulatingWheelhouse`)."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        workers: int = DOWNLOAD_WORKERS,
        index: Index | None = None,
        suite: str | None = None,
    ) -> None:
        super().__init__(root, workers=workers, index=index)
        #: the builder base's suite; None: the suite whose python3 is the locked Python
        self.suite = suite

    def _suite(self, artifact: Artifact, python: str) -> str:
        suite = self.suite or bases.suite_for(python)
        if suite is None:
            raise SdistNotBuildable(
                f"{artifact} has no wheel for Python {python} (only an sdist), and no builder "
                f"base of wheeldock's carries Python {python} (they carry "
                + ", ".join(f"{v} ({s})" for s, v in bases.SUITE_PYTHON.items())
                + ")",
                fix=f"pin a version of {artifact.name} that publishes a wheel for Python "
                f"{python}, or build this service with `wheeldock init` and `up` (the official "
                f"python:{python} image compiles it there)",
            )
        return suite

    def build_key(self, artifact: Artifact, *, platform: str, python: str) -> str:
        arch = platforms.parse(platform).debian_arch
        suite = self._suite(artifact, python)
        base = bases.cache_key(bases.recipe("builder"), suite=suite, arch=arch)
        material = f"builder-base\0{artifact.sha256}\0{base}\0{platform}\0{python}"
        return hashlib.sha256(material.encode()).hexdigest()

    def compile(
        self, artifact: Artifact, sdist: Path, out: Path, *, platform: str, python: str
    ) -> None:
        target = platforms.parse(platform)
        if platforms.needs_emulation(target):
            raise SdistNotBuildable(
                f"{artifact} has no wheel for {target} (only an sdist), and this machine "
                f"({platforms.host()}) cannot run its compiler",
                fix="add --emulate-sdists to build it under qemu-user, or pin a version of "
                f"{artifact.name} that publishes a {target} wheel",
            )
        suite = self._suite(artifact, python)
        base_python = bases.SUITE_PYTHON.get(suite)
        if base_python is not None and base_python != python:
            raise InvalidConfig(
                f"{artifact} is locked for Python {python}, but the {suite} builder base "
                f"has Python {base_python}",
                fix=f"set the service's python to {base_python}, or use a base of that Python",
            )
        rootfs = bases.ensure_rootfs("builder", arch=target.debian_arch, suite=suite)
        root = bases.unpacked(rootfs)
        bundle = ca.find()
        binds = {sdist.parent: INSIDE_IN}
        if bundle is not None:
            binds[bundle] = INSIDE_CA
        started = time.monotonic()
        log.info("building %s from its sdist in the %s builder base", artifact, rootfs.suite)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".chroot.") as scratch:
            try:
                chroot.run(
                    root,
                    build_argv(sdist.name, rootfs.python_version),
                    scratch=Path(scratch),
                    env=build_env(bundle, os.environ),
                    binds=binds,
                    writable={out: INSIDE_OUT},
                    timeout=BUILD_TIMEOUT,
                )
            except CommandFailed as exc:
                raise _build_failed(artifact, sdist, exc) from exc
        log.info("%s built in %.1f s", artifact, time.monotonic() - started)


def _build_failed(artifact: Artifact, sdist: Path, exc: CommandFailed) -> WheeldockError:
    tail = "\n".join((exc.stderr or exc.stdout).rstrip().splitlines()[-15:])
    return WheeldockError(
        f"building {artifact} from its sdist ({sdist.name}) in the builder base failed; the "
        "build's last lines:\n" + "\n".join("    " + line for line in tail.splitlines()),
        fix=f"add the Debian headers {artifact.name} needs to the builder base "
        "(BUILD_PACKAGES in wheeldock.debian.bases), or pin a version of "
        f"{artifact.name} that publishes a wheel for this platform",
    )
