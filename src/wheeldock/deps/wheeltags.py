"""Wheel tags: which wheels an image for a platform and Python runs, best first, and the names
uv and the wheel tags give each platform."""

from __future__ import annotations

from functools import cache

from packaging import tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from wheeldock import platforms

#: Canonical OCI platform → uv's ``--python-platform``. manylinux_2_36 is bookworm's glibc.
#: A platform missing here (linux/arm/v7: uv has no 32-bit ARM target) is resolved universally
#: and projected onto the platform (:func:`wheeldock.deps.lock.project_universal`).
UV_PLATFORMS: dict[str, str] = {
    "linux/amd64": "x86_64-manylinux_2_36",
    "linux/arm64": "aarch64-manylinux_2_36",
}


def uv_platform(platform: str) -> str | None:
    """uv's ``--python-platform`` for an OCI platform, or None when uv has no target for it (its
    lock is then resolved universally and projected). :class:`UsageError` (listing the accepted
    ones) for a platform wheeldock does not build for."""
    return UV_PLATFORMS.get(platforms.parse(platform).name)


def wheel_arch(platform: str) -> str:
    """The machine in the wheel tags an OCI platform installs (``armv7l`` for linux/arm/v7);
    :class:`UsageError` for a platform wheeldock does not build for."""
    return platforms.parse(platform).wheel_arch


@cache
def supported_tags(platform: str, python: str) -> dict[tags.Tag, int]:
    """Wheel tags a Debian bookworm image for ``platform`` runs, mapped to preference (0 best).

    bookworm has glibc 2.36, so manylinux_2_36 down to manylinux1, then plain linux (wheels
    built here from sdists).
    """
    arch = wheel_arch(platform)
    major, minor = (int(p) for p in python.split(".")[:2])
    plats = [f"manylinux_2_{m}_{arch}" for m in range(36, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    for m, alias in legacy.items():
        plats.insert(plats.index(f"manylinux_2_{m}_{arch}") + 1, f"{alias}_{arch}")
    plats.append(f"linux_{arch}")
    ordered = [
        *tags.cpython_tags((major, minor), abis=[f"cp{major}{minor}"], platforms=plats),
        *tags.compatible_tags((major, minor), f"cp{major}{minor}", plats),
    ]
    ranks: dict[tags.Tag, int] = {}
    for i, tag in enumerate(ordered):
        ranks.setdefault(tag, i)
    return ranks


def wheel_rank(filename: str, ranks: dict[tags.Tag, int]) -> int | None:
    """The best rank in ``ranks`` among a wheel file's tags; None when none is supported (or the
    name is no wheel's)."""
    try:
        _, _, _, wheel_tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    found = [ranks[t] for t in wheel_tags if t in ranks]
    return min(found) if found else None
