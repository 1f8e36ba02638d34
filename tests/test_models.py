"""Model library: reference parameter counts, forward / hybridize / export / gradients."""
import numpy as np
import pytest
from mxnet import autograd, gluon, nd

from oneshot_nas import Architecture, get_model, list_models
from oneshot_nas.models import ShuffleNasOneShotFix

ONESHOT = ("0,0,3,1,1,1,0,0,2,0,2,1,1,0,2,0,2,1,3,2", "6,5,3,5,2,6,3,4,2,5,7,5,4,6,7,4,4,5,4,3")


def trainable_params(net):
    return sum(int(np.prod(p.shape)) for p in net.collect_params().values()
               if p.grad_req != "null")


@pytest.mark.parametrize("name,kwargs,expected", [
    ("OneShot", {}, 3433579),
    ("OneShot", {"channels_layout": "ShuffleNetV2+"}, 2692590),
    ("OneShot+", {}, 3742955),
    ("OneShot-S+", {}, 3541829),
    ("OneShot-S+", {"channels_layout": "ShuffleNetV2+"}, 2755117),
    ("ShuffleNas", {}, 15939672),
    ("ShuffleNas", {"use_se": True, "last_conv_after_pooling": True}, 17180248),
])
def test_parameter_counts_match_spec(name, kwargs, expected):
    assert trainable_params(get_model(name, **kwargs)) == expected


def test_fix_arch_equals_preset():
    a = get_model("ShuffleNas_fixArch", block_choices=ONESHOT[0], channel_choices=ONESHOT[1])
    b = get_model("OneShot")
    assert a.architecture == b.architecture
    assert trainable_params(a) == trainable_params(b)


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError) as err:
        get_model("ResNet50")
    for name in ("ShuffleNas", "ShuffleNas_fixArch", "OneShot", "OneShot+", "OneShot-S+"):
        assert name in str(err.value)


def _small(name):
    kwargs = dict(classes=10)
    if name == "ShuffleNas_fixArch":
        kwargs["architecture"] = Architecture.sample(np.random.default_rng(1))
    return get_model(name, **kwargs)


@pytest.mark.parametrize("name", list_models())
def test_every_model_forward_without_nan(name):
    net = _small(name)
    net.initialize()
    if hasattr(net, "set_architecture"):
        net.set_architecture(Architecture.sample(np.random.default_rng(2)))
    out = net(nd.random.uniform(shape=(2, 3, 64, 64)))
    assert out.shape == (2, 10)
    assert np.isfinite(out.asnumpy()).all()


FIXED = [n for n in list_models() if n != "ShuffleNas"]


@pytest.mark.parametrize("name", FIXED)
def test_fixed_subnet_hybridized_and_exported_match_imperative(name, tmp_path):
    net = _small(name)
    net.initialize()
    x = nd.random.uniform(shape=(2, 3, 64, 64))
    ref = net(x).asnumpy()
    net.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(net(x).asnumpy(), ref, rtol=1e-5, atol=1e-6)
    prefix = str(tmp_path / "model")
    net.export(prefix)
    loaded = gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0000.params")
    np.testing.assert_allclose(loaded(x).asnumpy(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", FIXED)
def test_every_fixed_parameter_gets_a_gradient(name):
    net = _small(name)
    net.initialize()
    x = nd.random.uniform(shape=(2, 3, 64, 64))
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), nd.array([1, 7]))
    loss.backward()
    for pname, p in net.collect_params().items():
        if p.grad_req == "null":
            continue
        assert np.abs(p.grad().asnumpy()).sum() > 0, pname


def test_conv_shuffle_equals_reshape_shuffle():
    arch = Architecture.sample(np.random.default_rng(3))
    a = ShuffleNasOneShotFix(arch, classes=10, shuffle_method="reshape")
    b = ShuffleNasOneShotFix(arch, classes=10, shuffle_method="conv")
    a.initialize()
    b.initialize()
    src = a._collect_params_with_prefix()
    for name, p in b._collect_params_with_prefix().items():
        if name in src:
            p.set_data(src[name].data())
    x = nd.random.uniform(shape=(2, 3, 32, 32))
    np.testing.assert_allclose(a(x).asnumpy(), b(x).asnumpy(), rtol=1e-5, atol=1e-6)


def test_spec_initialisation():
    net = get_model("OneShot+", classes=10)
    net.initialize()
    params = net._collect_params_with_prefix()
    assert np.all(params["stem.1.beta"].data().asnumpy() == np.float32(1e-4))
    assert np.all(params["stem.1.gamma"].data().asnumpy() == 1)
    assert np.all(params["stem.1.running_var"].data().asnumpy() == 1)
    pw = params["blocks.4.main.0.weight"].data().asnumpy()     # 1x1 conv, fan-in 64
    assert abs(pw.std() - 1 / 64) < 0.1 / 64
    stem = params["stem.0.weight"].data().asnumpy()
    assert abs(stem.std() - 0.01) < 0.003


def test_hard_activations_follow_their_formulas():
    from oneshot_nas.nn import HardSigmoid, HardSwish
    x = np.linspace(-5, 5, 41).astype("float32")
    hsig = np.clip(x + 3, 0, 6) / 6
    np.testing.assert_allclose(HardSigmoid()(nd.array(x)).asnumpy(), hsig, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(HardSwish()(nd.array(x)).asnumpy(), x * hsig, rtol=1e-6, atol=1e-6)
