# Two set-up commands for a fresh machine (Python 3.11, pip, make):
#   make run    install, then poll every feed in feeds.yaml once into ./data/ and show the result
#   make test   install the dev tools, then run ruff, mypy and the whole pytest suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test check lint typecheck pytest demo model bench install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## The main job on the embedded default (SQLite under ./data/).
run: install
	-$(BIN)/aggregator poll --all
	$(BIN)/aggregator stories --limit 20

## Offline demo: bundled sample feeds served on 127.0.0.1, temporary database, merged Atom feed.
demo: install
	$(BIN)/aggregator demo --output demo-output/merged.atom

## The whole test suite: lint, types, tests (PostgreSQL tests need 127.0.0.1:5432).
test: install-dev
	$(BIN)/ruff check aggregator tests benchmarks
	$(BIN)/ruff format --check aggregator tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q -n auto --dist worksteal --durations=20

## Rebuild the shipped classifier in models/classifier/ from models/seeds + taxonomy.
model: install
	$(BIN)/python -m aggregator.train

bench: install-dev
	$(BIN)/python benchmarks/classify.py
	$(BIN)/python benchmarks/fetch.py
	$(BIN)/python benchmarks/store.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-output
