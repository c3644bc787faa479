"""The Docker engine destination: ``docker load`` fed a docker-archive through its stdin.

No temp file: the archive is written straight into the pipe (:func:`wheeldock.oci.tarball.stream`).
By default layers go uncompressed: the engine unpacks them anyway, so gzip only adds a
compression and a decompression on the same machine (docs/design/engine-loads.md).

Layers the engine already has are not sent: the loader (moby ``image/tarexport/load.go``,
graphdriver store) looks each layer up by its chain ID before it opens the layer's file, so
the archive names them in ``manifest.json`` and leaves the files out. What the engine has is
read from ``docker image inspect`` of the target name and of ``hints`` (e.g. the base's tag),
plus the chains this command loaded (:class:`EngineLayers`). If such a load fails (an engine whose loader reads every
file, e.g. the containerd image store), the whole archive is sent again.

A cold build also loads the bottom of an image before the top is built (:class:`Preloader`):
untagged images of the layers finished so far, removed once the image itself is loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

from wheeldock.edges import engine
from wheeldock.errors import CommandFailed, ImageNotLoaded
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import Image, Index
from wheeldock.oci.reference import parse_name
from wheeldock.oci.result import PublishResult
from wheeldock.oci.tarball import stream, stream_many

log = logging.getLogger(__name__)


def _short(name: str) -> str:
    """``name:tag`` as ``docker images`` shows it (Docker Hub's prefix dropped)."""
    parsed = parse_name(name)
    repo = parsed.repository
    if parsed.registry == "docker.io":
        return f"{repo.removeprefix('library/')}:{parsed.tag}"
    return f"{parsed.registry}/{repo}:{parsed.tag}"


def chain_ids(diff_ids: Sequence[Digest | str]) -> list[str]:
    """The chain ID of each layer prefix (OCI image spec: ``sha256(parent + " " + diff_id)``)."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(str(diff_id))
        else:
            chains.append(
                "sha256:" + hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest()
            )
    return chains


class EngineLayers:
    """What a command knows of the layers the engine has (see the module's notes): the chain
    IDs it saw there (from inspects and its own loads), the image names it inspected, and the
    engine check and inspect started early (:meth:`prefetch`).

    One per command, kept by ``build --watch`` (a rebuild then knows what the last one
    loaded). Once a name is inspected, the command's own loads keep the chains current, and a
    layer the engine lost since makes ``docker load`` fail, which :func:`_load_stream` answers
    by sending every layer and forgetting what was known."""

    def __init__(self) -> None:
        self.chains: set[str] = set()
        self.inspected: set[str] = set()
        self._prefetched: Future[None] | None = None

    def prefetch(self, names: Sequence[str]) -> None:
        """Ask the engine, on a thread, what a coming load needs to know: that it answers, and
        which layers the images ``names`` have. The build goes on meanwhile; the load waits
        for the answers (two ``docker`` runs, otherwise on the critical path)."""

        def ask() -> None:
            engine.require()
            self.inspect(names)

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._prefetched = pool.submit(ask)
        pool.shutdown(wait=False)

    def ready(self) -> None:
        """:func:`engine.require`, or the answer of the :meth:`prefetch` (kept: the early loads
        and the final load of one build all use it)."""
        pending = self._prefetched
        if pending is None:
            engine.require()
        else:
            pending.result()  # re-raises EngineUnavailable

    def inspect(self, names: Sequence[str]) -> None:
        fresh = [n for n in dict.fromkeys(_short(n) for n in names) if n not in self.inspected]
        if fresh:
            self.chains.update(engine_chains(fresh))
            self.inspected.update(fresh)

    def present_layers(
        self, image: Image, name: str, hints: Sequence[str] = ()
    ) -> frozenset[Digest]:
        """diff_ids of the longest prefix of ``image``'s layers whose chains the engine has."""
        chains = chain_ids([lay.diff_id for lay in image.layers])
        if not all(c in self.chains for c in chains):
            self.inspect([name, *hints])
        present: set[Digest] = set()
        for lay, chain in zip(image.layers, chains, strict=True):
            if chain not in self.chains:
                break
            present.add(lay.diff_id)
        return frozenset(present)

    def loaded(self, image: Image) -> None:
        """Remember that the engine now has every layer of ``image``."""
        self.chains.update(chain_ids([lay.diff_id for lay in image.layers]))

    def forget(self) -> None:
        """Forget every layer known to be there (the engine refused an archive without them)."""
        self.chains.clear()
        self.inspected.clear()


def engine_chains(refs: Sequence[str]) -> set[str]:
    """Every layer chain ID the images named by ``refs`` have (missing refs count for none)."""
    if not refs:
        return set()
    result = engine.docker(
        "image", "inspect", "--format", "{{json .RootFS.Layers}}", *refs, check=False, timeout=60
    )
    found: set[str] = set()
    for line in result.stdout.splitlines():
        try:
            layers = json.loads(line)
        except ValueError:
            continue
        if isinstance(layers, list):
            found.update(chain_ids([str(d) for d in layers]))
    return found


def _load_stream(
    send: Callable[[IO[bytes], frozenset[Digest]], None],
    omit: frozenset[Digest],
    timeout: float | None,
    known: EngineLayers,
) -> list[str]:
    """``docker load`` of the archive ``send`` writes, leaving out the layers in ``omit``; if
    the engine refuses such an archive (a loader that reads every file, e.g. the containerd
    image store), the whole archive is sent again. Returns the names loaded."""
    try:
        loaded = engine.load_stream(lambda pipe: send(pipe, omit), timeout=timeout)
    except CommandFailed as exc:
        if not omit:
            raise
        log.warning(
            "docker load without the layers it has failed (%s); sending them all",
            exc.stderr.strip()[-300:],
        )
        known.forget()
        loaded = engine.load_stream(lambda pipe: send(pipe, frozenset()), timeout=timeout)
    _remove_replaced(loaded.untagged, known)
    return loaded.names


def _remove_replaced(untagged: Sequence[str], known: EngineLayers) -> None:
    """Remove the images a load took their names from (the previous build of the same tag),
    so rebuilds leave no dangling images; one a container or another name still uses stays
    (``wheeldock prune`` removes it once it is free)."""
    if not untagged:
        return
    kept = engine.remove_images(untagged)
    for image_id, why in kept.items():
        log.info("kept the previous image %s (%s)", image_id[:19], why)
    if len(kept) < len(untagged):
        # their layers may be gone with them: ask the engine again before the next load
        known.forget()


def load(
    target: Image | Index,
    name: str,
    store: BlobStore | None = None,
    *,
    compressed: bool = False,
    timeout: float | None = 900,
    skip_present: bool = True,
    hints: Sequence[str] = (),
    known: EngineLayers | None = None,
) -> PublishResult:
    """Load ``target`` into the running engine as ``name`` (``name:tag``).

    ``compressed`` sends layers as stored (gzip/zstd) instead of plain tars. With
    ``skip_present``, layers the engine has (see the module's notes; ``hints`` name more images
    to look in) are not sent; ``known`` is what the command knows of them (a fresh one asks the
    engine). The result's digest is the manifest digest of the archive that was
    sent; ``docker images`` shows the config digest as the image ID.
    """
    known = known if known is not None else EngineLayers()
    known.ready()
    short = _short(name)
    results: list[PublishResult] = []
    omit: frozenset[Digest] = frozenset()
    if skip_present and isinstance(target, Image):
        omit = known.present_layers(target, short, hints)

    def send(pipe: IO[bytes], omit: frozenset[Digest]) -> None:
        results[:] = [stream(target, pipe, short, store, compressed=compressed, omit=omit)]

    loaded = _load_stream(send, omit, timeout, known)
    if not results:  # pragma: no cover - send raised, and run() re-raised it
        raise ImageNotLoaded("docker load received nothing")
    if short not in loaded and f"docker.io/library/{short}" not in loaded:
        raise ImageNotLoaded(
            f"docker load did not report loading {short} (it said: {', '.join(loaded) or 'nothing'})",
            fix="check `docker images`; the engine may be too old for OCI archives (need >= 25)",
        )
    if isinstance(target, Image):
        known.loaded(target)
    sent = results[0]
    log.info("loaded %s into the engine (%d bytes sent)", short, sent.bytes_written)
    return PublishResult(
        f"docker-daemon:{short}", sent.digest, sent.bytes_written, sent.blobs_written, 0
    )


def load_many(
    images: Sequence[tuple[Image, str]],
    store: BlobStore | None = None,
    *,
    timeout: float | None = 900,
    hints: Sequence[str] = (),
    known: EngineLayers | None = None,
) -> list[PublishResult]:
    """Load several images (``(image, name:tag)``) with one ``docker load``: a stack's
    services share their base and dependency layers, which go in the archive once, and the
    engine is asked once. Layers the engine has are left out as in :func:`load` (a layer only
    when every image holding it has its whole chain below it in the engine)."""
    known = known if known is not None else EngineLayers()
    known.ready()
    named = [(image, _short(name)) for image, name in images]
    present: dict[Digest, bool] = {}
    for image, short in named:
        have = known.present_layers(image, short, hints)
        for lay in image.layers:
            present[lay.diff_id] = present.get(lay.diff_id, True) and lay.diff_id in have
    omit = frozenset(d for d, ok in present.items() if ok)
    results: list[PublishResult] = []

    def send(pipe: IO[bytes], omit: frozenset[Digest]) -> None:
        results[:] = stream_many(named, pipe, store, compressed=False, omit=omit)

    loaded = _load_stream(send, omit, timeout, known)
    missing = [s for _, s in named if s not in loaded and f"docker.io/library/{s}" not in loaded]
    if missing:
        raise ImageNotLoaded(
            f"docker load did not report loading {', '.join(missing)} "
            f"(it said: {', '.join(loaded) or 'nothing'})",
            fix="check `docker images`; the engine may be too old for OCI archives (need >= 25)",
        )
    for image, _ in named:
        known.loaded(image)
    if results:
        log.info(
            "loaded %s into the engine (%d bytes sent)",
            ", ".join(s for _, s in named),
            results[0].bytes_written,
        )
    return [
        PublishResult(f"docker-daemon:{short}", r.digest, r.bytes_written, r.blobs_written, 0)
        for (_, short), r in zip(named, results, strict=True)
    ]


#: A prefix is loaded early only when it brings the engine at least this many new bytes: a
#: ``docker load`` has a fixed cost (the CLI, the archive's unpacking, a new image record),
#: which a one-pin bump's small layer does not repay.
PRELOAD_MIN_BYTES = 4 << 20


class Preloader:
    """Loads growing prefixes of an image into the engine while the rest is still being built.

    The engine's ``docker load`` unpacks new layers on one core, and only once the whole image
    exists. A cold build's dependency layers are ready one by one while
    the others still compile: each :meth:`offer` of a longer prefix (an image of the layers so
    far, untagged) is loaded on a thread, so the engine unpacks the big layers while the build
    goes on, and the final load (:func:`load`, :func:`load_many`) sends only what it has not
    got. Offers that come while a load runs are merged: only the latest is loaded next. The
    untagged prefix images are removed by :meth:`close` once the real image holds their layers.
    Best effort: a failed early load is logged and its layers go with the final load.
    """

    def __init__(
        self,
        store: BlobStore | None,
        name: str,
        hints: Sequence[str] = (),
        *,
        known: EngineLayers,
        min_bytes: int = PRELOAD_MIN_BYTES,
        timeout: float | None = 900,
    ) -> None:
        self._store = store
        self._known = known
        self._names = [_short(name), *hints]
        self._min_bytes = min_bytes
        self._timeout = timeout
        self._guard = threading.Lock()
        self._next: Image | None = None
        self._worker: threading.Thread | None = None
        #: image IDs of the prefixes loaded (removed by :meth:`close`)
        self.loaded: list[str] = []

    def offer(self, image: Image) -> None:
        """Load ``image`` (a prefix of the image being built) soon, unless a longer one comes
        first. Returns at once."""
        with self._guard:
            self._next = image
            if self._worker is None:
                self._worker = threading.Thread(target=self._drain, name="preload", daemon=True)
                self._worker.start()

    def _drain(self) -> None:
        while True:
            with self._guard:
                image, self._next = self._next, None
                if image is None:
                    self._worker = None
                    return
            try:
                self._load(image)
            except Exception as exc:  # the final load sends what this did not
                log.info("early load into the engine failed (%s); the image's load sends it", exc)

    def _load(self, image: Image) -> None:
        self._known.ready()
        have = self._known.present_layers(image, self._names[0], self._names[1:])
        new = sum(lay.size for lay in image.layers if lay.diff_id not in have)
        if new < self._min_bytes:
            return

        def send(pipe: IO[bytes], omit: frozenset[Digest]) -> None:
            stream(image, pipe, None, self._store, compressed=False, omit=omit)

        _load_stream(send, have, self._timeout, self._known)
        self.loaded.append(str(image.config_digest))
        self._known.loaded(image)
        log.info("loaded %d layers into the engine early (%d new bytes)", len(image.layers), new)

    def finish(self) -> None:
        """Drop offers not yet started and wait for the load in flight (call before the final
        load: it then knows every layer the early loads brought)."""
        with self._guard:
            self._next = None
            worker = self._worker
        if worker is not None:
            worker.join()

    def close(self) -> None:
        """:meth:`finish`, then remove the untagged prefix images (their layers stay, held by
        the image loaded since; an image still without one keeps them too)."""
        self.finish()
        if self.loaded:
            engine.docker("image", "rm", "--no-prune", *self.loaded, check=False, timeout=60)
            self.loaded.clear()
