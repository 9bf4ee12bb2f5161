# postback: `make run` starts the service on SQLite; `make test` installs what it needs and
# runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The browser tests drive this Chromium (Playwright's own download does not run everywhere).
CHROMIUM := /usr/bin/chromium
# The container image's test builds it with podman on a Debian base made by mmdebstrap.
PODMAN := /usr/bin/podman
MMDEBSTRAP := /usr/bin/mmdebstrap

.PHONY: run test lint format install bench screenshots clean svix-js

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Local development delivers to receivers on this machine too, so the SSRF guard is lifted
# (serve says so when it starts); set POSTBACK_ALLOW_PRIVATE_NETWORKS=false to keep it.
run: $(STAMP)
	POSTBACK_ALLOW_PRIVATE_NETWORKS=$${POSTBACK_ALLOW_PRIVATE_NETWORKS:-true} $(BIN)/postback serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

$(CHROMIUM):
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update && $$SUDO apt-get install -y chromium

# The svix JavaScript SDKs (1.x and 2.x from npm) that tests/api/test_svix_js_sdk.py drives
# through node, installed into .cache/svix-js/.
NODE := /usr/bin/node
$(NODE):
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update && $$SUDO apt-get install -y nodejs npm

svix-js: $(STAMP) $(NODE)
	$(BIN)/python -m tests.support.node_sdks

$(PODMAN) $(MMDEBSTRAP) &:
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update && $$SUDO apt-get install -y podman mmdebstrap

test: $(STAMP) $(CHROMIUM) $(PODMAN) $(MMDEBSTRAP) svix-js lint
	$(BIN)/pytest -q

# PNGs of the web UI's main pages, written to docs/screenshots/.
screenshots: $(STAMP) $(CHROMIUM)
	$(BIN)/python scripts/screenshots.py

# The benchmark suite (under 5 minutes): prints a table and appends it to bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
