# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export FAPIAO_VAR_DIR ?= $(CURDIR)/var
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/fapiao

.PHONY: run test install install-dev messages lint typecheck unit test-sqlite test-postgres test-ha serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed messages
install-dev: $(VENV)/.installed-dev messages

# Translation catalogues are compiled with Babel: no GNU gettext needed.
messages: $(VENV)/.installed
	$(BIN)/pybabel compile --statistics -d src/fapiao/locale -D django

run: install
	$(BIN)/fapiao migrate --noinput
	$(BIN)/fapiao collectstatic --noinput --verbosity 0
	$(BIN)/fapiao demo
	@echo "Fapiao Vault: http://127.0.0.1:8000  (API docs: /api/v1/docs, admin: /admin/)"
	FAPIAO_WRITE_BATCHING=1 $(BIN)/gunicorn --config python:fapiao.gunicorn_conf fapiao.wsgi

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: install-dev
	$(BIN)/mypy

test-sqlite: install-dev
	$(BIN)/pytest

# The integration tests and the tamper tests again on PostgreSQL.  Under CI (CI=true) a missing server fails the
# run; on a laptop without one the pass is skipped with a message.
test-postgres: install-dev
	@status=0; $(BIN)/python tests/postgres_gate.py "$(PG_TEST_URL)" || status=$$?; \
	if [ $$status -eq 0 ]; then \
		FAPIAO_DATABASE_URL="$(PG_TEST_URL)" FAPIAO_TEST_BACKEND=postgres $(BIN)/pytest tests/integration tests/faults/test_tamper.py; \
	elif [ $$status -ne 1 ]; then exit $$status; fi

# The high-availability tests (tests/ha): a pg_auto_failover cluster (a monitor, a primary, two
# standbys) and two app servers on loopback ports, failovers under load (~5 minutes).  Under CI a
# missing pg_autoctl fails the run; on a laptop without it the pass is skipped with a message.
test-ha: install-dev
	@if command -v pg_autoctl >/dev/null 2>&1; then \
		FAPIAO_TEST_HA=1 $(BIN)/pytest tests/ha && cat artifacts/ha/measurements.json; \
	elif [ "$$CI" = "true" ]; then \
		echo "CI: tests/ha needs pg_autoctl (Debian: pg-auto-failover-cli, postgresql-15-auto-failover)" >&2; exit 1; \
	else \
		echo "SKIPPED: tests/ha: pg_autoctl is not installed (Debian: pg-auto-failover-cli, postgresql-15-auto-failover). CI runs it."; \
	fi

test: lint typecheck test-sqlite test-postgres test-ha

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
