# driftgate — the front door. `make help` lists the targets.
# Two commands set up a fresh machine: `make gen` (the example) and `make test` (the suite).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Exact versions: the fitted numbers and the seeded example exports must not move under us.
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.DEFAULT_GOAL := help
.PHONY: help gen test lint check regen tools exports crds clean

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

# The upstream CRD schemas, from the Go module proxy (scripts/fetch_crds.py). Without Go they are
# skipped, and driftgate says so in one line: strict schema validation is then off for `make gen`.
CRDS := .tools/crds
$(CRDS)/SOURCES.md: scripts/fetch_crds.py
	@$(PYTHON) scripts/fetch_crds.py --out $(CRDS) >/dev/null || \
	  echo "make: could not fetch the CRD schemas (needs Go and the module proxy); render skips strict validation"

crds: $(CRDS)/SOURCES.md ## Fetch the upstream CRD schemas (Argo Rollouts, prometheus-operator)
CRDS_FLAG = $$([ -f $(CRDS)/SOURCES.md ] && echo --crds $(CRDS))

gen: exports/.stamp crds ## Fit (when inputs changed) and render the bundled example into generated/
	$(BIN)/driftgate gen $(CRDS_FLAG)

regen: exports/.stamp crds ## Refit every model from scratch, then render
	$(BIN)/driftgate gen --force $(CRDS_FLAG)

check: $(VENV)/.installed crds ## Fail if generated/ is stale (for CI and pre-commit)
	$(BIN)/driftgate check $(CRDS_FLAG)

# Prometheus 2.x / Alertmanager 0.25 from Debian, and a current Prometheus 3.x / Alertmanager built
# from the Go module proxy into .tools/ (scripts/tools.py holds the versions).
tools: ## Install Debian's promtool/amtool and build current Prometheus 3.x and amtool with Go
	@[ -x /usr/bin/promtool ] && [ -x /usr/bin/amtool ] && [ -x /usr/bin/prometheus ] || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    prometheus prometheus-alertmanager git; }
	@command -v go >/dev/null || { echo "make: Go is needed to build Prometheus 3.x (https://go.dev)"; exit 1; }
	@/usr/bin/promtool --version | head -1; /usr/bin/amtool --version 2>&1 | head -1
	$(PYTHON) scripts/tools.py

test: $(VENV)/.installed tools ## Install what the tests need, then run them
	DRIFTGATE_CRDS=$(CURDIR)/$(CRDS) $(BIN)/python -m pytest

# mypy resolves packages by folder name: the import name driftgate is a symlink to gen/ for it.
lint: $(VENV)/.installed ## ruff + mypy on gen/ (the driftgate package)
	$(BIN)/ruff check gen tests scripts bench
	@mkdir -p .tools/typecheck && ln -sfn ../../gen .tools/typecheck/driftgate
	cd .tools/typecheck && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p driftgate

clean: ## Remove the virtual environment, the example exports and the built tools
	rm -rf $(VENV) exports .tools
