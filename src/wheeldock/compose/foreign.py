"""A compose stack built and run for another platform (``--platform linux/arm64``), under qemu.

``up`` and ``bench`` take ``--platform``: compose (BuildKit) builds each service for that
platform, and the engine runs its containers through the kernel's binfmt_misc handler for
qemu-user, so an arm64 image is seen answering on this x86 machine. The user's compose file is
never edited: one override file, layered over it, says per service

* ``platform:``, which compose honours for the build (BuildKit's ``--platform``) and for the
  container alike (``DOCKER_DEFAULT_PLATFORM`` would too, but only where a service sets no
  ``platform:`` of its own, and it cannot carry the next two);
* ``image:``, a tag of its own per platform (``…:wheeldock-arm64``, :func:`platform_tag`): a
  tag in the engine names one platform's image, so the host's image must not be overwritten;
* ``build.additional_contexts``, wheeldock's bases swapped for that platform's. A base made by
  ``wheeldock base`` lives only in the engine, one tag per architecture
  (``wheeldock/python:3.11-slim-arm64``); asked for ``FROM wheeldock/python:3.11-slim`` for
  arm64, BuildKit finds the local image's platform wrong and goes to a registry that has no
  such image. A named build context called like the ``FROM`` image redirects it to the arm64
  base without touching the Dockerfile. A service started from a base as it is (pip at start,
  no build) gets the platform's base as its ``image:``.

Which images are wheeldock's bases is read from their labels (:data:`base.LABEL_BASE`); other
images are left to BuildKit, which pulls the platform's image from a registry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from wheeldock import platforms
from wheeldock.debian import bases
from wheeldock.edges import engine
from wheeldock.edges.fsutil import atomic_write_text
from wheeldock.errors import ToolNotFound
from wheeldock.platforms import Target

#: ``(image reference, target) -> that platform's base image``, or None when the reference is
#: not one of wheeldock's bases (or already is the target's).
BaseResolver = Callable[[str, Target], str | None]

INSTALL_FIX = "apt-get install qemu-user-static binfmt-support"


# -- can this machine run the platform's programs -----------------------------------------------


def require_runnable(
    target: Target, *, binfmt_dir: Path = platforms.BINFMT_DIR, host: Target | None = None
) -> None:
    """Raise :class:`ToolNotFound` (with the fix) unless containers of ``target`` can run here:
    natively, or through an enabled qemu-user binfmt handler with the ``F`` flag.

    ``F`` (fix-binary) makes the kernel open the interpreter when the handler is registered, so
    it works inside a container's root file system too; qemu-user-static registers it so,
    qemu-user's dynamically linked handler does not."""
    here = host or platforms.host()
    if not platforms.needs_emulation(target, host_target=here):
        return
    entry = binfmt_dir / f"qemu-{target.qemu}"
    try:
        lines = entry.read_text().splitlines()
    except OSError:
        lines = []
    enable = f"update-binfmts --enable qemu-{target.qemu}"
    if lines[:1] != ["enabled"]:
        state = "is disabled" if lines else "is not registered"
        raise ToolNotFound(
            f"cannot run {target} images on this {here} host: the qemu-user binfmt handler "
            f"for {target.qemu} ({entry}) {state}",
            fix=f"{INSTALL_FIX}, then `{enable}` (in a container, the host must have "
            f"binfmt_misc mounted: `mount -t binfmt_misc binfmt_misc {binfmt_dir}`)",
        )
    flags = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("flags:")), "")
    if "F" not in flags:
        raise ToolNotFound(
            f"cannot run {target} images on this {here} host: the binfmt handler {entry} has "
            f"no F flag (flags: {flags or 'none'}), so containers cannot reach the interpreter",
            fix=f"{INSTALL_FIX} (its statically linked handlers are registered with F), "
            f"then `{enable}`",
        )


# -- the FROM images of a Dockerfile (pure) -------------------------------------------------------

_FROM = re.compile(r"^\s*FROM\s+(?P<rest>.+?)\s*$", re.IGNORECASE)
_ARG = re.compile(r"^\s*ARG\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:=(?P<value>\S*))?", re.IGNORECASE)
_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def _logical_lines(text: str) -> Iterable[str]:
    """Dockerfile lines with ``\\`` continuations joined and comment lines dropped."""
    pending = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        yield pending + raw
        pending = ""
    if pending:
        yield pending


def dockerfile_bases(text: str, build_args: Mapping[str, str] = {}) -> tuple[str, ...]:
    """The images a Dockerfile's stages start from, first-seen order, no duplicates.

    ``ARG``s declared before the first ``FROM`` are substituted (``build_args``, as compose
    passes them, win over the defaults). Left out: earlier stages (``FROM builder``),
    ``scratch``, images named through an ``ARG`` with no value, and images of a stage pinned to
    a platform (``FROM --platform=…``), which must not be swapped for the target's."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    pinned: set[str] = set()
    found: list[str] = []
    seen_from = False
    for line in _logical_lines(text):
        arg = _ARG.match(line)
        if arg and not seen_from:  # only ARGs before the first FROM apply to FROM lines
            name, value = arg.group("name"), build_args.get(arg.group("name"), arg.group("value"))
            if value:
                args[name] = value
            continue
        match = _FROM.match(line)
        if match is None:
            continue
        seen_from = True
        words = match.group("rest").split()
        flags = [w for w in words if w.startswith("--")]
        rest = [w for w in words if not w.startswith("--")]
        if not rest:
            continue
        image = _VAR.sub(lambda m: args.get(m.group("braced") or m.group("bare"), "$"), rest[0])
        if len(rest) >= 3 and rest[1].lower() == "as":
            stages.add(rest[2].lower())
        if image.lower() in stages or image == "scratch" or "$" in image or not image:
            continue
        if any(f.startswith("--platform") for f in flags):
            pinned.add(image)
        elif image not in found:
            found.append(image)
    return tuple(i for i in found if i not in pinned)


def platform_tag(image: str, target: Target) -> str:
    """``image`` with the platform in its tag: ``api:wheeldock`` -> ``api:wheeldock-arm64``
    (no tag: ``latest-arm64``; a digest is dropped, the tag names a new image)."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    repo, tag = (name[:colon], name[colon + 1 :]) if colon > slash else (name, "latest")
    return f"{repo}:{tag}-{target.suffix}"


# -- the override ---------------------------------------------------------------------------------


def dockerfile_text(build: Mapping[str, Any]) -> str | None:
    """The text of the Dockerfile a resolved ``build:`` section names (inline or a file under
    its context), or None (a remote context, a missing file)."""
    inline = build.get("dockerfile_inline")
    if inline:
        return str(inline)
    context = build.get("context")
    if not context or "://" in str(context):  # a remote context: its Dockerfile is not here
        return None
    path = Path(str(build.get("dockerfile") or "Dockerfile"))
    path = path if path.is_absolute() else Path(str(context)) / path
    try:
        return path.read_text()
    except OSError:
        return None


def override(
    config: Mapping[str, Any],
    names: Sequence[str],
    target: Target,
    *,
    bases_for: BaseResolver,
    retag: bool = True,
    builds: bool = True,
) -> dict[str, Any]:
    """The compose override that builds and runs services ``names`` for ``target``.

    ``config`` is ``docker compose config --format json`` of the stack. ``retag`` gives each
    built image a tag of its own (:func:`platform_tag`); ``builds`` false leaves the build
    sections alone (the images come from elsewhere, e.g. the native builder). A named context
    the user already set for an image is kept."""
    services_config: Mapping[str, Any] = config.get("services") or {}
    services: dict[str, Any] = {}
    for name in names:
        svc = services_config.get(name) or {}
        entry: dict[str, Any] = {"platform": target.name}
        build = svc.get("build")
        image = svc.get("image")
        if build is None:
            # started from an image as it is (e.g. pip at start): the platform's own base
            swapped = bases_for(str(image), target) if image else None
            if swapped:
                entry["image"] = swapped
        else:
            if retag:
                project = str(config.get("name") or "")
                entry["image"] = platform_tag(str(image or f"{project}-{name}"), target)
            text = dockerfile_text(build) if builds else None
            contexts: dict[str, str] = {}
            have = build.get("additional_contexts") or {}
            args = build.get("args") or {}
            build_args = {str(k): str(v) for k, v in args.items() if v is not None}
            for ref in dockerfile_bases(text or "", build_args):
                swapped = bases_for(ref, target) if ref not in have else None
                if swapped:
                    contexts[ref] = f"docker-image://{swapped}"
            if contexts:
                entry["build"] = {"additional_contexts": contexts}
        services[name] = entry
    return {"services": services}


def write_override(folder: Path, data: Mapping[str, Any], target: Target) -> Path:
    """Write ``data`` as ``folder/compose.<suffix>.yaml`` (JSON is YAML: compose reads it)."""
    path = folder / f"compose.{target.suffix}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


# -- wheeldock's bases in the engine ---------------------------------------------------------------


def engine_bases(progress: Callable[[str], None] = lambda message: None) -> BaseResolver:
    """A :data:`BaseResolver` reading the engine's image labels; a target's base missing from
    the engine is made (``wheeldock base``: imported from the cached rootfs, or built with
    mmdebstrap once per machine). Answers are remembered per (reference, target)."""
    known: dict[tuple[str, str], str | None] = {}

    def resolve(ref: str, target: Target) -> str | None:
        key = (ref, target.name)
        if key not in known:
            known[key] = _engine_base(ref, target, progress)
        return known[key]

    return resolve


def _engine_base(ref: str, target: Target, progress: Callable[[str], None]) -> str | None:
    result = engine.docker(
        "image", "inspect", "--format", "{{json .Config.Labels}}", ref, check=False
    )
    if result.returncode != 0:
        return None  # not in the engine: BuildKit resolves it from a registry
    labels: dict[str, str] = json.loads(result.stdout or "null") or {}
    variant = labels.get(bases.LABEL_BASE)
    if variant is None or labels.get("wheeldock.base.arch") == target.debian_arch:
        return None
    suite = labels.get("wheeldock.base.suite", bases.DEFAULT_SUITE)
    progress(
        f"preparing the {target} {variant} base (once per machine: Debian's scripts run in qemu)"
    )
    made = bases.ensure_image(variant, arch=target.debian_arch, suite=suite)
    return made.tags[0]
