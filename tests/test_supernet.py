"""Supernet: channel selection gradients / BN isolation, extracted subnets (float16: test_float16)."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, nd

from oneshot_nas import Architecture, get_model
from oneshot_nas.search_space import NUM_BLOCKS


def _supernet(layout="OneShot", **kwargs):
    net = get_model("ShuffleNas", use_se=True, last_conv_after_pooling=True,
                    channels_layout=layout, classes=10, **kwargs)
    net.initialize()
    return net


def _train_step(net, x, y):
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
    loss.backward()


def test_unselected_channels_get_zero_gradient_and_untouched_bn():
    net = _supernet()
    # position 5 (stage 1, 160 wide): SNB-3 at channel choice 2 -> 48 of 160 mid channels
    arch = Architecture((0,) * NUM_BLOCKS, (9,) * 5 + (2,) + (9,) * 14)
    net.set_architecture(arch)
    block = net.blocks[5].choices[0]
    mid = 48
    bn = block.main[1]
    stats = {k: getattr(bn, k).data().asnumpy().copy()
             for k in ("gamma", "beta", "running_mean", "running_var")}
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.5, "momentum": 0.9})
    x = nd.random.uniform(shape=(4, 3, 32, 32))
    y = nd.array([0, 1, 2, 3])
    _train_step(net, x, y)
    # conv weights: 1x1 in -> mid (rows), depthwise (rows), 1x1 mid -> out (columns)
    g_in = block.main[0].weight.grad().asnumpy()
    g_dw = block.main[3].weight.grad().asnumpy()
    g_out = block.main[5].weight.grad().asnumpy()
    assert np.all(g_in[mid:] == 0) and np.abs(g_in[:mid]).sum() > 0
    assert np.all(g_dw[mid:] == 0) and np.abs(g_dw[:mid]).sum() > 0
    assert np.all(g_out[:, mid:] == 0) and np.abs(g_out[:, :mid]).sum() > 0
    for k in ("gamma", "beta"):
        g = getattr(bn, k).grad().asnumpy()
        assert np.all(g[mid:] == 0) and np.abs(g[:mid]).sum() > 0
    trainer.step(4, ignore_stale_grad=True)
    net.sync_bn_statistics()
    for k, old in stats.items():
        new = getattr(bn, k).data().asnumpy()
        np.testing.assert_array_equal(new[mid:], old[mid:], err_msg=k)
        assert np.abs(new[:mid] - old[:mid]).max() > 0, k
    # a second step on another width keeps the first write-back and is isolated again
    net.set_architecture(Architecture((0,) * NUM_BLOCKS, (9,) * 5 + (0,) + (9,) * 14))
    after_first = bn.running_mean.data().asnumpy().copy()
    _train_step(net, x, y)
    net.sync_bn_statistics()
    now = bn.running_mean.data().asnumpy()
    np.testing.assert_array_equal(now[16:], after_first[16:])
    assert np.abs(now[:16] - after_first[:16]).max() > 0


def _random_archs(n, seed):
    rng = np.random.default_rng(seed)
    return [Architecture.sample(rng) for _ in range(n)]


@pytest.mark.parametrize("layout", ["OneShot", "ShuffleNetV2+"])
def test_supernet_path_equals_extracted_subnet(layout):
    net = _supernet(layout)
    # give BN non-trivial statistics and parameters so that slicing errors would show
    for name, p in net.collect_params().items():
        if name.endswith(("running_mean", "beta")):
            p.set_data(nd.random.normal(0, 0.1, shape=p.shape))
        elif name.endswith(("running_var", "gamma")):
            p.set_data(nd.random.uniform(0.5, 1.5, shape=p.shape))
    x = nd.random.uniform(shape=(2, 3, 64, 64))
    archs = [Architecture.smallest(), Architecture.largest()] + _random_archs(10, 7)
    for arch in archs:
        net.set_architecture(arch)
        ref = net(x).asnumpy()
        sub = net.get_subnet(arch)
        np.testing.assert_allclose(sub(x).asnumpy(), ref, rtol=1e-4, atol=1e-5)
    sub.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(sub(x).asnumpy(), ref, rtol=1e-4, atol=1e-5)


def test_use_all_blocks_averages_choices():
    """Every position's output is the mean of its four choice blocks' outputs, each computed on
    its own (the sampled block choices play no part), and the network output follows."""
    from oneshot_nas.search_space import block_layout
    net = _supernet(use_all_blocks=True)
    arch = Architecture.sample(np.random.default_rng(3), min_channel_index=4)
    net.set_architecture(arch)
    seen = []
    for position in net.blocks:
        position.register_forward_hook(lambda blk, args, out: seen.append(out.asnumpy()))
    x = nd.random.uniform(shape=(2, 3, 32, 32))
    out = net(x).asnumpy()
    assert len(seen) == NUM_BLOCKS
    active = [None if m == out_c else m for m, (_, _, out_c, _)
              in zip(arch.mid_channels("OneShot"), block_layout("OneShot"))]
    h = net.stem(x)
    for i, position in enumerate(net.blocks):
        singles = [position.choices[b](h, active[i]).asnumpy() for b in range(4)]
        mean = np.mean(singles, axis=0)
        np.testing.assert_allclose(seen[i], mean, rtol=1e-4, atol=1e-5 * np.abs(mean).max(),
                                   err_msg="position %d" % i)
        # the average is not just the sampled block's output
        assert np.abs(mean - singles[arch.blocks[i]]).max() > 1e-3 * np.abs(mean).max()
        h = nd.array(mean)
    np.testing.assert_allclose(out, net.head(net.tail(h)).asnumpy(), rtol=1e-4, atol=1e-5)
    # another sampled path with the same widths gives the same output
    net.set_architecture(Architecture(tuple((b + 1) % 4 for b in arch.blocks), arch.channels))
    np.testing.assert_allclose(net(x).asnumpy(), out, rtol=1e-5, atol=1e-6)


def test_affine_free_bn_keeps_choice_block_gamma_beta_fixed():
    """--affine-free-bn: choice-block BN has no trainable scale / shift (official SPOS); the
    stem / tail BN still trains, and extracted subnets carry gamma = 1, beta = 0."""
    import mxnet as mx
    from mxnet import autograd, gluon, nd
    from oneshot_nas import Architecture, get_model
    from oneshot_nas.nn import NasBatchNorm, iter_blocks
    net = get_model("ShuffleNas", classes=10, affine_free_bn=True)
    net.initialize(mx.init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.5})
    x = nd.random.normal(shape=(4, 3, 32, 32))
    for arch in (Architecture.largest(), Architecture.sample(np.random.default_rng(0))):
        net.set_architecture(arch)
        with autograd.record():
            loss = net(x).sum()
        loss.backward()
        trainer.step(4, ignore_stale_grad=True)
    choice_bns = [b for p in net.blocks for b in iter_blocks(p) if isinstance(b, NasBatchNorm)]
    assert choice_bns
    for bn in choice_bns:
        assert np.all(bn.gamma.data().asnumpy() == 1) and np.all(bn.beta.data().asnumpy() == 0)
    stem_bn = net.stem[1]
    assert stem_bn.gamma.grad_req == "write"
    assert not np.allclose(stem_bn.gamma.data().asnumpy(), 1)
    sub = net.get_subnet(Architecture.largest())
    sub_bns = [b for b in iter_blocks(sub.blocks) if isinstance(b, NasBatchNorm)]
    assert all(np.all(b.gamma.data().asnumpy() == 1) for b in sub_bns)
