# cyberobs — `make` alone lists the targets. Every target creates and uses the local virtualenv .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONHASHSEED := 0

.DEFAULT_GOAL := help
.PHONY: help install study test lint format demo bench lab lock clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned stack (done by every other target)

study: $(STAMP) ## run the annual study on the bundled demo data -> reports/annual_2025/
	$(VENV)/bin/cyberobs run parameters/annual_2025.yaml --demo

test: $(STAMP) ## run the whole test suite: library, doctests, notebooks (nbval), lint
	$(VENV)/bin/ruff check cyberobs_lib tests benchmarks
	$(PY) -m pytest

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check cyberobs_lib tests benchmarks
	$(VENV)/bin/ruff format --check cyberobs_lib tests benchmarks

format: $(STAMP) ## format the code with ruff
	$(VENV)/bin/ruff format cyberobs_lib tests benchmarks

demo: $(STAMP) ## regenerate the committed demo dataset data/demo (seed 2025)
	$(VENV)/bin/cyberobs demo --out data/demo --seed 2025 --preset small

bench: $(STAMP) ## run the benchmarks (prints time, peak memory and ratios to baselines)
	$(PY) benchmarks/run_all.py

lab: $(STAMP) ## open JupyterLab on the notebooks (demo mode: the public demo key when no key is set)
	CYBEROBS_DEMO=1 $(VENV)/bin/jupyter lab notebooks

lock: $(STAMP) ## refresh constraints.txt from the installed environment (deliberately)
	$(PY) -m pip freeze --exclude-editable | grep -v '^cyberobs' > constraints.txt

clean: ## remove caches and reports (keeps .venv)
	rm -rf reports .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
