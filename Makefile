# scalerl: `make demo` trains a small SimbaV2 agent; `make test` runs the test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export MUJOCO_GL ?= egl
export XLA_FLAGS ?= --xla_cpu_multi_thread_eigen=true

.PHONY: install demo test test-slow lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: install
	$(VENV)/bin/scalerl train --env dmc:cartpole-swingup --agent simbav2 --preset demo --name demo-$$(date +%Y%m%d-%H%M%S)

test: install
	$(PY) -m pytest -q -m "not slow"

test-slow: install
	$(PY) -m pytest -q -m slow

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: install
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: install
	$(PY) benchmarks/update_throughput.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
