# Two entry points: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-offline report-screenshot test test-slow lint typecheck vectors bench bench-documents clean \
	browser console-screenshots

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or run: make PYTHON=python3 ...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The demo ends with the supervisor's oversight report, kept in build/oversight/report/.
AUDIT_DIR := build/oversight
CHROMIUM ?= chromium
CHROMIUM_FLAGS := --headless --no-sandbox --disable-gpu --disable-background-networking \
	--disable-component-update --disable-sync --no-first-run --hide-scrollbars

demo: $(STAMP)
	rm -rf $(AUDIT_DIR)
	$(BIN)/python examples/networked_cell.py --audit-dir $(AUDIT_DIR)

# docs/oversight-report.png: the demo's report as a browser shows it (Debian: apt-get install chromium).
report-screenshot: demo
	$(CHROMIUM) $(CHROMIUM_FLAGS) --window-size=1160,3500 \
		--screenshot=$(CURDIR)/docs/oversight-report.png file://$(CURDIR)/$(AUDIT_DIR)/report/report.html

demo-offline: $(STAMP)
	$(BIN)/python examples/offline_cell.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Headless Chromium for the console's browser tests (tests/console/), from Debian's packages.
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
		echo "installing chromium and chromium-driver"; \
		$$(command -v sudo) apt-get update -q && \
		$$(command -v sudo) apt-get install -y -q chromium chromium-driver; }

# Two workers, one per core of the reference machine; a test module stays on one worker
# (--dist loadfile), so its module-scoped hubs and gateways start once.
test: lint typecheck browser
	$(BIN)/python -m pytest -m "not slow" -n 2 --dist loadfile

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

vectors: $(STAMP)
	$(BIN)/python specs/generate_vectors.py specs/vectors
	$(BIN)/python specs/generate_schemas.py specs/schemas

bench: $(STAMP)
	$(BIN)/python bench/bench_envelope.py

# Documents of 1, 64 and 256 MiB gateway to gateway through the hub, on SQLite and PostgreSQL
# (127.0.0.1:5432, or LIVCR_TEST_PG_DSN): end-to-end time and each process's peak memory.
bench-documents: $(STAMP)
	$(BIN)/python bench/bench_documents.py

# The operator's console, page by page, in docs/console/ (linked from the README).
console-screenshots: $(STAMP) browser
	$(BIN)/python tests/console/screenshots.py docs/console

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
