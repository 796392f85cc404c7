# cyberobs — `make` alone lists the targets. Every target creates and uses the local virtualenv .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONHASHSEED := 0

.DEFAULT_GOAL := help
.PHONY: help install study test lint format demo bench lab lock wheel wheel-check wheel-check-lowest clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-18s %s\n", $$1, $$2}'

# The package with its dependencies (pyproject.toml) and extras dev, bench, dask, under the lock:
# requirements-dev.txt = -c constraints.txt -e .[dev,bench,dask]
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the package with its pinned dependencies (done by every other target)

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
	$(PY) -m pip freeze --all --exclude-editable | grep -v -E '^(cyberobs|pip)==' > constraints.txt

wheel: $(STAMP) ## build the wheel into dist/ (notebooks, parameter files and data inside)
	rm -rf build dist/cyberobs-*.whl
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist .

wheel-check: wheel ## install the wheel alone in a fresh venv, run demo/validate/ingest/run from an empty folder
	PYTHON=$(PYTHON) bash .ci/wheel-check dist/cyberobs-*.whl

wheel-check-lowest: wheel ## the same with the lowest versions pyproject.toml accepts (its lower bounds)
	PYTHON=$(PYTHON) LOWEST=1 bash .ci/wheel-check dist/cyberobs-*.whl

clean: ## remove caches and reports (keeps .venv)
	rm -rf reports .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
