# Two commands: `make run` and `make test`. Everything else is installed by them.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
PORT ?= 8000

.PHONY: run test test-fast lint clean

$(VENV)/.python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	touch $@

$(VENV)/.installed-run: $(VENV)/.python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

# `make run PORT=8080` serves another port (e-mail links follow it).
run: $(VENV)/.installed-run
	$(BIN)/icli run --port $(PORT)

# One test process per core, and one more (pytest-xdist): many tests wait on processes they
# started (worker, gunicorn, LibreOffice, Chromium), and the extra process uses that time
# (4 min 46 s against 5 min 06 s on 2 cores). Each has its own database and Redis database.
# An idle process takes tests queued for another (two tests of a minute or more would
# otherwise end the run on one process); the slowest tests are listed at the end.
TEST_PROCESSES ?= $(shell $(BIN)/python -c 'import os; print((os.cpu_count() or 1) + 1)')
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist worksteal --durations=15 $(PYTEST_ARGS)

# The inner loop: no browser, no LibreOffice, no test that starts processes (under a minute).
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n auto -m "not slow and not browser and not pdf" $(PYTEST_ARGS)

# ruff, then the import contracts (layers and forbidden imports: .importlinter).
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
