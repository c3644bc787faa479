"""Start commands as public compose files write them: the image keeps the user's shell text.

The corpus (tests/data/start_scripts/compose.yaml) has one service per shape; each service's
``x-kept`` is what the image must keep running: the original text less its install steps and
the separators that joined them, with ``exec`` before the program when it is the last step.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from wheeldock.compose import survey
from wheeldock.debian import bases
from wheeldock.edges import engine

CORPUS = Path(__file__).parent / "data" / "start_scripts" / "compose.yaml"
SERVICES: dict[str, Any] = YAML(typ="safe").load(CORPUS)["services"]
#: Tools whose ``run`` goes from the kept command (the image has the project's packages).
_RUNNERS = ("uv", "poetry", "pipenv")


def _start(name: str) -> survey._Start:
    command = survey._interpolate_command(SERVICES[name]["command"], {})
    start = survey._parse_start(command)
    assert start is not None, name
    return start


@pytest.mark.parametrize("name", list(SERVICES))
def test_the_image_keeps_the_users_text_less_the_install_steps(name: str) -> None:
    assert _start(name).script == SERVICES[name]["x-kept"]


@pytest.mark.parametrize("name", list(SERVICES))
def test_what_the_image_keeps_is_valid_for_the_shell_that_runs_it(name: str) -> None:
    start = _start(name)
    checked = subprocess.run(
        [start.interpreter, "-n", "-c", start.script], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, (start.interpreter, start.script, checked.stderr)


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_kept_step_is_in_the_kept_script_as_written(name: str) -> None:
    start = _start(name)
    for command in start.kept:
        if command.words and command.words[0].text not in _RUNNERS:
            assert command.source in start.script, command.source


def test_the_corpus_covers_the_shapes_found_in_public_compose_files() -> None:
    texts = [str(svc["command"]) for svc in SERVICES.values()]
    for shape in ("$$(", "`", "$${", " & ", ";", "||", "exec", "(", "set -e", "<<<", "cd ", "--"):
        assert any(shape in text for text in texts), shape
    assert any(isinstance(svc["command"], list) for svc in SERVICES.values())
    assert len(SERVICES) >= 40


def test_a_bash_script_keeps_running_under_bash() -> None:
    assert _start("here-string").interpreter == "/bin/bash"
    assert _start("command-substitution").interpreter == "/bin/sh"


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
