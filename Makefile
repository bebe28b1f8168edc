# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench goals training-goals compare docs clean

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
	$(VENV)/bin/asv machine --yes --machine local >/dev/null
	$(VENV)/bin/asv run --python=same --quick --machine local --show-stderr

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
