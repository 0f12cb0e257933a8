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
.PHONY: help venv report test test-fast lab prometheus clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The stamp is newer than pyproject.toml once the environment matches it.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing perfkit and its dependencies into $(VENV) (quiet; errors are shown)"
	@PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

venv: $(STAMP) ## create or refresh the virtual environment (.venv) from pyproject.toml

report: $(STAMP) ## run the default benchmark suite against the demo server and render reports/index.html
	$(BIN)/perfkit report --suite default

test: $(STAMP) ## run the whole test suite (unit, notebooks, end to end, headless Chromium)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## run the tests not marked slow
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow"

lab: $(STAMP) ## open JupyterLab on 127.0.0.1 in notebooks/
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) --ServerApp.root_dir=notebooks --no-browser \
		$(if $(filter 0,$(shell id -u)),--allow-root)

prometheus: $(STAMP) ## start Prometheus on 127.0.0.1:9090 scraping a running serve-demo (PROM_TARGET=URL, PROM_PORT=N)
	$(BIN)/python -m perfkit.ingest.promserver --target $(PROM_TARGET) --port $(PROM_PORT)

clean: ## remove generated reports and caches (keeps .venv and data/perfkit.duckdb)
	find reports -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -type d \( -name __pycache__ -o -name .pytest_cache -o -name .ipynb_checkpoints -o -name .hypothesis \) -print0 | xargs -0 rm -rf
