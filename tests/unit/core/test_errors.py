from __future__ import annotations

import ast
from pathlib import Path

import pytest

from wheeldock import errors

SRC = Path(errors.__file__).parent


def _raised_names(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            found.append((node.lineno, name))
    return found


def test_no_module_raises_the_root_error_class() -> None:
    roots = [
        f"{path.relative_to(SRC)}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        for line, name in _raised_names(path)
        if name == "WheeldockError"
    ]
    assert roots == []


@pytest.mark.parametrize(
    "leaf",
    [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.WheeldockError)
    ],
    ids=lambda c: c.__name__,
)
def test_only_command_line_errors_exit_with_2(leaf: type[errors.WheeldockError]) -> None:
    assert leaf.exit_code == (2 if issubclass(leaf, errors.UsageError) else 1)


def test_a_mismatch_carries_both_values_and_keeps_its_message_as_written() -> None:
    size = errors.SizeMismatch("gave 3 bytes, says 4", expected=4, actual=3, path="layer.tar")
    assert (size.expected, size.actual, str(size)) == (4, 3, "layer.tar: gave 3 bytes, says 4")
    diff_id = errors.DiffIdMismatch("does not hash", expected="sha256:a", actual="sha256:b")
    assert (diff_id.expected, diff_id.actual) == ("sha256:a", "sha256:b")
    assert str(diff_id) == "does not hash"
