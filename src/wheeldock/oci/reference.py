"""Where an image goes or comes from, in skopeo's transport syntax.

Accepted forms (``str()`` gives them back)::

    oci:DIR[:TAG]                                  an OCI image layout folder
    docker-archive:FILE[:NAME[:TAG]]               a ``docker save``-style tar
    docker-daemon:NAME[:TAG]                       the local Docker engine
    docker://[HOST[:PORT]/]REPO[:TAG][@DIGEST]     a registry (Docker Hub when HOST is absent)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from wheeldock.errors import InvalidReference
from wheeldock.oci.digest import Digest

FORMS = (
    "oci:DIR[:TAG]",
    "docker-archive:FILE[:NAME[:TAG]]",
    "docker-daemon:NAME[:TAG]",
    "docker://[HOST[:PORT]/]REPO[:TAG][@DIGEST]",
)
DOCKER_HUB = "docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_HOST = re.compile(
    r"^(?:localhost|\[[0-9a-fA-F:]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?$"
)


def _bad(text: str, why: str) -> InvalidReference:
    return InvalidReference(
        f"not an image reference ({why}): {text!r}",
        fix="write it in one of the forms: " + ", ".join(FORMS),
    )


@dataclass(frozen=True)
class Name:
    """A registry image name: ``registry/repository`` plus a tag and/or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/`` in the registry API: the digest, else the tag."""
        return str(self.digest) if self.digest else (self.tag or DEFAULT_TAG)

    @property
    def is_local(self) -> bool:
        host = (
            self.registry.rsplit(":", 1)[0] if not self.registry.startswith("[") else self.registry
        )
        return host in ("localhost", "127.0.0.1", "[::1]")

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_name(text: str, *, default_tag: bool = True, whole: str | None = None) -> Name:
    """Parse ``[HOST[:PORT]/]REPO[:TAG][@DIGEST]`` the way Docker does."""
    whole = whole or text
    rest, _, digest_text = text.partition("@")
    digest = None
    if digest_text:
        try:
            digest = Digest.parse(digest_text)
        except ValueError as exc:
            raise _bad(whole, f"bad digest {digest_text!r}") from exc
    slash = rest.find("/")
    first = rest[:slash] if slash >= 0 else ""
    if slash >= 0 and (
        "." in first or ":" in first or first == "localhost" or first.startswith("[")
    ):
        registry, path = first, rest[slash + 1 :]
        if not _HOST.match(registry):
            raise _bad(whole, f"bad registry host {registry!r}")
    else:
        registry, path = DOCKER_HUB, rest
    tag = None
    last_colon = path.rfind(":")
    if last_colon > path.rfind("/"):
        path, tag = path[:last_colon], path[last_colon + 1 :]
        if not _TAG.match(tag):
            raise _bad(whole, f"bad tag {tag!r}")
    if not path or not _REPO.match(path):
        raise _bad(whole, f"bad repository name {path!r} (lowercase letters, digits, . _ - /)")
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Name(registry, path, tag, digest)


@dataclass(frozen=True)
class OciRef:
    """``oci:DIR[:TAG]``"""

    path: Path
    tag: str | None = None
    transport = "oci"

    def __str__(self) -> str:
        return f"oci:{self.path}" + (f":{self.tag}" if self.tag else "")


@dataclass(frozen=True)
class ArchiveRef:
    """``docker-archive:FILE[:NAME[:TAG]]``; ``name`` is the RepoTag (``name:tag``)."""

    path: Path
    name: str | None = None
    transport = "docker-archive"

    def __str__(self) -> str:
        return f"docker-archive:{self.path}" + (f":{self.name}" if self.name else "")


@dataclass(frozen=True)
class DaemonRef:
    """``docker-daemon:NAME[:TAG]``; ``name`` is what ``docker images`` shows (``name:tag``)."""

    name: str
    transport = "docker-daemon"

    def __str__(self) -> str:
        return f"docker-daemon:{self.name}"


@dataclass(frozen=True)
class RegistryRef:
    """``docker://HOST[:PORT]/REPO[:TAG|@DIGEST]``"""

    name: Name
    transport = "docker"

    def __str__(self) -> str:
        return f"docker://{self.name}"


Reference = OciRef | ArchiveRef | DaemonRef | RegistryRef


def _short_name(text: str, whole: str) -> str:
    """``NAME[:TAG]`` for an archive's RepoTags or the daemon: validated, tag defaulted."""
    name = parse_name(text, whole=whole)
    if name.digest is not None:
        raise _bad(whole, "a digest cannot name an image in an archive or the daemon; use a tag")
    repo = name.repository
    if name.registry == DOCKER_HUB:
        repo = repo.removeprefix("library/")
        return f"{repo}:{name.tag}"
    return f"{name.registry}/{repo}:{name.tag}"


def parse(text: str) -> Reference:
    """Parse a transport reference; :class:`InvalidReference` lists the accepted forms."""
    text = text.strip()
    if text.startswith("docker://"):
        return RegistryRef(parse_name(text[len("docker://") :], whole=text))
    transport, sep, rest = text.partition(":")
    if not sep or not rest:
        raise _bad(text, "no transport prefix")
    if transport == "oci":
        path, _, tag = rest.partition(":")
        if not path:
            raise _bad(text, "no folder")
        if tag and not _TAG.match(tag):
            raise _bad(text, f"bad tag {tag!r}")
        return OciRef(Path(path), tag or None)
    if transport == "docker-archive":
        path, _, name = rest.partition(":")
        if not path:
            raise _bad(text, "no file")
        return ArchiveRef(Path(path), _short_name(name, text) if name else None)
    if transport == "docker-daemon":
        return DaemonRef(_short_name(rest, text))
    if transport == "docker":
        raise _bad(text, "a registry reference starts with docker://")
    raise _bad(text, f"unknown transport {transport!r}")


def coerce(ref: str | Reference) -> Reference:
    return parse(ref) if isinstance(ref, str) else ref
