"""Strict fairness (--strict-fairness): four paths a step that take each layer's four block types
once, one update from their mean gradient."""
import types

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, nd

from oneshot_nas.search_space import NUM_BLOCK_CHOICES, NUM_BLOCKS, Architecture
from oneshot_nas.training import TrainConfig, train
from oneshot_nas.training.plots import read_metrics
from oneshot_nas.training.samplers import FairSampler, make_sampler
from oneshot_nas.training.trainer import _forward_paths, build_model


def _take(stream, n):
    return [next(stream) for _ in range(n)]


def test_a_fair_step_takes_every_block_type_of_every_layer_once():
    steps = _take(make_sampler(fair=True, seed=2).stream(3), 50)
    assert isinstance(make_sampler(fair=True), FairSampler)
    for paths in steps:
        assert len(paths) == NUM_BLOCK_CHOICES
        blocks = np.array([p.blocks for p in paths])            # (paths, layers)
        assert (np.sort(blocks, axis=0) == np.arange(NUM_BLOCK_CHOICES)[:, None]).all()
        assert all(p.channels == paths[0].channels for p in paths)
    # the orders differ from step to step and layer to layer; the stream repeats per epoch
    first = np.array([[p.blocks for p in paths] for paths in steps])[:, 0, :]
    assert len({tuple(row) for row in first}) == 50
    assert steps == _take(make_sampler(fair=True, seed=2).stream(3), 50)
    with pytest.raises(ValueError, match="no constraint box can hold all four paths"):
        make_sampler("random", fair=True)


def _supernet():
    cfg = TrainConfig(model="ShuffleNas", dataset="digits", input_size=32, use_se=True,
                      last_conv_after_pooling=True, affine_free_bn=True)
    mx.random.seed(0)
    net = build_model(cfg, 10)
    net.initialize(mx.init.Xavier())
    rng = np.random.default_rng(0)
    x = nd.array(rng.normal(size=(8, 3, 32, 32)))
    y = nd.array(rng.integers(0, 10, 8))
    net.set_architecture(Architecture(np.zeros(NUM_BLOCKS, int), np.full(NUM_BLOCKS, 9)))
    net(x)                                                       # shapes known
    run = types.SimpleNamespace(net=net, loss_fn=gluon.loss.SoftmaxCrossEntropyLoss(),
                                teacher=None)
    return net, run, x, y


@pytest.mark.parametrize("hybrid", [False, True])
def test_the_fair_gradient_is_the_mean_of_four_separate_backward_passes(hybrid):
    net, run, x, y = _supernet()
    if hybrid:
        net.hybridize(static_alloc=True)                          # as the trainer does
    paths = next(make_sampler(fair=True, seed=1, epoch_start_cs=0).stream(0))
    live = [p for p in net.collect_params().values() if p.grad_req != "null"]
    mx.random.seed(5)                                            # the head's dropout
    expected = {p.name: 0.0 for p in live}
    for arch in paths:
        for p in live:
            p.zero_grad()                 # a block off this path keeps no stale gradient
        net.set_architecture(arch)
        with autograd.record():
            loss = run.loss_fn(net(x), y)
        loss.backward()
        for p in live:
            expected[p.name] = expected[p.name] + p.grad().asnumpy() / len(paths)
    mx.random.seed(5)
    for p in live:
        p.zero_grad()
    _, losses = _forward_paths(run, paths, [x], [y], None)
    autograd.backward(losses)
    for p in live:
        np.testing.assert_allclose(p.grad().asnumpy(), expected[p.name], rtol=1e-5,
                                   atol=1e-7, err_msg=p.name)


def _changed_blocks(paths):
    """Per layer, the choice blocks whose weights one SGD step moved."""
    net, run, x, y = _supernet()
    params = net.collect_params()
    before = {k: v.data().asnumpy().copy() for k, v in params.items()}
    trainer = gluon.Trainer(params, "sgd", {"learning_rate": 0.1})
    _, losses = _forward_paths(run, paths, [x], [y], None)
    autograd.backward(losses)
    trainer.step(8, ignore_stale_grad=True)
    changed = set()
    for k, v in params.items():
        if "choiceposition" in k and not np.array_equal(before[k], v.data().asnumpy()):
            layer = int(k.split("choiceposition")[1].split("_")[0])
            block = k.split("_choices_")[1].split("_")[0]
            changed.add((layer, block))
    return changed


def test_one_fair_update_trains_all_eighty_blocks_and_one_path_twenty():
    fair = next(make_sampler(fair=True, seed=0).stream(0))
    assert len(_changed_blocks(fair)) == NUM_BLOCKS * NUM_BLOCK_CHOICES
    single = (next(make_sampler(seed=0).stream(0)),)
    assert len(_changed_blocks(single)) == NUM_BLOCKS


@pytest.mark.parametrize("settings, needle", [
    (dict(train_upper_constraints="flops-330-params-5.0"), "no box holds all four paths"),
    (dict(use_all_blocks=True), "cannot be combined with --use-all-blocks"),
])
def test_strict_fairness_refuses_what_it_cannot_honour(settings, needle):
    with pytest.raises(ValueError, match=needle):
        TrainConfig(model="ShuffleNas", strict_fairness=True, **settings).validate()
    with pytest.raises(ValueError, match="--strict-fairness only apply to the supernet"):
        TrainConfig(model="OneShot", strict_fairness=True).validate()


@pytest.mark.slow
def test_a_fair_supernet_trains_and_logs_its_four_paths(tmp_path):
    metrics = tmp_path / "m.jsonl"
    summary = train(TrainConfig(
        dataset="digits", model="ShuffleNas", use_se=True, last_conv_after_pooling=True,
        input_size=32, batch_size=16, num_epochs=1, lr=0.05, no_augment=True,
        strict_fairness=True, max_batches_per_epoch=6, update_bn_images=32, val_subnets=1,
        save_dir=None, logging_file=None, metrics_file=str(metrics), progress=False,
        num_workers=1))
    rows = read_metrics(str(metrics))
    samples = [r for r in rows if r["kind"] == "sample"]
    assert len(samples) == 6 * NUM_BLOCK_CHOICES
    for batch in range(6):
        step = [r for r in samples if r["batch"] == batch]
        assert sorted(r["path"] for r in step) == list(range(NUM_BLOCK_CHOICES))
        blocks = np.array([Architecture.from_json(r["arch"]).blocks for r in step])
        assert (np.sort(blocks, axis=0) == np.arange(NUM_BLOCK_CHOICES)[:, None]).all()
    train_row = [r for r in rows if r["kind"] == "train"][0]
    assert np.isfinite(train_row["loss"]) and summary["epochs"]
