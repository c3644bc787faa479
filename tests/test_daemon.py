from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from wheeldock import daemon, engine
from wheeldock.image import Image

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cache_in_tmp")]


@pytest.fixture
def image_name() -> Iterator[str]:
    """A unique name; the test's image is removed afterwards (only the one we created)."""
    name = f"wheeldock-test-oci/daemon:{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run(["docker", "rmi", "--force", name], capture_output=True, check=False)


@pytest.mark.parametrize("compressed", [False, True], ids=["plain-layers", "gzip-layers"])
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
