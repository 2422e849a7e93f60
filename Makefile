# vendorflow: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PG := scripts/pg.sh
SETUP := scripts/setup.sh
# The local cluster's URL; an exported DATABASE_URL wins (e.g. a managed PostgreSQL).
DATABASE_URL ?= $(shell $(PG) url)
export DATABASE_URL
CARGO ?= cargo

.PHONY: help setup setup/test setup/contract run test contract lint fmt bench chaos chaos-short db/start db/stop db/reset db/url check-tools
# Prerequisites run in order, even under -j: set-up before the cluster, one apt-get at a time.
.NOTPARALLEL:

help: ## List the targets
	@grep -E '^[a-zA-Z/_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

check-tools:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }

setup: ## Install what make run lacks: PostgreSQL, CA certificates (apt-get; a no-op when present)
	@$(SETUP) run

setup/test: ## Install what make test lacks: the above, Chromium and chromedriver
	@$(SETUP) test

setup/contract: ## Install what make contract lacks: the make run set, and Python 3 with venv
	@$(SETUP) contract

run: check-tools setup db/start ## Run the service with a local Postgres and the sandbox provider
	$(CARGO) run --quiet -- dev

test: check-tools setup/test db/start ## Run every test (starts the local Postgres if needed)
	$(CARGO) test --workspace --all-targets --no-fail-fast
	$(CARGO) test --workspace --doc

# schemathesis (pinned, into .data/contract/venv) against `vendorflow api` on a database of its own.
contract: check-tools setup/contract db/start ## API contract check: schemathesis against a started API, with a backend and an operator token
	@scripts/contract/run.sh

lint: check-tools ## cargo fmt --check and clippy with warnings denied
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

bench: check-tools setup db/start ## Benchmark the engine against the local Postgres and print figures
	$(CARGO) run --release --quiet -- bench

# The chaos proof runs a cluster of its own (under .data/chaos, on a free port), never the one above.
chaos: check-tools setup ## Chaos proof: API, 3 workers, faulty sandbox, kills, a PostgreSQL restart; report (CHAOS_ARGS=--short)
	$(CARGO) run --release --quiet -- chaos $(CHAOS_ARGS)

chaos-short: ## The chaos proof's short form: about two minutes after the build (CI runs it)
	@$(MAKE) --no-print-directory chaos CHAOS_ARGS="--short $(CHAOS_ARGS)"

db/start: ## Start the local PostgreSQL cluster under .data/pg
	@$(PG) start

db/stop: ## Stop the local PostgreSQL cluster
	@$(PG) stop

# The sandbox's state (.data/sandbox, kept by `make run`) goes with the database whose vendors hold
# its organizations' keys. (`scripts/pg.sh reset` alone leaves it; the next `make run` then finds
# it belongs to another database and sets it aside.)
db/reset: ## Stop the local cluster and delete its data and the sandbox's state (.data/sandbox)
	@$(PG) reset
	@rm -rf .data/sandbox && echo "sandbox: state removed"

db/url: ## Print the local cluster's DATABASE_URL
	@$(PG) url
