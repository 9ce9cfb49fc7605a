# Quench: `make run` to try it, `make test` to check it. Both set everything up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export DEBUG ?= true

.PHONY: run test lint format stop bench-ingest bench-grouping bench-retrieval bench-pipeline bench-runbooks migrate clean

$(STAMP): requirements/base.txt requirements/test.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/test.txt
	@touch $(STAMP)

# A local .env with a generated SECRET_KEY (kept across runs), so that manage.py, gunicorn and
# the cluster work from a plain shell too. Production sets its own environment instead.
.env:
	@$(PYTHON) -c "import secrets; print('# Written by make run for local use; the environment wins over it.'); print('DEBUG=true'); print('SECRET_KEY=' + secrets.token_urlsafe(50))" > .env
	@echo "Wrote .env (a generated SECRET_KEY and DEBUG=true for this checkout)."

migrate: $(STAMP) .env
	$(PY) manage.py migrate --no-input

run: migrate
	@bash scripts/ensure-sandbox.sh
	$(PY) manage.py reembed --only-stale
	$(PY) manage.py ensure_admin
	$(PY) manage.py seed_demo
	$(PY) manage.py import_knowledge knowledge/runbooks
	$(PY) manage.py setup_demo_service
	@bash scripts/run.sh $(HOST) $(PORT)

test: $(STAMP)
	@bash scripts/ensure-browser.sh
	@bash scripts/ensure-sandbox.sh
	$(PY) -m ruff check .
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

stop:
	@test -x $(PY) && $(PY) -m config.database stop || echo "nothing to stop"

bench-ingest: migrate
	$(PY) bench/ingest.py

bench-retrieval: migrate
	$(PY) bench/retrieval.py

bench-pipeline: migrate
	$(PY) bench/pipeline.py --rounds 3

bench-fixes: migrate
	$(PY) bench/fixes.py

bench-grouping: $(STAMP)
	$(PY) -m pip install --quiet -r requirements/bench.txt
	$(PY) bench/grouping.py

# Runbook retrieval on ../shared/data/runbooks (or RUNBOOKS_DATA=DIR), next to rank-bm25.
bench-runbooks: $(STAMP)
	$(PY) -m pip install --quiet -r requirements/bench.txt
	$(PY) bench/runbooks.py $(if $(RUNBOOKS_DATA),--data $(RUNBOOKS_DATA))

clean: stop
	rm -rf $(VENV) var
