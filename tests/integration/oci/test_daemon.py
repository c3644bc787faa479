from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from wheeldock.edges import engine
from wheeldock.oci import daemon
from wheeldock.oci.image import Image

A, B, C = ("sha256:" + x * 64 for x in "abc")


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
