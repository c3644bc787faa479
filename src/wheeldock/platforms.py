"""Target platforms: the ``--platform`` strings wheeldock accepts, and what each one means.

One table maps an OCI platform (``linux/arm64``) to the names the other tools use for it: the
Debian architecture (mmdebstrap, the archive's Contents files), the wheel tag's machine
(``aarch64``) and the qemu-user binfmt handler that runs its programs on another host. The
parsed form is :class:`Platform`, so an index's descriptors and the builder agree.

``--platform`` may be repeated and may hold several comma-separated platforms; the order given
is kept (the first is the one a single-platform destination gets) and duplicates are dropped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from wheeldock.errors import InvalidConfig, ToolNotFound, UsageError

# Light on purpose (it imports no other wheeldock module but errors): ``build`` reads this table
# before its first index request, which waits on every module imported before it.


@dataclass(frozen=True)
class Arch:
    """One architecture under the name each tool gives it; the key is Debian's name."""

    debian: str  # amd64, arm64, armhf (mmdebstrap, the archive's Contents files)
    docker: str  # the OCI platform (linux/arm/v7)
    qemu: str  # the qemu-user binfmt handler (x86_64, aarch64, arm)
    wheel: str  # the machine in manylinux wheel tags (x86_64, aarch64, armv7l)
    triplet: str  # the GNU multiarch triplet (the loader's per-architecture folders)
    machines: tuple[str, ...] = ()  # what ``uname -m`` prints on a host of this architecture
    elf: tuple[str, int, bool] | None = None  # (e_machine, ELF class, little endian)


#: THE table of architecture names; every other map of them is derived from it.
ARCH_TABLE: tuple[Arch, ...] = (
    Arch("amd64", "linux/amd64", "x86_64", "x86_64", "x86_64-linux-gnu",
         ("x86_64", "amd64"), ("EM_X86_64", 64, True)),
    Arch("arm64", "linux/arm64", "aarch64", "aarch64", "aarch64-linux-gnu",
         ("aarch64", "arm64"), ("EM_AARCH64", 64, True)),
    Arch("armhf", "linux/arm/v7", "arm", "armv7l", "arm-linux-gnueabihf",
         ("armv7l",), ("EM_ARM", 32, True)),
    Arch("armel", "linux/arm/v5", "arm", "armv5tel", "arm-linux-gnueabi"),
    Arch("i386", "linux/386", "i386", "i686", "i386-linux-gnu",
         ("i686",), ("EM_386", 32, True)),
    Arch("ppc64el", "linux/ppc64le", "ppc64le", "ppc64le", "powerpc64le-linux-gnu",
         ("ppc64le",), ("EM_PPC64", 64, True)),
    Arch("s390x", "linux/s390x", "s390x", "s390x", "s390x-linux-gnu",
         ("s390x",), ("EM_S390", 64, False)),
    Arch("riscv64", "linux/riscv64", "riscv64", "riscv64", "riscv64-linux-gnu",
         ("riscv64",), ("EM_RISCV", 64, True)),
)  # fmt: skip

#: ``uname -m`` -> OCI architecture, where the two differ (x86_64 is amd64).
_ARCH_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        machine: a.docker.split("/")[1]
        for a in ARCH_TABLE
        for machine in a.machines
        if machine != a.docker.split("/")[1]
    }
)


@dataclass(frozen=True, order=True)
class Platform:
    """An OCI platform (``os``/``architecture``/``variant``), as in an index's descriptors."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/arm64``, ``linux/arm/v7`` or just ``arm64`` (os linux)."""
        parts = text.strip().split("/")
        if len(parts) == 1 and parts[0]:
            return cls("linux", parts[0])
        if 2 <= len(parts) <= 3 and all(parts):
            return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)
        raise InvalidConfig(
            f"not a platform: {text!r}",
            fix="write it as os/architecture[/variant], e.g. linux/arm64",
        )

    @classmethod
    def host(cls) -> Platform:
        machine = os.uname().machine.lower()  # not platform.machine(): one import less
        return cls("linux", _ARCH_ALIASES.get(machine, machine))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Platform:
        return cls(
            str(data.get("os", "linux")),
            str(data.get("architecture", "amd64")),
            data.get("variant"),
        )

    def to_json(self) -> dict[str, str]:
        data = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            data["variant"] = self.variant
        return data

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


#: Debian architecture -> (qemu binfmt name, docker platform).
ARCHES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {a.debian: (a.qemu, a.docker) for a in ARCH_TABLE}
)
#: Debian architecture -> the machine in its manylinux wheel tags.
WHEEL_MACHINES: Mapping[str, str] = MappingProxyType({a.debian: a.wheel for a in ARCH_TABLE})
#: Debian architecture -> GNU multiarch triplet.
TRIPLETS: Mapping[str, str] = MappingProxyType({a.debian: a.triplet for a in ARCH_TABLE})
#: (e_machine, ELF class, little endian) -> Debian architecture.
ELF_ARCHES: Mapping[tuple[str, int, bool], str] = MappingProxyType(
    {a.elf: a.debian for a in ARCH_TABLE if a.elf is not None}
)
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


_MACHINE_TO_ARCH: Mapping[str, str] = MappingProxyType(
    {machine: a.debian for a in ARCH_TABLE for machine in a.machines}
)
#: Architectures a host runs without emulation.
_RUNS_NATIVELY = {"amd64": {"amd64", "i386"}, "arm64": {"arm64", "armhf", "armel"}}


def native_arch(machine: str | None = None) -> str:
    """The Debian architecture of this host (its machine name, as ``uname -m`` prints it, mapped;
    read with ``os.uname``, which needs no ``platform`` module import)."""
    machine = machine or os.uname().machine
    return _MACHINE_TO_ARCH.get(machine.lower(), machine.lower())


def debian_arch(platform: Platform) -> str:
    """The Debian architecture of an OCI platform: ``linux/arm/v7`` is ``armhf`` (``arm`` with no
    variant too, as Docker means v7 by it), ``linux/arm64`` is ``arm64``. An architecture not in
    :data:`ARCHES` is given back as it is, for :func:`check_arch` to refuse."""
    variant = {"arm": platform.variant or "v7", "arm64": None}.get(
        platform.architecture, platform.variant
    )  # arm64's one variant is v8, which ARCHES leaves out
    wanted = str(Platform(platform.os, platform.architecture, variant))
    return next(
        (arch for arch, (_, name) in ARCHES.items() if name == wanted), platform.architecture
    )


def arch_needs_emulation(arch: str, host: str | None = None) -> bool:
    """Whether programs of Debian architecture ``arch`` need qemu-user on ``host`` (default: here)."""
    host = host or native_arch()
    return arch not in _RUNS_NATIVELY.get(host, {host})


def check_arch(arch: str, *, binfmt_dir: Path = BINFMT_DIR, host: str | None = None) -> None:
    """Raise unless mmdebstrap can build for ``arch`` here.

    A foreign architecture runs its maintainer scripts under qemu-user, which needs a binfmt
    handler registered in the kernel.
    """
    if arch not in ARCHES:
        raise UsageError(
            f"unknown architecture {arch!r}",
            fix=f"use a Debian architecture name: {', '.join(ARCHES)}",
        )
    if not arch_needs_emulation(arch, host):
        return
    # mmdebstrap asks arch-test whether the foreign architecture can run here.
    if shutil.which("arch-test") is None:
        raise ToolNotFound(
            f"cannot build for {arch}: `arch-test` is not installed (mmdebstrap needs it for "
            "foreign architectures)",
            fix="apt-get install arch-test qemu-user-static binfmt-support  (or scripts/setup.sh)",
        )
    qemu = ARCHES[arch][0]
    entry = binfmt_dir / f"qemu-{qemu}"
    try:
        enabled = entry.read_text().splitlines()[:1] == ["enabled"]
    except OSError:
        enabled = False
    if not enabled:
        raise ToolNotFound(
            f"cannot build for {arch} on this {native_arch()} host: no qemu binfmt handler "
            f"for {qemu} is registered ({entry} is missing or disabled)",
            fix=(
                "apt-get install qemu-user-static binfmt-support && "
                f"update-binfmts --enable qemu-{qemu}  (in a container: the host must have "
                f"binfmt_misc mounted, `mount -t binfmt_misc binfmt_misc {binfmt_dir}`)"
            ),
        )


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


def _target(debian_arch: str) -> Target:
    arch = next(a for a in ARCH_TABLE if a.debian == debian_arch)
    return Target(Platform.parse(arch.docker), arch.debian, arch.wheel, arch.qemu)


#: The platforms wheeldock builds for, by canonical name.
TARGETS: Mapping[str, Target] = MappingProxyType(
    {t.name: t for t in map(_target, ("amd64", "arm64", "armhf"))}
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
    return arch_needs_emulation(target.debian_arch, here.debian_arch)


def require_emulation(
    target: Target, *, binfmt_dir: Path = BINFMT_DIR, host_target: Target | None = None
) -> None:
    """Raise (naming the handler and how to enable it) unless ``target``'s programs can run here:
    natively, or through a registered and enabled qemu-user binfmt handler."""
    here = host_target or host()
    try:
        check_arch(target.debian_arch, binfmt_dir=binfmt_dir, host=here.debian_arch)
    except ToolNotFound as exc:
        raise ToolNotFound(
            f"cannot run {target} programs on this {here} host: {exc.what}", fix=exc.fix
        ) from exc
