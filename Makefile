# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: install run test test-postgres migrate worker web clean bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip >/dev/null
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_superuser

# Server (uvicorn, ASGI) and a real Celery worker; Ctrl-C stops both, and so does either one exiting.
run: migrate
	@echo "DICOMweb at http://127.0.0.1:$(PORT)/v2/  (admin: http://127.0.0.1:$(PORT)/admin/)"
	@$(VENV)/bin/celery -A dicomsvc worker --loglevel=INFO --concurrency=2 & worker=$$!; \
	$(VENV)/bin/uvicorn dicomsvc.asgi:application --host 127.0.0.1 --port $(PORT) --no-access-log & web=$$!; \
	stop() { trap - INT TERM; kill -TERM $$worker $$web 2>/dev/null; wait $$worker $$web 2>/dev/null; exit 0; }; \
	trap stop INT TERM; \
	wait -n $$worker $$web; stop

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run >/dev/null
	$(PY) -m pytest

clean:
	rm -rf $(VENV) var

# STOW/WADO throughput and 1 GB STOW memory, ours next to Orthanc (docs/benchmarks.md).
bench: install
	PYTHON=$(PY) bash bench/run_bench.sh
