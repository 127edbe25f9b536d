# Comic Identity: `make run` serves the app, `make test` runs the tests. Each installs what is missing.
#   make run                 real SDXL (first run downloads ~7 GB; a CUDA GPU is recommended)
#   make run PRESET=tiny     offline, random weights, any laptop: shows the flow, not faces
#   make test                installs dev packages (+ Debian's chromium when root), checks the import
#                            floors (lint-imports) and runs pytest

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PRESET ?=
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup setup-dev browser run test

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(PY)
	$(PY) -m pip install -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

setup: $(VENV)/.runtime-installed

setup-dev: $(VENV)/.dev-installed

# Debian's chromium for the browser tests (never `playwright install`: it downloads a browser).
browser:
	@if command -v chromium >/dev/null 2>&1; then echo "chromium present"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium not installed and not root: browser tests will be skipped"; fi

run: setup
	$(PY) app.py $(if $(PRESET),--preset $(PRESET)) $(ARGS)

# lint-imports: the folder floors and no-circles contracts of .importlinter (docs/ARCHITECTURE.md)
test: setup-dev browser
	$(VENV)/bin/lint-imports --no-cache
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)
