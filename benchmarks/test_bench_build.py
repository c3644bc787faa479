"""Incremental native builds of cb-totem (both services) into an OCI layout, caches warm.

A session fixture builds both states of the one-pin bump once, untimed (that fetches the base
rootfs, the .debs, the wheels, installs their trees). Then:

* code change — each round gives ``main.py`` new content: the app layer is rebuilt, the rest
  comes from the cache;
* one-pin bump — each round switches ``idna`` between two versions (requirements.txt and the
  locks). The wheels and installed trees of both versions stay in the cache (no network in the
  timing), but the cache index entries the switch invalidates are hidden from the builder,
  so every round redoes what a first bump does: re-scan the wheels for native libraries,
  rebuild the shared dependency layer and the app layer (requirements.txt is in the app
  folder);
* no change — everything cached: the floor of any rebuild (lock check, cache look-ups,
  config, publish).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import CbtStates

from wheeldock.build import builder
from wheeldock.build.builder import BuildOptions, ServiceBuild
from wheeldock.edges import process
from wheeldock.oci.blobs import BlobStore

Benchmark = Any
ROUNDS = 7


class _IndexView(BlobStore):
    """The blob store, recording the index keys a build asks for. Keys in ``hidden`` read as
    missing until the build records them again (so the second service of a round reuses what
    the first rebuilt, as after a real bump)."""

    def __init__(self, root: Path | None = None) -> None:
        super().__init__(root)
        self.asked: set[str] = set()
        self.hidden: set[str] = set()

    def get_cached(self, key: str) -> dict[str, Any] | None:
        self.asked.add(key)
        return None if key in self.hidden else super().get_cached(key)

    def set_cached(self, key: str, value: dict[str, Any]) -> None:
        self.hidden.discard(key)
        super().set_cached(key, value)


@dataclass(frozen=True)
class Warm:
    states: CbtStates
    layout: Path
    store: _IndexView
    #: per state: the index keys only that state's build asks for
    own_keys: tuple[frozenset[str], frozenset[str]]
    first: tuple[list[ServiceBuild], list[ServiceBuild]]


def _build(states: CbtStates, layout: Path, store: BlobStore | None) -> list[ServiceBuild]:
    proj = states.project
    return builder.build(proj, proj.services, [f"oci:{layout}"], BuildOptions(), store=store)


@pytest.fixture(scope="session")
def warm(cbt_states: CbtStates, tmp_path_factory: pytest.TempPathFactory) -> Warm:
    layout = tmp_path_factory.mktemp("bench-oci") / "oci"
    store = _IndexView()
    asked: list[frozenset[str]] = []
    first: list[list[ServiceBuild]] = []
    for state in (1, 0):  # end in cb-totem's own state
        cbt_states.apply(state)
        store.asked.clear()
        first.append(_build(cbt_states, layout, store))
        asked.append(frozenset(store.asked))
    asked_1, asked_0 = asked
    store.asked.clear()
    return Warm(
        cbt_states, layout, store, (asked_0 - asked_1, asked_1 - asked_0), (first[1], first[0])
    )


def _built_kinds(results: Iterable[ServiceBuild]) -> list[str]:
    return sorted(f"{r.service}:{lay.kind}" for r in results for lay in r.layers if not lay.cached)


def _describe(benchmark: Benchmark, results: list[ServiceBuild]) -> None:
    benchmark.extra_info.update(
        {
            "services": len(results),
            "layers": sum(len(r.layers) for r in results),
            "rebuilt": _built_kinds(results),
            "rebuilt_bytes": sum(lay.size for r in results for lay in r.layers if not lay.cached),
        }
    )


def _edit(root: Path, original: str) -> None:
    """New content for main.py, never seen before (the cache outlives the session)."""
    (root / "vcc-totem" / "main.py").write_text(f"{original}\n# benchmark edit {uuid.uuid4()}\n")


@pytest.mark.benchmark(group="build: cb-totem incremental")
def test_build_after_code_change(benchmark: Benchmark, warm: Warm) -> None:
    warm.states.apply(0)
    warm.store.hidden = set()
    root = warm.states.project.root
    original = (root / "vcc-totem" / "main.py").read_text()

    def setup() -> None:
        _edit(root, original)

    try:
        results = benchmark.pedantic(
            lambda: _build(warm.states, warm.layout, warm.store),
            setup=setup,
            rounds=ROUNDS,
            warmup_rounds=1,
        )
    finally:
        (root / "vcc-totem" / "main.py").write_text(original)
    _describe(benchmark, results)
    # The two services share vcc-totem: one app layer, built once, reused by the second.
    assert _built_kinds(results) == ["calidda-api:app"]


@pytest.mark.benchmark(group="build: cb-totem incremental")
def test_build_after_one_pin_bump(benchmark: Benchmark, warm: Warm) -> None:
    state = iter([1, 0] * ROUNDS * 2)

    def setup() -> None:
        now = next(state)
        warm.states.apply(now)
        warm.store.hidden = set(warm.own_keys[now])

    try:
        results = benchmark.pedantic(
            lambda: _build(warm.states, warm.layout, warm.store),
            setup=setup,
            rounds=ROUNDS,
            warmup_rounds=1,
        )
    finally:
        warm.states.apply(0)
        warm.store.hidden = set()
    _describe(benchmark, results)
    rebuilt = _built_kinds(results)
    assert rebuilt.count("calidda-api:deps") == 1, rebuilt
    assert "calidda-api:base" not in rebuilt
    assert not any(kind.startswith("srv-img:") for kind in rebuilt), rebuilt


@pytest.mark.benchmark(group="build: cb-totem incremental")
def test_build_without_change(benchmark: Benchmark, warm: Warm) -> None:
    warm.states.apply(0)
    warm.store.hidden = set()
    results = benchmark.pedantic(
        lambda: _build(warm.states, warm.layout, warm.store), rounds=ROUNDS, warmup_rounds=1
    )
    _describe(benchmark, results)
    assert _built_kinds(results) == []
    assert [r.digest for r in results] == [r.digest for r in warm.first[0]]


@pytest.mark.benchmark(group="build: cb-totem incremental")
def test_cli_build_after_code_change(benchmark: Benchmark, warm: Warm) -> None:
    """``wheeldock build`` as a user runs it: a new process (imports included)."""
    warm.states.apply(0)
    root = warm.states.project.root
    original = (root / "vcc-totem" / "main.py").read_text()
    argv = [
        sys.executable,
        "-m",
        "wheeldock.cli",
        "-C",
        str(root),
        "build",
        "--json",
        "-o",
        f"oci:{warm.layout}",
    ]

    def setup() -> None:
        _edit(root, original)

    try:
        result = benchmark.pedantic(
            lambda: process.run(argv, timeout=600), setup=setup, rounds=ROUNDS, warmup_rounds=1
        )
    finally:
        (root / "vcc-totem" / "main.py").write_text(original)
    services = json.loads(result.stdout)["services"]
    rebuilt = sorted(
        f"{s['service']}:{x['kind']}" for s in services for x in s["layers"] if not x["cached"]
    )
    assert rebuilt == ["calidda-api:app"], [
        (s["service"], x["title"], x["cached"]) for s in services for x in s["layers"]
    ]


@pytest.mark.benchmark(group="build: cb-totem incremental")
def test_cli_process_start_and_imports(benchmark: Benchmark) -> None:
    """The fixed part of the CLI's figure: a new interpreter importing the CLI and the builder
    (with the OCI stack it pulls in)."""
    argv = [sys.executable, "-c", "import wheeldock.cli, wheeldock.build.builder"]
    result = benchmark.pedantic(
        lambda: process.run(argv, timeout=120), rounds=ROUNDS, warmup_rounds=1
    )
    assert result.returncode == 0
