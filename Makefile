# Every target installs what it needs: a fresh clone runs `make demo` or `make test` and nothing else.
PYTHON      ?= python3.11
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
export OFFSHOOT_DATABASE_URL ?= postgresql://postgres@127.0.0.1:55432/offshoot
export OFFSHOOT_KAFKA        ?= 127.0.0.1:9092
export HF_HUB_OFFLINE        := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv lock up servers test-up down test unit lint demo bench bench-vectors contracts clean

venv: $(STAMP)

# uv keeps every wheel in its own cache (~/.cache/uv) and hard-links it into the venv, so the
# multi-GB torch stack is downloaded once per machine, not once per clone or CI run.
# requirements.lock pins every package the ranges in pyproject.toml resolved to when the suite
# last passed: a fresh machine installs exactly that, not whatever was released since.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/pip install -q 'uv==0.13.9'
	$(BIN)/uv pip install -q -p $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q -p $(BIN)/python --no-deps -e .
	touch $(STAMP)

lock: venv  ## re-resolve pyproject.toml's ranges into requirements.lock (then run make test)
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --extra mpnet --python-version 3.11 -o requirements.lock

up: venv servers  ## real Kafka (KRaft) and PostgreSQL on loopback, then the distributed stack (API on :8000)
	deploy/local/up.sh

servers:  ## only Kafka and PostgreSQL (what the benchmarks need)
	deploy/postgres/up.sh
	deploy/kafka/up.sh

test-up:  ## the same servers for the test suite: Kafka from empty storage unless it already runs
	deploy/postgres/up.sh
	deploy/kafka/up.sh --fresh

down:  ## SIGTERM the stack's processes, then stop Kafka and PostgreSQL
	-deploy/local/down.sh
	deploy/kafka/down.sh
	deploy/postgres/down.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: venv test-up lint  ## the whole suite, against the embedded default and real Kafka + PostgreSQL
	$(BIN)/pytest -q -p no:cacheprovider $(ARGS)

unit: venv  ## only what needs no server
	$(BIN)/pytest -q -m "not integration" $(ARGS)

demo: venv  ## the main job, on the embedded default (no servers)
	$(BIN)/offshoot demo $(ARGS)

bench: venv servers  ## the quick benchmarks (a few minutes); `make bench-vectors` adds the 100k-point one
	$(BIN)/python bench/eventstore.py $(ARGS)
	$(BIN)/python bench/clone.py
	$(BIN)/python bench/extract.py

bench-vectors: venv  ## 100,000 384-d points in Qdrant Edge: search through views, forks (4-7 min)
	$(BIN)/python bench/vectors.py

contracts: venv  ## regenerate contracts/schema, asyncapi.json and openapi.json from the code
	$(BIN)/python -m contracts.export
	$(BIN)/python -m offshoot.openapi

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
