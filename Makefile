# scalerl: `make demo` trains a small SimbaV2 agent; `make test` runs the test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export MUJOCO_GL ?= egl

.PHONY: install demo test test-slow lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# Small SimbaV2 on cartpole-swingup: 60k frames, ~8 min on 2 CPU cores, eval return ~450-850.
DEMO_FLAGS := --env dmc:cartpole-swingup --agent simbav2 --env-steps 60000 --utd 1 \
	--critic-width 128 --actor-width 64 --eval-every 5000 --eval-episodes 5

demo: install
	$(VENV)/bin/scalerl train $(DEMO_FLAGS) --name demo-$$(date +%Y%m%d-%H%M%S)

# Tests run in parallel workers (pytest-xdist); TEST_WORKERS=0 runs them in this process.
# loadgroup keeps tests marked with the same xdist_group (a shared training run) on one worker.
TEST_WORKERS ?= auto
XDIST := -n $(TEST_WORKERS) --dist loadgroup

test: install
	$(PY) -m pytest -q -m "not slow" $(XDIST)

test-slow: install
	$(PY) -m pytest -q -m slow $(XDIST)

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
