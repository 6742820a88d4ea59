# The two commands of the README: `make run` and `make test`. Both set up first.
VENV ?= .venv
PYTEST_ARGS ?=

.PHONY: setup run test lint

setup:
	./scripts/setup.sh

run: setup
	$(VENV)/bin/kva up

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
