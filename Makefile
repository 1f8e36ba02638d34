# Two commands do all the set-up (README): `make demo` and `make test`. Both create .venv
# and install the package (pyproject.toml) with the tested versions of its dependencies
# (constraints.txt) first; `make test` and `make install` also build Horovod, which the demo
# does not use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= cpu,dev,onnx
# Slow end-to-end tests run in CI (CI=true) or with SLOW=1.
ifeq ($(CI),true)
PYTEST_MARK :=
else ifeq ($(SLOW),1)
PYTEST_MARK :=
else
PYTEST_MARK := -m "not slow"
endif

.PHONY: install data test demo demo-record bench clean

# Fashion-MNIST (the ranking benchmark's data) from Debian's package dataset-fashion-mnist:
# installed when missing and we are root (CI and these machines are), else one line saying how.
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

HVD_STAMP := $(VENV)/.horovod
# horovod builds against the installed mxnet (about 3 minutes on 2 cores), without build
# isolation, with Gloo only (no MPI needed on one machine). WITH_HOROVOD=0 skips it; its tests
# then skip.
# Its build tools come from PyPI into the venv (cmake; setuptools and wheel, which a build
# without isolation needs); only a C++ compiler (g++) comes from the machine.
WITH_HOROVOD ?= 1
HVD_BUILD_TOOLS := setuptools wheel cmake
CONSTRAINTS := constraints.txt

# PEP 660 editable install of pyproject.toml (setuptools >= 64 in an isolated build).
$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==24.3.1"
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	touch $(STAMP)

$(HVD_STAMP): $(STAMP)
ifeq ($(WITH_HOROVOD),1)
	@command -v g++ >/dev/null || { echo "building horovod needs a C++ compiler (g++):" \
	  "install it, or run WITH_HOROVOD=0 make $(MAKECMDGOALS)" >&2; exit 2; }
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) $(HVD_BUILD_TOOLS)
	PATH="$(abspath $(VENV))/bin:$$PATH" \
	HOROVOD_WITH_MXNET=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
	HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 \
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) --no-build-isolation horovod
	touch $(HVD_STAMP)
endif

install: $(STAMP) $(HVD_STAMP)

data:
	@if [ -f $(FASHION_MNIST) ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Fashion-MNIST: apt-get install dataset-fashion-mnist"; \
	  apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }; \
	else echo "Fashion-MNIST is missing: run 'sudo apt-get update && sudo apt-get install dataset-fashion-mnist'"; fi

test: install data
	$(PY) -m pytest -q $(PYTEST_MARK) tests

# The whole pipeline on the bundled digits data (DEMO_FAST=1: the 5-minute smoke run; SEED=n).
# The demo never uses Horovod, so it does not wait for its build.
demo: $(STAMP)
	$(PY) -m oneshot_nas.cli.demo

# Refresh the committed demo outputs (logs/, docs/demo/) with a full run: explicit, never a
# side effect of `make demo`, which writes into its own runs/demo-<date>-<time> folder.
demo-record: $(STAMP)
	LOG_DIR=logs PLOT_DIR=docs/demo $(PY) -m oneshot_nas.cli.demo

bench: install
	$(PY) bench/run_all.py --output docs/benchmarks.md

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
