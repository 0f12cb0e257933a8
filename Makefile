# perfkit: `make report` renders the default report suite, `make test` runs the tests.
# Every target creates or refreshes the virtual environment itself (.venv), so a
# fresh clone needs nothing installed by hand but python3 (>= 3.11).

SHELL      := /bin/bash
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.perfkit-installed
PYTEST_ARGS ?= -q -ra -p no:cacheprovider --durations=10
LAB_PORT   ?= 8888
PROM_TARGET ?= http://127.0.0.1:8000
PROM_PORT  ?= 9090

.DEFAULT_GOAL := help
.PHONY: help venv lock report nightly test test-fast typecheck lab prometheus clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The stamp is newer than pyproject.toml and constraints.txt once the environment matches them.
# uv (from PyPI, into the venv) installs in seconds what pip takes minutes to resolve; both
# install the versions pinned in constraints.txt, and pip is the fallback when uv can't be had.
# `make lock` re-pins constraints.txt from pyproject.toml.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing perfkit and its dependencies into $(VENV) (quiet; errors are shown)"
	@if test -x $(BIN)/uv || PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --disable-pip-version-check uv; then \
		$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e '.[dev]'; \
	else \
		echo "uv unavailable: installing with pip (slower)"; \
		PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'; \
	fi
	@touch $@

venv: $(STAMP) ## create or refresh the virtual environment (.venv) from pyproject.toml and constraints.txt

lock: $(STAMP) ## re-pin constraints.txt to the newest versions pyproject.toml allows
	$(BIN)/uv pip compile --quiet --python $(BIN)/python --extra dev --no-header --no-annotate -o constraints.txt pyproject.toml

# What a case needs (nginx for the proxy cases) is installed first with apt-get, as .ci/run does, where this
# runs as root or with passwordless sudo; otherwise the index names each skipped case and the command that enables it.
report: $(STAMP) ## run the default benchmark suite against the demo server, render reports/index.html and screenshots
	$(BIN)/perfkit report --suite default --screenshots --install-missing

# A scheduler's entry point (deploy/ has a systemd timer and a CI workflow): the suite and its reports into
# reports/<UTC stamp or $$NIGHTLY_ID>/ (reports/index.html lists the sets), then the trend gate.
# Exit 1 when a case or report failed or a regression is open (perfkit trend --ack clears it), 2 on bad input.
# A fresh database first gets a short demo history (PERFKIT_DEMO_HISTORY=0 to skip it), so the
# trends page and the gate have something real to follow from the first night on.
nightly: $(STAMP) ## suite + reports into reports/<stamp>/ + trend gate; exit 1 on a failure or an open regression
	@id=$${NIGHTLY_ID:-$$(date -u +%Y%m%dT%H%M%SZ)}; \
	PERFKIT_DEMO_HISTORY=$${PERFKIT_DEMO_HISTORY:-1} $(BIN)/perfkit report --suite default --no-progress --out reports/$$id; suite=$$?; \
	$(BIN)/perfkit trend --gate; gate=$$?; \
	exit $$(( suite > gate ? suite : gate ))

test: typecheck ## the type check, then the whole test suite (unit, notebooks, end to end, headless Chromium)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## the tests that start no server and no browser (those are marked slow)
	PERFKIT_TEST_FAST=1 $(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow"

typecheck: $(STAMP) ## mypy over perfkit/ (settings in pyproject.toml)
	$(BIN)/mypy

lab: $(STAMP) ## open JupyterLab on 127.0.0.1 in notebooks/
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) --ServerApp.root_dir=notebooks --no-browser \
		$(if $(filter 0,$(shell id -u)),--allow-root)

prometheus: $(STAMP) ## start Prometheus on 127.0.0.1:9090 scraping a running serve-demo (PROM_TARGET=URL, PROM_PORT=N)
	$(BIN)/python -m perfkit.ingest.promserver --target $(PROM_TARGET) --port $(PROM_PORT)

clean: ## remove generated reports and caches (keeps .venv and data/perfkit.duckdb)
	find reports -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -type d \( -name __pycache__ -o -name .pytest_cache -o -name .ipynb_checkpoints -o -name .hypothesis \) -print0 | xargs -0 rm -rf
