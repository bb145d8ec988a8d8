# casesvc — `make run` and `make test` work from a fresh clone with Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export CASESVC_INSTANCE_PATH ?= $(CURDIR)/instance

.PHONY: run test install openapi bench bench-statistics clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@mkdir -p instance
	$(BIN)/casesvc db upgrade
	$(BIN)/casesvc demo seed
	@echo "casesvc on http://127.0.0.1:8000  (API docs: http://127.0.0.1:8000/docs)"
	$(BIN)/casesvc serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

openapi: $(STAMP)
	$(BIN)/casesvc openapi export --output openapi/openapi.yaml

bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-statistics: $(STAMP)
	$(BIN)/python bench/statistics_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache
