"""``compose.release.yaml``: the stack as a kiosk runs it, from the registry alone.

Beside the project's compose file, a copy of it in which every released service's ``image:``
is pinned by digest (``HOST/REPO/service@sha256:…``) and its ``build:`` section is gone, the rest
of each service kept as written (comments too), so ``docker compose -f compose.release.yaml pull
&& docker compose -f compose.release.yaml up -d`` runs exactly the images that were pushed.

:func:`pinned` and :func:`release_document` are pure; :func:`write` reads and writes the files.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from wheeldock.compose import files
from wheeldock.edges.fsutil import atomic_write_text
from wheeldock.errors import InvalidReference
from wheeldock.oci.digest import Digest
from wheeldock.oci.reference import RegistryRef, coerce

#: The file written beside the compose file.
RELEASE_NAME = "compose.release.yaml"


def pinned(ref: str, digest: Digest) -> str:
    """``docker://HOST/REPO:TAG`` (where the image was pushed) and its manifest's (or index's)
    digest as compose's ``image:`` takes it: ``HOST/REPO@sha256:…``."""
    parsed = coerce(ref)
    if not isinstance(parsed, RegistryRef):
        raise InvalidReference(
            f"a release goes to a registry, not to {ref}",
            fix="write the output as docker://HOST/REPO/{service}:TAG",
        )
    return f"{parsed.name.registry}/{parsed.name.repository}@{digest}"


def release_document(compose: files.ComposeFile, images: Mapping[str, str]) -> Any:
    """A copy of ``compose``'s document where each service named in ``images`` has that
    ``image:`` and no ``build:`` (a service the file lacks is added with its image alone)."""
    data = copy.deepcopy(compose.data)
    services = data.get("services")
    if services is None:
        services = data["services"] = CommentedMap()
    for name, image in images.items():
        svc = services.get(name)
        if svc is None:
            services[name] = CommentedMap(image=image)
            continue
        svc.pop("build", None)
        if "image" in svc:
            svc["image"] = image
        else:
            svc.insert(0, "image", image)
    return data


def write(compose_path: Path, images: Mapping[str, str]) -> Path:
    """Write :data:`RELEASE_NAME` beside ``compose_path`` (atomically); its path."""
    compose = files.load(compose_path)
    dest = compose_path.with_name(RELEASE_NAME)
    header = (
        "# written by `wheeldock release`: each image pinned by digest, no build sections.\n"
        "# on a kiosk: docker compose -f compose.release.yaml pull && "
        "docker compose -f compose.release.yaml up -d\n"
    )
    atomic_write_text(dest, header + files.dump(compose, release_document(compose, images)))
    return dest


__all__ = ["RELEASE_NAME", "pinned", "release_document", "write"]
