# The two commands (see README): `make run` starts the bridge, `make test` runs the tests.
# Both set up what they need first: a virtualenv in .venv with feedfed and its dependencies.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/feedfed.example.toml

.PHONY: run test lint check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The Fedify peer for interop tests (skipped by the tests where node is missing, outside CI).
FEDIFY := tests/fedify/node_modules/.package-lock.json
$(FEDIFY): tests/fedify/package.json tests/fedify/package-lock.json
	if command -v npm >/dev/null; then npm ci --prefix tests/fedify --no-audit --no-fund; fi

run: $(VENV)/.installed
	$(BIN)/feedfed --config $(CONFIG) serve

test: $(VENV)/.installed $(FEDIFY)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict bridge

check: lint test

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
