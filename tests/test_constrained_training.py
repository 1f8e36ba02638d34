"""Constrained supernet training: every sampled path inside the box, evolution and FLOPs bins
cover it."""
import numpy as np
import pytest

from oneshot_nas.training import TrainConfig, train
from oneshot_nas.training.plots import plot_coverage, plot_curves, read_metrics
from oneshot_nas.training.samplers import ConstraintBox

UPPER, BOTTOM = "flops-330-params-5.0", "flops-190-params-2.8"


def _run(tmp_path, method):
    metrics = tmp_path / ("%s.jsonl" % method)
    train(TrainConfig(dataset="digits", model="ShuffleNas", use_se=True,
                      last_conv_after_pooling=True, input_size=32, batch_size=16, num_epochs=1,
                      lr=0.05, no_augment=True, train_upper_constraints=UPPER,
                      train_bottom_constraints=BOTTOM, train_constraint_method=method,
                      max_batches_per_epoch=40, update_bn_images=32, val_subnets=1,
                      save_dir=None, logging_file=None, metrics_file=str(metrics),
                      progress=False, num_workers=1))
    return read_metrics(str(metrics))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["evolution", "random", "bins"])
def test_sampled_paths_stay_in_the_box(tmp_path, method):
    rows = _run(tmp_path, method)
    box = ConstraintBox.from_strings(UPPER, BOTTOM)
    samples = [r for r in rows if r["kind"] == "sample"]
    assert len(samples) == 40
    flops = np.array([r["flops"] for r in samples])
    params = np.array([r["params"] for r in samples])
    assert box.contains(flops, params).all()
    bins = np.histogram(flops, bins=10, range=(box.flops_min, box.flops_max))[0]
    if method == "evolution":
        assert (bins > 0).mean() >= 0.8, bins
    if method == "bins":                 # 7 bins across the box: every one of them visited
        seven = np.histogram(flops, bins=7, range=(box.flops_min, box.flops_max))[0]
        assert (seven > 0).all(), seven
    png = plot_coverage(rows, str(tmp_path / "coverage.png"), box)
    curves = plot_curves(rows, str(tmp_path / "curves.png"))
    for path in (png, curves):
        with open(path, "rb") as f:
            assert f.read(4) == b"\x89PNG"
