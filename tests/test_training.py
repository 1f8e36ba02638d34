"""Trainer end to end on the bundled digits: accuracy, kill + auto-resume, checkpoints."""
import json
import os
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from oneshot_nas import get_model
from oneshot_nas.training import TrainConfig, make_lr_scheduler, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cmd(save_dir, *extra):
    return [sys.executable, os.path.join(ROOT, "train_imagenet.py"), "--dataset", "digits",
            "--batch-size", "64", "--lr", "0.2", "--lr-mode", "cosine", "--no-augment",
            "--save-dir", str(save_dir), "--logging-file", str(save_dir / "log.txt"),
            "--no-progress", "--save-frequency", "1"] + list(extra)


def _metrics(save_dir, kind):
    with open(save_dir / "log.jsonl") as f:
        rows = [json.loads(l) for l in f]
    return [r for r in rows if r["kind"] == kind]


def test_lr_schedule_warmup_then_cosine():
    cfg = TrainConfig(num_epochs=4, warmup_epochs=1, warmup_lr=0.0, lr_mode="cosine")
    sched = make_lr_scheduler(cfg, iters_per_epoch=10, base_lr=0.4)
    lrs = np.array([sched(i) for i in range(40)])
    # GluonCV's schedulers reach their target at the last iteration of each phase
    np.testing.assert_allclose(lrs[:10], np.linspace(0.0, 0.4, 10), atol=1e-9)
    k = np.arange(30)
    np.testing.assert_allclose(lrs[10:], 0.2 * (1 + np.cos(np.pi * k / 29)), atol=1e-9)


@pytest.mark.slow
def test_oneshot_s_plus_learns_digits(tmp_path):
    summary = train(TrainConfig(dataset="digits", model="OneShot-S+", input_size=32,
                                batch_size=64, num_epochs=8, lr=0.2, lr_mode="cosine",
                                no_augment=True, save_dir=str(tmp_path), progress=False,
                                logging_file=None, metrics_file=str(tmp_path / "m.jsonl"),
                                num_workers=2))
    assert summary["best_top1"] >= 0.975, summary
    # the exported hybridized subnet loads back
    net = mx.gluon.SymbolBlock.imports(str(tmp_path / "OneShot-S+-symbol.json"), ["data"],
                                       str(tmp_path / "OneShot-S+-0000.params"))
    assert net(mx.nd.zeros((1, 3, 32, 32))).shape == (1, 10)


@pytest.mark.slow
def test_sigkill_then_auto_resume_matches_uninterrupted_lr(tmp_path):
    epochs = ["--num-epochs", "4", "--model", "OneShot-S+", "--warmup-epochs", "1"]
    ref_dir = tmp_path / "ref"
    subprocess.run(_cmd(ref_dir, *epochs), check=True, capture_output=True, timeout=600)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(_cmd(run_dir, *epochs), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # kill mid-epoch, after the first epoch checkpoint is complete
    deadline = time.time() + 300
    while not (run_dir / "OneShot-S+-0001.json").exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.2)
    time.sleep(2.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # only complete checkpoints remain, and every one of them loads
    for name in os.listdir(run_dir):
        assert not name.startswith(".tmp-"), name
    subprocess.run(_cmd(run_dir, *epochs, "--auto-resume"), check=True, capture_output=True,
                   timeout=600)
    for name in sorted(os.listdir(run_dir)):
        if name.endswith(".params") and not name.endswith("-0000.params"):
            net = get_model("OneShot-S+", classes=10)
            net.load_parameters(str(run_dir / name))
    ref = {r["epoch"]: r["lr"] for r in _metrics(ref_dir, "train")}
    resumed = {r["epoch"]: r["lr"] for r in _metrics(run_dir, "train")}
    assert set(resumed) >= {0, 1, 2, 3}
    for epoch in (1, 2, 3):
        assert resumed[epoch] == pytest.approx(ref[epoch], rel=1e-9), epoch
