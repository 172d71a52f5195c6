# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed
# glibc malloc for the server (see dicomsvc/malloc.py): one arena, and freed buffers below
# 4 MiB (blobs, STOW chunks) kept for reuse instead of being mapped afresh for each request,
# with at most 16 MiB free at the arena's top. Values from the environment win.
MALLOC_ARENA_MAX ?= 1
MALLOC_MMAP_THRESHOLD_ ?= 4194304
MALLOC_TRIM_THRESHOLD_ ?= 16777216
MALLOC_ENV := MALLOC_ARENA_MAX=$(MALLOC_ARENA_MAX) MALLOC_MMAP_THRESHOLD_=$(MALLOC_MMAP_THRESHOLD_) \
	MALLOC_TRIM_THRESHOLD_=$(MALLOC_TRIM_THRESHOLD_)

.PHONY: install run test test-postgres migrate worker web clean bench drill

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip >/dev/null
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_superuser

# Server (uvicorn, ASGI) and a real Celery worker; Ctrl-C stops both, and so does either one
# exiting. Stopping escalates to SIGKILL after RUN_STOP_GRACE_SECONDS (dicomsvc/run_both.sh).
run: migrate
	@echo "DICOMweb at http://127.0.0.1:$(PORT)/v2/  (admin: http://127.0.0.1:$(PORT)/admin/)"
	@dicomsvc/run_both.sh "$(VENV)/bin/celery -A dicomsvc worker --loglevel=INFO --concurrency=2" \
	  "env $(MALLOC_ENV) $(VENV)/bin/uvicorn dicomsvc.asgi:application --host 127.0.0.1 --port $(PORT) --no-access-log"

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) manage.py makemigrations --check --dry-run >/dev/null
	$(PY) -m pytest

# The whole server under abuse: fuzzing, SIGKILLs, races; checks invariants (docs/drills.md).
# SQLite always; PostgreSQL + Redis too when DRILL_DATABASE_URL and DRILL_BROKER_URL are set.
drill: install
	$(PY) -m drills

clean:
	rm -rf $(VENV) var

# STOW/WADO throughput and 1 GB STOW memory, ours next to Orthanc (docs/benchmarks.md).
bench: install
	PYTHON=$(PY) bash bench/run_bench.sh
