# Conveyor: `make demo` (the main job, on the local cloud) and `make test` (what CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
CDK_CLI := aws-cdk@2.1148.1
CDK := npx --yes $(CDK_CLI)
# A deployed stage (infra/stages.py) and its stack; STACK differs only for a stack deployed before stages.
STAGE ?= dev
STACK ?= Conveyor-$(STAGE)
# GITHUB_REPO (owner/name, set by the deploy workflow): the stage's operator role trusts its smoke step.
GITHUB_REPO ?=
STAGE_CONTEXT := --context stage=$(STAGE) --context stack_name=$(STACK) $(if $(GITHUB_REPO),--context github_repo=$(GITHUB_REPO))

.PHONY: venv browser demo up test test-busy lint typecheck unit infra e2e bench synth diff deploy actionlint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,local,infra,dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

browser:  ## Chromium from Debian's packages, for the board's browser tests (installed when missing; needs root)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || (apt-get update && apt-get install -y chromium)

demo: $(STAMP)  ## the whole story on the bundled dataset, on the local cloud
	$(BIN)/conveyor demo

up: $(STAMP)  ## keep a local cloud running (Ctrl-C stops it)
	$(BIN)/conveyor up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) browser  ## lint, type-check, then every test (unit, component, infra, e2e)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15

# make test's pytest while a CPU-bound process keeps one core busy (a shared CI machine); the process is
# killed at the end, whatever the outcome.
test-busy: $(STAMP) browser  ## every test with a CPU-bound process beside it
	@$(BIN)/python -c 'while True: pass' & busy=$$!; \
	trap 'kill $$busy 2>/dev/null' EXIT; \
	echo "CPU-bound process $$busy beside the suite"; \
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=15

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

e2e: $(STAMP) browser
	$(BIN)/python -m pytest tests/e2e

bench: $(STAMP) browser  ## benchmarks (not part of make test)
	$(BIN)/python -m pytest tests/benchmarks -s -p no:randomly

synth: $(STAMP)  ## cdk synth with the pinned CDK CLI (offline, no Docker)
	$(CDK) synth --quiet $(STAGE_CONTEXT)

diff: $(STAMP)  ## cdk diff of STAGE's stack against the account of the current AWS credentials
	$(CDK) diff --no-color $(STAGE_CONTEXT) $(STACK)

deploy: $(STAMP)  ## cdk deploy STAGE's stack (Docker builds the training image)
	$(CDK) deploy --require-approval never $(STAGE_CONTEXT) $(STACK)

actionlint: $(STAMP)  ## lint .github/workflows with actionlint (make test runs it too)
	$(BIN)/actionlint

clean:
	rm -rf .conveyor cdk.out .pytest_cache .mypy_cache .ruff_cache
