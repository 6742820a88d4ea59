# The two commands of the README: `make run` and `make test`. Both set up first.
VENV ?= .venv
PYTEST_ARGS ?=

.PHONY: setup run test lint soak

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

# A short soak of the whole pipeline (CI runs it after the tests): no process may
# die, leak fds or threads, or let frame age drift; RSS growth is printed.
soak: setup
	$(VENV)/bin/python bench/soak.py --duration 240 --warmup 60 --check --max-rss-growth 15
