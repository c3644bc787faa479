from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from wheeldock.edges import engine
from wheeldock.errors import EngineUnavailable
from wheeldock.oci import daemon
from wheeldock.oci.image import Image

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


@pytest.fixture
def image_name() -> Iterator[str]:
    """A unique name; the test's image is removed afterwards (only the one we created)."""
    name = f"wheeldock-test-oci/daemon:{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run(["docker", "rmi", "--force", name], capture_output=True, check=False)


def _assert_runs(image_name: str) -> None:
    """The runnable image, loaded as ``image_name``, runs and prints its greeting."""
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "host", image_name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello from wheeldock\ngreeting=hi\n"


@pytest.mark.parametrize("compressed", [False, True], ids=["plain-layers", "gzip-layers"])
@pytest.mark.integration
@pytest.mark.usefixtures("cache_in_tmp")
def test_loaded_image_runs_in_the_engine(
    runnable_image: Image, image_name: str, compressed: bool
) -> None:
    engine.require()
    result = daemon.load(runnable_image, image_name, compressed=compressed)
    assert result.ref == f"docker-daemon:{image_name}"
    inspected = engine.image_inspect(image_name)
    # Docker's image ID is the config digest, whatever the layers' compression
    assert inspected["Id"] == str(runnable_image.config_digest)
    assert inspected["RootFS"]["Layers"] == [str(x.diff_id) for x in runnable_image.layers]
    _assert_runs(image_name)


@pytest.mark.integration
@pytest.mark.usefixtures("cache_in_tmp")
def test_healthcheck_and_workdir_reach_the_engine(runnable_image: Image, image_name: str) -> None:
    from wheeldock.oci import mutate
    from wheeldock.oci.image import Healthcheck

    img = mutate.with_config(
        runnable_image,
        healthcheck=Healthcheck(test=("CMD", "/bin/true"), interval=3, retries=2),
        exposed_ports=["8000/tcp"],
    )
    daemon.load(img, image_name)
    config = engine.image_inspect(image_name)["Config"]
    assert config["Healthcheck"] == {
        "Test": ["CMD", "/bin/true"],
        "Interval": 3_000_000_000,
        "Retries": 2,
    }
    assert config["WorkingDir"] == "/app" and "8000/tcp" in config["ExposedPorts"]
    assert json.dumps(config["Env"]).count("GREETING=hi") == 1


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


@pytest.mark.integration
@pytest.mark.usefixtures("cache_in_tmp")
def test_an_early_loaded_prefix_is_not_sent_again_and_leaves_no_image_behind(
    runnable_image: Image, image_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    engine.require()
    known = daemon.EngineLayers()  # knows nothing of earlier tests' images (they are gone)
    prefix = dataclasses.replace(runnable_image, layers=runnable_image.layers[:-1], history=())
    prefix_id = str(prefix.config_digest)
    preloader = daemon.Preloader(None, image_name, known=known, min_bytes=0)
    try:
        preloader.offer(prefix)
        _until(lambda: bool(preloader.loaded), timeout=120)
        preloader.finish()
        assert preloader.loaded == [prefix_id]
        assert engine.image_inspect(prefix_id)["RepoTags"] == []
        result = daemon.load(runnable_image, image_name, known=known)
        assert len(runnable_image.layers) >= 2
        assert result.blobs_written == 2 + 1  # config, manifest and the top layer only
    finally:
        preloader.close()
    gone = subprocess.run(["docker", "image", "inspect", prefix_id], capture_output=True)
    assert gone.returncode != 0
    _assert_runs(image_name)
