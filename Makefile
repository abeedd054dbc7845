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

.PHONY: install conformance load test lint bench wrk up status down schemas clean images selftest

install:  ## create .venv and install the project with its test extras
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'

conformance:  ## boot the reference network, replay the scenarios, write reports/<run-id>/
	$(BIN)/testbed conformance $(SCENARIOS) $(NETWORK_FLAG) $(CA_FLAG) --runtime $(RUNTIME)

LOAD_SCENARIO ?= scenarios/bgz-consent.yaml
WORKERS ?= 0
load:  ## replay a scenario under load with Locust (its `load:` block); LOAD_SCENARIO=..., WORKERS=N
	$(BIN)/testbed load $(LOAD_SCENARIO) $(NETWORK_FLAG) $(CA_FLAG) --runtime $(RUNTIME) --workers $(WORKERS)

test:  ## the test suite: unit tests and integration tests on real node processes
	$(BIN)/python -m pytest -q

PROFILE ?=  # empty: every role
selftest:  ## every profile against the faulty variants of its reference node; PROFILE=role for one
	$(BIN)/testbed selftest $(if $(PROFILE),--profile $(PROFILE),) --runtime $(RUNTIME)

bench:  ## benchmarks (not part of `make test`): token endpoint and closed question next to a raw endpoint, load drivers, the scaling curve
	@{ command -v wrk && { command -v nginx || test -x /usr/sbin/nginx; }; } >/dev/null || $(MAKE) --no-print-directory wrk
# oha presents a client certificate, which the consent node's public listener asks for (wrk cannot)
	@command -v oha >/dev/null || test -x $(BIN)/oha || { \
		echo "installing oha 1.16.0, the closed question's load driver, with cargo install (a few minutes)"; \
		cargo install --quiet --locked --root $(VENV) oha@1.16.0 >$(VENV)/oha-install.log 2>&1 \
		|| echo "oha could not be installed (no cargo, or the build failed: $(VENV)/oha-install.log): the closed question is measured with the Python driver, whose own ceiling limits the figures"; }
	$(BIN)/python -m testbed.bench
	$(BIN)/python -m testbed.bench.scaling  # the scaling curve: 10, 100 and 1,000 organisations (several minutes)

wrk:  ## the benchmarks' load driver and static endpoint (wrk, nginx), from Debian's packages (needs root)
	@echo "installing wrk, the benchmarks' load driver, and nginx, the load-driver bench's static endpoint"
	@(apt-get update -qq && apt-get install -y -qq wrk nginx-light) >/dev/null 2>&1 \
		|| echo "wrk or nginx could not be installed: the Python driver and the raw endpoint stand in, and their own ceilings limit the figures"

lint:  ## ruff (style; no function over complexity 15) and mypy (strict on the harness and protocols, default on nodes and tests)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict testbed protocols
	$(BIN)/mypy nodes tests

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

images:  ## the reference node image, built offline (mmdebstrap base + local wheels); BASE=image to use another base
	@test -n "$(BASE)" || command -v mmdebstrap >/dev/null || { \
		echo "installing mmdebstrap, which builds the image's Debian base, from Debian's packages (needs root)"; \
		(apt-get update -qq && apt-get install -y -qq mmdebstrap) >/dev/null 2>&1 \
		|| echo "mmdebstrap could not be installed (not root, or no Debian packages): install it, or give BASE=an-image"; }
	$(BIN)/python -m testbed.images $(if $(BASE),--base $(BASE),)
