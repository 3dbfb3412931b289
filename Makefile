# Two commands do all set-up: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean system-deps

# A fresh Debian machine may lack venv support or a C compiler (durable-rules builds a C extension).
system-deps:
	@if ! $(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1 || ! command -v gcc >/dev/null 2>&1; then \
		if command -v apt-get >/dev/null 2>&1; then \
			echo "installing python3-venv, python3-dev and gcc"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-dev gcc >/dev/null; \
		else echo "need Python 3.11 with venv and a C compiler" >&2; exit 2; fi; \
	fi

$(STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# The main job on the embedded defaults: validate the bundled rulebooks, run their rule tests,
# then replay a generated week of 1,000 merchants and print the burden table.
run: $(STAMP)
	$(BIN)/rulebook validate rules/books/lowprice-2024 rules/books/reformed-2025
	$(BIN)/rulebook test rules/books
	@mkdir -p out
	$(BIN)/rulebook generate --merchants 1000 --days 7 --seed 1 --out out/sample-events.jsonl
	$(BIN)/rulebook replay --rulebooks rules/books/lowprice-2024 --decisions out/decisions.jsonl out/sample-events.jsonl

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/engine_throughput.py

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .ruff_cache .hypothesis
