"""The stack's shape, checked without its (large) dependencies installed."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parents[1]


def test_the_model_service_installs_its_top_level_pins_at_start() -> None:
    compose = yaml.safe_load((HERE / "docker-compose.yaml").read_text())
    model = compose["services"]["model"]
    assert model["image"] == "python:3.11-slim"
    assert "pip install -q -r requirements.txt" in model["command"]
    pins = [
        line
        for line in (HERE / "model" / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert len(pins) == 7 and all("==" in pin for pin in pins)


def test_the_app_imports_every_library_of_the_stack() -> None:
    tree = ast.parse((HERE / "model" / "app.py").read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert {"numpy", "pandas", "scipy", "sklearn", "pyarrow", "fastapi"} <= imported
