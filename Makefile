# `make preview` and `make test` work on a fresh machine: each sets up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: preview test test-fast lint bench bench-smoke clean

$(BIN)/python:
	@echo "Creating $(VENV) (a Python virtual environment for this project)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.base: pyproject.toml | $(BIN)/python
	@echo "Installing blog-digest and its dependencies into $(VENV) (the first time takes a minute or two)..."
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	@echo "Installing blog-digest with its test tools into $(VENV) (the first time takes a few minutes)..."
	$(BIN)/pip install --quiet -e '.[test,postgres]'
	touch $@ $(VENV)/.base

# The issue `digest send` would send next; when it would send nothing (the sample feed's
# posts grow old), every post of the feed instead, and it says so.
preview: $(VENV)/.base
	$(BIN)/digest preview --or-all --out out

# The tests write bytecode even where PYTHONDONTWRITEBYTECODE is set: without it pytest
# rewrites the asserts of every test module in every run (7 s of CPU, in each worker) and
# each `digest` process a test starts compiles the package again. __pycache__ is ignored by git.
TEST_ENV := PYTHONDONTWRITEBYTECODE=

# Every test, the slow ones (Chromium, PostgreSQL, subprocesses, the wheel) included.
test: $(VENV)/.test
	$(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

# The quick tests only, on two workers (under a minute on two cores): for running often while working.
test-fast: $(VENV)/.test
	$(TEST_ENV) $(BIN)/python -m pytest -m "not slow" -q -n 2 $(PYTEST_ARGS)

# ruff (pyflakes, pycodestyle, imports, bugbear...) on everything; mypy --strict on the package.
lint: $(VENV)/.test
	$(BIN)/ruff check digest tests bench
	$(BIN)/mypy

bench: $(VENV)/.test
	$(BIN)/python bench/preview.py
	$(BIN)/python bench/send.py
	$(BIN)/python bench/subscribers_import.py
	$(BIN)/python bench/inbox.py

# A quick run of the send benchmark (tiny N), so that CI notices when it breaks.
bench-smoke: $(VENV)/.test
	$(BIN)/python bench/send.py --n 200 --trials 1 --memory-n 0 --naive-n 10

clean:
	rm -rf $(VENV) out outbox .pytest_cache
