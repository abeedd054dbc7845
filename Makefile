# The testbed's everyday commands. `make install` once, then `make conformance`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUNTIME ?= process
SCENARIOS ?=  # empty: the use-case scenarios and every profile
NETWORK ?=
NETWORK_FLAG := $(if $(NETWORK),--network $(NETWORK),)
CA ?=
CA_FLAG := $(if $(CA),--ca $(CA),)

.PHONY: install conformance test lint bench up status down schemas clean

install:  ## create .venv and install the project with its test extras
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'

conformance:  ## boot the reference network, replay the scenarios, write reports/<run-id>/
	$(BIN)/testbed conformance $(SCENARIOS) $(NETWORK_FLAG) $(CA_FLAG) --runtime $(RUNTIME)

test:  ## the test suite: unit tests and integration tests on real node processes
	$(BIN)/python -m pytest -q

bench:  ## benchmarks (not part of `make test`): token endpoint next to a raw endpoint
	$(BIN)/python -m testbed.bench

lint:  ## ruff
	$(BIN)/ruff check .

up:  ## start the reference network and leave it running
	$(BIN)/testbed up $(NETWORK_FLAG) $(CA_FLAG) --runtime $(RUNTIME)

status:
	$(BIN)/testbed status

down:  ## stop what `make up` started (and leftovers of interrupted runs)
	$(BIN)/testbed down --all

schemas:  ## regenerate the published JSON Schemas from the models
	$(BIN)/testbed schema

clean:
	rm -rf .testbed reports/*/ .pytest_cache .ruff_cache
