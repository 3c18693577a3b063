# README's two commands, `make demo` and `make test`, work on a fresh machine:
# the first target that needs the virtualenv creates it and installs the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test chaos lint bench schemas clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ledger demo

test: $(STAMP)
	$(BIN)/pytest

# The long chaos runs: the full seeded fault run (>= 100,000 facts, >= 20 SIGKILLs)
# and >= 10,000 fuzzed messages; `make test` runs a short slice of each.
chaos: $(STAMP)
	$(BIN)/pytest -m chaos tests/chaos -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/contacts.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/rebuild.py
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/close.py

schemas: $(STAMP)
	$(BIN)/ledger schemas

# The embedded PostgreSQL servers outlive the commands that started them (the next
# command reuses them): stop them before deleting their folders, so none is orphaned.
clean:
	if [ -x $(BIN)/ledger ] && [ -d .ledger ]; then LEDGER_HOME=.ledger $(BIN)/ledger stop-embedded; fi
	rm -rf $(VENV) .ledger .pytest_cache .mypy_cache .ruff_cache
