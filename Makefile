# Two entry points for a newcomer: `make demo` and `make test`. Each creates the
# virtualenv and installs the pinned dependency set (constraints.txt) first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install system-deps demo up test lint typecheck compile-pipeline bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# pip byte-compiles every installed file in one process (~80 s of the install here); compileall
	# does the same on every core. Files that do not compile on 3.11 (torch's py312 test helpers) are
	# skipped by both, hence the ignored exit code.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -c constraints.txt -e '.[all,dev]'
	$(PY) -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" > /dev/null || true
	touch $(STAMP)

install: $(STAMP) system-deps

# Debian tools the tests use: kcat as an independent Kafka client, Chromium for the report screenshot.
system-deps:
	@bash scripts/system-deps.sh

demo: install
	$(VENV)/bin/rtml demo

up: install
	$(VENV)/bin/rtml up

# mypy (~30 s without its cache, one core) runs beside the tests' start-up instead of before it;
# either failing fails the target. loadgroup keeps each module (and the shared trained models)
# on one worker: see tests/conftest.py
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy services pipelines > .mypy.out 2>&1 & mypy=$$!; \
	$(PY) -m pytest -q -rs -n 3 --dist loadgroup --no-loadscope-reorder --durations=15; tests=$$?; \
	wait $$mypy; types=$$?; cat .mypy.out; rm -f .mypy.out; \
	test $$tests -eq 0 -a $$types -eq 0

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy services pipelines

compile-pipeline: $(STAMP)
	$(VENV)/bin/rtml pipeline compile

bench: install
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
