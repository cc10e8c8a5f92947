# Offline workflow: no Pulumi CLI, plugins or cloud credentials needed.
STACK ?= production
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv synth synth-all test lint bench clean

$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

venv: $(STAMP)

synth: $(STAMP)
	$(PY) -m offline.synth --stack $(STACK)

synth-all: $(STAMP)
	$(PY) -m offline.synth --stack production
	$(PY) -m offline.synth --stack staging

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

test: lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m offline.bench

clean:
	rm -rf build .mypy_cache .ruff_cache
