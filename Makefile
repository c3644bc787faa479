# The README's commands. Each installs what is missing first (idempotent), then does its job.
.PHONY: setup dev demo test lint unit integration bench bench-suite clean

VENV := .venv
BIN := $(VENV)/bin

setup:
	bash scripts/setup.sh

dev:
	bash scripts/setup.sh --dev

## make demo: the main job — the cb-totem stack brought up the wheeldock way, with timings.
demo: setup
	$(BIN)/python scripts/demo.py

## make test: the whole suite (unit + integration on the real engine and registry), ruff, mypy.
test: dev lint
	$(BIN)/pytest -p no:cacheprovider

lint:
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## make unit: tests/unit and the examples' own tests; no root, no engine, no base build, so
## it needs the venv only.
unit: $(BIN)/pytest
	$(BIN)/pytest -m "not integration"

## make integration: tests/integration on the real engine and registry (= `pytest -m integration`).
integration: dev
	$(BIN)/pytest tests/integration

$(BIN)/pytest:
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'

## make bench: the lifecycle benchmark on examples/cb-totem, results in docs/bench/.
bench: dev
	$(BIN)/wheeldock -C examples/cb-totem bench --runs 3 --json docs/bench/cb-totem.json --chart docs/bench/cb-totem.png --markdown docs/bench/cb-totem.md

bench-suite: dev
	$(BIN)/pytest benchmarks --benchmark-enable --benchmark-only --benchmark-json docs/bench/hot-paths.json
	$(BIN)/python benchmarks/report.py docs/bench/hot-paths.json docs/bench/hot-paths.md

clean:
	rm -rf .wheeldock build dist src/*.egg-info
