# `make demo`, `make test` and `make docs` each build .venv on first use (torch first, CPU
# build), then run. `make docs` adds the `docs` extra and builds the site into docs/_build/html
# with warnings as errors (the reference pages are generated from the code, the examples run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# test files run in this many processes, each file in one (its module fixtures built once)
TEST_WORKERS ?= 2
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs
DOCS_OUT := docs/_build/html

.PHONY: demo test docs bench lint clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test,ray]"
	touch $(STAMP)

$(DOCS_STAMP): $(STAMP)
	$(BIN)/pip install -q -e ".[docs]"
	touch $(DOCS_STAMP)

demo: $(STAMP)
	$(BIN)/fairensemble demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs $(DOCS_OUT)

bench: $(STAMP)
	$(BIN)/python benchmarks/train_members.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs/conf.py docs/_ext examples

clean:
	rm -rf $(VENV) runs docs/_build docs/_generated docs/auto_examples docs/reference/api
