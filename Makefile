# `make demo` and `make test` each build .venv on first use (torch first, CPU build), then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# test files run in this many processes, each file in one (its module fixtures built once)
TEST_WORKERS ?= 2
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test,ray]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fairensemble demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(BIN)/python benchmarks/train_members.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs
