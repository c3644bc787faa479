"""wheeldock: make Python services start fast in containers.

The library's API is the names in ``__all__``; anything else (the subpackages' modules) may
change between releases::

    import wheeldock

    project = wheeldock.load_project(Path("."))
    wheeldock.lock_services(project, project.services)
    results = wheeldock.build_services(project, project.services, ["oci:out"])

- :func:`load_project`: a folder's ``wheeldock.toml`` (:class:`Project`, its
  :class:`Service` list); ``wheeldock init`` writes it.
- :func:`lock_services`: lock each service's requirements (``pylock.*.toml``).
- :func:`build_services`: build and publish each service's image, natively (no Docker
  daemon); :class:`BuildOptions` says how, a :class:`Session` carries what several builds
  share (``build`` names the subpackage, hence the longer name).
- :func:`publish`: send an image or index to a destination (``oci:``, ``docker-archive:``,
  ``docker-daemon:``, ``docker://``), as :class:`PublishResult`.
- :func:`scan`: the Debian packages the ELF files of wheels (or a site-packages) need.
- :func:`check`: the ELF files of an image whose libraries do not resolve inside it.
- The errors: :class:`WheeldockError` and its leaves; the CLI turns them into a message and
  an exit code (``exit_code``).

Every name is imported on first use (the module's ``__getattr__``): ``import wheeldock``
imports none of the subpackages, so the CLI starts as fast as before.
"""

from __future__ import annotations

import sys

# httpx's package imports its command-line tool whenever click, pygments and rich are installed,
# a start-up cost for a tool wheeldock never runs (docs/design/start-up.md). With this entry the
# import fails quietly, as httpx expects when they are absent.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

#: typing's constant without importing typing (with re and contextlib, ~10 ms of a bare
#: ``import wheeldock``); type checkers read the block below as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from wheeldock.build.builder import BuildOptions, ServiceBuild
    from wheeldock.build.builder import build as build_services
    from wheeldock.build.session import Session
    from wheeldock.debian.libs import check, scan
    from wheeldock.deps.lock import lock_services
    from wheeldock.errors import (
        CommandFailed,
        DiffIdMismatch,
        DigestMismatch,
        DownloadFailed,
        EngineUnavailable,
        ExtraNotFound,
        FolderNotFound,
        ImageNotLoaded,
        IndexUnreachable,
        InvalidArchive,
        InvalidCacheEntry,
        InvalidCompression,
        InvalidConfig,
        InvalidDigest,
        InvalidDockerConfig,
        InvalidDockerfile,
        InvalidElf,
        InvalidLayout,
        InvalidReference,
        LibraryNotFound,
        NotFound,
        NotWritable,
        RegistryUnreachable,
        SdistBuildFailed,
        SdistNotBuildable,
        SizeMismatch,
        StaleLock,
        ToolNotFound,
        UnsupportedDockerfile,
        UsageError,
        WheeldockError,
    )
    from wheeldock.oci.publish import publish
    from wheeldock.oci.result import PublishResult
    from wheeldock.project import Project, Service
    from wheeldock.project import load as load_project

__all__ = [
    "BuildOptions",
    "CommandFailed",
    "DiffIdMismatch",
    "DigestMismatch",
    "DownloadFailed",
    "EngineUnavailable",
    "ExtraNotFound",
    "FolderNotFound",
    "ImageNotLoaded",
    "IndexUnreachable",
    "InvalidArchive",
    "InvalidCacheEntry",
    "InvalidCompression",
    "InvalidConfig",
    "InvalidDigest",
    "InvalidDockerConfig",
    "InvalidDockerfile",
    "InvalidElf",
    "InvalidLayout",
    "InvalidReference",
    "LibraryNotFound",
    "NotFound",
    "NotWritable",
    "Project",
    "PublishResult",
    "RegistryUnreachable",
    "SdistBuildFailed",
    "SdistNotBuildable",
    "Service",
    "ServiceBuild",
    "Session",
    "SizeMismatch",
    "StaleLock",
    "ToolNotFound",
    "UnsupportedDockerfile",
    "UsageError",
    "WheeldockError",
    "__version__",
    "build_services",
    "check",
    "load_project",
    "lock_services",
    "publish",
    "scan",
]

#: The public names that ``wheeldock.errors`` does not define: the module that defines each, and
#: its name there. Every other name in ``__all__`` but ``__version__`` is an error class there.
_ELSEWHERE: dict[str, tuple[str, str]] = {
    "load_project": ("wheeldock.project", "load"),
    "Project": ("wheeldock.project", "Project"),
    "Service": ("wheeldock.project", "Service"),
    "lock_services": ("wheeldock.deps.lock", "lock_services"),
    "build_services": ("wheeldock.build.builder", "build"),
    "BuildOptions": ("wheeldock.build.builder", "BuildOptions"),
    "ServiceBuild": ("wheeldock.build.builder", "ServiceBuild"),
    "Session": ("wheeldock.build.session", "Session"),
    "publish": ("wheeldock.oci.publish", "publish"),
    "PublishResult": ("wheeldock.oci.result", "PublishResult"),
    "scan": ("wheeldock.debian.libs", "scan"),
    "check": ("wheeldock.debian.libs", "check"),
}

#: Each public name: the module that defines it, and its name there.
_WHERE: dict[str, tuple[str, str]] = {
    name: _ELSEWHERE.get(name, ("wheeldock.errors", name))
    for name in __all__
    if name != "__version__"
}


def __getattr__(name: str) -> object:
    # Looked up on first use: importing importlib.metadata would slow every command's start-up,
    # and the library's modules are not needed by most commands.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("wheeldock")
        except PackageNotFoundError:  # running from a source tree without installing
            return "0.0.0"
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'wheeldock' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(where[0]), where[1])
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
