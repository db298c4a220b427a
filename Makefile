# The two set-up commands: `make serve` and `make test`. Both install what they need.
PORT ?= 8000
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
FEDSX_BASE_URL ?= http://127.0.0.1:$(PORT)

.PHONY: serve test lint bench worker beat clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]'
	touch $(STAMP)

## Serve a working node on the embedded default (SQLite, tasks in process).
serve: export FEDSX_BASE_URL := $(FEDSX_BASE_URL)
serve: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py flows register
	$(PY) manage.py create_actor demo --exists-ok
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

## Run the whole test suite (against DATABASE_URL / CELERY_BROKER_URL when set).
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

worker: $(STAMP)
	$(VENV)/bin/celery -A fedsx.server worker --loglevel=INFO --pool threads --concurrency 8

beat: $(STAMP)
	$(VENV)/bin/celery -A fedsx.server beat --loglevel=INFO

clean:
	rm -rf $(VENV) data .pytest_cache
