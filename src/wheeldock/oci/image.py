"""OCI images and indexes: parsed config and manifest, and their canonical bytes side by side.

An :class:`Image` holds its layers base-first, its :class:`ImageConfig` and platform, and the
rest of the config (history, created). ``config_bytes()`` and ``manifest_bytes()`` are canonical
JSON (sorted keys, no spaces) so the same image always has the same digest. An image read from
a layout, archive or registry keeps the raw bytes it was read with (``raw_config``,
``raw_manifest``) so its digest stays what the source says; :mod:`wheeldock.oci.mutate` drops them
when it makes a new image. Images are never edited in place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wheeldock.errors import NotFound
from wheeldock.oci.digest import Digest
from wheeldock.oci.layer import Layer
from wheeldock.platforms import Platform as Platform  # where it was first defined

MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MEDIA_TYPE_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MEDIA_TYPE_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MEDIA_TYPE_CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST_MEDIA_TYPES = (MEDIA_TYPE_MANIFEST, DOCKER_MEDIA_TYPE_MANIFEST)
INDEX_MEDIA_TYPES = (MEDIA_TYPE_INDEX, DOCKER_MEDIA_TYPE_LIST)
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CREATED = "org.opencontainers.image.created"

_NS = 1_000_000_000


def canonical_json(obj: Any) -> bytes:
    """JSON with sorted keys and no insignificant whitespace: one byte string per value."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(epoch: int) -> str:
    """``SOURCE_DATE_EPOCH`` as the config's ``created`` (UTC, seconds, ``Z``)."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- config -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Healthcheck:
    """Docker's health check, kept in the config's ``Healthcheck`` (Docker honours it in OCI
    images too). ``test`` is e.g. ``("CMD", "python3", "-c", "…")`` or ``("CMD-SHELL", "…")``;
    times are in seconds (the JSON holds nanoseconds)."""

    test: tuple[str, ...]
    interval: float | None = None
    timeout: float | None = None
    start_period: float | None = None
    start_interval: float | None = None
    retries: int | None = None

    _KEYS = (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
        ("start_interval", "StartInterval"),
    )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"Test": list(self.test)}
        for attr, key in self._KEYS:
            value = getattr(self, attr)
            if value is not None:
                data[key] = round(value * _NS)
        if self.retries is not None:
            data["Retries"] = self.retries
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Healthcheck:
        kwargs: dict[str, Any] = {}
        for attr, key in cls._KEYS:
            if data.get(key):
                kwargs[attr] = data[key] / _NS
        if data.get("Retries"):
            kwargs["retries"] = int(data["Retries"])
        return cls(test=tuple(data.get("Test") or ()), **kwargs)


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an image config (the JSON's ``config`` object).

    ``env`` is ordered ``KEY=value`` strings, as in the spec. Keys this class does not model
    are kept in ``extra`` so a base image's config survives a round trip.
    """

    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str | None = None
    user: str | None = None
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    healthcheck: Healthcheck | None = None
    stop_signal: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def env_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        if self.cmd is not None:
            data["Cmd"] = list(self.cmd)
        if self.entrypoint is not None:
            data["Entrypoint"] = list(self.entrypoint)
        if self.env:
            data["Env"] = list(self.env)
        if self.working_dir:
            data["WorkingDir"] = self.working_dir
        if self.user:
            data["User"] = self.user
        if self.exposed_ports:
            data["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.volumes:
            data["Volumes"] = {v: {} for v in self.volumes}
        if self.labels:
            data["Labels"] = dict(self.labels)
        if self.healthcheck is not None:
            data["Healthcheck"] = self.healthcheck.to_json()
        if self.stop_signal:
            data["StopSignal"] = self.stop_signal
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ImageConfig:
        data = dict(data or {})
        known = {
            "Cmd",
            "Entrypoint",
            "Env",
            "WorkingDir",
            "User",
            "ExposedPorts",
            "Volumes",
            "Labels",
            "Healthcheck",
            "StopSignal",
        }
        health = data.get("Healthcheck")
        return cls(
            cmd=tuple(data["Cmd"]) if data.get("Cmd") is not None else None,
            entrypoint=tuple(data["Entrypoint"]) if data.get("Entrypoint") is not None else None,
            env=tuple(data.get("Env") or ()),
            working_dir=data.get("WorkingDir") or None,
            user=data.get("User") or None,
            exposed_ports=tuple(sorted(data.get("ExposedPorts") or {})),
            volumes=tuple(sorted(data.get("Volumes") or {})),
            labels=dict(data.get("Labels") or {}),
            healthcheck=Healthcheck.from_json(health) if health else None,
            stop_signal=data.get("StopSignal") or None,
            extra={k: v for k, v in data.items() if k not in known and v is not None},
        )


@dataclass(frozen=True)
class History:
    """One entry of the config's ``history``; ``empty_layer`` marks a config-only step."""

    created_by: str = ""
    comment: str = ""
    created: str | None = None
    empty_layer: bool = False
    author: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.created:
            data["created"] = self.created
        if self.created_by:
            data["created_by"] = self.created_by
        if self.comment:
            data["comment"] = self.comment
        if self.author:
            data["author"] = self.author
        if self.empty_layer:
            data["empty_layer"] = True
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> History:
        return cls(
            created_by=str(data.get("created_by", "")),
            comment=str(data.get("comment", "")),
            created=data.get("created"),
            empty_layer=bool(data.get("empty_layer", False)),
            author=str(data.get("author", "")),
        )


# -- image --------------------------------------------------------------------------------------


class _Manifest:
    """What an image manifest and an index share: bytes (raw when read, canonical JSON when
    built), media type and digest."""

    raw_manifest: bytes | None
    annotations: Mapping[str, str]
    default_media_type: str

    def _entries(self) -> dict[str, Any]:
        """What the manifest lists: ``config`` and ``layers``, or ``manifests``."""
        raise NotImplementedError

    def _descriptor_entries(self) -> dict[str, Any]:
        """What a descriptor of this manifest says besides media type, digest and size."""
        return {}

    def manifest_json(self) -> dict[str, Any]:
        if self.raw_manifest is not None:
            parsed: dict[str, Any] = json.loads(self.raw_manifest)
            return parsed
        data: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.default_media_type,
            **self._entries(),
        }
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return data

    def descriptor(self, *, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
        """This manifest as a descriptor (an image's with its platform, for an index)."""
        data = self.manifest_bytes()
        desc: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(Digest.of_bytes(data)),
            "size": len(data),
            **self._descriptor_entries(),
        }
        if annotations:
            desc["annotations"] = dict(annotations)
        return desc

    def manifest_bytes(self) -> bytes:
        if self.raw_manifest is not None:
            return self.raw_manifest
        return canonical_json(self.manifest_json())

    @property
    def media_type(self) -> str:
        return str(self.manifest_json().get("mediaType", self.default_media_type))

    @property
    def digest(self) -> Digest:
        return Digest.of_bytes(self.manifest_bytes())


@dataclass(frozen=True)
class Image(_Manifest):
    """An OCI image: layers base-first, config, platform; raw bytes kept when read from a source.

    ``annotations`` go on the manifest. ``config_extra`` keeps top-level config keys this class
    does not model (``author``, ``os.version``, …).
    """

    layers: tuple[Layer, ...] = ()
    config: ImageConfig = field(default_factory=ImageConfig)
    platform: Platform = field(default_factory=Platform)
    history: tuple[History, ...] = ()
    created: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    config_extra: Mapping[str, Any] = field(default_factory=dict)
    raw_config: bytes | None = field(default=None, repr=False, compare=False)
    raw_manifest: bytes | None = field(default=None, repr=False, compare=False)

    # config
    def config_json(self) -> dict[str, Any]:
        if self.raw_config is not None:
            parsed: dict[str, Any] = json.loads(self.raw_config)
            return parsed
        data: dict[str, Any] = dict(self.config_extra)
        data.update(self.platform.to_json())
        data["config"] = self.config.to_json()
        data["rootfs"] = {"type": "layers", "diff_ids": [str(lay.diff_id) for lay in self.layers]}
        if self.history:
            data["history"] = [h.to_json() for h in self.history]
        if self.created:
            data["created"] = self.created
        return data

    def config_bytes(self) -> bytes:
        if self.raw_config is not None:
            return self.raw_config
        return canonical_json(self.config_json())

    def config_descriptor(self) -> dict[str, Any]:
        data = self.config_bytes()
        media_type = MEDIA_TYPE_CONFIG
        if self.raw_manifest is not None:
            media_type = json.loads(self.raw_manifest)["config"]["mediaType"]
        return {"mediaType": media_type, "digest": str(Digest.of_bytes(data)), "size": len(data)}

    @property
    def config_digest(self) -> Digest:
        return Digest.of_bytes(self.config_bytes())

    # manifest
    def _entries(self) -> dict[str, Any]:
        return {
            "config": self.config_descriptor(),
            "layers": [lay.descriptor() for lay in self.layers],
        }

    default_media_type = MEDIA_TYPE_MANIFEST

    @property
    def size(self) -> int:
        """Bytes of the manifest, config and compressed layers (what a registry stores)."""
        return (
            len(self.manifest_bytes()) + len(self.config_bytes()) + sum(x.size for x in self.layers)
        )

    def _descriptor_entries(self) -> dict[str, Any]:
        return {"platform": self.platform.to_json()}

    def env(self) -> dict[str, str]:
        return self.config.env_dict()

    @classmethod
    def from_raw(
        cls, raw_manifest: bytes | None, raw_config: bytes, layers: tuple[Layer, ...]
    ) -> Image:
        """An image read from a source: parsed fields plus the raw bytes (digest preserved).

        Without ``raw_manifest`` (a docker-archive has none) the manifest is computed.
        """
        manifest = json.loads(raw_manifest) if raw_manifest is not None else {}
        config = json.loads(raw_config)
        known = {"architecture", "os", "variant", "config", "rootfs", "history", "created"}
        return cls(
            layers=layers,
            config=ImageConfig.from_json(config.get("config")),
            platform=Platform.from_json(config),
            history=tuple(History.from_json(h) for h in config.get("history") or ()),
            created=config.get("created"),
            annotations=dict(manifest.get("annotations") or {}),
            config_extra={k: v for k, v in config.items() if k not in known},
            raw_config=raw_config,
            raw_manifest=raw_manifest,
        )


def empty(platform: Platform | None = None) -> Image:
    """An image with no layers: the starting point for ``FROM scratch`` builds."""
    return Image(platform=platform or Platform())


# -- index --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Index(_Manifest):
    """An OCI image index: one image per platform (the multi-platform form of a tag)."""

    manifests: tuple[Image, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    raw_manifest: bytes | None = field(default=None, repr=False, compare=False)

    def _entries(self) -> dict[str, Any]:
        return {"manifests": [img.descriptor() for img in self.manifests]}

    default_media_type = MEDIA_TYPE_INDEX

    def image(self, platform: Platform) -> Image:
        """The image for ``platform``; :class:`NotFound` lists the platforms there are."""
        for img in self.manifests:
            if img.platform == platform or (
                platform.variant is None
                and (img.platform.os, img.platform.architecture)
                == (platform.os, platform.architecture)
            ):
                return img
        have = ", ".join(str(i.platform) for i in self.manifests) or "none"
        raise NotFound(
            f"the index has no image for {platform}", fix=f"pick one of the platforms: {have}"
        )


def index_of(*images: Image, annotations: Mapping[str, str] | None = None) -> Index:
    """An index over ``images`` (sorted by platform so the digest does not depend on order)."""
    return Index(tuple(sorted(images, key=lambda i: i.platform)), dict(annotations or {}))


def iter_images(target: Image | Index) -> Iterator[Image]:
    if isinstance(target, Index):
        yield from target.manifests
    else:
        yield target
