# The two commands: `make run` (one demo night) and `make test` (every test).
# Both create the environment from the lock file first; nothing needs to be preinstalled
# but Python 3.11 (and, for the PostgreSQL tests, the Debian PostgreSQL server package).

PYTHON ?= python3.11
VENV := .venv
BI_VENV := .venv-bi
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed
BI_STAMP := $(BI_VENV)/.installed

.PHONY: run run-pipedrive run-hubspot run-salesforce report test lint format lock install clean bench benchmark

run: $(STAMP)
	$(VENV)/bin/python -m devkit.demo

# The same night, reading the deals from the local fake Pipedrive API over HTTP.
run-pipedrive: $(STAMP)
	$(VENV)/bin/python -m devkit.demo --crm pipedrive

run-hubspot: $(STAMP)
	$(VENV)/bin/python -m devkit.demo --crm hubspot

run-salesforce: $(STAMP)
	$(VENV)/bin/python -m devkit.demo --crm salesforce

# The demo night's funnel report and dbt docs (var/published/report/, var/published/docs/)
# and a screenshot of the report (var/published/report/screenshot.png) by headless chromium
# (Debian's package). Runs `make run` first when the demo night is not published yet.
report: $(STAMP)
	test -f var/published/sales_funnel.duckdb || $(MAKE) run
	$(VENV)/bin/python -m devkit.report

# One worker per core; each test file runs on one worker, so a night its tests share
# (a module-scoped fixture) is built once; files in collection order (the slow ones first,
# tests/conftest.py), so the workers finish together.
# ruff first (a second); sqlfluff (about 30 s of CPU) runs beside the tests at the lowest
# CPU priority, so it takes only the CPU they leave idle (a worker waiting on a server, a
# retry, a scheduler) and costs their wall time almost nothing. Its report follows the
# tests'; either failing fails `make test`.
test: $(STAMP) $(BI_STAMP)
	$(RUFF_LINT)
	@out=$$(mktemp); nice -n 19 $(SQLFLUFF_LINT) >"$$out" 2>&1 & lint=$$!; \
	$(VENV)/bin/python -m pytest -n auto --dist loadfile --no-loadscope-reorder; tests=$$?; \
	wait $$lint; linted=$$?; echo "$(SQLFLUFF_LINT)"; cat "$$out"; rm -f "$$out"; \
	test $$tests -eq 0 && test $$linted -eq 0

install: $(STAMP)

# The environment: a venv with uv, then exactly the locked versions, then this project.
# The venv gets no pip of its own when $(PYTHON) has a pip that can install uv into it
# (`pip --python`, pip 22.3+; ensurepip alone takes 3 s); uv installs everything else.
# Bytecode is compiled at install (about 7 s): uv writes none by default, and where
# PYTHONDONTWRITEBYTECODE is set no process writes it either, so every Airflow task, CLI
# call and test worker would compile Airflow and dbt again (an import of both: 6.8 s
# instead of 3.1 s).
$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found (set PYTHON=...)"; exit 1; }
	@if $(PYTHON) -m pip --help 2>/dev/null | grep -q -- '--python <python>'; then \
	    venv=--without-pip; pip="$(PYTHON) -m pip --python $(VENV)/bin/python"; \
	else \
	    venv=; pip="$(VENV)/bin/python -m pip"; \
	fi; set -x; \
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $$venv $(VENV); \
	$$pip install --quiet --disable-pip-version-check uv==0.13.8
	$(UV) pip sync --python $(VENV)/bin/python --require-hashes --compile-bytecode requirements.lock
	$(UV) pip install --python $(VENV)/bin/python --no-deps --editable .
	touch $@

# A second venv with DuckDB 1.1 only: the tests open the published file with it, as a
# BI driver bundling DuckDB 1.x would. Made by uv (no pip in it: 0.1 s, `-m venv` 3 s).
$(BI_STAMP): requirements-bi.lock $(STAMP)
	test -x $(BI_VENV)/bin/python || $(UV) venv --quiet --no-python-downloads --python $(PYTHON) $(BI_VENV)
	$(UV) pip sync --python $(BI_VENV)/bin/python --require-hashes --compile-bytecode requirements-bi.lock
	touch $@

PYTHON_DIRS := extract night devkit dags tests benchmarks
define RUFF_LINT
$(VENV)/bin/ruff check $(PYTHON_DIRS)
	$(VENV)/bin/ruff format --check $(PYTHON_DIRS)
endef
SQLFLUFF_LINT := $(VENV)/bin/sqlfluff lint dbt_project --processes 2

lint: $(STAMP)
	$(RUFF_LINT)
	$(SQLFLUFF_LINT)

format: $(STAMP)
	$(VENV)/bin/ruff format $(PYTHON_DIRS)
	$(VENV)/bin/ruff check --fix $(PYTHON_DIRS)

# Lock file refresh (needs the registry): pins every transitive version with hashes.
# requirements-runtime.lock: the same without the dev extra, for the image (Dockerfile).
lock: $(STAMP)
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock
	$(UV) pip compile pyproject.toml --python-version 3.11 --generate-hashes -o requirements-runtime.lock
	$(UV) pip compile requirements-bi.in --python-version 3.11 --generate-hashes -o requirements-bi.lock

# Figures, not assertions: generation, then one night on 1,000,000 deals per phase and the
# same night again on unchanged files.
bench benchmark: $(STAMP)
	$(VENV)/bin/python benchmarks/generate.py
	$(VENV)/bin/python benchmarks/full_night.py

clean:
	rm -rf var dbt_project/target dbt_project/logs
