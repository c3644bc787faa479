from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from wheeldock.edges import engine
from wheeldock.errors import EngineUnavailable
from wheeldock.oci import daemon

A, B, C = ("sha256:" + x * 64 for x in "abc")


@pytest.fixture
def inventory(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """A fake engine recording each question: it answers, and its images hold layers A then
    B (a fresh :class:`daemon.EngineLayers` knows nothing of them yet)."""
    asked: list[Any] = []
    monkeypatch.setattr(engine, "require", lambda: asked.append("require"))

    def chains(names: list[str]) -> set[str]:
        asked.append(tuple(names))
        return set(daemon.chain_ids([A, B]))

    monkeypatch.setattr(daemon, "engine_chains", chains)
    return asked


def _layers(*diff_ids: str) -> Any:
    return SimpleNamespace(layers=[SimpleNamespace(diff_id=d) for d in diff_ids])


def test_a_prefetched_inventory_answers_the_load_without_asking_again(inventory: list[Any]) -> None:
    known = daemon.EngineLayers()
    known.prefetch(["app:1", "wheeldock/base:slim"])
    known.ready()
    assert known.present_layers(_layers(A, B, C), "app:1", ["wheeldock/base:slim"]) == {A, B}
    # a later build in the same session (build --watch) knows it from its own loads
    assert known.present_layers(_layers(A, B, C), "app:1", ["wheeldock/base:slim"]) == {A, B}
    assert inventory == ["require", ("app:1", "wheeldock/base:slim")]


def test_without_a_prefetch_the_load_asks_the_engine_itself(inventory: list[Any]) -> None:
    known = daemon.EngineLayers()
    known.ready()
    assert known.present_layers(_layers(A, C), "app:1") == {A}
    assert inventory == ["require", ("app:1",)]


def test_an_engine_that_does_not_answer_fails_the_load_not_the_prefetch(
    inventory: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> None:
        raise EngineUnavailable("no Docker engine answers", fix="start one")

    monkeypatch.setattr(engine, "require", down)
    known = daemon.EngineLayers()
    known.prefetch(["app:1"])  # returns at once; the answer waits for the load
    with pytest.raises(EngineUnavailable, match="no Docker engine answers"):
        known.ready()


def _until(done: Any, timeout: float = 5) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _prefix(name: str, *diff_ids: str, size: int = 10) -> Any:
    return SimpleNamespace(
        layers=[SimpleNamespace(diff_id=d, size=size) for d in diff_ids], config_digest=name
    )


def test_offers_made_while_a_load_runs_are_merged_into_the_latest(
    inventory: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    sent: list[tuple[str, frozenset[str]]] = []
    first_started, release = threading.Event(), threading.Event()

    def load_stream(
        send: Any, omit: frozenset[str], timeout: float | None, known: Any
    ) -> list[str]:
        sent.append((current[0], omit))
        first_started.set()
        release.wait(5)
        return []

    current = [""]
    monkeypatch.setattr(daemon, "_load_stream", load_stream)
    monkeypatch.setattr(daemon, "stream", lambda *a, **k: None)
    preloader = daemon.Preloader(None, "app:1", known=daemon.EngineLayers(), min_bytes=1)

    def offer(image: Any) -> None:
        current[0] = image.config_digest
        preloader.offer(image)

    offer(_prefix("p1", A, B, C))
    assert first_started.wait(5)
    current[0] = "p1"
    D = "sha256:" + "d" * 64
    for name, layers in (("p2", (A, B, C, D)), ("p3", (A, B, C, D, D))):
        preloader.offer(_prefix(name, *layers))
    release.set()
    _until(lambda: len(preloader.loaded) == 2)
    preloader.finish()
    # p1 without the engine's A and B; then only the latest offer, without p1's C either
    assert [s[1] for s in sent] == [frozenset({A, B}), frozenset({A, B, C})]
    assert preloader.loaded == ["p1", "p3"]


def test_a_prefix_that_brings_too_few_new_bytes_is_not_loaded(
    inventory: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon, "_load_stream", lambda *a: pytest.fail("loaded"))
    preloader = daemon.Preloader(None, "app:1", known=daemon.EngineLayers(), min_bytes=100)
    preloader.offer(_prefix("p1", A, B, C, size=99))  # A and B are in the engine: 99 new bytes
    preloader.finish()
    assert preloader.loaded == []
