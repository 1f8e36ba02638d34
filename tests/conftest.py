import logging

import mxnet as mx
import numpy as np
import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end tests (run in CI, or make test SLOW=1)")


@pytest.fixture(autouse=True)
def _seed():
    mx.random.seed(0)
    np.random.seed(0)
    logging.getLogger("oneshot_nas").setLevel(logging.INFO)
