"""Every optimisation flag of the trainer changes what it says, on tiny digits runs.

Each run is one or a few batches of the smallest fixed subnet at 32 px. The trainer is called
as a library (``train(TrainConfig(...))``); the network, the loss and the data it sees are
recorded through a wrapped ``build_model``, a forward hook and a recording loss, and the
figures are recomputed here from those records.
"""
import json

import mxnet as mx
import numpy as np
import pytest

from oneshot_nas import Architecture
from oneshot_nas.data import make_loaders
from oneshot_nas.training import TrainConfig, train
from oneshot_nas.training import trainer as trainer_module

SMALLEST = Architecture.smallest().block_string()     # also the smallest channel choices
BATCH = 32


def _config(tmp_path, **overrides):
    values = dict(dataset="digits", model="ShuffleNas_fixArch", block_choices=SMALLEST,
                  channel_choices=SMALLEST, input_size=32, batch_size=BATCH, num_epochs=1,
                  max_batches_per_epoch=1, lr=0.1, lr_mode="cosine", no_augment=True,
                  num_workers=1, save_dir=str(tmp_path), save_frequency=0, progress=False,
                  logging_file=None, metrics_file=str(tmp_path / "m.jsonl"), log_interval=1)
    values.update(overrides)
    return TrainConfig(**values)


class _Recorder:
    """Wraps ``build_model`` (keeps the network, records the inputs and outputs of its forward
    passes, training and validation) and the cross-entropy loss (records its targets)."""

    def __init__(self, monkeypatch):
        self.nets, self.inputs, self.outputs, self.targets = [], [], [], []
        self.training = []          # per forward pass: training mode (else validation)
        build = trainer_module.build_model
        recorder = self

        def build_and_watch(cfg, classes):
            net = build(cfg, classes)
            forward = net.forward

            def watched(x, *args):
                out = forward(x, *args)
                recorder.inputs.append(x.asnumpy())
                recorder.outputs.append(out.asnumpy())
                recorder.training.append(mx.autograd.is_training())
                return out
            net.forward = watched
            recorder.nets.append(net)
            return net
        monkeypatch.setattr(trainer_module, "build_model", build_and_watch)
        loss_class = mx.gluon.loss.SoftmaxCrossEntropyLoss
        loss_forward = loss_class.forward

        def recording_forward(loss, pred, label, *args):
            recorder.targets.append(label.asnumpy())
            return loss_forward(loss, pred, label, *args)
        monkeypatch.setattr(loss_class, "forward", recording_forward)


def _metrics(tmp_path, kind):
    with open(tmp_path / "m.jsonl") as f:
        return [r for r in map(json.loads, f) if r["kind"] == kind]


def _first_batch():
    """The first training batch of epoch 0, as the trainer reads it (no augmentation)."""
    train_data, _, _ = make_loaders(dataset="digits", batch_size=BATCH, input_size=32,
                                    augment=False, num_workers=1, seed=0)
    train_data.set_epoch(0)
    data, label = next(iter(train_data))
    return data.asnumpy(), label.asnumpy().astype(np.int64)


def _one_hot(y, eta=0.0):
    out = np.full((len(y), 10), eta / 9)
    out[np.arange(len(y)), y] = 1 - eta + eta / 9
    return out


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


# ---- targets and losses -----------------------------------------------------------------------
def test_label_smoothing_targets(tmp_path, monkeypatch):
    rec = _Recorder(monkeypatch)
    train(_config(tmp_path, label_smoothing=True))
    x, y = _first_batch()
    np.testing.assert_allclose(rec.inputs[0], x)
    target = rec.targets[0]
    np.testing.assert_allclose(target, _one_hot(y, 0.1), atol=1e-6)      # 0.91 / 0.0111
    # the logged loss is the cross-entropy against those soft targets
    loss = -(target * _log_softmax(rec.outputs[0])).sum(axis=1).mean()
    assert _metrics(tmp_path, "step")[0]["loss"] == pytest.approx(loss, rel=1e-4)


def test_without_label_smoothing_targets_are_the_labels(tmp_path, monkeypatch):
    rec = _Recorder(monkeypatch)
    train(_config(tmp_path))
    x, y = _first_batch()
    np.testing.assert_array_equal(rec.targets[0].astype(np.int64), y)
    loss = -_log_softmax(rec.outputs[0])[np.arange(len(y)), y].mean()
    assert _metrics(tmp_path, "step")[0]["loss"] == pytest.approx(loss, rel=1e-4)


def test_mixup_mixes_images_and_targets_with_one_lambda(tmp_path, monkeypatch):
    rec = _Recorder(monkeypatch)
    train(_config(tmp_path, mixup=True, mixup_alpha=0.4))
    x, y = _first_batch()
    target = rec.targets[0]
    # every row mixes its own label with the label of the image at the mirrored position
    onehot = _one_hot(y)
    mixed_rows = y != y[::-1]
    assert mixed_rows.sum() >= BATCH // 2
    lam = target[np.flatnonzero(mixed_rows)[0], y[mixed_rows][0]]
    assert 0 < lam < 1 and abs(lam - 0.5) > 1e-6
    np.testing.assert_allclose(target, lam * onehot + (1 - lam) * onehot[::-1], atol=1e-6)
    np.testing.assert_allclose(rec.inputs[0], lam * x + (1 - lam) * x[::-1], atol=1e-5)
    loss = -(target * _log_softmax(rec.outputs[0])).sum(axis=1).mean()
    assert _metrics(tmp_path, "step")[0]["loss"] == pytest.approx(loss, rel=1e-4)


def test_mixup_off_epoch_turns_it_off_for_the_last_epochs(tmp_path, monkeypatch):
    rec = _Recorder(monkeypatch)
    train(_config(tmp_path, mixup=True, num_epochs=2, mixup_off_epoch=1))
    x, y = _first_batch()
    assert rec.targets[0].ndim == 2                 # epoch 0: mixed (dense) targets
    # epoch 1 (the last) is not mixed: the net sees the images of that epoch as they are
    train_data, _, _ = make_loaders(dataset="digits", batch_size=BATCH, input_size=32,
                                    augment=False, num_workers=1, seed=0)
    train_data.set_epoch(1)
    x1, y1 = next(iter(train_data))
    second = [i for i, training in enumerate(rec.training) if training][1]
    np.testing.assert_allclose(rec.inputs[second], x1.asnumpy())
    np.testing.assert_allclose(rec.targets[-1], _one_hot(y1.asnumpy().astype(np.int64)),
                               atol=1e-6)


def test_teacher_distillation_loss(tmp_path, monkeypatch):
    from oneshot_nas import get_model
    mx.random.seed(7)
    teacher = get_model("OneShot-S+", classes=10)
    teacher.initialize(mx.init.Xavier())
    teacher_file = str(tmp_path / "teacher.params")
    teacher.save_parameters(teacher_file)
    rec = _Recorder(monkeypatch)
    temperature, hard_weight = 4.0, 0.3
    train(_config(tmp_path, teacher="OneShot-S+", teacher_params=teacher_file,
                  temperature=temperature, hard_weight=hard_weight))
    x, y = _first_batch()
    student = rec.outputs[0]
    soft = np.exp(_log_softmax(teacher(mx.nd.array(x)).asnumpy() / temperature))
    soft_loss = -(soft * _log_softmax(student / temperature)).sum(axis=1) * temperature ** 2
    hard_loss = -_log_softmax(student)[np.arange(len(y)), y]
    expected = ((1 - hard_weight) * soft_loss + hard_weight * hard_loss).mean()
    logged = _metrics(tmp_path, "step")[0]["loss"]
    assert logged == pytest.approx(expected, rel=1e-4)
    assert abs(logged - hard_loss.mean()) > 1e-3 * hard_loss.mean()   # not plain CE
    with pytest.raises(ValueError, match="--teacher-params"):
        train(_config(tmp_path, teacher="OneShot-S+", teacher_params=str(tmp_path / "no")))


# ---- learning-rate schedules ------------------------------------------------------------------
def _lrs(tmp_path, monkeypatch, **overrides):
    train(_config(tmp_path, num_epochs=4, max_batches_per_epoch=3, lr=0.4, **overrides))
    return np.array([r["lr"] for r in _metrics(tmp_path, "step")])


# 4 epochs of 3 batches. The lr logged after update n (1-based) is the one that update used,
# the schedule at iteration n; GluonCV's schedulers reach their end value at the last
# iteration of a phase (iteration count - 1) and stay there.
UPDATES = np.arange(1, 13)


def test_lr_mode_step_with_decay_epochs(tmp_path, monkeypatch):
    lrs = _lrs(tmp_path, monkeypatch, lr_mode="step", lr_decay_epoch="1,3", lr_decay=0.5)
    decays = (UPDATES >= 3).astype(int) + (UPDATES >= 9)
    np.testing.assert_allclose(lrs, 0.4 * 0.5 ** decays, rtol=1e-6)


def test_lr_decay_period_overrides_decay_epochs(tmp_path, monkeypatch):
    lrs = _lrs(tmp_path, monkeypatch, lr_mode="step", lr_decay_epoch="1,3", lr_decay=0.1,
               lr_decay_period=2)
    decays = (UPDATES >= 6).astype(int)          # epochs 2, 4, ...: only epoch 2 within 4
    np.testing.assert_allclose(lrs, 0.4 * 0.1 ** decays, rtol=1e-6)


def test_lr_mode_poly(tmp_path, monkeypatch):
    lrs = _lrs(tmp_path, monkeypatch, lr_mode="poly")
    t = np.minimum(UPDATES, 11)
    np.testing.assert_allclose(lrs, 0.4 * (1 - t / 11) ** 2, rtol=1e-6, atol=1e-9)


def test_lr_mode_cosine_with_warmup(tmp_path, monkeypatch):
    lrs = _lrs(tmp_path, monkeypatch, lr_mode="cosine", warmup_epochs=1, warmup_lr=0.1)
    # warm-up: iterations 0..2 go linearly from 0.1 to 0.4; then cosine over iterations 3..11
    warm = UPDATES[:2]
    np.testing.assert_allclose(lrs[:2], 0.1 + 0.3 * warm / 2, rtol=1e-6)
    k = np.minimum(UPDATES[2:] - 3, 8)
    np.testing.assert_allclose(lrs[2:], 0.2 * (1 + np.cos(np.pi * k / 8)), rtol=1e-6,
                               atol=1e-9)


# ---- execution mode, resuming, optimizers -----------------------------------------------------
def test_imperative_mode_computes_what_hybrid_computes(tmp_path, monkeypatch):
    rec = _Recorder(monkeypatch)
    # lr 0: the weights stay, BN statistics move by the same batch in both runs; validation
    # (no dropout) then has to give the same outputs
    train(_config(tmp_path / "hybrid", lr=0.0))
    first_of_second_run, nets_of_first_run = len(rec.outputs), len(rec.nets)
    train(_config(tmp_path / "imperative", lr=0.0, mode="imperative"))
    # each run builds its network and, for every validation, a copy of it to validate
    hybrid, imperative = rec.nets[:nets_of_first_run], rec.nets[nets_of_first_run:]
    assert len(hybrid) == len(imperative) >= 2
    assert all(n._active for n in hybrid) and not any(n._active for n in imperative)
    assert len(rec.outputs) == 2 * first_of_second_run
    assert rec.training[0] and not any(rec.training[1:first_of_second_run])
    for i in range(1, first_of_second_run):         # the validation batches
        np.testing.assert_allclose(rec.outputs[first_of_second_run + i], rec.outputs[i],
                                   rtol=1e-4, atol=1e-4)
    top1 = [_metrics(tmp_path / d, "val")[0]["top1"] for d in ("hybrid", "imperative")]
    assert top1[0] == top1[1]
    # only the hybridized run exports a symbol
    assert (tmp_path / "hybrid" / "ShuffleNas_fixArch-symbol.json").exists()
    assert not (tmp_path / "imperative" / "ShuffleNas_fixArch-symbol.json").exists()


def _initial_params(tmp_path):
    from oneshot_nas import Architecture
    from oneshot_nas.models import get_model
    mx.random.seed(11)
    net = get_model("ShuffleNas_fixArch", classes=10, input_size=32,
                    architecture=Architecture.parse(SMALLEST, SMALLEST))
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    path = str(tmp_path / "start.params")
    net.save_parameters(path)
    return path, {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def test_resume_params_loads_the_weights_and_skips_epochs(tmp_path, monkeypatch):
    path, start = _initial_params(tmp_path)
    # resume at epoch 2 of 2: nothing left to train, the final weights are the loaded ones
    train(_config(tmp_path / "a", resume_params=path, resume_epoch=2, num_epochs=2))
    final = mx.nd.load(str(tmp_path / "a" / "ShuffleNas_fixArch-final.params"))
    assert set(final) == set(start)
    for name, value in start.items():
        np.testing.assert_array_equal(final[name].asnumpy(), value, err_msg=name)
    # resume at epoch 1 of 2: only epoch 1 runs
    train(_config(tmp_path / "b", resume_params=path, resume_epoch=1, num_epochs=2))
    assert [r["epoch"] for r in _metrics(tmp_path / "b", "train")] == [1]


def _one_step(tmp_path, start_path, optimizer, lr=0.01):
    out = tmp_path / optimizer
    train(_config(out, resume_params=start_path, optimizer=optimizer, lr=lr, wd=0.0,
                  metrics_file=str(out / "m.jsonl")))
    final = mx.nd.load(str(out / "ShuffleNas_fixArch-final.params"))
    return {k: v.asnumpy() for k, v in final.items()}


def test_optimizer_flag_selects_the_update_rule(tmp_path):
    path, start = _initial_params(tmp_path)
    lr = 0.01
    steps = {}
    for name in ("sgd", "nag", "adam"):
        final = _one_step(tmp_path, path, name, lr)
        steps[name] = {k: final[k] - start[k] for k in start
                       if k.endswith("weight") and final[k].ndim == 4}
    assert steps["sgd"]
    for key, sgd in steps["sgd"].items():
        big = np.abs(sgd) > 1e-3 * np.abs(sgd).max()
        # first NAG step from zero momentum: lr * (1 + momentum) * gradient = 1.9 x SGD's
        np.testing.assert_allclose(steps["nag"][key][big], 1.9 * sgd[big], rtol=2e-2,
                                   atol=1e-2 * np.abs(sgd).max(), err_msg=key)
        # first Adam step: lr * g / (|g| + eps): the size of the lr, the sign of -g
        np.testing.assert_allclose(steps["adam"][key][big], lr * np.sign(sgd[big]), rtol=2e-2,
                                   err_msg=key)
