# Two commands on a fresh machine: `make lab` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8888

.PHONY: venv lab test test-fast chromium soak demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $(STAMP)

## JupyterLab on notebooks/, embedded paper broker by default. Prints the URL (headless-safe).
lab: venv
	$(BIN)/python -m jupyterlab --no-browser --ip=127.0.0.1 --port=$(PORT) --allow-root \
		--ServerApp.root_dir=notebooks

## The whole suite: unit, contract, property and widget tests, the desk in a real browser, the notebooks (nbval).
test: venv chromium
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env

## Debian's chromium for the browser test (Playwright's own browser download cannot work here): installed with
## apt-get when missing (as root). If it still is missing, the browser test is skipped loudly, and under CI=true
## this target fails the run instead.
CHROMIUM := /usr/bin/chromium
chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			echo "make: installing Debian's chromium for the browser test (apt-get)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
				|| echo "make: apt-get could not install chromium" >&2; \
		fi; \
		if [ ! -x "$(CHROMIUM)" ]; then \
			case "$${CI:-}" in [Tt][Rr][Uu][Ee]) \
				echo "make: $(CHROMIUM) is missing and could not be installed (apt-get, as root): CI=true needs the browser test" >&2; \
				exit 1;; \
			esac; \
			echo "make: $(CHROMIUM) is missing (apt-get as root installs it): the browser test will be SKIPPED" >&2; \
		fi; \
	fi

test-fast: venv
	$(BIN)/python -m pytest tests -x -q

## Run notebooks/01 headless and print its positions table.
demo: venv
	$(BIN)/python scripts/demo.py notebooks/01_quickstart.ipynb

## Benchmarks: figures with their floors; prints the floors not met. `make bench CHECK=1` exits non-zero then;
## `make bench BENCH="engine"` runs some of them.
bench: venv
	$(BIN)/python -m bench $(if $(CHECK),--check) $(BENCH)

## Long runs of the crash/restart tests: kill -9 of the paper broker mid-burst (SOAK_TRIALS, default 200) and
## TWS emulator restarts under order flow (SOAK_IB_RESTARTS, default 100).
soak: venv
	WORKBENCH_SOAK_TRIALS=$${SOAK_TRIALS:-200} WORKBENCH_SOAK_IB_RESTARTS=$${SOAK_IB_RESTARTS:-100} \
		$(BIN)/python -m pytest tests/paper/test_kill9.py tests/ib/test_restart_loop.py -q -s --timeout=0

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
