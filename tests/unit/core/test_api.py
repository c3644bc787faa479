from __future__ import annotations

import json
import subprocess
import sys

import pytest

import wheeldock
from wheeldock import errors


@pytest.mark.parametrize("name", wheeldock.__all__)
def test_each_public_name_resolves(name: str) -> None:
    assert getattr(wheeldock, name) is not None


def test_the_public_errors_are_every_error_class() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, errors.WheeldockError)
        and not name.startswith("_")  # a shared base, never raised itself
    }
    assert classes <= set(wheeldock.__all__)
    assert all(getattr(wheeldock, name) is getattr(errors, name) for name in classes)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = wheeldock.nope  # type: ignore[attr-defined]


def test_importing_wheeldock_imports_none_of_its_modules() -> None:
    code = (
        "import json, sys, wheeldock\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('wheeldock.'))))\n"
        "wheeldock.build_services\n"
        "print(json.dumps('wheeldock.build.builder' in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = map(json.loads, out.stdout.splitlines())
    assert before == []
    assert after is True  # the name brought its module in, on first use


def test_every_name_placed_outside_the_errors_is_declared() -> None:
    # A name missing from __all__ could never be looked up (_WHERE is made from __all__).
    assert set(wheeldock._ELSEWHERE) <= set(wheeldock.__all__)
