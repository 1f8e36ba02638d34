#!/bin/sh
# Draw training / validation curves (and sampled-path coverage) of a training run.
# Usage: sh scripts/plot_accuracy.sh logs/shufflenas_supernet.jsonl [--output-dir docs] [...]
PYTHON=${PYTHON:-python}
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x .venv/bin/python ] && [ "$PYTHON" = python ]; then
    PYTHON=.venv/bin/python
fi
exec $PYTHON -m oneshot_nas.cli.plot_training "$@"
