"""Horovod on localhost with Gloo: two real workers training on digits."""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
hvd = pytest.importorskip("horovod.mxnet", reason="horovod is built by `make install`")
HOROVODRUN = shutil.which("horovodrun") or os.path.join(os.path.dirname(sys.executable),
                                                        "horovodrun")


def _run(tmp_path, *args):
    cmd = [HOROVODRUN, "-np", "2", "-H", "localhost:2", "--gloo", sys.executable,
           os.path.join(ROOT, "train_imagenet.py"), "--horovod", "--dataset", "digits",
           "--batch-size", "32", "--lr", "0.05", "--no-augment", "-j", "1", "--log-interval", "2",
           "--save-dir", str(tmp_path), "--logging-file", str(tmp_path / "log.txt"),
           "--no-progress", "--save-frequency", "0"] + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = {}
    for rank, name in ((0, "log.jsonl"), (1, "log.rank1.jsonl")):
        with open(tmp_path / name) as f:
            records[rank] = [json.loads(l) for l in f]
    return records


def _assert_same_parameters(rec):
    norms = [next(r for r in rec[k] if r["kind"] == "final")["param_norms"] for k in (0, 1)]
    assert norms[0].keys() == norms[1].keys() and len(norms[0]) > 100
    for name, value in norms[0].items():
        # equal up to the float32 rounding of Gloo's rank-dependent summation order
        assert norms[1][name] == pytest.approx(value, rel=1e-5, abs=1e-7), name


@pytest.mark.slow
def test_two_workers_learn_and_stay_identical(tmp_path):
    rec = _run(tmp_path, "--model", "OneShot-S+", "--num-epochs", "2")
    steps = [r["loss"] for r in rec[0] if r["kind"] == "step"]
    assert steps[-1] < steps[0] - 0.2, steps
    _assert_same_parameters(rec)


@pytest.mark.slow
def test_supernet_workers_sample_the_same_paths(tmp_path):
    rec = _run(tmp_path, "--model", "ShuffleNas", "--num-epochs", "1",
               "--max-batches-per-epoch", "8", "--update-bn-images", "64")
    paths = [[r["arch"] for r in rec[k] if r["kind"] == "sample"] for k in (0, 1)]
    assert len(paths[0]) == 8 and paths[0] == paths[1]
    assert len(set(paths[0])) > 1
    _assert_same_parameters(rec)
