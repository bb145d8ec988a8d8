# casesvc — `make run` and `make test` work from a fresh clone with Python 3.11+ and make.
# Installs come from the lock files in requirements/ (pinned, hash-checked); `make lock` refreshes them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# runtime + the test extra (make run, make test, CI); the image installs requirements/main.txt
LOCK := requirements/test.txt
export CASESVC_INSTANCE_PATH ?= $(CURDIR)/instance

# `make lock` only: pip-tools in a venv of its own, so it never enters the locked environment
LOCK_PYTHON ?= python3.11
LOCK_VENV := .venv-lock
PIP_TOOLS_VERSION := 7.6.2
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes \
	--allow-unsafe --all-build-deps --strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host

# the npm tools that check the OpenAPI document from a client's side (tests/clients/): installed by
# `npm ci` from the committed clients/package-lock.json (exact versions), again only when it changes
CLIENTS_STAMP := clients/node_modules/.installed

# The gettext catalogues (README "The API at a glance": languages): the .po files are kept in the
# repository, the .mo files the service reads are compiled from them here (and in the Dockerfile).
CATALOGUES := casesvc/translations
PO_FILES := $(wildcard $(CATALOGUES)/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)
POT := build/messages.pot

.PHONY: run test lint install clients lock openapi messages bench bench-statistics clean

# The venv is rebuilt from scratch whenever the lock or pyproject.toml changes: it then holds
# exactly what the lock names (nothing left over from an older lock), installed with hashes checked.
$(STAMP): $(LOCK) pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

%.mo: %.po $(STAMP)
	$(BIN)/pybabel --quiet compile --input-file $< --output-file $@

install: $(STAMP) $(MO_FILES)

run: $(STAMP) $(MO_FILES)
	@mkdir -p instance
	$(BIN)/casesvc db upgrade
	$(BIN)/casesvc demo seed
	@echo "casesvc on http://127.0.0.1:8000  (API docs: http://127.0.0.1:8000/docs)"
	$(BIN)/casesvc serve --host 127.0.0.1 --port 8000

# One pytest-xdist worker per core (TEST_WORKERS=0: one process), whole files to a worker so that a
# module's served processes start once; on PostgreSQL each worker has a database of its own
# (tests/conftest.py). PYTEST_ARGS picks tests: `make test PYTEST_ARGS="tests/cases -x"`.
TEST_WORKERS ?= auto
test: $(STAMP) $(MO_FILES) $(CLIENTS_STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

$(CLIENTS_STAMP): clients/package.json clients/package-lock.json
	cd clients && npm ci --ignore-scripts --no-audit --no-fund
	@touch $(CLIENTS_STAMP)

clients: $(CLIENTS_STAMP)
# ruff and mypy as pyproject.toml configures them (README: Development, "Lint"); CI runs it first
LINTED := casesvc tests bench migrations
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

$(LOCK_VENV)/bin/pip-compile:
	$(LOCK_PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet pip-tools==$(PIP_TOOLS_VERSION)

# Re-resolves pyproject.toml, keeping the pins it can; `make lock LOCK_ARGS=--upgrade` (or
# `LOCK_ARGS="-P flask"`) takes newer releases. The test lock is held to the runtime lock's pins.
lock: $(LOCK_VENV)/bin/pip-compile
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements/main.txt pyproject.toml
	$(PIP_COMPILE) $(LOCK_ARGS) --extra test --constraint requirements/main.txt \
		--output-file requirements/test.txt pyproject.toml

# Takes the messages of the code into every catalogue (new ones untranslated, changed ones fuzzy):
# translate them in the .po files, then `make install` compiles them. tests/test_i18n.py fails while
# a message has no translation.
messages: $(STAMP)
	@mkdir -p $(dir $(POT))
	$(BIN)/pybabel --quiet extract --mapping-file babel.cfg --add-location file --sort-output --no-wrap \
		--project casesvc --version "$$($(BIN)/python -c 'import casesvc.version as v; print(v.__version__)')" \
		--copyright-holder casesvc --msgid-bugs-address - --output-file $(POT) casesvc
	$(BIN)/pybabel --quiet update --input-file $(POT) --output-dir $(CATALOGUES) --no-wrap --ignore-obsolete --ignore-pot-creation-date
	$(MAKE) install

openapi: $(STAMP)
	$(BIN)/casesvc openapi export --output openapi/openapi.yaml

bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-statistics: $(STAMP)
	$(BIN)/python bench/statistics_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(LOCK_VENV) instance .pytest_cache .ruff_cache .mypy_cache build $(MO_FILES) clients/node_modules
