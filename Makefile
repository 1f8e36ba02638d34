# Two commands do all the set-up (README): `make demo` and `make test`. Both create .venv
# and install the package with its pinned dependencies first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= cpu,dev
# Slow end-to-end tests run in CI (CI=true) or with SLOW=1.
ifeq ($(CI),true)
PYTEST_MARK :=
else ifeq ($(SLOW),1)
PYTEST_MARK :=
else
PYTEST_MARK := -m "not slow"
endif

.PHONY: install test bench clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==24.3.1" "setuptools==69.5.1" "wheel==0.42.0"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_MARK) tests

bench: $(STAMP)
	$(PY) bench/bench_models.py --output docs/benchmarks.md

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
