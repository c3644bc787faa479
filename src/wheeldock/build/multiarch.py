"""Images for several platforms, built on this machine with no emulated compiling.

A kiosk like cb-totem runs on an ARM board, and its images are made on x86. With Docker that is
buildx + QEMU: every ``pip install`` and every compile runs emulated, 10-20x slower. Here an
image is tar files: the locked wheels for the *target* platform (uv resolves for it) are unpacked
by the host, their bytecode compiled by the host interpreter of the image's Python version (the
.pyc format does not depend on the CPU), the base comes from mmdebstrap for that architecture,
and the runtime libraries are read from Debian's archive for it. Nothing of the target runs.

The one thing that would need the target CPU is an sdist without a wheel for it. Such a package
is refused up front (:class:`NoWheel`, naming the package, version and platform, with the nearest
versions that do publish a wheel, from PyPI's JSON API) unless ``emulate_sdists``: then it is
built once per (sdist, platform, Python) with ``pip wheel`` inside a container of the target's
builder base, run through qemu-user (:class:`EmulatingWheelhouse`), and cached.

:func:`build` makes one image per platform and service, an OCI index across the platforms, a
CycloneDX SBOM per image (:mod:`wheeldock.build.sbom`), and publishes: the index to ``oci:`` and
``docker://`` outputs (the SBOMs attached as referrers), one platform's image to
``docker-daemon:`` and ``docker-archive:`` (the host's unless ``load_platform`` says).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from wheeldock import platforms
from wheeldock.build import sbom
from wheeldock.build.builder import Builder, BuildOptions, LayerReport, Progress, output_for
from wheeldock.build.install import InstalledTrees
from wheeldock.build.sdists import BaseWheelhouse
from wheeldock.build.session import Session
from wheeldock.debian import archive as debian
from wheeldock.debian import bases, dpkg
from wheeldock.deps import lock as locks
from wheeldock.deps import pylock
from wheeldock.deps.wheelhouse import Artifact, select
from wheeldock.deps.wheeltags import supported_tags
from wheeldock.edges import ca, engine
from wheeldock.edges.fsutil import file_lock
from wheeldock.errors import CommandFailed, SdistBuildFailed, UsageError, WheeldockError
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import Image, Index, index_of, rfc3339
from wheeldock.oci.publish import PublishResult, publish
from wheeldock.oci.reference import ArchiveRef, DaemonRef, OciRef, RegistryRef, coerce
from wheeldock.platforms import Target
from wheeldock.project import Project, Service

if TYPE_CHECKING:
    from wheeldock.deps.index import Index as PackageIndex

log = logging.getLogger(__name__)

PYPI_JSON = "https://pypi.org/pypi/{name}/json"
#: How many versions with a wheel to offer on each side of the pinned one.
NEAREST = 3


# -- no wheel for a platform --------------------------------------------------------------------


class NoWheel(WheeldockError):
    """A locked package has no wheel for a target platform (and emulation was not asked for)."""

    def __init__(
        self, artifacts: Sequence[Artifact], target: Target, alternatives: Mapping[str, list[str]]
    ) -> None:
        self.artifacts = tuple(artifacts)
        self.target = target
        self.alternatives = dict(alternatives)
        lines = []
        for a in artifacts:
            near = alternatives.get(a.name) or []
            offer = (
                f"versions with a {target} wheel: {', '.join(near)}"
                if near
                else f"no release of {a.name} publishes a {target} wheel for this Python"
            )
            lines.append(f"{a.name} {a.version} has no wheel for {target} (only an sdist); {offer}")
        pins = ", ".join(
            f"{a.name}=={alternatives[a.name][0]}" for a in artifacts if alternatives.get(a.name)
        )
        fix = (
            "either build the sdists under emulation (slow, cached per platform and version): "
            "add --emulate-sdists; or pin versions that publish a wheel"
            + (f" (e.g. {pins}) and re-lock" if pins else "")
        )
        super().__init__("\n  ".join(lines), fix=fix)


def emulation_needed(
    lock: pylock.Lock, target: Target, host: Target | None = None
) -> list[Artifact]:
    """The artifacts of ``lock`` that only an emulated build could make for ``target`` (pure but
    for the host's architecture): sdists, when ``target`` is not this machine's platform."""
    if not platforms.needs_emulation(target, host_target=host):
        return []
    return [a for a in select(lock) if a.kind == "sdist"]


def nearest_with_wheels(
    releases: Mapping[str, Sequence[Mapping[str, Any]]],
    pinned: str,
    *,
    platform: str,
    python: str,
    limit: int = NEAREST,
) -> list[str]:
    """Versions near ``pinned`` that publish a wheel ``platform``/``python`` can install (pure).

    ``releases`` is PyPI's JSON ``releases`` table (version → files with ``filename`` and
    ``yanked``). Newer versions first (closest first), then older ones (closest first); pre-
    releases and yanked files are skipped."""
    ranks = supported_tags(platform, python)

    def installable(filename: str) -> bool:
        try:
            _, _, _, wheel_tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            return False  # an sdist, or not a wheel at all
        return any(t in ranks for t in wheel_tags)

    good: list[Version] = []
    for text, files in releases.items():
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if version.is_prerelease:
            continue
        if any(not f.get("yanked") and installable(str(f.get("filename", ""))) for f in files):
            good.append(version)
    try:
        pin = Version(pinned)
    except InvalidVersion:
        return [str(v) for v in sorted(good, reverse=True)[:limit]]
    newer = sorted(v for v in good if v > pin)[:limit]
    older = sorted((v for v in good if v < pin), reverse=True)[:limit]
    return [str(v) for v in (*newer, *older)]


def pypi_releases(name: str, *, client: httpx.Client | None = None) -> dict[str, Any]:
    """PyPI's JSON ``releases`` of ``name`` ({} when PyPI cannot be asked: the error then only
    lacks the suggestions)."""
    url = PYPI_JSON.format(name=canonicalize_name(name))
    own = client is None
    http = client or httpx.Client(verify=ssl.create_default_context(), timeout=30)
    try:
        resp = http.get(url, follow_redirects=True)
        if resp.status_code != 200:
            log.warning("PyPI answered %s for %s", resp.status_code, url)
            return {}
        releases: dict[str, Any] = resp.json().get("releases") or {}
        return releases
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("cannot ask PyPI about %s: %s", name, exc)
        return {}
    finally:
        if own:
            http.close()


def no_wheel_error(lock: pylock.Lock, target: Target, artifacts: Sequence[Artifact]) -> NoWheel:
    """:class:`NoWheel` for ``artifacts``, with the nearest versions that have a wheel."""
    alternatives = {
        a.name: nearest_with_wheels(
            pypi_releases(a.name), a.version, platform=lock.platform, python=lock.python
        )
        for a in artifacts
    }
    return NoWheel(artifacts, target, alternatives)


# -- building sdists under emulation ------------------------------------------------------------


class EmulatingWheelhouse(BaseWheelhouse):
    """A :class:`BaseWheelhouse` that also builds a foreign platform's sdists, inside a
    container of that platform's ``builder`` base (gcc, python3-dev, pip) run by qemu-user
    through binfmt.

    Slow (every compiler instruction is emulated), so each wheel is cached under
    ``built-emulated/<key>`` per (sdist sha256, platform, Python) and built at most once. The
    proxy's CA (``SSL_CERT_FILE``) is bind-mounted read-only for pip's build isolation; nothing
    of it stays in an image.
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        binfmt_dir: Path = platforms.BINFMT_DIR,
        host: Target | None = None,
        index: PackageIndex | None = None,
    ) -> None:
        super().__init__(root, index=index)
        self.binfmt_dir = binfmt_dir
        self.host = host

    def build_sdist(self, artifact: Artifact, sdist: Path, *, platform: str, python: str) -> Path:
        target = platforms.parse(platform)
        if not platforms.needs_emulation(target, host_target=self.host):
            return super().build_sdist(artifact, sdist, platform=platform, python=python)
        key = hashlib.sha256(f"emulated\0{artifact.sha256}\0{platform}\0{python}".encode())
        folder = self.root / "built-emulated" / key.hexdigest()
        found = sorted(folder.glob("*.whl")) if folder.is_dir() else []
        if found:
            return found[0]
        platforms.require_emulation(target, binfmt_dir=self.binfmt_dir, host_target=self.host)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(str(folder) + ".lock"):
            found = sorted(folder.glob("*.whl")) if folder.is_dir() else []
            if found:
                return found[0]
            image = bases.ensure_image("builder", arch=target.debian_arch).tags[0]
            tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".build."))
            try:
                started = time.monotonic()
                log.info("building %s for %s under emulation (in %s)", artifact, target, image)
                self._run_emulated(artifact, sdist, tmp, image, target)
                wheels = sorted(tmp.glob("*.whl"))
                if len(wheels) != 1:
                    raise SdistBuildFailed(
                        f"building {artifact} for {target} gave {len(wheels)} wheels",
                        fix="report this; the sdist's build backend misbehaves",
                    )
                log.info("%s built for %s in %.1f s", artifact, target, time.monotonic() - started)
                os.replace(tmp, folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return next(folder.glob("*.whl"))

    def _run_emulated(
        self, artifact: Artifact, sdist: Path, out: Path, image: str, target: Target
    ) -> None:
        argv: list[str] = [
            "run",
            "--rm",
            "--platform",
            target.name,
            "--network",
            "host",
            "-v",
            f"{sdist.parent}:/in:ro",
            "-v",
            f"{out}:/out",
            "-e",
            f"SOURCE_DATE_EPOCH={os.environ.get('SOURCE_DATE_EPOCH', '315532800')}",
        ]
        bundle = ca.find()
        if bundle is not None:
            mounted = "/etc/ssl/certs/wheeldock-ca.pem"
            argv += ["-v", f"{bundle}:{mounted}:ro", "-e", f"PIP_CERT={mounted}"]
            argv += ["-e", f"SSL_CERT_FILE={mounted}"]
        argv += [image, "python3", "-m", "pip", "wheel", "--no-deps", "--no-cache-dir"]
        argv += ["--wheel-dir", "/out", f"/in/{sdist.name}"]
        try:
            engine.docker(*argv, timeout=7200)
        except CommandFailed as exc:
            tail = "\n".join((exc.stderr or exc.stdout).rstrip().splitlines()[-15:])
            raise SdistBuildFailed(
                f"building {artifact} for {target} under emulation failed; its last lines:\n"
                + "\n".join("    " + line for line in tail.splitlines()),
                fix=f"pin a version of {artifact.name} that publishes a {target} wheel, or add "
                "the Debian packages its build needs to the builder base",
            ) from exc


# -- SBOM of one image --------------------------------------------------------------------------


def debian_packages(image: Image, store: BlobStore, *, arch: str) -> list[sbom.DebPackage]:
    """The dpkg-installed packages of an image (its topmost dpkg status), cached per layer set."""
    key = (
        "sha256:"
        + hashlib.sha256(
            ("sbom-dpkg\0" + "\0".join(str(x.digest) for x in image.layers)).encode()
        ).hexdigest()
    )
    recorded = store.get_cached(key)
    if recorded is not None:
        return [sbom.DebPackage(**p) for p in recorded["packages"]]
    text = dpkg.status_in_layers(image.layers)
    found = sbom.status_packages(text, default_arch=arch) if text is not None else []
    store.set_cached(key, {"packages": [p.__dict__ for p in found]})
    return found


def libs_packages(
    names: Sequence[str], *, installed: Sequence[str], arch: str, suite: str = bases.DEFAULT_SUITE
) -> list[sbom.DebPackage]:
    """The packages the runtime-libraries layer unpacks: ``names`` and the dependencies the base
    lacks, as Debian's index for ``arch`` lists them (version, .deb sha256)."""
    if not names:
        return []
    with debian.open_index(suite, arch) as index:
        infos = index.closure(names, installed=installed)
    return [sbom.DebPackage(i.name, i.version, i.architecture, i.sha256 or None) for i in infos]


def image_sbom(
    svc: Service,
    image: Image,
    lock: pylock.Lock,
    reports: Sequence[LayerReport],
    target: Target,
    store: BlobStore,
    *,
    epoch: int,
) -> bytes:
    """The CycloneDX SBOM of one built image."""
    base_image = Image(layers=image.layers[:1])
    base_debs = debian_packages(base_image, store, arch=target.debian_arch)
    libs_titles = [r.title for r in reports if r.kind == "libs"]
    names = [n.strip() for t in libs_titles for n in t.split(",") if n.strip()]
    lib_debs = libs_packages(names, installed=[d.name for d in base_debs], arch=target.debian_arch)
    components = [
        *sbom.python_components(select(lock)),
        *sbom.debian_components(base_debs, "base", distro=bases.DEFAULT_SUITE),
        *sbom.debian_components(lib_debs, "runtime-libs", distro=bases.DEFAULT_SUITE),
    ]
    doc = sbom.document(
        name=svc.name,
        image_digest=image.digest,
        platform=target.name,
        components=components,
        epoch=epoch,
    )
    return sbom.to_bytes(doc)


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformBuild:
    """One platform's image of a service."""

    target: Target
    image: Image = field(repr=False)
    layers: tuple[LayerReport, ...]
    lock: Path
    sbom: bytes | None = field(default=None, repr=False)
    seconds: float = 0.0


@dataclass(frozen=True)
class MultiBuild:
    """A service built for several platforms: the index, each image, what was published."""

    service: str
    index: Index = field(repr=False)
    images: tuple[PlatformBuild, ...]
    outputs: tuple[PublishResult, ...]
    sbom_files: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def digest(self) -> Digest:
        return self.index.digest

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "index": str(self.digest),
            "seconds": round(self.seconds, 3),
            "platforms": [
                {
                    "platform": p.target.name,
                    "digest": str(p.image.digest),
                    "size": p.image.size,
                    "lock": str(p.lock),
                    "seconds": round(p.seconds, 3),
                    "layers_built": sum(not r.cached for r in p.layers),
                    "layers": len(p.layers),
                }
                for p in self.images
            ],
            "outputs": [
                {"ref": o.ref, "digest": str(o.digest), "seconds": round(o.seconds, 3)}
                for o in self.outputs
            ],
            "sbom_files": [str(p) for p in self.sbom_files],
            "notes": list(self.notes),
        }


# -- publishing ---------------------------------------------------------------------------------


def choose_single(images: Sequence[PlatformBuild], wanted: Target | None) -> PlatformBuild:
    """The image a one-platform destination gets: ``wanted``, else the host's, else the first."""
    pick = wanted or platforms.host()
    for p in images:
        if p.target == pick:
            return p
    if wanted is not None:
        have = ", ".join(p.target.name for p in images)
        raise UsageError(
            f"--load-platform {wanted} was not built (built: {have})",
            fix=f"add {wanted} to --platform, or load one of: {have}",
        )
    return images[0]


def _attach(
    ref: str, images: Sequence[PlatformBuild], store: BlobStore, created: str
) -> list[PublishResult]:
    """Attach each image's SBOM at ``ref``'s destination, under the referrers fallback tag."""
    parsed = coerce(ref)
    results = []
    for p in images:
        if p.sbom is None:
            continue
        art = sbom.artifact(p.sbom, p.image, store, created=created)
        tag = sbom.referrers_tag(p.image.digest)
        index = sbom.referrers_index([art])
        if isinstance(parsed, OciRef):
            results.append(publish(index, OciRef(parsed.path, tag), store))
        elif isinstance(parsed, RegistryRef):
            name = replace(parsed.name, tag=tag, digest=None)
            results.append(publish(index, RegistryRef(name), store))
    return results


def publish_outputs(
    svc: Service,
    index: Index,
    images: Sequence[PlatformBuild],
    refs: Sequence[str],
    store: BlobStore,
    *,
    load_platform: Target | None,
    epoch: int,
    via: Builder | None = None,
) -> tuple[list[PublishResult], list[str]]:
    """Publish the index (or one image where only one fits); attach SBOMs. Returns the results
    and notes for the user. ``via``, a builder of the images: what it knows of the engine's
    layers, and its registry cache (a ``docker://`` output on the cache's registry mounts the
    cached blobs from there)."""
    known = via.session.engine if via is not None else None
    results: list[PublishResult] = []
    notes: list[str] = []
    created = rfc3339(epoch)
    for ref in refs:
        parsed = coerce(ref)
        if isinstance(parsed, OciRef | RegistryRef):
            mount = via.mount_source(ref) if via is not None else None
            results.append(publish(index, ref, store, mount_from=mount))
            results += _attach(ref, images, store, created)
            continue
        one = choose_single(images, load_platform)
        if len(images) > 1:
            where = "the Docker engine" if isinstance(parsed, DaemonRef) else "a docker-archive"
            others = ", ".join(p.target.name for p in images if p is not one)
            notes.append(
                f"{svc.name}: {where} holds one image per tag, so only {one.target} went to "
                f"{ref} ({others} did not); use --load-platform to pick another, or an oci: "
                "or docker:// output for the whole index"
            )
        results.append(
            publish(one.image, ref, store, known=known if isinstance(parsed, DaemonRef) else None)
        )
        if not isinstance(parsed, ArchiveRef | DaemonRef):  # pragma: no cover - closed union
            raise TypeError(parsed)
    return results, notes


def sbom_folder(refs: Sequence[str], explicit: Path | None) -> Path | None:
    """Where SBOM files go: ``explicit``, else beside the first OCI layout output
    (``<layout>.sbom/``), else nowhere (they are still attached to pushed images)."""
    if explicit is not None:
        return Path(explicit)
    for ref in refs:
        parsed = coerce(ref)
        if isinstance(parsed, OciRef):
            return parsed.path.with_name(parsed.path.name + ".sbom")
    return None


# -- the build ----------------------------------------------------------------------------------


def default_outputs(project: Project, svc: Service) -> tuple[str, ...]:
    """An OCI layout in ``<project>/.wheeldock/oci`` (a multi-platform index needs one)."""
    return (f"oci:{project.root / '.wheeldock' / 'oci'}:{svc.name}",)


@dataclass(frozen=True)
class MultiOptions:
    """What a multi-platform build makes and where it goes."""

    outputs: tuple[str, ...] = ()  # references to publish to (default: :func:`default_outputs`)
    emulate_sdists: bool = False  # build a wheel from an sdist under qemu-user (else NoWheel)
    sbom_dir: Path | None = None  # where SBOM files go (see :func:`sbom_folder`)
    make_sbom: bool = True
    load_platform: Target | None = None  # the image a one-image output gets (the host's)
    binfmt_dir: Path = platforms.BINFMT_DIR  # where qemu-user's handlers are registered


def build(
    project: Project,
    services: Sequence[Service],
    targets: Sequence[Target],
    multi: MultiOptions | None = None,
    options: BuildOptions | None = None,
    *,
    store: BlobStore | None = None,
    progress: Progress | None = None,
    session: Session | None = None,
) -> list[MultiBuild]:
    """Build each service for each of ``targets`` and publish the index (see the module doc).

    Before any layer is built, every platform's lock is checked for packages without a wheel:
    :class:`NoWheel` lists all of them at once unless ``multi.emulate_sdists``. Caches (blobs,
    wheels, installed trees) are shared by the platforms; pure wheels' trees are the same for
    all. Every platform builds in ``session`` (the caller's, else one made and closed here).
    """
    if not targets:
        raise UsageError(
            "no platform given", fix=f"pass --platform (one of {platforms.accepted()})"
        )
    if session is None:
        with Session() as made:
            return build(
                project, services, targets, multi, options,
                store=store, progress=progress, session=made,
            )  # fmt: skip
    multi = multi or MultiOptions()
    options = options or BuildOptions()
    store = store or BlobStore()
    net = session.locks.index
    wheelhouse = (
        EmulatingWheelhouse(binfmt_dir=multi.binfmt_dir, index=net)
        if multi.emulate_sdists
        else BaseWheelhouse(index=net)
    )
    trees = InstalledTrees(compilers=session.compilers)
    builders: dict[Target, Builder] = {}
    for target in targets:

        def tagged(service: str, report: LayerReport, suffix: str = target.suffix) -> None:
            if progress is not None:
                progress(f"{service} {suffix}", report)

        builders[target] = Builder(
            project,
            replace(options, platform=target.name),
            store=store,
            wheelhouse=wheelhouse,
            trees=trees,
            progress=tagged,
            session=session,
        )
    _lock_every_platform(project, services, builders, multi, options, session)
    results = []
    for svc in services:
        started = time.monotonic()
        built: list[PlatformBuild] = []
        for target, bld in builders.items():
            t0 = time.monotonic()
            image, reports, lock = bld.image(svc)
            doc = (
                image_sbom(svc, image, lock, reports, target, store, epoch=bld.epoch)
                if multi.make_sbom
                else None
            )
            built.append(
                PlatformBuild(target, image, tuple(reports), lock.path, doc, time.monotonic() - t0)
            )
        index = index_of(
            *(p.image for p in built),
            annotations={"org.opencontainers.image.title": svc.name},
        )
        refs = (
            tuple(output_for(ref, svc, len(services)) for ref in multi.outputs)
            if multi.outputs
            else default_outputs(project, svc)
        )
        epoch = builders[targets[0]].epoch
        for bld in builders.values():
            bld.flush_cache()
        published, notes = publish_outputs(
            svc,
            index,
            built,
            refs,
            store,
            load_platform=multi.load_platform,
            epoch=epoch,
            via=builders[targets[0]],
        )
        files: list[Path] = []
        folder = sbom_folder(refs, multi.sbom_dir)
        if folder is not None:
            for p in built:
                if p.sbom is not None:
                    files.append(sbom.write_file(p.sbom, folder, f"{svc.name}-{p.target.suffix}"))
        results.append(
            MultiBuild(
                svc.name,
                index,
                tuple(built),
                tuple(published),
                tuple(files),
                tuple(notes),
                time.monotonic() - started,
            )
        )
    trees.close()
    for bld in builders.values():
        bld.close_cache()
    return results


def _lock_every_platform(
    project: Project,
    services: Sequence[Service],
    builders: Mapping[Target, Builder],
    multi: MultiOptions,
    options: BuildOptions,
    session: Session,
) -> None:
    """Lock every service for every platform first, so every missing wheel of every platform is
    reported together (:class:`NoWheel`) before any layer is built."""
    for target in builders:
        missing: list[Artifact] = []
        lock = None
        for svc in services:
            lock = locks.ensure(
                project,
                svc,
                platform=target.name,
                policy=options.lock_policy,
                session=session.locks,
            )
            missing += [a for a in emulation_needed(lock, target) if a not in missing]
        if missing and lock is not None:
            if not multi.emulate_sdists:
                raise no_wheel_error(lock, target, missing)
            platforms.require_emulation(target, binfmt_dir=multi.binfmt_dir)


# -- running a foreign image --------------------------------------------------------------------


def run_argv(image: str, target: Target, *, name: str, env: Mapping[str, str] = {}) -> list[str]:
    """``docker run`` arguments for a (possibly foreign) image on the host network (pure)."""
    argv = ["run", "-d", "--name", name, "--platform", target.name, "--network", "host"]
    for key, value in sorted(env.items()):
        argv += ["-e", f"{key}={value}"]
    return [*argv, image]


# -- one platform of an index, for `check` ------------------------------------------------------


@contextlib.contextmanager
def platform_image(ref: str, target: Target, store: BlobStore | None = None) -> Iterator[str]:
    """``ref`` narrowed to ``target``'s image, as a reference :func:`wheeldock.debian.libs.check` reads.

    An index in an OCI layout or a registry is resolved to the platform's image, which is
    written to a temporary layout (hard links, no copies of layer bytes where possible); any
    other reference is given back unchanged (an image already has one platform).
    """
    from wheeldock.oci import layout, remote

    parsed = coerce(ref)
    found: Image | Index
    if isinstance(parsed, OciRef):
        found = layout.read(parsed.path, parsed.tag)
    elif isinstance(parsed, RegistryRef):
        found = remote.read(parsed, store, platform=target.platform)
    else:
        yield ref
        return
    image = found.image(target.platform) if isinstance(found, Index) else found
    if image.platform.architecture != target.platform.architecture:
        raise UsageError(
            f"{ref} is a {image.platform} image, not {target}",
            fix=f"check it without --platform, or give the {target} image",
        )
    with tempfile.TemporaryDirectory(prefix="wheeldock-platform-") as tmp:
        layout.write(image, Path(tmp) / "oci", "image")
        yield f"oci:{Path(tmp) / 'oci'}:image"
