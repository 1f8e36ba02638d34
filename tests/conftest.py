import logging

import mxnet as mx
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seed():
    mx.random.seed(0)
    np.random.seed(0)
    logging.getLogger("oneshot_nas").setLevel(logging.INFO)
    # a command's main() called in-process installs root handlers on the stream pytest
    # captured for that test; later tests must not log into that closed stream
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="module")
def supernet_params(tmp_path_factory):
    """An (untrained) digits supernet's weights, saved once per test module (search tests)."""
    from oneshot_nas import get_model
    path = tmp_path_factory.mktemp("supernet") / "supernet.params"
    mx.random.seed(1)
    net = get_model("ShuffleNas", classes=10)
    net.initialize(mx.init.Xavier())
    net.save_parameters(str(path))
    return str(path)
