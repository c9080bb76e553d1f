# Entry points for developers and CI. `make test` is what .ci/run runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := clickhouse-server clickhouse-client
BROWSER_PACKAGES := chromium chromium-driver fonts-liberation  # the dashboard's browser test

.PHONY: venv system-deps check test demo docs clean

## venv: .venv with phasegate editable and its local+dev extras (again only when pyproject.toml changes)
venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[local,dev]'
	touch $@

## system-deps: as root, install Debian's ClickHouse server (18.16), chromium + chromium-driver, Node.js/npm (the durable broker's local S3) and python3-venv where missing
system-deps:
	@missing=""; \
	if ! command -v clickhouse-server >/dev/null 2>&1 && [ ! -x /usr/sbin/clickhouse-server ]; then \
		missing="$(APT_PACKAGES)"; fi; \
	if ! $(PYTHON) -c 'import ensurepip' >/dev/null 2>&1; then missing="$$missing python3-venv"; fi; \
	if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		missing="$$missing $(BROWSER_PACKAGES)"; fi; \
	if ! command -v npm >/dev/null 2>&1; then missing="$$missing nodejs npm"; fi; \
	if [ -z "$$missing" ]; then echo "system-deps: nothing missing, skipped"; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "system-deps: not root, skipped (missing:$$missing; tests that need them will be skipped)"; \
	else \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

## check: lint and the tests that need no service (no broker, ClickHouse server, Node or Docker) and are not slow simulations, on every core
check: venv
	$(BIN)/ruff check .
	$(BIN)/pytest -n auto -m "not service and not slow" -q --durations=5

## test: lint and the whole suite on both cores, a file at a time per worker, the longest first (each worker starts its own services from the test fixtures)
test: system-deps venv
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15

## demo: the end-to-end demo (no apt, no root needed)
demo: venv
	$(BIN)/phasegate demo

## docs: the docs site from docs/ into build/site, the CLI and contract references generated
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV)
