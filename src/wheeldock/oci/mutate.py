"""Make new images from old ones. Nothing here edits an image in place.

Every function returns a new :class:`~wheeldock.oci.image.Image` whose raw config and manifest are
dropped, so its bytes and digest are computed afresh from the parsed fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from wheeldock.errors import InvalidConfig
from wheeldock.oci.image import History, Image, ImageConfig, Platform, rfc3339
from wheeldock.oci.layer import Layer

_CONFIG_FIELDS = {f.name for f in fields(ImageConfig)}


def _fresh(image: Image, **changes: Any) -> Image:
    return replace(image, raw_config=None, raw_manifest=None, **changes)


def append_layers(
    image: Image,
    layers: Iterable[Layer],
    *,
    history: Sequence[History] | None = None,
    created_by: str = "wheeldock",
) -> Image:
    """``image`` with ``layers`` on top (in the given order, base-first).

    ``history`` gives one entry per layer; without it each layer gets ``created_by`` (and the
    layer's ``org.opencontainers.image.title`` annotation as comment, when it has one).
    """
    new = tuple(layers)
    if history is None:
        history = [
            History(
                created_by=created_by,
                comment=lay.annotations.get("org.opencontainers.image.title", ""),
                created=image.created,
            )
            for lay in new
        ]
    elif len(history) != len(new):
        raise InvalidConfig(
            f"append_layers got {len(new)} layers but {len(history)} history entries",
            fix="pass one History per layer, or none",
        )
    return _fresh(image, layers=image.layers + new, history=image.history + tuple(history))


def with_config(image: Image, **changes: Any) -> Image:
    """``image`` with fields of its :class:`ImageConfig` replaced (``cmd=…``, ``env=…``, …).

    ``env`` may be a mapping: its keys replace the same keys of the old env in place and new
    keys are appended, so the order stays stable. ``labels`` is merged the same way; pass
    ``labels=None`` to clear them.
    """
    unknown = set(changes) - _CONFIG_FIELDS
    if unknown:
        raise InvalidConfig(
            f"unknown image config field(s): {', '.join(sorted(unknown))}",
            fix=f"use one of: {', '.join(sorted(_CONFIG_FIELDS))}",
        )
    if isinstance(changes.get("env"), Mapping):
        changes["env"] = merge_env(image.config.env, changes["env"])
    if "labels" in changes:
        labels = changes["labels"]
        changes["labels"] = {} if labels is None else {**image.config.labels, **labels}
    for key in ("cmd", "entrypoint", "exposed_ports", "volumes"):
        if changes.get(key) is not None:
            changes[key] = tuple(changes[key])
    return _fresh(image, config=replace(image.config, **changes))


def merge_env(env: Sequence[str], updates: Mapping[str, str]) -> tuple[str, ...]:
    out: list[str] = []
    seen: set[str] = set()
    for item in env:
        key = item.partition("=")[0]
        if key in updates:
            out.append(f"{key}={updates[key]}")
            seen.add(key)
        else:
            out.append(item)
    out += [f"{k}={v}" for k, v in updates.items() if k not in seen]
    return tuple(out)


def with_created(image: Image, epoch: int | None) -> Image:
    """Set the config's ``created`` from ``SOURCE_DATE_EPOCH`` (None removes it)."""
    return _fresh(image, created=rfc3339(epoch) if epoch is not None else None)


def with_annotations(image: Image, annotations: Mapping[str, str]) -> Image:
    """Merge ``annotations`` into the manifest's."""
    return _fresh(image, annotations={**image.annotations, **annotations})


def with_platform(image: Image, platform: Platform) -> Image:
    return _fresh(image, platform=platform)


def with_history(image: Image, entry: History) -> Image:
    """Add a config-only step (``empty_layer``) to the history."""
    return _fresh(image, history=(*image.history, replace(entry, empty_layer=True)))
