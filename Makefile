# liqrisk — every target creates .venv and installs the project by itself on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install serve test bench lint fuzz loadtest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 api core backtest scripts >/dev/null
	$(BIN)/python -m core.warmup
	$(BIN)/python -m backtest.warmup
	touch $(STAMP)

install: $(STAMP)

# the API, one job worker process per core and (unless LIQRISK_BROKER_URL names one) a local Redis, together
serve: $(STAMP)
	@[ -n "$$LIQRISK_BROKER_URL" ] || command -v redis-server >/dev/null || scripts/ensure-redis.sh
	@$(BIN)/python -m compileall -q -j 0 api core backtest scripts >/dev/null  # sources edited since install
	LIQRISK_BIND=$(HOST):$(PORT) $(BIN)/python scripts/serve.py

test: $(STAMP)
	@command -v redis-server >/dev/null || scripts/ensure-redis.sh || \
		echo "redis-server unavailable: the shared rate-limit test will skip"
	@scripts/ensure-chromium.sh || echo "chromium unavailable: the browser tests (tests/browser) will skip"
	@scripts/ensure-client-tools.sh || echo "client generators not installed: the generated-client tests will say why"
	$(BIN)/python -m pytest

# schemathesis over every operation with 200 examples per operation and phase (the test run uses 15)
fuzz: $(STAMP)
	LIQRISK_FUZZ_EXAMPLES=200 $(BIN)/python -m pytest tests/http_api/test_spec.py -k conforms

bench: $(STAMP)
	mkdir -p .benchmarks
	$(BIN)/python -m pytest tests/bench --benchmark-enable --benchmark-only \
		--benchmark-json=.benchmarks/latest.json --benchmark-columns=min,median,mean,max,rounds
	$(BIN)/python tests/bench/report.py .benchmarks/latest.json

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile
	scripts/ensure-client-tools.sh node
	.tools/node/node_modules/.bin/redocly lint --format=stylish openapi.yaml

clean:
	rm -rf $(VENV) .benchmarks .pytest_cache .hypothesis .run
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

loadtest: $(STAMP)
	$(BIN)/python scripts/loadtest.py
