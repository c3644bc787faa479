"""Compose's port model: where the host reaches a port a service's container listens on.

A container port is reached from the host only through what compose publishes: a ``ports:``
entry (short syntax ``[HOST_IP:][PUBLISHED[-END]:]TARGET[-END][/PROTOCOL]``, or the long syntax
``target:``/``published:``/``host_ip:``/``protocol:``), or ``network_mode: host``, where the
container shares the host's ports. ``expose:`` and unpublished ports are reachable only from
other containers: the host judges such a service by Docker's health status instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wheeldock.errors import InvalidConfig

LOOPBACK = "127.0.0.1"
#: Host addresses that mean "every interface": probed on the loopback address.
_ANY = ("", "0.0.0.0", "::", "[::]")
_SHORT = re.compile(
    r"^(?:(?P<ip>\[[^\]]*\]|[^:\[\]]*):)??"
    r"(?:(?P<published>\d*(?:-\d+)?):)?"
    r"(?P<target>\d+(?:-\d+)?)(?:/(?P<protocol>\w+))?$"
)


@dataclass(frozen=True)
class Binding:
    """One container port published on the host (``published`` None: a port the engine picks)."""

    target: int
    published: int | None
    host_ip: str = ""
    protocol: str = "tcp"


@dataclass(frozen=True)
class Reach:
    """How the host reaches a container port: ``address`` (host, port), or ``None`` with why.

    ``pick`` is set when the port is published on a host port the engine chooses at start
    (``ports: ["8000"]``): the caller asks the engine (``docker compose port``) for it."""

    address: tuple[str, int] | None
    why: str
    pick: Binding | None = None


def _range(text: str, entry: object) -> list[int]:
    low, _, high = text.partition("-")
    first, last = int(low), int(high or low)
    if not 0 < first <= last < 65536:
        raise InvalidConfig(f"port range out of bounds (ports:): {entry!r}")
    return list(range(first, last + 1))


def parse_short(entry: str | int) -> tuple[Binding, ...]:
    """The bindings of one short-syntax ``ports:`` entry; ranges give one binding per port."""
    text = str(entry).strip()
    match = _SHORT.match(text)
    if match is None:
        raise InvalidConfig(f"not a port mapping (ports:): {entry!r}")
    targets = _range(match["target"], entry)
    published = _range(match["published"], entry) if match["published"] else []
    if published and len(published) != len(targets):
        if len(targets) != 1:
            raise InvalidConfig(f"published and target ranges differ in size (ports:): {entry!r}")
        # ``8000-8010:80``: the engine picks one host port of the range; the first is tried first
        published = published[:1]
    ip = (match["ip"] or "").strip("[]")
    protocol = match["protocol"] or "tcp"
    return tuple(
        Binding(t, published[i] if published else None, ip, protocol) for i, t in enumerate(targets)
    )


def parse_long(entry: Mapping[str, Any]) -> tuple[Binding, ...]:
    """The bindings of one long-syntax ``ports:`` entry (as ``docker compose config`` writes
    every entry: ``published`` a string, perhaps a range)."""
    target = entry.get("target")
    if target is None:
        raise InvalidConfig(f"a long-syntax port without target: (ports:): {dict(entry)!r}")
    published = str(entry.get("published") or "")
    ip = str(entry.get("host_ip") or "").strip("[]")
    protocol = str(entry.get("protocol") or "tcp")
    host_ports = _range(published, entry) if published else []
    return (Binding(int(target), host_ports[0] if host_ports else None, ip, protocol),)


def bindings(entries: Sequence[Any] | None) -> tuple[Binding, ...]:
    """Every binding of a service's ``ports:``, in order."""
    found: list[Binding] = []
    for entry in entries or ():
        found += parse_long(entry) if isinstance(entry, Mapping) else parse_short(entry)
    return tuple(found)


def reach(service: Mapping[str, Any], port: int) -> Reach:
    """Where the host reaches container ``port`` of ``service`` (its compose settings)."""
    if service.get("network_mode") == "host":
        return Reach((LOOPBACK, port), "network_mode: host")
    for binding in bindings(service.get("ports")):
        if binding.target != port or binding.protocol != "tcp":
            continue
        host = LOOPBACK if binding.host_ip in _ANY else binding.host_ip
        if binding.published is None:
            return Reach(None, f"ports: {port} on a host port the engine picks", pick=binding)
        return Reach((host, binding.published), f"ports: {binding.published}:{port}")
    exposed = {str(e).split("/")[0] for e in service.get("expose") or ()}
    where = "expose: only" if str(port) in exposed else "not in ports:"
    return Reach(None, f"port {port} is {where}: not reachable from the host")
