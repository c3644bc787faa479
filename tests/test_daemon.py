from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from wheeldock import daemon, engine
from wheeldock.errors import EngineUnavailable
from wheeldock.image import Image

A, B, C = ("sha256:" + x * 64 for x in "abc")


@pytest.fixture
def inventory(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """An empty inventory of what the engine has, and a fake engine recording each question:
    it answers, and its images hold layers A then B."""
    monkeypatch.setattr(daemon, "_engine_chains", set())
    monkeypatch.setattr(daemon, "_inspected", set())
    monkeypatch.setattr(daemon, "_prefetched", None)
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
    daemon.prefetch(["app:1", "wheeldock/base:slim"])
    daemon._ready()
    assert daemon.present_layers(_layers(A, B, C), "app:1", ["wheeldock/base:slim"]) == {A, B}
    # a later build in the same process (build --watch) knows it from its own loads
    assert daemon.present_layers(_layers(A, B, C), "app:1", ["wheeldock/base:slim"]) == {A, B}
    assert inventory == ["require", ("app:1", "wheeldock/base:slim")]


def test_without_a_prefetch_the_load_asks_the_engine_itself(inventory: list[Any]) -> None:
    daemon._ready()
    assert daemon.present_layers(_layers(A, C), "app:1") == {A}
    assert inventory == ["require", ("app:1",)]


def test_an_engine_that_does_not_answer_fails_the_load_not_the_prefetch(
    inventory: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> None:
        raise EngineUnavailable("no Docker engine answers", fix="start one")

    monkeypatch.setattr(engine, "require", down)
    daemon.prefetch(["app:1"])  # returns at once; the answer waits for the load
    with pytest.raises(EngineUnavailable, match="no Docker engine answers"):
        daemon._ready()


@pytest.fixture
def image_name() -> Iterator[str]:
    """A unique name; the test's image is removed afterwards (only the one we created)."""
    name = f"wheeldock-test-oci/daemon:{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run(["docker", "rmi", "--force", name], capture_output=True, check=False)


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
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "host", image_name],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello from wheeldock\ngreeting=hi\n"


@pytest.mark.integration
@pytest.mark.usefixtures("cache_in_tmp")
def test_healthcheck_and_workdir_reach_the_engine(runnable_image: Image, image_name: str) -> None:
    from wheeldock import mutate
    from wheeldock.image import Healthcheck

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
