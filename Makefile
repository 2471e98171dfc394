# Two commands do all set-up: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=

.PHONY: help run test test-fast lint format bench bench-import faults worker clean

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## help: this list
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## run: install, migrate, seed the demo program once, serve on SQLite (http://127.0.0.1:5000)
run: $(VENV)/.runtime
	$(FLASK) db upgrade
	LOYALTY_PUBLIC_URL=$${LOYALTY_PUBLIC_URL:-http://$(HOST):$(PORT)} $(FLASK) loyalty seed-demo
	LOYALTY_PUBLIC_URL=$${LOYALTY_PUBLIC_URL:-http://$(HOST):$(PORT)} \
	  $(FLASK) run --host $(HOST) --port $(PORT) --with-threads

## worker: run the scheduled jobs every minute
worker: $(VENV)/.runtime
	$(FLASK) loyalty worker

## test: the whole suite (SQLite always; PostgreSQL and Chromium when present)
test: $(VENV)/.dev
	$(PY) -m pytest $(PYTEST_ARGS)

## test-fast: the SQLite tests on two processes, under a minute: no PostgreSQL, no browser, no
##   benchmark smoke, none that starts servers or fuzzes the whole API (marked slow)
test-fast: $(VENV)/.dev
	$(PY) -m pytest -q -p no:cacheprovider --sqlite-only -m "not slow" -n 2 $(PYTEST_ARGS)

## lint: ruff (lint + format) and mypy (types; the settings are in pyproject.toml)
lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## bench: benchmarks against PostgreSQL + gunicorn; writes bench/RESULTS.md
bench: $(VENV)/.dev
	$(PY) -m bench

## faults: order events while a worker, PostgreSQL connections and Redis fail; adds to bench/RESULTS.md
faults: $(VENV)/.dev
	$(PY) -m bench.faults --out bench/RESULTS.md

## bench-import: the order history import beside a hand-written bulk insert; adds to bench/RESULTS.md
bench-import: $(VENV)/.dev
	$(PY) -m bench.imports --out bench/RESULTS.md $(if $(ORDERS),--orders $(ORDERS))

clean:
	rm -rf $(VENV) instance .pytest_cache
