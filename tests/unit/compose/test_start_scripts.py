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

CORPUS = Path(__file__).parents[2] / "data" / "start_scripts" / "compose.yaml"
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
