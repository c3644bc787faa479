"""Target platforms: the ``--platform`` strings wheeldock accepts, and what each one means.

One table maps an OCI platform (``linux/arm64``) to the names the other tools use for it: the
Debian architecture (mmdebstrap, the archive's Contents files), the wheel tag's machine
(``aarch64``) and the qemu-user binfmt handler that runs its programs on another host. The
parsed form is :class:`image.Platform`, so an index's descriptors and the builder agree.

``--platform`` may be repeated and may hold several comma-separated platforms; the order given
is kept (the first is the one a single-platform destination gets) and duplicates are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from wheeldock import base as bases
from wheeldock.errors import ToolNotFound, UsageError
from wheeldock.image import Platform


@dataclass(frozen=True)
class Target:
    """A platform wheeldock builds for, with its name in each tool's vocabulary."""

    platform: Platform
    debian_arch: str  # amd64, arm64, armhf
    wheel_arch: str  # x86_64, aarch64, armv7l (the wheel platform tag's machine)
    qemu: str  # the qemu-user binfmt handler: x86_64, aarch64, arm

    @property
    def name(self) -> str:
        """The canonical OCI string (``linux/arm/v7``)."""
        return str(self.platform)

    @property
    def suffix(self) -> str:
        """A short tag suffix for this platform (``arm64``, ``armv7``)."""
        return self.platform.architecture + (self.platform.variant or "").replace("v8", "")

    def __str__(self) -> str:
        return self.name


def _target(text: str, debian_arch: str, wheel_arch: str) -> Target:
    return Target(Platform.parse(text), debian_arch, wheel_arch, bases.ARCHES[debian_arch][0])


#: The platforms wheeldock builds for, by canonical name.
TARGETS: Mapping[str, Target] = MappingProxyType(
    {
        "linux/amd64": _target("linux/amd64", "amd64", "x86_64"),
        "linux/arm64": _target("linux/arm64", "arm64", "aarch64"),
        "linux/arm/v7": _target("linux/arm/v7", "armhf", "armv7l"),
    }
)

#: Other spellings people (and ``uname -m``, Docker, Debian) use for the same platforms.
_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "amd64": "linux/amd64",
        "x86_64": "linux/amd64",
        "linux/x86_64": "linux/amd64",
        "arm64": "linux/arm64",
        "aarch64": "linux/arm64",
        "linux/aarch64": "linux/arm64",
        "linux/arm64/v8": "linux/arm64",
        "armhf": "linux/arm/v7",
        "armv7": "linux/arm/v7",
        "armv7l": "linux/arm/v7",
        "arm/v7": "linux/arm/v7",
        "linux/arm": "linux/arm/v7",
        "linux/armhf": "linux/arm/v7",
        "linux/armv7": "linux/arm/v7",
    }
)


def accepted() -> str:
    """The accepted platform names, for messages."""
    return ", ".join(TARGETS)


def parse(text: str) -> Target:
    """One platform string → its :class:`Target`; :class:`UsageError` listing the accepted ones."""
    key = text.strip().lower()
    found = TARGETS.get(_ALIASES.get(key, key))
    if found is None:
        raise UsageError(
            f"unknown platform {text!r}",
            fix=f"use one of: {accepted()} (comma-separated or repeated for several)",
        )
    return found


def parse_list(
    values: Iterable[str] | str | None, *, default: str | None = None
) -> tuple[Target, ...]:
    """``--platform`` values (each possibly comma-separated) → targets, first-seen order, no
    duplicates. Nothing given: ``default`` (or an empty tuple without one)."""
    if isinstance(values, str):
        values = [values]
    names = [part for value in values or () for part in value.split(",") if part.strip()]
    if not names and default is not None:
        names = [default]
    targets: dict[str, Target] = {}
    for name in names:
        target = parse(name)
        targets.setdefault(target.name, target)
    return tuple(targets.values())


def host() -> Target:
    """The platform of this machine (a :class:`UsageError` on one wheeldock does not build for)."""
    return parse(str(Platform.host()))


def of_debian_arch(arch: str) -> Target:
    """The target whose Debian architecture is ``arch`` (``armhf`` → linux/arm/v7)."""
    for target in TARGETS.values():
        if target.debian_arch == arch:
            return target
    raise UsageError(
        f"unknown Debian architecture {arch!r}",
        fix=f"use one of: {', '.join(t.debian_arch for t in TARGETS.values())}",
    )


def of_platform(platform: Platform | str) -> Target:
    """The target of an OCI platform (``linux/arm64`` or a parsed :class:`Platform`)."""
    return parse(str(platform))


def needs_emulation(target: Target, *, host_target: Target | None = None) -> bool:
    """Whether programs built for ``target`` need qemu-user on this host."""
    here = host_target or host()
    return bases.needs_emulation(target.debian_arch, here.debian_arch)


def require_emulation(
    target: Target, *, binfmt_dir: Path = bases.BINFMT_DIR, host_target: Target | None = None
) -> None:
    """Raise (naming the handler and how to enable it) unless ``target``'s programs can run here:
    natively, or through a registered and enabled qemu-user binfmt handler."""
    here = host_target or host()
    try:
        bases.check_arch(target.debian_arch, binfmt_dir=binfmt_dir, host=here.debian_arch)
    except ToolNotFound as exc:
        raise ToolNotFound(
            f"cannot run {target} programs on this {here} host: {exc.what}", fix=exc.fix
        ) from exc
