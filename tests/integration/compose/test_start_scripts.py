"""Start commands as public compose files write them: the image keeps the user's shell text.

The corpus (tests/data/start_scripts/compose.yaml) has one service per shape; each service's
``x-kept`` is what the image must keep running: the original text less its install steps and
the separators that joined them, with ``exec`` before the program when it is the last step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from wheeldock.compose import survey
from wheeldock.debian import bases
from wheeldock.edges import engine

CORPUS = Path(__file__).parents[2] / "data" / "start_scripts" / "compose.yaml"
SERVICES: dict[str, Any] = YAML(typ="safe").load(CORPUS)["services"]


def _start(name: str) -> survey._Start:
    command = survey._interpolate_command(SERVICES[name]["command"], {})
    start = survey._parse_start(command)
    assert start is not None, name
    return start


@pytest.mark.integration
def test_the_image_shells_read_every_kept_script_and_run_one_as_the_image_user(
    base_images: dict[str, bases.BaseImage], tmp_path: Path
) -> None:
    """The slim base's own dash and bash, as uid 10001: every kept script parses, and the
    shape that re-quoting broke (``echo $(which python)``) runs."""
    tmp_path.chmod(0o755)
    lines = []
    for i, name in enumerate(SERVICES):
        start = _start(name)
        (tmp_path / f"{i}.sh").write_text(start.script)
        (tmp_path / f"{i}.sh").chmod(0o644)
        lines.append(f"{start.interpreter} -n /kept/{i}.sh || echo 'not read: {name}'")
    ran = _start("command-substitution").script.replace("app.py", "-c 'print(42)'")
    result = engine.docker(
        "run",
        "--rm",
        "--user",
        "10001:10001",
        "--volume",
        f"{tmp_path}:/kept:ro",
        base_images["slim"].tags[0],
        "/bin/sh",
        "-c",
        "\n".join([*lines, ran]),
    )
    *read, which, printed = result.stdout.splitlines()
    assert read == [] and which.endswith("/python") and printed == "42", result.stdout
