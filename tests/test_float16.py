"""float16: what runs on the CPU (parameter dtypes, casting, the exported symbol's types) is
checked here everywhere; the float16 forward pass needs a GPU (MXNet 1.9.1 has no float16
convolution on the CPU: 'FP16 gemm on cpu not implemented') and is a GPU-only test."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import nd

from oneshot_nas import Architecture, get_model

GPU = mx.context.num_gpus() > 0
STATS = ("running_mean", "running_var")
BN_PARAMS = STATS + ("gamma", "beta")


def _subnet():
    net = get_model("OneShot-S+", classes=10)
    net.initialize(mx.init.Xavier())
    return net


def _supernet():
    net = get_model("ShuffleNas", use_se=True, last_conv_after_pooling=True, classes=10)
    net.initialize(mx.init.Xavier())
    return net


@pytest.mark.parametrize("build", [_subnet, _supernet], ids=["OneShot-S+", "supernet"])
def test_cast_to_float16_keeps_bn_float32(build):
    net = build()
    net.cast("float16")
    params = net.collect_params()
    assert any(n.endswith(STATS) for n in params)
    for name, p in params.items():
        expected = np.float32 if name.endswith(BN_PARAMS) else np.float16
        assert np.dtype(p.dtype) == expected, name
        assert p.data().dtype == expected, name


def test_cast_round_trip_rounds_weights_to_float16_only():
    net = _subnet()
    before = {n: p.data().asnumpy() for n, p in net.collect_params().items()}
    net.cast("float16")
    net.cast("float32")
    for name, p in net.collect_params().items():
        value = p.data().asnumpy()
        assert value.dtype == np.float32, name
        if name.endswith(BN_PARAMS):
            np.testing.assert_array_equal(value, before[name], err_msg=name)
        else:
            np.testing.assert_array_equal(value, before[name].astype(np.float16)
                                          .astype(np.float32), err_msg=name)


def test_float16_symbol_types_and_export(tmp_path):
    """The hybridized float16 subnet's symbol takes float16 data and float16 weights, keeps BN
    gamma / beta / statistics float32 and gives float16 logits; exported and imported again,
    its parameters keep those types."""
    net = _subnet()
    net.cast("float16")
    net.hybridize()
    sym = net(mx.sym.var("data", dtype="float16"))
    arg_types, out_types, aux_types = sym.infer_type(data="float16")
    assert [np.dtype(t) for t in out_types] == [np.float16]
    for name, dtype in zip(sym.list_arguments(), arg_types):
        expected = np.float32 if name.endswith(("gamma", "beta")) else np.float16
        assert np.dtype(dtype) == expected, name
    assert all(np.dtype(t) == np.float32 for t in aux_types)
    # export what the symbol needs and import it back (no forward pass: float16 conv is GPU)
    sym.save(str(tmp_path / "m-symbol.json"))
    params = {("aux:" if n.endswith(STATS) else "arg:") + p.name: p.data()
              for n, p in net.collect_params().items()}
    nd.save(str(tmp_path / "m-0000.params"), params)
    block = mx.gluon.SymbolBlock.imports(str(tmp_path / "m-symbol.json"), ["data"],
                                         str(tmp_path / "m-0000.params"))
    for name, p in block.collect_params().items():
        expected = np.float32 if name.endswith(BN_PARAMS) else np.float16
        assert p.data().dtype == expected, name


def test_trainer_casts_float32_batches_to_float16():
    """The trainer's input cast: float32 batches become float16 with float16 rounding only."""
    x = nd.array(np.random.default_rng(0).uniform(-1, 1, size=(2, 3, 8, 8)))
    y = x.astype("float16", copy=False)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y.asnumpy(), x.asnumpy().astype(np.float16))


@pytest.mark.skipif(not GPU, reason="GPU only: MXNet 1.9.1 has no float16 convolution on the "
                                    "CPU (the CPU float16 tests above run everywhere)")
@pytest.mark.parametrize("supernet", [False, True], ids=["OneShot-S+", "supernet"])
def test_float16_forward_on_gpu(supernet):
    if supernet:
        net = get_model("ShuffleNas", use_se=True, last_conv_after_pooling=True, classes=10)
    else:
        net = get_model("OneShot-S+", classes=10)
    net.initialize(mx.init.Xavier(), ctx=mx.gpu(0))
    net.cast("float16")
    if supernet:
        net.set_architecture(Architecture.sample(np.random.default_rng(3)))
    x = nd.random.uniform(shape=(2, 3, 64, 64), ctx=mx.gpu(0)).astype("float16")
    out = net(x)
    assert out.dtype == np.float16 and np.isfinite(out.asnumpy()).all()
