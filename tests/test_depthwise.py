"""The depthwise fast paths (kernel cropping, weight gradient as a forward convolution) are exact:
outputs and input / weight gradients equal the plain grouped convolution's for every depthwise
kernel, stride, map size and width of the search space at 32, 64 and 224 px."""
import json

import numpy as np
import pytest
import mxnet as mx
from mxnet import autograd, nd
from mxnet.gluon import nn

from oneshot_nas.models import get_model
from oneshot_nas.nn import DepthwiseConv2D, ElasticConv2D, specialized_graph
from oneshot_nas.nn.depthwise import crop_plan
from oneshot_nas.search_space import CHANNEL_LAYOUTS, CHANNEL_SCALES, STEM_CHANNELS, \
    mid_channels


def _search_space_cases():
    """(input px, map size entering the conv, kernel, stride, widths) of every depthwise conv."""
    cases = []
    for px in (32, 64, 224):
        size = px // 2                                  # after the stride-2 stem
        in_c = STEM_CHANNELS
        for out_c in CHANNEL_LAYOUTS["OneShot"]:
            mids = sorted({mid_channels(out_c, c) for c in range(len(CHANNEL_SCALES))})
            for stride, h in ((2, size), (1, (size + 1) // 2)):
                # the projection / first SXB depthwise carries in_c (stride 2) or out_c // 2
                widths = (min(mids), max(mids), in_c if stride == 2 else out_c // 2)
                for k in (3, 5, 7):
                    cases.append((px, h, k, stride, widths))
            size, in_c = (size + 1) // 2, out_c
    return cases


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-20))


def _grads(layer, x, dy, specialise=False):
    x = x.copy()
    x.attach_grad()
    with autograd.record():
        if specialise:
            with specialized_graph():
                y = layer(x)
        else:
            y = layer(x)
    y.backward(dy)
    return y.asnumpy(), x.grad.asnumpy(), layer.weight.grad().asnumpy()


@pytest.mark.parametrize("px,h,k,stride,widths", _search_space_cases(),
                         ids=lambda v: str(v) if not isinstance(v, tuple) else "w")
def test_fast_depthwise_equals_plain_convolution(px, h, k, stride, widths):
    batch = 2 if px == 224 else 4
    rng = np.random.RandomState(px * 1000 + h * 10 + k + stride)
    for width in widths:
        plain = nn.Conv2D(width, k, strides=stride, padding=k // 2, groups=width, use_bias=False,
                          in_channels=width)
        plain.initialize()
        weight = nd.array(rng.randn(width, 1, k, k))
        plain.weight.set_data(weight)
        x = nd.array(rng.randn(batch, width, h, h))
        out = plain(x).shape
        dy = nd.array(rng.randn(*out))
        reference = _grads(plain, x, dy)
        for hybrid in (False, True):
            fast = DepthwiseConv2D(width, k, stride)
            fast.initialize()
            fast.weight.set_data(weight)
            if hybrid:
                fast.hybridize(static_alloc=True)
                fast.set_input_size((h, h))
            for _ in range(2):                      # the second call reuses the cached graph
                got = _grads(fast, x, dy, specialise=hybrid)
            for name, a, b in zip(("output", "input grad", "weight grad"), got, reference):
                assert _rel(a, b) <= 1e-5, (width, hybrid, name, _rel(a, b))


@pytest.mark.parametrize("active", [None, 24])
def test_elastic_depthwise_matches_plain_on_small_maps(active):
    """The supernet's elastic layer takes the same fast paths (7x7 on a 2x2 map, sliced)."""
    c, k, h = 32, 7, 2
    rng = np.random.RandomState(0)
    width = active or c
    elastic = ElasticConv2D(c, c, k, 1, depthwise=True)
    elastic.initialize()
    weight = rng.randn(c, 1, k, k)
    elastic.weight.set_data(nd.array(weight))
    plain = nn.Conv2D(width, k, padding=k // 2, groups=width, use_bias=False, in_channels=width)
    plain.initialize()
    plain.weight.set_data(nd.array(weight[:width]))
    x = nd.array(rng.randn(4, width, h, h))
    dy = nd.array(rng.randn(4, width, h, h))
    ref = _grads(plain, x, dy)
    xe = x.copy()
    xe.attach_grad()
    with autograd.record():
        y = elastic(xe, active) if active else elastic(xe)
    y.backward(dy)
    assert _rel(y.asnumpy(), ref[0]) <= 1e-5
    assert _rel(xe.grad.asnumpy(), ref[1]) <= 1e-5
    g = elastic.weight.grad().asnumpy()
    assert _rel(g[:width], ref[2]) <= 1e-5
    assert not g[width:].any()                       # unselected channels: exactly zero


def test_crop_plan_keeps_only_reachable_taps():
    assert crop_plan(7, 1, 1) == (3, 4, 0)          # a 1x1 map sees the centre tap only
    assert crop_plan(7, 1, 2) == (2, 5, 1)          # 2x2: the central 3x3
    assert crop_plan(7, 2, 2) == (3, 5, 0)          # stride 2 on 2x2: taps 3..4
    assert crop_plan(5, 1, 1) == (2, 3, 0)
    assert crop_plan(3, 1, 8) is None and crop_plan(7, 1, 7) is None
    assert crop_plan(3, 1, 1) is None               # 3x3 kernels are never cropped


def test_trained_32px_subnet_exports_a_plain_graph(tmp_path):
    """Training at 32 px specialises the cached graph (cropped kernels, custom weight-gradient
    operator); the export is the plain graph, valid at 224 px."""
    net = get_model("OneShot-S+", classes=10)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True)
    x = nd.random.normal(shape=(2, 3, 32, 32))
    with autograd.record():
        loss = net(x).sum()
    loss.backward()
    graph = json.dumps(json.loads(net._cached_graph[1].tojson()))
    assert "Custom" in graph                                    # the specialised training graph
    net.export(str(tmp_path / "net"))
    with open(str(tmp_path / "net-symbol.json")) as f:
        exported = f.read()
    assert "Custom" not in exported and '"slice"' not in exported
    loaded = nn.SymbolBlock.imports(str(tmp_path / "net-symbol.json"), ["data"],
                                    str(tmp_path / "net-0000.params"))
    for size in (32, 224):
        x = nd.random.normal(shape=(1, 3, size, size))
        assert np.allclose(loaded(x).asnumpy(), net(x).asnumpy(), rtol=1e-4, atol=1e-5)


def test_hybridized_choice_blocks_match_imperative_supernet():
    """Full-width choice blocks run cached graphs (specialised to 32 px), sliced widths run
    imperatively: outputs and gradients equal the imperative supernet's."""
    from oneshot_nas import Architecture
    rng = np.random.default_rng(3)
    nets = []
    for hybrid in (False, True):
        net = get_model("ShuffleNas", classes=10, use_se=True, last_conv_after_pooling=True)
        net.initialize(mx.init.Xavier())
        net.head[0]._rate = 0.0                    # no dropout: both nets must agree exactly
        nets.append(net)
    for src, dst in zip(nets[0].collect_params().values(), nets[1].collect_params().values()):
        dst.set_data(src.data())
    nets[1].hybridize(static_alloc=True)
    x = nd.array(rng.standard_normal((4, 3, 32, 32)))
    full = Architecture.sample(rng, fixed_channels=(9,) * 20)
    sliced = Architecture.sample(rng)
    for arch in (full, sliced, full):
        results = []
        for net in nets:
            net.set_architecture(arch)
            with autograd.record():
                out = net(x)
                loss = (out * out).sum()
            loss.backward()
            grads = [p.grad().asnumpy().copy() for p in net.collect_params().values()
                     if p.grad_req != "null"]
            results.append((out.asnumpy(), grads))
        assert _rel(results[1][0], results[0][0]) <= 1e-4
        for a, b in zip(results[1][1], results[0][1]):
            assert np.abs(a - b).max() <= 1e-4 * max(np.abs(b).max(), 1e-3)
