# postback: `make run` starts the service on SQLite; `make test` installs what it needs and
# runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
# The browser tests drive this Chromium (Playwright's own download does not run everywhere).
CHROMIUM := /usr/bin/chromium
# The container image's test builds it with podman on a Debian base made by mmdebstrap.
PODMAN := /usr/bin/podman
MMDEBSTRAP := /usr/bin/mmdebstrap
# The embedding test's page is built from npm packages (svix-react, react, esbuild).
NPM := /usr/bin/npm

.PHONY: run test lint format install bench screenshots clean embed-page svix-js

# The installer: uv (the one on the PATH, else fetched once into .cache/tools by the system's
# pip) resolves and installs in seconds what pip takes most of a minute over, which is most
# of the first `make run`. It only installs; nothing imports it. Where it cannot be fetched
# or fails, the virtualenv's own pip does the same.
TOOLS := .cache/tools
UV := $(or $(shell command -v uv 2>/dev/null),$(TOOLS)/bin/uv)
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check
install_into_venv = $(if $(wildcard $(UV)),$(UV) pip install --quiet --native-tls \
	--python $(BIN)/python $(1) || $(PIP_INSTALL) $(1),$(PIP_INSTALL) $(1))

$(UV):
	-$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(TOOLS) uv

$(BIN)/python: | $(UV)
	if [ -x $(UV) ]; then $(UV) venv --quiet --seed --python $(PYTHON) $(VENV); \
	else $(PYTHON) -m venv $(VENV); fi

# What running needs (`make run`), and everything the tests need on top (`make test`).
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(call install_into_venv,-e .)
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(call install_into_venv,-e '.[test]')
	touch $@ $(RUN_STAMP)

install: $(STAMP)

# Local development delivers to receivers on this machine too, so the SSRF guard is lifted
# (serve says so when it starts); set POSTBACK_ALLOW_PRIVATE_NETWORKS=false to keep it.
run: $(RUN_STAMP)
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
$(NODE) $(NPM) &:
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update && $$SUDO apt-get install -y nodejs npm

svix-js: $(STAMP) $(NODE)
	-$(BIN)/python -m tests.support.node_sdks

$(PODMAN) $(MMDEBSTRAP) &:
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update && $$SUDO apt-get install -y podman mmdebstrap

# The page of tests/web/test_browser_embed.py: `npm ci` of tests/web/embed/package-lock.json
# into .cache/embed/ (again only when the lock file changes) and an esbuild bundle. If npm
# cannot reach its registry the suite still runs, and that test fails saying why (it skips
# only where node and npm are absent, which `make test` installs).
embed-page: $(STAMP) $(NPM)
	-$(BIN)/python -m tests.support.embed_build

# Two test workers: much of the suite waits (on subprocesses, receivers, the database), so
# two processes keep both cores busy. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: $(STAMP) $(CHROMIUM) $(PODMAN) $(MMDEBSTRAP) embed-page svix-js lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup

# PNGs of the web UI's main pages, written to docs/screenshots/.
screenshots: $(STAMP) $(CHROMIUM)
	$(BIN)/python scripts/screenshots.py

# The benchmark suite (under 5 minutes): prints a table and appends it to bench/RESULTS.md.
# Rows run on request, and single rows: `make bench BENCH_ARGS="--only retention"`.
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .cache
