"""One way to open any image reference, whatever holds it: ``oci:DIR[:TAG]`` (an OCI image
layout), ``docker-archive:FILE[:NAME:TAG]`` (``docker save``'s tar), ``docker-daemon:NAME:TAG``
(the engine, through ``docker save``) and ``docker://…`` (a registry, read natively).

Each form is read by its own package (:mod:`~wheeldock.oci.layout`,
:mod:`~wheeldock.oci.tarball`, :mod:`~wheeldock.oci.remote`); this module only dispatches and
chooses an image out of an index, so ``check``, ``build --base`` and the tests see the same
:class:`~wheeldock.oci.image.Image` for the same reference.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from wheeldock.edges import engine
from wheeldock.errors import InvalidReference, NotFound
from wheeldock.oci.blobs import BlobStore, default_store
from wheeldock.oci.image import Image, Index
from wheeldock.oci.reference import ArchiveRef, DaemonRef, OciRef, Reference, RegistryRef, coerce
from wheeldock.platforms import Platform


def choose(target: Image | Index, platform: Platform | None = None) -> Image:
    """The image of ``target`` for ``platform`` (:class:`NotFound` listing the platforms there
    are); without one, the image for this host's platform, else the index's first."""
    if isinstance(target, Image):
        return target
    if platform is not None:
        return target.image(platform)
    try:
        return target.image(Platform.host())
    except NotFound:
        if not target.manifests:
            raise
        return target.manifests[0]


def open_image(
    ref: str | Reference, store: BlobStore | None = None, *, platform: Platform | None = None
) -> Image:
    """The image ``ref`` names; an index gives its image for ``platform`` (see :func:`choose`).

    Layers of an OCI layout are read in place, or copied into ``store`` when one is given;
    those of a docker-archive or of the engine are copied into ``store`` (default: the shared
    one) and those of a registry are downloaded into it when their bytes are first needed.
    The image's platform is not checked against ``platform`` for a docker-archive or the
    engine: their images carry one platform, the one they were made for.
    """
    # Each reader is imported only when its form is asked for, as publish does: the registry
    # client's imports (httpx, ssl) would otherwise weigh on every build's start-up.
    parsed = coerce(ref)
    if isinstance(parsed, OciRef):
        from wheeldock.oci import layout

        return choose(layout.read(parsed.path, parsed.tag, store), platform)
    if isinstance(parsed, ArchiveRef):
        from wheeldock.oci import tarball

        return tarball.read(parsed.path, parsed.name, store)
    if isinstance(parsed, DaemonRef):
        return _from_engine(parsed, store or default_store())
    if isinstance(parsed, RegistryRef):
        from wheeldock.oci import remote

        target = remote.read(parsed, store or default_store(), platform=platform)
        return choose(target, platform)
    raise InvalidReference(f"cannot open {ref!r}")  # pragma: no cover - coerce gives only these


def _from_engine(ref: DaemonRef, store: BlobStore) -> Image:
    """``docker save`` the image into a temporary archive and read that (the archive goes, the
    layers stay in ``store``)."""
    from wheeldock.oci import tarball

    engine.require()
    with tempfile.TemporaryDirectory(prefix="wheeldock-save-") as tmp:
        archive = Path(tmp) / "image.tar"
        result = engine.docker("save", "-o", str(archive), ref.name, check=False)
        if result.returncode != 0:
            raise NotFound(
                f"the Docker engine has no image {ref.name!r} "
                f"({(result.stderr.strip().splitlines() or ['docker save failed'])[-1]})",
                fix="build or load it first; `docker images` lists what there is",
            )
        return tarball.read(archive, None, store)


__all__ = ["choose", "open_image"]
