"""The registry as the second level of the layer cache: a key → descriptor map kept as OCI
artifacts in one repository, so any conformant registry serves it and its own garbage
collection applies.

One entry per key: an image manifest tagged :func:`entry_tag` (``wd-`` and the key's 64 hex
digits), with ``artifactType`` :data:`ARTIFACT_TYPE`, the empty config, and as its only layer
the cached layer's own descriptor (a record that is not a layer has the empty descriptor
there). Its annotations carry the rest a build needs to use the layer without its bytes: the
key, the diff_id, the uncompressed size, or a record's JSON value. The entry references the
layer's blob, so the registry keeps the blob as long as the entry's tag exists.

A hit costs one request, a manifest ``GET``. The layer's bytes are fetched only when an
output needs them (checked against the digest, then the diff_id); if they cannot be, the layer
is built locally, and must come out the same. Nothing here fails a build: a registry that
cannot be reached or keeps failing is reported once and the cache is off for the rest of the
command; an entry that cannot be read or checked is a miss, with a warning.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from wheeldock.errors import (
    DiffIdMismatch,
    DigestMismatch,
    InvalidCacheEntry,
    InvalidReference,
    WheeldockError,
)
from wheeldock.oci.blobs import CHUNK, BlobStore
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import MEDIA_TYPE_MANIFEST
from wheeldock.oci.layer import Layer, compression_of, open_uncompressed
from wheeldock.oci.reference import Name, RegistryRef, coerce
from wheeldock.oci.remote import Repository, RetryPolicy

log = logging.getLogger(__name__)

#: The ``artifactType`` of a cache entry's manifest.
ARTIFACT_TYPE = "application/vnd.wheeldock.cache.v1+json"
#: The OCI 1.1 empty descriptor: an entry's config, and a record's only layer.
MEDIA_TYPE_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
EMPTY_DIGEST = Digest.of_bytes(EMPTY)
ANNOTATION_KEY = "dev.wheeldock.cache.key"
ANNOTATION_DIFF_ID = "dev.wheeldock.cache.diff_id"
ANNOTATION_UNCOMPRESSED_SIZE = "dev.wheeldock.cache.uncompressed_size"
ANNOTATION_VALUE = "dev.wheeldock.cache.value"
TAG_PREFIX = "wd-"

CacheMode = Literal["read", "readwrite"]
CACHE_MODES: tuple[CacheMode, ...] = ("read", "readwrite")

#: A cache must not hold a build up: a few quick tries, then the build goes on without it.
CACHE_RETRY = RetryPolicy(attempts=3, seconds=20.0, first_delay=0.2, max_delay=2.0)
#: Entries looked up at once, and saved at once (uploads: as many as a push sends).
PARALLEL_LOOKUPS = 8
PARALLEL_SAVES = 4

_KEY_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")


# -- the pure part: tags and entries ------------------------------------------------------------


def entry_tag(key: str) -> str:
    """The tag of ``key``'s entry: ``wd-`` and the key's hex when the key is a sha256 digest,
    else the sha256 of the key."""
    match = _KEY_DIGEST.match(key)
    hexdigits = match.group(1) if match else hashlib.sha256(key.encode()).hexdigest()
    return TAG_PREFIX + hexdigits


def _empty_descriptor() -> dict[str, Any]:
    return {"mediaType": MEDIA_TYPE_EMPTY, "digest": str(EMPTY_DIGEST), "size": len(EMPTY)}


def entry_manifest(
    key: str, *, layer: Layer | None = None, value: Mapping[str, Any] | None = None
) -> bytes:
    """The manifest of ``key``'s entry: for a ``layer`` (its descriptor as the one layer) or a
    record's ``value`` (JSON, in an annotation). The same inputs give the same bytes."""
    annotations = {ANNOTATION_KEY: key}
    if layer is not None:
        annotations[ANNOTATION_DIFF_ID] = str(layer.diff_id)
        if layer.uncompressed_size is not None:
            annotations[ANNOTATION_UNCOMPRESSED_SIZE] = str(layer.uncompressed_size)
        descriptor = layer.descriptor()
        descriptor["mediaType"] = layer.media_type
    else:
        annotations[ANNOTATION_VALUE] = json.dumps(value or {}, sort_keys=True)
        descriptor = _empty_descriptor()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": _empty_descriptor(),
        "layers": [descriptor],
        "annotations": annotations,
    }
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Entry:
    """A cache entry read back: a layer's descriptor fields (as :meth:`Layer.to_json` records
    them), or a record's value."""

    key: str
    layer: Mapping[str, Any] | None = None
    value: Mapping[str, Any] | None = None


def _bad(key: str, why: str) -> InvalidCacheEntry:
    return InvalidCacheEntry(
        f"the registry cache's entry {entry_tag(key)} {why}",
        fix="nothing to do: it is rebuilt and written again (or delete the tag)",
    )


def parse_entry(key: str, raw: bytes) -> Entry:
    """``key``'s entry from its manifest's bytes; :class:`InvalidCacheEntry` when they are not
    an entry wheeldock wrote for that very key (pure)."""
    try:
        manifest = json.loads(raw)
        annotations = manifest["annotations"]
        layers = manifest["layers"]
    except (ValueError, KeyError, TypeError) as exc:
        raise _bad(key, f"is not a manifest ({exc})") from exc
    if manifest.get("artifactType") != ARTIFACT_TYPE:
        raise _bad(key, f"has artifactType {manifest.get('artifactType')!r}")
    if annotations.get(ANNOTATION_KEY) != key:
        raise _bad(key, "was written for another key")
    if not isinstance(layers, list) or len(layers) != 1:
        raise _bad(key, "does not have exactly one layer")
    if ANNOTATION_VALUE in annotations:
        try:
            value = json.loads(annotations[ANNOTATION_VALUE])
        except ValueError as exc:
            raise _bad(key, "holds a value that is not JSON") from exc
        if not isinstance(value, dict):
            raise _bad(key, "holds a value that is not an object")
        return Entry(key, value=value)
    return Entry(key, layer=_layer_fields(key, layers[0], annotations))


def _layer_fields(key: str, desc: Any, annotations: Mapping[str, Any]) -> dict[str, Any]:
    try:
        fields: dict[str, Any] = {
            "digest": str(Digest.parse(desc["digest"])),
            "diff_id": str(Digest.parse(annotations[ANNOTATION_DIFF_ID])),
            "size": int(desc["size"]),
            "media_type": str(desc["mediaType"]),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(key, f"has an unusable layer descriptor ({exc})") from exc
    if fields["size"] < 0 or not fields["media_type"].startswith("application/"):
        raise _bad(key, "has an unusable layer descriptor")
    if isinstance(desc.get("annotations"), dict):
        fields["annotations"] = {str(k): str(v) for k, v in desc["annotations"].items()}
    size = str(annotations.get(ANNOTATION_UNCOMPRESSED_SIZE, ""))
    if size.isdigit():
        fields["uncompressed_size"] = int(size)
    return fields


# -- the client ---------------------------------------------------------------------------------


def cache_name(ref: str) -> Name:
    """The repository a ``--cache docker://HOST/REPO`` names (a tag or digest is refused)."""
    parsed = coerce(ref if ref.startswith("docker://") else f"docker://{ref}")
    if not isinstance(parsed, RegistryRef) or parsed.name.digest or ":" in ref.rpartition("/")[2]:
        raise InvalidReference(
            f"--cache {ref}: the cache is a registry repository, without a tag",
            fix="write it docker://HOST/REPO (e.g. docker://registry.example:5000/team/cache)",
        )
    return parsed.name


@dataclass
class CacheStats:
    """What one command asked of the registry cache."""

    hits: int = 0
    misses: int = 0
    saved: int = 0
    bytes_uploaded: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


class RegistryCache:
    """The registry cache of one command (see the module's notes). Thread-safe.

    ``mode`` ``read`` only looks up; ``readwrite`` also saves each layer built (and each layer
    the local cache gave that the registry lacks). Saves run on worker threads: :meth:`flush`
    waits for them (before the images are pushed, so their blobs can be mounted).
    """

    def __init__(
        self,
        ref: str,
        mode: CacheMode = "readwrite",
        *,
        store: BlobStore,
        auth: tuple[str, str] | None = None,
        ca_file: Path | None = None,
        insecure: bool = False,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy = CACHE_RETRY,
    ) -> None:
        self.name = cache_name(ref)
        self.mode = mode
        self.store = store
        self.stats = CacheStats()
        self._options: dict[str, Any] = {
            "auth": auth, "ca_file": ca_file, "insecure": insecure,
            "transport": transport, "retry": retry,
        }  # fmt: skip
        self._repo: Repository | None = None
        self._down = False
        self._lock = threading.Lock()
        # apart, so that look-ups never wait behind the uploads of the layers built so far
        self._lookups = ThreadPoolExecutor(PARALLEL_LOOKUPS, thread_name_prefix="cache-lookup")
        self._uploads = ThreadPoolExecutor(PARALLEL_SAVES, thread_name_prefix="cache-save")
        self._saves: list[Future[None]] = []
        self._saving: set[str] = set()

    def __str__(self) -> str:
        return f"{self.name.registry}/{self.name.repository}"

    @property
    def repository(self) -> str:
        """The cache's repository (without its registry): where outputs mount blobs from."""
        return self.name.repository

    def same_registry(self, ref: str) -> bool:
        """Whether ``ref`` is a ``docker://`` reference on the cache's registry."""
        parsed = coerce(ref)
        return isinstance(parsed, RegistryRef) and parsed.name.registry == self.name.registry

    # -- the connection --------------------------------------------------------------------------

    def _repository(self) -> Repository | None:
        with self._lock:
            if self._down:
                return None
            if self._repo is None:
                try:
                    repo = Repository(self.name, push=self.mode == "readwrite", **self._options)
                    if self.mode == "readwrite":
                        # once, before any entry needs it: a registry may not take two
                        # uploads of one blob at a time
                        repo.put_blob(EMPTY_DIGEST, len(EMPTY), lambda: io.BytesIO(EMPTY))
                    self._repo = repo
                except (WheeldockError, httpx.HTTPError) as exc:
                    self._off(exc)
                    return None
            return self._repo

    def _off(self, exc: Exception) -> None:
        """The registry fails as a whole: warn once, and ask it nothing more (lock held)."""
        if not self._down:
            reason = exc.message if isinstance(exc, WheeldockError) else str(exc)
            log.warning(
                "the registry cache %s cannot be used (%s); building without it",
                self,
                reason.splitlines()[0],
            )
        self._down = True

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self._off(exc)

    # -- look-ups --------------------------------------------------------------------------------

    def lookup(self, key: str) -> Entry | None:
        """``key``'s entry when the registry has it (one ``GET``); None otherwise.

        The blob is not asked for: the entry references it, so a registry that took the entry
        had the blob and keeps it while the entry exists. One deleted anyway is found when the
        bytes are needed, and the layer is then built here."""
        repo = self._repository()
        if repo is None:
            self.stats.add(misses=1)
            return None
        try:
            entry = self._read(repo, key)
        except InvalidCacheEntry as exc:
            log.warning("%s", exc.what)
            entry = None
        except (WheeldockError, httpx.HTTPError) as exc:
            self._failed(exc)
            entry = None
        self.stats.add(hits=entry is not None, misses=entry is None)
        return entry

    def _read(self, repo: Repository, key: str) -> Entry | None:
        raw = repo.manifest(entry_tag(key))
        if raw is None:
            return None
        return parse_entry(key, raw)

    def lookup_many(self, keys: list[str]) -> dict[str, Entry]:
        """:meth:`lookup` of each key, several at once; the hits, by key."""
        found = self._lookups.map(self.lookup, keys)
        return {key: entry for key, entry in zip(keys, found, strict=True) if entry is not None}

    def layer(self, entry: Entry, produce: Callable[[], Layer]) -> Layer:
        """The layer ``entry`` describes. Its bytes are reached only when asked for: from the
        store, else downloaded (checked against the digest and the diff_id), else — when the
        download fails or the bytes are wrong — ``produce()``'d here, which must give the same
        digest."""
        assert entry.layer is not None
        described = Layer.from_json(entry.layer, self.store)
        digest, diff_id = described.digest, described.diff_id

        def locate() -> Path:
            path = self.store.verified(digest, described.size)
            if path is not None:
                return path
            try:
                return self._download(digest, diff_id, described.media_type)
            except (WheeldockError, httpx.HTTPError) as exc:
                reason = exc.message if isinstance(exc, WheeldockError) else str(exc)
                log.warning(
                    "layer %s from the registry cache cannot be used (%s); building it here",
                    digest.short,
                    reason.splitlines()[0],
                )
            made = produce()
            if made.digest != digest:
                raise DigestMismatch(
                    f"the layer built here is not the one the registry cache {self} "
                    "recorded for its key",
                    expected=str(digest),
                    actual=str(made.digest),
                    fix=f"delete the tag {entry_tag(entry.key)} from {self}, or build "
                    "without --cache",
                )
            return made.blob_path()

        return Layer(
            digest,
            diff_id,
            described.size,
            described.media_type,
            locate,
            described.annotations,
            uncompressed_size=described.uncompressed_size,
        )

    def _download(self, digest: Digest, diff_id: Digest, media_type: str) -> Path:
        """The blob downloaded into the store, its digest (by the store) and diff_id checked;
        a blob whose diff_id is wrong is removed."""
        repo = self._repository()
        if repo is None:
            raise InvalidCacheEntry(f"the registry cache {self} is off")
        path = repo.blob_locator(self.store, digest)()
        hasher = hashlib.sha256()
        with open_uncompressed(path.open("rb"), compression_of(media_type)) as fh:
            while chunk := fh.read(CHUNK):
                hasher.update(chunk)
        actual = Digest.from_hasher(hasher)
        if actual != diff_id:
            self.store.drop(digest)
            raise DiffIdMismatch(
                f"blob {digest.short} does not unpack to the diff_id its entry gives",
                expected=str(diff_id),
                actual=str(actual),
            )
        return path

    # -- saves -----------------------------------------------------------------------------------

    def save(self, key: str, layer: Layer) -> None:
        """Record ``layer`` under ``key`` (blob, then entry) unless the registry has the entry;
        on a worker thread. Nothing in ``read`` mode."""
        self._submit(key, lambda repo: self._save_layer(repo, key, layer))

    def save_record(self, key: str, value: Mapping[str, Any]) -> None:
        """Record a JSON ``value`` under ``key``, as :meth:`save` does a layer."""
        data = dict(value)
        self._submit(key, lambda repo: self._put_entry(repo, entry_manifest(key, value=data)))

    def _submit(self, key: str, work: Callable[[Repository], None]) -> None:
        if self.mode != "readwrite":
            return
        with self._lock:
            if key in self._saving:
                return
            self._saving.add(key)

        def run() -> None:
            repo = self._repository()
            if repo is None:
                return
            try:
                if not repo.has_manifest(entry_tag(key)):
                    work(repo)
                    self.stats.add(saved=1)
            except (WheeldockError, httpx.HTTPError) as exc:
                self._failed(exc)

        with self._lock:
            self._saves.append(self._uploads.submit(run))

    def _save_layer(self, repo: Repository, key: str, layer: Layer) -> None:
        if repo.put_blob(layer.digest, layer.size, layer.compressed):
            self.stats.add(bytes_uploaded=layer.size)
        self._put_entry(repo, entry_manifest(key, layer=layer))

    def _put_entry(self, repo: Repository, manifest: bytes) -> None:
        tag = entry_tag(json.loads(manifest)["annotations"][ANNOTATION_KEY])
        repo.put_manifest(manifest, MEDIA_TYPE_MANIFEST, tag)

    def flush(self) -> None:
        """Wait for the saves so far (a failed one was reported, and turned the cache off)."""
        with self._lock:
            saves, self._saves = self._saves, []
        for job in saves:
            job.result()

    def close(self) -> None:
        """:meth:`flush`, then close the connection."""
        self.flush()
        self._lookups.shutdown(wait=True)
        self._uploads.shutdown(wait=True)
        s = self.stats
        if s.hits or s.misses or s.saved:
            log.info(
                "registry cache %s: %d hit(s), %d miss(es), %d entr(ies) saved, %d bytes uploaded",
                self, s.hits, s.misses, s.saved, s.bytes_uploaded,
            )  # fmt: skip
        with self._lock:
            if self._repo is not None:
                self._repo.close()
                self._repo = None

    def __enter__(self) -> RegistryCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "ARTIFACT_TYPE",
    "CACHE_MODES",
    "CacheMode",
    "Entry",
    "RegistryCache",
    "entry_manifest",
    "entry_tag",
    "parse_entry",
]
