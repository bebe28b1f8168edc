# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# make dashboard: the last COMMITS commits; BENCH=full for the whole parameter grid (hours on
# 2 cores; smoke: small sizes); QUICK=0 for asv's full sampling instead of one call each;
# OFFLINE=1 to serve the page's scripts from .asv/html/vendor (npm pack) instead of CDNs.
COMMITS ?= 1
BENCH ?= smoke
QUICK ?= 1
OFFLINE ?= 0

.PHONY: demo test lint bench dashboard goals training-goals compare docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,demo]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m rootsolve_optim.demo

test: $(STAMP)
	$(VENV)/bin/ruff check src tests asv_benchmarks
	$(PY) -m pytest -q

compare: $(STAMP)
	$(PY) -m rootsolve compare

bench: $(STAMP)
	$(PY) -m asv_benchmarks.suite bench

dashboard: $(STAMP)
	$(PY) -m asv_benchmarks.suite dashboard --commits $(COMMITS) --mode $(BENCH) \
		$(if $(filter 0,$(QUICK)),--no-quick,) $(if $(filter 1,$(OFFLINE)),--offline,)

goals: $(STAMP)
	$(PY) -m asv_benchmarks.goals

training-goals: $(STAMP)
	$(PY) -m asv_benchmarks.training_goals

docs: $(STAMP)
	$(PY) -m pip install -q -e ".[docs]"
	$(PY) -m sphinx -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

clean:
	rm -rf $(VENV) .asv .pytest_cache .hypothesis
