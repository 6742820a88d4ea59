# The two commands of the README: `make run` and `make test`. Both set up first.
VENV ?= .venv
PYTEST_ARGS ?=

.PHONY: setup setup-run run test test-fast lint soak bench test-deploy

# Everything `make test` needs (and `make run`).
setup:
	./scripts/setup.sh test

# Only what `kva up` needs: no TensorFlow (the gRPC extra), no test tools.
setup-run:
	./scripts/setup.sh run

run: setup-run
	$(VENV)/bin/kva up

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The unit tests only (no broker, no browser, no child processes), well under a minute, for
# an already set-up checkout: no setup.sh. A test that starts a child process without being
# marked for it fails here (--forbid-subprocess), so the fast loop stays fast.
FAST = not integration and not browser and not slow and not faults and not subprocess
test-fast:
	$(VENV)/bin/python -m pytest -q -m "$(FAST)" --forbid-subprocess $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# A short soak of the whole pipeline (CI runs it after the tests): no process may
# die, leak fds or threads, or let frame age drift; RSS growth is printed.
soak: setup
	$(VENV)/bin/python bench/soak.py --duration 240 --warmup 60 --check --max-rss-growth 15

# Every benchmark of issue 19 in turn on a quiet machine (refused when busy unless
# BENCH_ARGS=--force): one table of ratios, written to docs/benchmarks.md with its charts.
# BENCH_ARGS=--quick is a smoke test of seconds per bench (not a measurement, not written).
BENCH_ARGS ?=
bench: setup
	$(VENV)/bin/python bench/all.py $(BENCH_ARGS)

# The deployment files run for real (a real Kubernetes control plane with kwok nodes):
# builds what it needs once into ~/.cache/kva, then tests/deploy/real/.
test-deploy: setup
	./scripts/test-deploy.sh
