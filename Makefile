# Two commands do all set-up: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# npm rewrites this file on every install: it is older than package-lock.json when the lock changed.
NODE_STAMP := node_modules/.package-lock.json

.PHONY: run demo test lint bench clean system-deps node-deps proto prometheus-deps

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

# The tests use buf (proto lint) and a Node gRPC client from npm (package.json); a fresh Debian
# machine may lack npm.
node-deps:
	@if ! command -v npm >/dev/null 2>&1; then \
		if command -v apt-get >/dev/null 2>&1; then \
			echo "installing nodejs and npm"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
		else echo "need Node.js with npm" >&2; exit 2; fi; \
	fi

$(NODE_STAMP): package-lock.json package.json | node-deps
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

# The main job on the embedded defaults: check the bundled rulebooks, then serve them over gRPC,
# lowprice-2024 as the primary set and reformed-2025 as its shadow, state in out/state.sqlite.
run: $(STAMP)
	$(BIN)/rulebook validate rules/books/lowprice-2024 rules/books/reformed-2025
	@mkdir -p out
	$(BIN)/rulebook serve --rulebooks rules/books/lowprice-2024 --shadow rules/books/reformed-2025 \
		--state out/state.sqlite

# Replay a generated week of 1,000 merchants through lowprice-2024 and print the burden table.
demo: $(STAMP)
	$(BIN)/rulebook test rules/books
	@mkdir -p out
	$(BIN)/rulebook generate --merchants 1000 --days 7 --seed 1 --out out/sample-events.jsonl
	$(BIN)/rulebook replay --rulebooks rules/books/lowprice-2024 --decisions out/decisions.jsonl out/sample-events.jsonl

# promtool and the prometheus server for the metrics and deploy/ tests.
prometheus-deps:
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then \
		if command -v apt-get >/dev/null 2>&1; then \
			echo "installing prometheus (promtool)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
		else echo "need promtool and prometheus (Debian package prometheus)" >&2; exit 2; fi; \
	fi

test: $(STAMP) $(NODE_STAMP) prometheus-deps
	$(BIN)/ruff check .
	$(BIN)/pytest

# Regenerate the committed Python gRPC code (service/api/rulebook/v1) from proto/.
proto: $(STAMP)
	$(BIN)/python -m service.api.generate

bench: $(STAMP)
	$(BIN)/python bench/engine_throughput.py
	$(BIN)/python bench/grpc_throughput.py --merchants 100 --days 7 --repeat 3
	$(BIN)/python bench/simulator_throughput.py
	$(BIN)/python bench/audit_static.py

clean:
	rm -rf $(VENV) node_modules out build *.egg-info .pytest_cache .ruff_cache .hypothesis
