# The README's commands. Each installs what is missing first (idempotent), then does its job.
.PHONY: setup dev demo test lint unit integration bench bench-growth bench-suite clean

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

## make bench-growth: how build time, peak RSS and bytes written grow with the installed size
## and the number of services: the bench on four reference stacks and on fleet10 cut to one
## service (its baseline), one after the other, then docs/bench/growth.md and growth.png.
GROWTH := docs/bench/growth
GROWTH_STACKS := examples/cb-totem examples/toplevel-api examples/data-api examples/fleet10 .wheeldock/growth/fleet1
bench-growth: dev
	$(BIN)/python scripts/bench_growth.py one-service examples/fleet10 .wheeldock/growth/fleet1
	mkdir -p $(GROWTH)
	for stack in $(GROWTH_STACKS); do \
	  name=$$(basename $$stack); \
	  $(BIN)/wheeldock -C $$stack bench --scenarios native,native-oci,uvguide --runs 3 \
	    --json $(GROWTH)/$$name.json --markdown $(GROWTH)/$$name.md \
	    || echo "bench-growth: $$name had failures (see $(GROWTH)/$$name.md)"; \
	done
	$(BIN)/python scripts/bench_growth.py report $(foreach s,$(GROWTH_STACKS),$(GROWTH)/$(notdir $(s)).json) \
	  --markdown docs/bench/growth.md --chart docs/bench/growth.png

bench-suite: dev
	$(BIN)/pytest benchmarks --benchmark-enable --benchmark-only --benchmark-json docs/bench/hot-paths.json
	$(BIN)/python benchmarks/report.py docs/bench/hot-paths.json docs/bench/hot-paths.md

clean:
	rm -rf .wheeldock build dist src/*.egg-info
