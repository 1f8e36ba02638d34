"""The single-machine multi-device path on two CPU contexts (``mx.cpu(0)``, ``mx.cpu(1)``).

What runs on N GPUs with kvstore ``device`` runs the same way on several CPU contexts, so each
behaviour of that path is checked here against one context: a training step (parameters and
per-device BN statistics), the sampled path, saving and ``get_subnet``, BN recalibration and
the search's scores, and a killed and resumed run of the trainer CLI with ``--devices``.
"""
import json
import os
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, nd

from oneshot_nas import Architecture, get_model
from oneshot_nas.nn import recalibrate_bn, share_bn_statistics, sync_bn_statistics
from oneshot_nas.training import TrainConfig
from oneshot_nas.training import trainer as trainer_module
from oneshot_nas.training.checkpoint import latest_checkpoint, load_meta, save_parameters

from test_faults import _last_rows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWO = [mx.cpu(0), mx.cpu(1)]
HALF = 8                       # images per context in a step
STATS = ("running_mean", "running_var")


def _path():
    """A path with sliced widths at most positions and full width (channel choice 9) at
    some: both the imperative sliced BN and the hybridized full-width blocks run."""
    rng = np.random.default_rng(4)
    channels = rng.integers(0, 9, size=20)
    channels[[0, 5, 13]] = 9
    return Architecture(rng.integers(0, 4, size=20), channels)


def _supernet(ctx, source=None):
    """A digits-sized supernet on ``ctx`` without dropout (its masks are drawn per device, so
    a step could not be compared), with ``source``'s weights if given."""
    net = get_model("ShuffleNas", classes=10, input_size=32)
    for blk in _blocks(net):
        if isinstance(blk, gluon.nn.Dropout):
            blk._rate = 0.0
    if source is None:
        mx.random.seed(3)
        net.initialize(mx.init.Xavier(), ctx=ctx)
    else:
        mine = net._collect_params_with_prefix()
        for name, param in source._collect_params_with_prefix().items():
            mine[name]._load_init(param.list_data()[0].copyto(mx.cpu()), ctx)
    return net


def _blocks(block):
    yield block
    for child in block._children.values():
        yield from _blocks(child)


def _values(net, index=0):
    """Every parameter of ``net`` (its ``index``-th context's copy) as numpy."""
    return {name: p.list_data()[index].asnumpy()
            for name, p in net._collect_params_with_prefix().items()}


def _batch():
    rng = np.random.default_rng(0)
    data = nd.array(rng.uniform(-1, 1, size=(2 * HALF, 3, 32, 32)))
    label = nd.array(rng.integers(0, 10, size=2 * HALF))
    return data, label


def _optimizer():
    return {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4}


class _FixedSampler:
    def __init__(self, archs):
        self.archs = archs

    def stream(self, epoch):
        yield from self.archs


def _train_steps(net, ctx, batches, sampler, metrics_path=None):
    """The trainer's own Trainer (``make_trainer``) and epoch loop (``_train_epoch``) over
    ``batches`` on ``ctx``: NAG, lr 0.1 (constant: one epoch of one step), wd 1e-4."""
    cfg = TrainConfig(dataset="digits", progress=False, log_interval=0, num_epochs=1,
                      optimizer="nag", lr=0.1, wd=1e-4, momentum=0.9)
    trainer = trainer_module.make_trainer(net, cfg, 1, ctx)
    run = trainer_module.TrainingRun(cfg, net, ctx, batches, len(batches), 10,
                                     trainer_module._Metrics(metrics_path), trainer=trainer,
                                     loss_fn=gluon.loss.SoftmaxCrossEntropyLoss(), sampler=sampler)
    trainer_module._train_epoch(run, 0)
    return trainer


def _stats(net):
    sync_bn_statistics(net)
    return {name: p.data().asnumpy().copy() for name, p in net._collect_params_with_prefix().items()
            if name.endswith(STATS)}


@pytest.fixture(scope="module")
def stepped():
    """One supernet step on two contexts through the trainer, and the same step on one
    context half by half: each half's forward and backward, gradients summed (grad_req add),
    BN statistics recorded after each half from the same starting point."""
    arch = _path()
    two = _supernet(TWO)
    one = _supernet([mx.cpu(0)], source=two)
    for net in (two, one):
        net.set_architecture(arch)
        net.hybridize(static_alloc=True)           # as the trainer does
    before = _values(two)
    data, label = _batch()
    _train_steps(two, TWO, [(data, label)], _FixedSampler([arch]))
    sync_bn_statistics(two)

    for p in one.collect_params().values():
        if p.grad_req != "null":
            p.grad_req = "add"
    one.collect_params().zero_grad()
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    start = _stats(one)
    halves = []
    for k in range(2):
        for name, p in one._collect_params_with_prefix().items():
            if name.endswith(STATS):
                p.set_data(nd.array(start[name]))   # each half from the same statistics
        part = slice(k * HALF, (k + 1) * HALF)
        with autograd.record():
            loss = loss_fn(one(data[part]), label[part])
        loss.backward()
        halves.append(_stats(one))
    trainer = gluon.Trainer(one.collect_params(), "nag", _optimizer())
    trainer.step(2 * HALF, ignore_stale_grad=True)
    return dict(arch=arch, two=two, one=one, before=before, halves=halves)


def test_two_context_step_equals_the_two_halves_on_one_context(stepped):
    two, one = stepped["two"], stepped["one"]
    moved = kept = 0
    copies = [_values(two, 0), _values(two, 1)]
    for name, ref in _values(one).items():
        if name.endswith(STATS):
            continue
        for index in range(2):      # both copies hold the same, updated weights
            np.testing.assert_allclose(copies[index][name], ref, rtol=1e-4, atol=1e-6,
                                       err_msg=name)
        if np.array_equal(ref, stepped["before"][name]):
            # off the sampled path: skipped by the optimizer (no weight decay, no momentum)
            # on one context, and so exactly unchanged on both contexts too
            for index in range(2):
                np.testing.assert_array_equal(copies[index][name], ref, err_msg=name)
            kept += 1
        else:
            moved += 1
    assert moved > 50 and kept > 50  # the path's weights moved, the others did not


def test_two_contexts_sum_only_the_gradients_of_the_sampled_path():
    """A parameter off the second step's path keeps the gradient of the first step on both
    contexts (gluon's own Trainer would sum its two stale copies, doubling it every step), and
    its value does not move."""
    first, second = _path(), Architecture(np.zeros(20, dtype=int), np.full(20, 9))
    net = _supernet(TWO)
    net.hybridize(static_alloc=True)
    data, label = _batch()
    _train_steps(net, TWO, [(data, label)], _FixedSampler([first]))
    params = net._collect_params_with_prefix()
    # position 1's block of the first path: off the second path (all blocks 0) unless it is 0
    off = [name for name in params
           if name.startswith("blocks.%d.choices.%d." % (1, first.blocks[1]))
           and params[name].grad_req != "null"]
    assert first.blocks[1] != 0 and off
    grads = {name: [g.asnumpy().copy() for g in params[name].list_grad()] for name in off}
    values = {name: params[name].list_data()[0].asnumpy().copy() for name in off}
    assert any(np.abs(g[0]).max() > 0 for g in grads.values())
    _train_steps(net, TWO, [(data, label)], _FixedSampler([second]))
    for name in off:
        for k in range(2):
            np.testing.assert_array_equal(params[name].list_grad()[k].asnumpy(),
                                          grads[name][k], err_msg=name)
        np.testing.assert_array_equal(params[name].list_data()[0].asnumpy(), values[name])


def test_two_contexts_keep_the_same_weights_over_steps_on_changing_paths():
    """One trainer, eight steps, each on another sampled path: both contexts' copies of every
    weight stay equal (MXNet's per-device update counts gave a parameter first updated in a
    step another learning rate on the second context, and the copies drifted apart)."""
    rng = np.random.default_rng(1)
    net = _supernet(TWO)
    net.hybridize(static_alloc=True)
    cfg = TrainConfig(dataset="digits", progress=False, log_interval=0, num_epochs=1,
                      optimizer="nag", lr=0.1, wd=1e-4, momentum=0.9)
    trainer = trainer_module.make_trainer(net, cfg, 8, TWO)
    run = trainer_module.TrainingRun(cfg, net, TWO, [_batch()] * 8, 8, 10,
                                     trainer_module._Metrics(None), trainer=trainer,
                                     loss_fn=gluon.loss.SoftmaxCrossEntropyLoss(),
                                     sampler=_FixedSampler([Architecture.sample(rng)
                                                            for _ in range(8)]))
    trainer_module._train_epoch(run, 0)
    assert trainer.optimizer.num_update == 8
    first, second = _values(net, 0), _values(net, 1)
    drifted = [name for name in first if not name.endswith(STATS)
               and not np.array_equal(first[name], second[name])]
    assert drifted == []


def test_each_context_keeps_the_bn_statistics_of_its_half(stepped):
    two = stepped["two"]
    changed = 0
    for name, p in two._collect_params_with_prefix().items():
        if not name.endswith(STATS):
            continue
        for index in range(2):
            np.testing.assert_allclose(p.list_data()[index].asnumpy(),
                                       stepped["halves"][index][name], rtol=1e-5, atol=1e-6,
                                       err_msg="%s on context %d" % (name, index))
        changed += not np.allclose(p.list_data()[0].asnumpy(), p.list_data()[1].asnumpy())
    assert changed > 20              # the halves differ, so the test can tell them apart


def test_saved_parameters_and_get_subnet_are_the_first_contexts(stepped, tmp_path):
    """Saved: every parameter from the first context (BN statistics of its half, not the
    average over the contexts that MXNet's save_parameters writes); a one-context copy loaded
    from that file extracts the same subnet as the two-context supernet."""
    two, arch = stepped["two"], stepped["arch"]
    path = str(tmp_path / "two.params")
    save_parameters(two, path)
    saved = {k: v.asnumpy() for k, v in nd.load(path).items()}
    first = _values(two, 0)
    assert set(saved) == set(first)
    for name, value in saved.items():
        np.testing.assert_array_equal(value, first[name], err_msg=name)
    copy = get_model("ShuffleNas", classes=10, input_size=32)
    copy.load_parameters(path, ctx=mx.cpu(0))
    sub_two, sub_one = two.get_subnet(arch), copy.get_subnet(arch)
    params_one = sub_one._collect_params_with_prefix()
    for name, p in sub_two._collect_params_with_prefix().items():
        assert p.list_ctx() == TWO
        for array in p.list_data():
            np.testing.assert_array_equal(array.asnumpy(), params_one[name].data().asnumpy(),
                                          err_msg=name)
    x = nd.array(np.random.default_rng(1).uniform(-1, 1, size=(4, 3, 32, 32)))
    np.testing.assert_allclose(sub_two(x.as_in_context(mx.cpu(1))).asnumpy(),
                               sub_one(x).asnumpy(), rtol=1e-5, atol=1e-6)
    # after share_bn_statistics (the trainer's end of epoch) both contexts hold the first's
    share_bn_statistics(two)
    for name, p in two._collect_params_with_prefix().items():
        if name.endswith(STATS):
            np.testing.assert_array_equal(p.list_data()[1].asnumpy(), first[name])


def test_every_context_runs_the_sampled_path(monkeypatch, tmp_path):
    """Three steps on two contexts with a path sampled per step: each context runs, at every
    position, the sampled block at the sampled width, and both run the same ones."""
    from oneshot_nas.models import supernet as supernet_module
    from oneshot_nas.training.samplers import make_sampler
    calls = {0: [], 1: []}
    forward = supernet_module._ChoicePosition.forward

    def recording(self, x, block_choice, active, use_all_blocks=False):
        calls[x.context.device_id].append((block_choice, active))
        return forward(self, x, block_choice, active, use_all_blocks)
    monkeypatch.setattr(supernet_module._ChoicePosition, "forward", recording)
    net = _supernet(TWO)
    net.hybridize(static_alloc=True)
    data, label = _batch()
    sampler = make_sampler(None, seed=5)
    metrics = str(tmp_path / "m.jsonl")
    _train_steps(net, TWO, [(data, label)] * 3, sampler, metrics)
    with open(metrics) as f:
        sampled = [Architecture.from_json(r["arch"]) for r in map(json.loads, f)
                   if r["kind"] == "sample"]
    assert len(sampled) == 3 and len(set(sampled)) == 3
    expected = [(b, None if m == out_c else m) for arch in sampled
                for b, m, out_c in zip(arch.blocks, arch.mid_channels("OneShot"),
                                       [c[2] for c in _layout()])]
    assert calls[0] == expected
    assert calls[1] == expected


def _layout():
    from oneshot_nas.search_space import block_layout
    return block_layout("OneShot")


# ---- BN recalibration and the search's scores ----------------------------------------------
def test_recalibration_on_two_contexts_equals_one():
    """Whole groups go to each context in image order: the pooled statistics are those of
    one context (an incomplete last group included), on both copies of the subnet."""
    supernet = _supernet([mx.cpu(0)])
    arch = _path()
    images = nd.array(np.random.default_rng(2).uniform(-1, 1, size=(150, 3, 32, 32)))
    batches = [images[i:i + 50] for i in range(0, 150, 50)]
    one = supernet.get_subnet(arch, ctx=[mx.cpu(0)])
    two = supernet.get_subnet(arch, ctx=TWO)
    assert recalibrate_bn(one, batches, ctx=mx.cpu(0), group_size=16, batch_size=64) == 150
    assert recalibrate_bn(two, batches, ctx=TWO, group_size=16, batch_size=64) == 150
    ref = one._collect_params_with_prefix()
    checked = 0
    for name, p in two._collect_params_with_prefix().items():
        if name.endswith(STATS):
            expected = ref[name].data().asnumpy()
            # float32 noise of forward passes of other sizes grows through 20 blocks (1e-5
            # of the largest statistic here); groups cut differently would differ by 1e-2
            scale = np.abs(expected).max()
            for array in p.list_data():
                np.testing.assert_allclose(array.asnumpy(), expected, rtol=1e-4,
                                           atol=1e-6 + 1e-5 * scale, err_msg=name)
            checked += 1
    assert checked > 50


def test_search_scores_on_two_contexts_equal_one(tmp_path):
    """The same candidates get the same top-1 / top-5 / loss from the evaluator (recalibrated
    on the same images, scored on the same batches) on two contexts as on one."""
    from oneshot_nas.search import CandidateEvaluator
    rng = np.random.default_rng(6)
    supernet = _supernet([mx.cpu(0)])
    path = str(tmp_path / "supernet.params")
    save_parameters(supernet, path)
    calib = nd.array(rng.uniform(-1, 1, size=(96, 3, 32, 32)))
    val = [(nd.array(rng.uniform(-1, 1, size=(40, 3, 32, 32))),
            nd.array(rng.integers(0, 10, size=40))) for _ in range(3)]
    archs = [Architecture.sample(rng) for _ in range(3)]
    scores = {}
    for key, ctx in (("one", mx.cpu(0)), ("two", TWO)):
        net = get_model("ShuffleNas", classes=10, input_size=32)
        net.load_parameters(path, ctx=ctx)
        evaluator = CandidateEvaluator(net, calib, val, ctx, group_size=16, batch_size=64)
        scores[key] = [evaluator.evaluate(a) for a in archs]
    for one, two in zip(scores["one"], scores["two"]):
        assert two["top1"] == one["top1"] and two["top5"] == one["top5"]
        assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)


def test_search_cli_with_two_devices_scores_like_one(tmp_path, supernet_params):
    """search_supernet.py --devices cpu:0,cpu:1 evaluates the same candidates to the same
    scores as the default single device (digits, a few random candidates)."""
    from oneshot_nas.cli import search_supernet
    results = {}
    for key, extra in (("one", []), ("two", ["--devices", "cpu:0,cpu:1"])):
        out = tmp_path / key
        argv = ["--dataset", "digits", "--supernet-params", supernet_params, "--output-dir",
                str(out), "--update-bn-images", "64", "--batch-size", "64", "--search-mode",
                "random", "--search-iters", "3", "--topk", "1", "--max-flops", "400",
                "--no-progress", "-j", "0", "--holdout-search", "0"] + extra
        assert search_supernet.main(argv) == 0
        with open(out / "search_results.json") as f:
            results[key] = json.load(f)
    assert results["two"]["config"]["devices"] == "cpu:0,cpu:1"
    one = {json.dumps(c["arch"]): c for c in results["one"]["candidates"]}
    two = {json.dumps(c["arch"]): c for c in results["two"]["candidates"]}
    assert set(one) == set(two) and len(one) == 3
    for key, cand in one.items():
        assert two[key]["top1"] == cand["top1"] and two[key]["top5"] == cand["top5"], key


# ---- the command line: --devices ------------------------------------------------------------
@pytest.mark.parametrize("devices,needle", [
    ("tpu:0", "--devices: unknown device 'tpu:0'; use cpu:N or gpu:N"),
    ("cpu:x", "--devices: unknown device 'cpu:x'"),
    ("cpu:0,,cpu:1", "--devices 'cpu:0,,cpu:1': give a comma-separated list"),
    ("cpu:0,cpu:0", "--devices: device cpu:0 is listed twice"),
    ("gpu:%d" % mx.context.num_gpus(), "--devices: device gpu:%d is absent: this machine has "
                                       "%d GPU(s)" % ((mx.context.num_gpus(),) * 2)),
])
def test_unknown_or_absent_devices_exit_2(capsys, tmp_path, devices, needle):
    from oneshot_nas.cli import search_supernet, train_imagenet
    argv = ["--dataset", "digits", "--devices", devices, "--num-epochs", "1",
            "--no-progress", "--logging-file", str(tmp_path / "t.log"),
            "--save-dir", str(tmp_path / "params")]
    assert train_imagenet.main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and err[0] == "train_imagenet.py: error: " + needle \
        or needle in err[0], err
    assert not (tmp_path / "params").exists()
    assert search_supernet.main(["--dataset", "digits", "--supernet-params", __file__,
                                 "--devices", devices, "--output-dir", str(tmp_path / "s"),
                                 "--no-progress"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and needle in err[0] and err[0].startswith("search_supernet.py"), err


def test_devices_and_num_gpus_together_are_refused():
    with pytest.raises(ValueError, match="--devices cpu:0,cpu:1 and --num-gpus 1 both choose"):
        TrainConfig(devices="cpu:0,cpu:1", num_gpus=1).validate()
    with pytest.raises(ValueError, match="--dtype float16 needs GPU devices"):
        TrainConfig(devices="cpu:0,cpu:1", dtype="float16").validate()
    assert TrainConfig(devices="cpu:1, cpu:0").contexts() == [mx.cpu(1), mx.cpu(0)]


# ---- a killed and resumed two-device supernet run --------------------------------------------
def _train_cmd(save_dir, *extra):
    return [sys.executable, os.path.join(ROOT, "train_imagenet.py"), "--dataset", "digits",
            "--model", "ShuffleNas", "--devices", "cpu:0,cpu:1", "--batch-size", "16",
            "--lr", "0.05", "--no-augment", "-j", "1", "--num-epochs", "3",
            "--max-batches-per-epoch", "3", "--val-subnets", "1", "--update-bn-images", "64",
            "--save-dir", str(save_dir), "--logging-file", str(save_dir / "log.txt"),
            "--no-progress", "--save-frequency", "1", "--log-interval", "1"] + list(extra)


@pytest.mark.slow
def test_two_device_supernet_run_is_killed_auto_resumes_and_finishes(tmp_path):
    """train_imagenet.py --devices cpu:0,cpu:1 on the digits supernet: killed after its first
    checkpoint, resumed with --auto-resume, it finishes with the same sampled paths, learning
    rates and step losses as an uninterrupted run, and loadable checkpoints."""
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    proc = subprocess.run(_train_cmd(ref_dir), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "device(s) cpu(0),cpu(1)" in proc.stderr
    killed = subprocess.Popen(_train_cmd(run_dir), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (run_dir / "ShuffleNas-supernet-0001.json").exists():
        assert time.time() < deadline and killed.poll() is None
        time.sleep(0.02)
    time.sleep(0.3)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (run_dir / "ShuffleNas-supernet-final.params").exists()
    assert latest_checkpoint(str(run_dir), "ShuffleNas-supernet")["epoch"] in (1, 2)
    proc = subprocess.run(_train_cmd(run_dir, "--auto-resume"), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from" in proc.stderr
    assert latest_checkpoint(str(run_dir), "ShuffleNas-supernet")["epoch"] == 3
    ref_paths, got_paths = _last_rows(ref_dir, "sample"), _last_rows(run_dir, "sample")
    assert {k: r["arch"] for k, r in got_paths.items()} == \
        {k: r["arch"] for k, r in ref_paths.items()}
    ref_train, got_train = _last_rows(ref_dir, "train"), _last_rows(run_dir, "train")
    assert sorted(k[0] for k in got_train) == [0, 1, 2]
    for key, row in ref_train.items():
        assert got_train[key]["lr"] == pytest.approx(row["lr"], rel=1e-9), key
    # the final weights and every checkpoint load into a one-context supernet
    for name in ("ShuffleNas-supernet-final.params",
                 load_meta(str(run_dir / "ShuffleNas-supernet-0003.json"))["params"]):
        net = get_model("ShuffleNas", classes=10)
        net.load_parameters(str(run_dir / name))
    # the losses after the resume are the uninterrupted run's: the two contexts hold the same
    # weights at every step (one learning rate per step, see trainer._ScheduleStep), so the
    # checkpoint (their average) continues the run exactly, up to MKLDNN's run-to-run noise
    ref_steps, got_steps = _last_rows(ref_dir, "step"), _last_rows(run_dir, "step")
    assert sorted(got_steps) == sorted(ref_steps)
    for key, row in ref_steps.items():
        assert got_steps[key]["loss"] == pytest.approx(row["loss"], rel=5e-3), key
