"""Compose's port model: which host address reaches a container port."""

from __future__ import annotations

from typing import Any

import pytest

from wheeldock.compose import ports
from wheeldock.compose.ports import Binding
from wheeldock.errors import InvalidConfig


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("8000", (Binding(8000, None),)),
        (8000, (Binding(8000, None),)),
        ("8001:8000", (Binding(8000, 8001),)),
        ("127.0.0.1:8001:8000", (Binding(8000, 8001, "127.0.0.1"),)),
        ("127.0.0.1::8000", (Binding(8000, None, "127.0.0.1"),)),
        ("[::1]:8001:8000", (Binding(8000, 8001, "::1"),)),
        ("0.0.0.0:8001:8000/tcp", (Binding(8000, 8001, "0.0.0.0"),)),
        ("5353:53/udp", (Binding(53, 5353, "", "udp"),)),
        ("9090-9091:8080-8081", (Binding(8080, 9090), Binding(8081, 9091))),
        ("8000-8001", (Binding(8000, None), Binding(8001, None))),
        ("8000-8010:80", (Binding(80, 8000),)),
    ],
)
def test_short_syntax_bindings(entry: str | int, expected: tuple[Binding, ...]) -> None:
    assert ports.parse_short(entry) == expected


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"target": 8000, "published": "8001"}, Binding(8000, 8001)),
        ({"target": 8000, "published": 8001, "host_ip": "127.0.0.1"}, Binding(8000, 8001, "127.0.0.1")),
        ({"target": 8000}, Binding(8000, None)),
        ({"target": 8000, "published": "9000-9005", "protocol": "tcp", "mode": "ingress"}, Binding(8000, 9000)),
    ],
)  # fmt: skip
def test_long_syntax_bindings(entry: dict[str, Any], expected: Binding) -> None:
    assert ports.parse_long(entry) == (expected,)


@pytest.mark.parametrize("entry", ["a:b", "8000:", "70000:80", "1-3:4-5/tcp:x", "9-10:1-3"])
def test_malformed_ports_are_refused(entry: str) -> None:
    with pytest.raises(InvalidConfig):
        ports.parse_short(entry)


@pytest.mark.parametrize(
    ("service", "address"),
    [
        ({"ports": ["8001:8000"]}, ("127.0.0.1", 8001)),
        ({"ports": ["8000:8000", "8001:9000"]}, ("127.0.0.1", 8000)),
        ({"ports": ["127.0.0.2:18000:8000"]}, ("127.0.0.2", 18000)),
        ({"ports": ["0.0.0.0:18000:8000"]}, ("127.0.0.1", 18000)),
        ({"ports": [{"target": 8000, "published": "18001", "host_ip": "::"}]}, ("127.0.0.1", 18001)),
        ({"ports": ["18000-18001:7999-8000"]}, ("127.0.0.1", 18001)),
        ({"network_mode": "host", "ports": ["9999:8000"]}, ("127.0.0.1", 8000)),
    ],
)  # fmt: skip
def test_probe_goes_to_the_published_port(
    service: dict[str, Any], address: tuple[str, int]
) -> None:
    assert ports.reach(service, 8000).address == address


def test_a_port_the_engine_picks_is_asked_for() -> None:
    where = ports.reach({"ports": ["8000"]}, 8000)
    assert where.address is None and where.pick == Binding(8000, None)


@pytest.mark.parametrize(
    ("service", "why"),
    [
        ({"expose": ["8000"]}, "expose: only"),
        ({"ports": ["8001:9000"]}, "not in ports:"),
        ({"ports": ["8000:8000/udp"]}, "not in ports:"),
        ({}, "not in ports:"),
    ],
)
def test_a_port_the_host_cannot_reach_says_why(service: dict[str, Any], why: str) -> None:
    where = ports.reach(service, 8000)
    assert where.address is None and where.pick is None
    assert why in where.why
