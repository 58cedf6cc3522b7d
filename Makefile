# driftgate — the front door. `make help` lists the targets.
# Two commands set up a fresh machine: `make gen` (the example) and `make test` (the suite).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Exact versions: the fitted numbers and the seeded example exports must not move under us.
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.DEFAULT_GOAL := help
.PHONY: help gen test lint check regen tools exports clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP_INSTALL) -e '.[test,lint]'
	@touch $@

exports/.stamp: $(VENV)/.installed scripts/make_example_exports.py gen/synth.py
	$(BIN)/python scripts/make_example_exports.py --out exports
	@touch $@

exports: exports/.stamp ## Regenerate the example's seeded metric exports (not committed)

gen: exports/.stamp ## Fit (when inputs changed) and render the bundled example into generated/
	$(BIN)/driftgate gen

regen: exports/.stamp ## Refit every model from scratch, then render
	$(BIN)/driftgate gen --force

check: $(VENV)/.installed ## Fail if generated/ is stale (for CI and pre-commit)
	$(BIN)/driftgate check

tools: ## Install promtool and amtool (Debian packages) when missing
	@command -v promtool >/dev/null && command -v amtool >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    prometheus prometheus-alertmanager; }
	@promtool --version | head -1; amtool --version 2>&1 | head -1

test: $(VENV)/.installed tools ## Install what the tests need, then run them
	$(BIN)/python -m pytest

lint: $(VENV)/.installed ## ruff + mypy on gen/
	$(BIN)/ruff check gen tests scripts
	$(BIN)/mypy gen

clean: ## Remove the virtual environment and the example exports
	rm -rf $(VENV) exports
