"""NasBatchNorm recalibration: exact pooled statistics, independent of the batch size."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import nd
from mxnet.gluon import nn

from oneshot_nas import Architecture, NasBatchNorm, bn_recalibration, get_model, recalibrate_bn
from oneshot_nas.nn import iter_blocks

IMAGES = np.random.RandomState(0).uniform(-1, 2, size=(256, 3, 16, 16)).astype("float32")


def _batches(batch_size):
    return [IMAGES[i:i + batch_size] for i in range(0, len(IMAGES), batch_size)]


def _conv_bn():
    mx.random.seed(42)
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, 3, padding=1, in_channels=3), NasBatchNorm(8))
    net.initialize(mx.init.Normal(0.5))
    net[0].bias.set_data(nd.array(np.linspace(-3, 5, 8)))   # means far from zero
    return net


@pytest.mark.parametrize("batch_size", [8, 32, 256])
def test_single_layer_statistics_equal_numpy(batch_size):
    net = _conv_bn()
    feats = net[0](nd.array(IMAGES)).asnumpy()
    net.hybridize(static_alloc=True)
    seen = recalibrate_bn(net, _batches(batch_size))
    assert seen == 256
    bn = net[1]
    np.testing.assert_allclose(bn.running_mean.data().asnumpy(), feats.mean(axis=(0, 2, 3)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.data().asnumpy(), feats.var(axis=(0, 2, 3)),
                               rtol=1e-5, atol=1e-6)
    # recalibration leaves the net hybridized as it was
    assert net._active and dict(net._flags).get("static_alloc")


def test_single_layer_identical_for_all_batch_sizes():
    results = []
    for batch_size in (8, 32, 256):
        net = _conv_bn()
        recalibrate_bn(net, _batches(batch_size))
        results.append((net[1].running_mean.data().asnumpy(), net[1].running_var.data().asnumpy()))
    for mean, var in results[1:]:
        np.testing.assert_allclose(mean, results[0][0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(var, results[0][1], rtol=1e-6, atol=1e-6)


def _capture_bn_inputs(net):
    inputs = {}

    def hook(block, args):
        inputs.setdefault(block.name, []).append(args[0].asnumpy())
    handles = [b.register_forward_pre_hook(hook) for b in iter_blocks(net)
               if isinstance(b, NasBatchNorm)]
    return inputs, handles


def _recalibrated_subnet_stats(delivery, forward_batch):
    supernet = get_model("ShuffleNas", use_se=True, last_conv_after_pooling=True, classes=10)
    mx.random.seed(3)
    supernet.initialize()
    arch = Architecture.sample(np.random.default_rng(5))
    subnet = supernet.get_subnet(arch)
    inputs, handles = _capture_bn_inputs(subnet)
    recalibrate_bn(subnet, _batches(delivery), batch_size=forward_batch)
    for h in handles:
        h.detach()
    bns = {b.name: b for b in iter_blocks(subnet) if isinstance(b, NasBatchNorm)}
    assert len(inputs) == len(bns) > 60
    stats = []
    for name in sorted(bns):
        feats = np.concatenate(inputs[name]).astype("float64")
        assert feats.shape[0] == 256
        mean = bns[name].running_mean.data().asnumpy()
        var = bns[name].running_var.data().asnumpy()
        np.testing.assert_allclose(mean, feats.mean(axis=(0, 2, 3)), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(var, feats.var(axis=(0, 2, 3)), rtol=1e-4, atol=1e-5)
        stats.append((mean, var))
    return subnet, stats


def test_whole_subnet_statistics_equal_numpy_and_ignore_batch_size():
    x = nd.array(IMAGES[:64])
    ref_net, ref = _recalibrated_subnet_stats(delivery=256, forward_batch=256)
    ref_out = ref_net(x).asnumpy()
    for delivery, forward_batch in ((8, 32), (32, 128), (256, 64)):
        net, stats = _recalibrated_subnet_stats(delivery, forward_batch)
        for (m0, v0), (m1, v1) in zip(ref, stats):
            np.testing.assert_allclose(m1, m0, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(v1, v0, rtol=1e-5, atol=1e-6)
        out = net(x).asnumpy()
        # float32 noise of different reduction orders, amplified through ~100 layers
        np.testing.assert_allclose(out, ref_out, rtol=0, atol=2e-3 * np.abs(ref_out).max())
        np.testing.assert_array_equal(out.argmax(axis=1), ref_out.argmax(axis=1))


def test_supernet_path_recalibration_touches_only_the_slice():
    supernet = get_model("ShuffleNas", classes=10)
    supernet.initialize()
    arch = Architecture((0,) * 20, (2,) * 20)
    supernet.set_architecture(arch)
    bn = supernet.blocks[5].choices[0].main[1]          # mid BN of a 160-wide block
    recalibrate_bn(supernet, _batches(64))
    mean = bn.running_mean.data().asnumpy()
    var = bn.running_var.data().asnumpy()
    assert np.all(mean[48:] == 0) and np.all(var[48:] == 1)
    assert np.abs(mean[:48]).max() > 0
    # the extracted subnet now carries exactly these statistics
    sub_bn = supernet.get_subnet(arch).blocks[5].main[1]
    np.testing.assert_array_equal(sub_bn.running_mean.data().asnumpy(), mean[:48])


def test_failed_recalibration_keeps_old_statistics():
    net = _conv_bn()
    with pytest.raises(RuntimeError):
        with bn_recalibration(net):
            net(nd.array(IMAGES[:8]))
            raise RuntimeError("interrupted")
    np.testing.assert_array_equal(net[1].running_mean.data().asnumpy(), np.zeros(8))
    np.testing.assert_array_equal(net[1].running_var.data().asnumpy(), np.ones(8))


def test_recalibration_needs_nas_batchnorm():
    net = get_model("OneShot", classes=10)
    net.initialize()
    with pytest.raises(ValueError, match="NasBatchNorm"):
        recalibrate_bn(net, _batches(64))
