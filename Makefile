# Two commands matter: `make run` (the bot) and `make test` (everything CI checks).
# Every target sets itself up: virtualenv, pinned install, training when data changed.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
MODEL := models/shop.tar.gz
# The model depends on everything `rasa train` reads; make retrains only when one changed.
TRAINING_INPUTS := config.yml domain.yml $(shell find data -type f -name '*.yml' -not -name catalog.yml -not -name shop.yml)
export PYTHONPATH := $(CURDIR)
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export RASA_TELEMETRY_ENABLED := false
# The project's own bytecode is written (to __pycache__, ignored by git) even where the shell
# sets PYTHONDONTWRITEBYTECODE: without it every test worker, server and tool compiles our
# modules again, and pytest rewrites every test module again (collecting: 8 s -> 4 s a worker).
export PYTHONDONTWRITEBYTECODE :=

.PHONY: help setup train run sandbox shell test test-fast lint typecheck pytest browser validate story-test bench clean lock flow-cli migrate outbox privacy chat orders

help:
	@echo "make run     start the bot (action server :5055 + Rasa server :5005); the sandbox"
	@echo "             (emulated WhatsApp + Stripe, chat page on :5080) without their settings"
	@echo "make sandbox the sandbox, whatever the settings: no real messages or payments"
	@echo "make test    lint, type-check, unit/integration tests, data validation, story tests"
	@echo "make test-fast  the tests that start no server, in under a minute"
	@echo "make shell   talk to the bot in the terminal"
	@echo "make train   train the model if data/config changed"
	@echo "make bench   run the benchmarks and print their figures"
	@echo "make clean   remove the virtualenv, models and local databases"

setup: $(INSTALLED)

$(INSTALLED): requirements.txt requirements-dev.txt constraints.txt scripts/find-python.sh
	@python=$$(scripts/find-python.sh) || exit 1; \
	if [ ! -x $(BIN)/python ]; then echo "creating $(VENV) with $$python"; "$$python" -m venv $(VENV); fi
	@# uv (pinned in constraints.txt) installs the locked set in ~30 s from its cache, where
	@# pip takes ~2.5 min; the packages and versions are the same. uv reads UV_DEFAULT_INDEX
	@# (not pip.conf) when packages must come from a private mirror. --compile-bytecode: the
	@# .pyc files are written once here (~15 s), so no process compiles Rasa and TensorFlow
	@# again where PYTHONDONTWRITEBYTECODE is set (it is on this team's machines): importing
	@# rasa.server takes 5 s instead of 11.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$$(grep '^uv==' constraints.txt)"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-dev.txt -c constraints.txt
	@touch $@

train: $(MODEL)

# `rasa train`, through scripts/rasa_cli.py: ~5 s faster (see there).
$(MODEL): $(INSTALLED) $(TRAINING_INPUTS)
	$(BIN)/python -m scripts.rasa_cli train --fixed-model-name shop --out models --data data --config config.yml --domain domain.yml
	@touch $@

run: $(MODEL)
	@scripts/run.sh serve

sandbox: $(MODEL)
	@scripts/run.sh sandbox

shell: $(MODEL)
	@scripts/run.sh shell

# Lint and type-check run while the model trains (training keeps one core busy); pytest then
# runs every test, the data validation and the conversation tests among them.
test: $(INSTALLED)
	@$(MAKE) --no-print-directory --jobs=3 --output-sync=target lint typecheck train
	@$(MAKE) --no-print-directory pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(INSTALLED)
	$(BIN)/mypy

# Three workers on this machine's two cores: most live tests wait on their servers, so a
# third overlaps them (measured in one session: 226 s with two, 160-182 s with three, 170 s
# with four). Tests sharing a module's or the session's servers stay on one worker, the long
# start-ups go first (tests/support/worker_groups.py). Tests that start servers are marked
# `live` (tests/support/live_marker.py).
PYTEST_WORKERS ?= 3
XDIST := -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder
pytest: $(MODEL) browser
	$(BIN)/pytest $(XDIST)

# The edit-test loop: every test that needs no server (pytest -m "not live"), no lint. Three
# workers on two cores: these tests wait on PostgreSQL and on timeouts, so a third overlaps
# them (measured: 49-51 s against 55-65 s with two; four are slower again).
FAST_WORKERS ?= 3
test-fast: $(MODEL)
	$(BIN)/pytest -m "not live" -n $(FAST_WORKERS) --dist loadgroup --no-loadscope-reorder

# The browser test drives Debian's Chromium headless; installed here when missing (as root).
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
browser:
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(CHROMEDRIVER) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Chromium for the browser test"; \
			apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
		else \
			echo "The browser test needs $(CHROMIUM) and $(CHROMEDRIVER): install the Debian"; \
			echo "packages chromium and chromium-driver (sudo apt-get install chromium chromium-driver)."; \
			exit 1; \
		fi; \
	fi

validate: $(INSTALLED)
	$(BIN)/python -m scripts.validate_data

# The conversation tests in tests/stories (`rasa test core --e2e`), also part of `make pytest`.
story-test: $(MODEL)
	$(BIN)/pytest -p no:cacheprovider -s tests/test_conversation_stories.py

bench: $(MODEL)
	$(BIN)/python -m bench

lock: $(INSTALLED)
	$(BIN)/uv pip freeze --python $(BIN)/python --exclude-editable > constraints.txt

clean:
	rm -rf $(VENV) models var .mypy_cache .pytest_cache .ruff_cache .import_linter_cache

# WhatsApp Flows operator tooling, e.g. make flow-cli ARGS="flow-request --action ping"
flow-cli: $(INSTALLED)
	$(BIN)/python -m scripts.flow_cli $(ARGS)

# Schema migrations for the connector's tables (also run at every start; safe to repeat).
migrate: $(INSTALLED)
	$(BIN)/python -m scripts.migrate

# Order notifications waiting or dead-lettered, e.g. make outbox ARGS="list --status dead"
outbox: $(INSTALLED)
	$(BIN)/python -m scripts.outbox_cli $(ARGS)

# Customers' data: keygen, export/erase --customer <wa_id>, purge --older-than 90d, reencrypt,
# e.g. make privacy ARGS="export --customer 4915112345678"
privacy: $(INSTALLED)
	$(BIN)/python -m scripts.privacy_cli $(ARGS)

# Hand-overs to a person: list, reply <customer-ref> <text…>, resume <customer-ref>,
# e.g. make chat ARGS="reply H-7KQ2M9XA Hello, this is Anna from the shop"
chat: $(INSTALLED)
	$(BIN)/python -m scripts.chat_cli $(ARGS)

# Paid orders, through the running bot's orders API (ORDERS_API_TOKEN, ORDERS_API_URL):
# list [--status paid], ship <order> --carrier DHL --tracking-url https://…, deliver <order>,
# refund <order> [--amount <minor units>] [--key K],
# e.g. make orders ARGS="ship ORD-7KQ2M9XA --carrier DHL --tracking-url https://dhl.example/1"
orders: $(INSTALLED)
	$(BIN)/python -m scripts.orders_cli $(ARGS)
