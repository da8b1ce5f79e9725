# Every target installs what it needs by itself: a fresh clone needs only
# Python 3.11, Node 20 and npm. Stamps make a second run reinstall nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ENV ?= drill
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install test lint typecheck format drill synth synth-all reliability bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(BIN)/.installed node_modules/.installed ## Create .venv and install the pinned Python and npm packages

lint: $(BIN)/.installed ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed ## mypy: strict for functions/remediation, defaults elsewhere
	$(BIN)/mypy

format: $(BIN)/.installed ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The coverage floor for the Lambda package is [tool.coverage.report] fail_under.
test: install lint typecheck ## Lint, types, then every test tier with coverage (ends with the reliability figures)
	rm -f reports/reliability.json
	$(BIN)/pytest --cov=serverless_remediation.remediation --cov-report=term:skip-covered
	$(BIN)/python tests/reliability/report.py

drill: install ## The whole suite against the local emulator (moto server on loopback)
	$(BIN)/remediate drill scenarios/

reliability: install ## Duplicates, faults, flapping, fuzzing, abuse, IAM: then the figures table
	rm -f reports/reliability.json
	$(BIN)/pytest -p no:logging tests/reliability; status=$$?; \
		$(BIN)/python tests/reliability/report.py && exit $$status

# Each environment gets its own output directory, so cfn-lint never sees another's templates.
synth: install ## Synthesize ENV (default drill) offline, with cdk-nag, then cfn-lint the templates
	rm -rf cdk.out/$(ENV)
	npx cdk synth --quiet -c env=$(ENV) -o cdk.out/$(ENV)
	$(BIN)/cfn-lint --ignore-checks W3005 -- cdk.out/$(ENV)/*.template.json

synth-all: install ## make synth for every environment in cdk.json
	@for env in $$($(BIN)/python -c 'import json; print(*json.load(open("cdk.json"))["context"]["environments"])'); do \
		echo "== $$env"; $(MAKE) --no-print-directory synth ENV=$$env || exit 1; done

# Benchmarks: not part of `make test`. Cloud Custodian (the cold-init peer) lives only in
# its own venv, from bench/requirements.txt.
BENCH_VENV := .venv-bench
BENCH_RUNS ?= 7

$(BENCH_VENV)/.installed: bench/requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

bench: install $(BENCH_VENV)/.installed ## Benchmarks, one table (medians of BENCH_RUNS=7; ~20 min)
	$(BIN)/python -m bench --runs $(BENCH_RUNS) --peer-python $(BENCH_VENV)/bin/python

clean: ## Remove build output (keeps .venv and node_modules)
	rm -rf cdk.out .pytest_cache .ruff_cache reports
