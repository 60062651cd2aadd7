# The two commands of the README: `make example` and `make test`.
# Everything the project needs is installed from here into .venv (the machine's global
# boto3 is too old for s3fs/aiobotocore, so we never rely on it).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test-deps example test test-fast bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	bash scripts/venv_install.sh $(VENV) -e ".[all]"
	touch $@

# Flagship example on the embedded default (SQLite + local worker + subprocesses).
# compileall: with PYTHONDONTWRITEBYTECODE=1 (set on these machines) no process ever writes the
# .pyc files of src/, so each would compile fleetflow from source (~50 ms of CPU per worker,
# runner or CLI process); this writes them once and skips the ones already current.
example: setup
	$(PY) -m compileall -q src
	$(PY) examples/ml_pipeline/run.py

# What the suite needs beyond Python packages (PostgreSQL, Terraform provider mirror, checkov,
# the runtime wheelhouse): built once, cached under .cache/, before pytest starts.
test-deps: setup
	bash scripts/ensure_test_deps.sh $(PY)

# Whole suite: unit, integration (real PostgreSQL, moto server), e2e, terraform, browser.
# --dist loadgroup: tests marked xdist_group (the Terraform tests sharing one apply) stay on one worker.
# -n 3 on 2 cores: much of the suite waits on worker, runner and terraform processes and on
# leases running out; with -n 2 the two cores were 74% busy over the run.
test: test-deps
	$(PY) -m compileall -q src
	$(PY) -m pytest -n 3 --dist loadgroup -q --durations=25 $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -q -m "not postgres and not terraform" $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/engine_overhead.py

clean:
	rm -rf $(VENV) .cache
