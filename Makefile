# Ripples — the two commands a user needs: `make demo` (the whole pipeline, with results)
# and `make test` (every test).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help install tools api-tools lint test test-unit test-integration deploy-smoke demo up down status openapi lock bench \
	clean

help:
	@echo "make demo     create .venv, start everything, play a 12-week pilot, print the report"
	@echo "make test     create .venv, install, lint (ruff, mypy) and run every test"
	@echo "make up       start the local stack (broker, PostgreSQL, services)"
	@echo "make down     stop it"
	@echo "make bench    measure throughput, latency and memory (bench/results/*.json)"
	@echo "make openapi  regenerate the committed OpenAPI documents"
	@echo "make tools    install what the deploy and report tests run (promtool, prometheus,"
	@echo "              WeasyPrint's Pango, pdftotext) when missing"
	@echo "make deploy-smoke  run every container of compose and the k8s overlays as local processes"

$(INSTALLED): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing Ripples into $(VENV) …"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt \
		-e '.[dev,local]'
	@touch $@

install: $(INSTALLED)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

PDF_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
	fontconfig poppler-utils

# Tools the deploy tests run that do not come from PyPI: promtool and prometheus, and caddy
# (the compose edge), Debian's packages. kubectl (kustomize) comes with this kind of machine.
# Installed only when missing.
tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v caddy >/dev/null || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "promtool/prometheus/caddy missing: run 'apt-get install prometheus caddy' as root" >&2; exit 1; fi; \
	  echo "Installing prometheus (promtool) and caddy from Debian …"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends prometheus caddy >/dev/null; } || exit 1; }
	@command -v kubectl >/dev/null || { \
	  echo "kubectl missing: the deploy tests render kustomize with 'kubectl kustomize'" >&2; exit 1; }
	@# The PDF report: WeasyPrint's system libraries (Pango, HarfBuzz subsetting, a font) and
	@# poppler's pdftotext, which the report tests read the PDF back with.
	@command -v pdftotext >/dev/null && ldconfig -p | grep -q libpangoft2-1.0.so.0 \
	  && ldconfig -p | grep -q libharfbuzz-subset.so.0 && fc-list | grep -q DejaVu || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "PDF report libraries missing: run 'apt-get install $(PDF_PACKAGES)' as root" >&2; \
	    exit 1; fi; \
	  echo "Installing the PDF report's libraries and poppler-utils from Debian …"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $(PDF_PACKAGES) >/dev/null; } || exit 1; }
	@# The report looked at as a person would (tests/demo/test_screenshots.py,
	@# python -m ripples.demo.screenshots): headless Chromium's screenshots of the HTML; the
	@# employee's page driven through chromedriver by selenium (tests/selfservice).
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "chromium/chromedriver missing: run 'apt-get install chromium chromium-driver' as root" >&2; exit 1; fi; \
	  echo "Installing chromium and chromium-driver (screenshots, the browser tests) from Debian …"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium chromium-driver >/dev/null; } || exit 1; }

# The API document tools the conformance suite runs (tests/conformance/test_tools.py): the
# official AsyncAPI parser and Redocly's linter, pinned in tools/package-lock.json. `npm ci`
# when tools/node_modules is missing; no install scripts run.
API_TOOLS := tools/node_modules/.package-lock.json

$(API_TOOLS):
	@command -v npm >/dev/null || { echo "npm missing: install Node.js 20.19+ and npm" >&2; exit 1; }
	cd tools && npm ci --ignore-scripts --no-audit --no-fund

api-tools: $(API_TOOLS)

test: lint tools api-tools
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit

test-integration: install
	$(BIN)/pytest tests/integration

demo: install
	$(BIN)/ripples demo

bench: install
	$(BIN)/ripples bench

up: install
	$(BIN)/ripples up

down: install
	$(BIN)/ripples down

status: install
	$(BIN)/ripples status

openapi: install
	$(BIN)/python -m services.ingest.openapi > services/ingest/openapi.json
	$(BIN)/python -m services.notifier.openapi > services/notifier/openapi.json
	$(BIN)/python -m services.attribution.openapi > services/attribution/openapi.json

lock: install
	@{ echo "# Every package the project installs, pinned (runtime and dev). Regenerate with: make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^ripples=='; } > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Every Ripples container of docker-compose.yml and both kustomize overlays, run as a local
# process with exactly what the manifests give it, then a small pilot (tests/deploy/test_smoke.py;
# also part of `make test`).
deploy-smoke: install tools
	$(BIN)/pytest tests/deploy/test_smoke.py
