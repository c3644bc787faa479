"""Start scripts parsed with offsets, and cut: what is left is the original text less the cuts."""

from __future__ import annotations

import pytest

from wheeldock.compose import shell


def _without(text: str, *cut_words: str, program: str | None = None) -> shell.Kept:
    """``text`` less the commands whose first word is one of ``cut_words``; ``exec`` before the
    last command whose first word is ``program``."""
    script = shell.parse(text)
    cut = [c.index for c in script.commands if c.words and c.words[0].text in cut_words]
    at = [c.index for c in script.commands if c.words and c.words[-1].text == program]
    return script.without(cut, exec_at=at[-1] if at else None)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("pip install x && a && b", "a && b"),
        ("a && pip install x && b", "a && b"),
        ("a && b && pip install x", "a && b"),
        ("a; pip install x; b", "a; b"),
        ("a & pip install x", "a &"),
        ("pip install x || echo failed; a", "a"),  # it ran only when the install failed
        ("pip install x || echo failed && a", "a"),
        ("a || pip install x && b", "a && b"),
        ("(pip install x; pip install y) && a", "a"),
        ("{ pip install x; a; } && b", "{ a; } && b"),
        ("pip install x\n# start\na", "# start\na"),
        ("a > log 2>&1 && pip install x", "a > log 2>&1"),
        ("pip install x && a 2>&1 | tee log", "a 2>&1 | tee log"),
        ("pip install x && echo 'é ✓' && a", "echo 'é ✓' && a"),  # offsets are bytes
    ],
)
def test_cutting_a_step_leaves_the_rest_of_the_text_as_written(text: str, kept: str) -> None:
    assert _without(text, "pip").text == kept


@pytest.mark.parametrize(
    ("text", "kept", "alone"),
    [
        ("pip install x && python app.py", "exec python app.py", True),
        ("pip install x && exec python app.py", "exec python app.py", True),
        ("pip install x && A=1 python app.py", "exec env A=1 python app.py", False),
        ("pip install x && python app.py > log", "exec python app.py > log", False),
        ("migrate && python app.py", "migrate && exec python app.py", False),
        ("python app.py & wait", "python app.py & wait", False),  # not the last step
        ("pip install x && python app.py &", "python app.py &", False),  # in the background
        ("(python app.py)", "(python app.py)", False),  # in a subshell
    ],
)
def test_exec_goes_before_the_program_only_when_it_is_the_last_step(
    text: str, kept: str, alone: bool
) -> None:
    result = _without(text, "pip", program="app.py")
    assert (result.text, result.alone) == (kept, alone)


def test_the_commands_left_are_those_still_in_the_text() -> None:
    kept = _without("pip install x || echo failed; a && b", "pip")
    assert [c.source for c in kept.commands] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "holder"),
    [
        ("pip install x | tee log && a", "a pipeline (`|`)"),
        ("if true; then pip install x; fi; a", "an `if`"),
        ("for r in a b; do pip install -r $r; done; a", "a loop"),
        ("setup() { pip install x; }; setup; a", "a function"),
        ("{ pip install x; } > log; a", "a redirected group"),
    ],
)
def test_a_step_inside_a_construct_is_not_cut(text: str, holder: str) -> None:
    with pytest.raises(shell.UncuttableStep) as raised:
        _without(text, "pip")
    assert raised.value.command.startswith("pip install") and holder in raised.value.holder


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [('echo "open && a', 1, 6), ("a &&\nb )", 2, 3), ("echo $(which python", 1, 20)],
)
def test_a_script_the_parser_cannot_read_says_where(text: str, line: int, column: int) -> None:
    with pytest.raises(shell.InvalidScript) as raised:
        shell.parse(text)
    assert (raised.value.line, raised.value.column) == (line, column)


def test_words_are_read_as_the_program_gets_them_expansions_as_written() -> None:
    (command,) = shell.parse(
        'A="a b" gunicorn -b 0.0.0.0:${PORT} \'x y\' "$(which python)" c\\ d'
    ).commands
    assert [w.text for w in command.words] == [
        "A=a b",
        "gunicorn",
        "-b",
        "0.0.0.0:${PORT}",
        "x y",
        "$(which python)",
        "c d",
    ]
