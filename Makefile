# apigw.ops developer entry points. Every target installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv

.PHONY: help bootstrap main teardown test sanity units integration crosschecks roles lint docs build bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

bootstrap: ## venv + pinned pip packages + system packages (apt when root)
	scripts/bootstrap.sh dev

main: ## the main job: deploy the local stack, health check, tour of the runbook
	scripts/main-job.sh

teardown: ## stop and remove the local stack
	scripts/main-job.sh --teardown

test: ## the whole test suite (what CI runs)
	scripts/test.sh

sanity: ## ansible-test sanity
	scripts/test.sh bootstrap sanity

units: ## ansible-test units (real redis-server processes)
	scripts/test.sh bootstrap units

integration: ## ansible-test integration (real redis-server processes)
	scripts/test.sh bootstrap integration

crosschecks: ## gateway tests, jose/openssl interop
	scripts/test.sh bootstrap crosschecks

roles: ## molecule default scenario
	scripts/test.sh bootstrap roles

lint: ## ruff, ansible-lint --profile production
	scripts/test.sh bootstrap ruff lint

docs: ## antsibull-docs lint-collection-docs, changelog lint
	scripts/test.sh bootstrap docs

build: ## ansible-galaxy collection build + galaxy-importer
	scripts/test.sh bootstrap build

bench: ## benchmarks in bench/ (minutes; not part of test)
	scripts/bootstrap.sh dev && for b in bench/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done

clean: ## remove build output (keeps .venv)
	rm -rf build tests/output
