"""dpkg's database of installed packages: where its status file is (in a rootfs tar, an image's
layers, a file tree) and what it says.

The status file is deb822: stanzas split by blank lines, ``Field: value`` lines, continuation
lines starting with a space or a tab. A package counts as installed when its ``Status`` ends in
`` installed``. Distroless images have no status file but one stanza file per package under
``var/lib/dpkg/status.d/``, without a ``Status`` field: every package named there counts.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from wheeldock.debian.rootfs import FileTree, norm, resolve
from wheeldock.errors import NotFound
from wheeldock.oci.layer import Layer

#: Where dpkg's status file sits inside every rootfs.
STATUS_PATH = "var/lib/dpkg/status"
#: Where distroless images keep one stanza file per package instead.
STATUS_D = "var/lib/dpkg/status.d/"


@dataclass(frozen=True)
class Paragraph:
    """One stanza of a deb822 file: its fields and its text as it was."""

    fields: Mapping[str, str]
    text: str

    @property
    def package(self) -> str:
        return self.fields.get("Package", "")

    @property
    def version(self) -> str:
        return self.fields.get("Version", "")

    @property
    def installed(self) -> bool:
        return self.fields.get("Status", "").endswith(" installed")


def parse_status(text: str) -> list[Paragraph]:
    """The stanzas of a dpkg status file, in the file's order (each keeps its text, so a
    status file can be rewritten with some of them left out)."""
    paragraphs = []
    for chunk in re.split(r"\n\s*\n", text.strip("\n")):
        if not chunk.strip():
            continue
        fields: dict[str, str] = {}
        last = None
        for line in chunk.splitlines():
            if line[:1] in (" ", "\t") and last is not None:
                fields[last] += "\n" + line.strip()
            elif ":" in line:
                name, _, value = line.partition(":")
                last = name.strip()
                fields[last] = value.strip()
        paragraphs.append(Paragraph(MappingProxyType(fields), chunk + "\n"))
    return paragraphs


def installed(paragraphs: Iterable[Paragraph]) -> list[Paragraph]:
    """The stanzas of installed packages, in order."""
    return [p for p in paragraphs if p.installed]


def installed_versions(text: str) -> dict[str, str]:
    """Package -> version of everything the status file ``text`` says is installed."""
    return {p.package: p.version for p in installed(parse_status(text))}


def status_in_tar(tar_path: Path, member_path: str = STATUS_PATH) -> bytes:
    """The status file (or ``member_path``) of an uncompressed rootfs tar; :class:`NotFound`
    when the tar lacks it."""
    with tarfile.open(tar_path, "r:") as tar:
        for member in tar:
            if norm(member.name) == member_path:
                fh = tar.extractfile(member)
                if fh is not None:
                    return fh.read()
    raise NotFound(f"{member_path} is not in the rootfs tar", path=tar_path)


def status_in_layers(layers: Sequence[Layer]) -> str | None:
    """The topmost status file in an image's layers (base first); None: an image without dpkg.

    Reads the layers top-down and stops at the first that has the file."""
    for layer in reversed(layers):
        with layer.uncompressed() as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
            for info in tar:
                if info.name.removeprefix("./") == STATUS_PATH and info.isreg():
                    data = tar.extractfile(info)
                    return data.read().decode(errors="replace") if data else ""
    return None


def packages_in_tree(tree: FileTree) -> frozenset[str]:
    """The installed packages of a file tree: its status file's, and those with a stanza file
    under :data:`STATUS_D`."""
    packages: set[str] = set()
    status = resolve(tree, STATUS_PATH)
    if status is not None:
        with tree.open(status) as fh:
            text = fh.read().decode(errors="replace")
        packages |= {p.package for p in installed(parse_status(text)) if p.package}
    for path in tree.paths():
        node = tree.node(path)
        if path.startswith(STATUS_D) and node is not None and node.kind == "file":
            with tree.open(path) as fh:
                text = fh.read().decode(errors="replace")
            packages |= {p.package for p in parse_status(text) if p.package}
    return frozenset(packages)


__all__ = [
    "STATUS_D",
    "STATUS_PATH",
    "Paragraph",
    "installed",
    "installed_versions",
    "packages_in_tree",
    "parse_status",
    "status_in_layers",
    "status_in_tar",
]
