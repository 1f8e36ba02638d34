"""search_supernet.py end to end on digits: resume, export, bad inputs."""
import json
import math
import os
import subprocess
import sys

import mxnet as mx
import pytest

from oneshot_nas import get_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _search(out, params, *extra, check=True):
    cmd = [sys.executable, os.path.join(ROOT, "search_supernet.py"), "--dataset", "digits",
           "--supernet-params", params, "--output-dir", str(out), "--update-bn-images", "128",
           "--batch-size", "64", "--population-size", "6", "--retain-length", "2",
           "--max-flops", "400", "--topk", "3", "--no-progress", "-j", "1"] + list(extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _topk(out):
    with open(os.path.join(str(out), "search_results.json")) as f:
        res = json.load(f)
    return [(r["block_choices"], r["channel_choices"], r["top1"]) for r in res["topk"]], res


@pytest.mark.slow
def test_killed_genetic_search_resumes_to_the_same_topk_and_exports(tmp_path, supernet_params):
    _search(tmp_path / "full", supernet_params, "--search-iters", "4",
            "--export-best", str(tmp_path / "best"))
    # "killed" after generation 2: its checkpoint is what a SIGKILL leaves behind
    _search(tmp_path / "cut", supernet_params, "--search-iters", "2")
    _search(tmp_path / "cut", supernet_params, "--search-iters", "4", "--resume")
    full, res = _topk(tmp_path / "full")
    resumed, _ = _topk(tmp_path / "cut")
    assert full == resumed
    assert all(r["flops"] <= 400 for r in res["candidates"])
    assert all(abs(r["symbol_flops"] - r["flops"]) < 1e-6 for r in res["topk"])
    for png in res["plots"]:
        assert os.path.getsize(png) > 1000
    # the exported best subnet reproduces the accuracy the search reported
    from oneshot_nas.data import make_loaders
    exp = res["exported"]
    net = mx.gluon.SymbolBlock.imports(exp["symbol"], ["data"], exp["params"])
    _, val, _ = make_loaders(dataset="digits", batch_size=64, input_size=32, augment=False,
                             num_workers=1)
    correct = total = 0
    for data, label in val:
        pred = net(data).asnumpy().argmax(axis=1)
        correct += int((pred == label.asnumpy()).sum())
        total += len(pred)
    assert correct / total == pytest.approx(res["topk"][0]["top1"], abs=1e-6)
    # its record: the supernet's data and preprocessing, its shape and architecture, the
    # command that wrote it (so that export and prediction need no flag)
    meta = json.load(open(exp["deploy"]))
    assert (meta["dataset"], meta["input_size"], meta["style"]) == ("digits", 32, "digits")
    assert meta["classes"] == [str(i) for i in range(10)]
    assert meta["architecture"] == open(exp["architecture"]).read()
    assert meta["config"]["classes"] == 10 and meta["supernet"] == supernet_params
    assert "search_supernet.py" in meta["command"] and "--export-best" in meta["command"]


def test_search_by_held_out_loss_ranks_candidates_by_their_loss(tmp_path, supernet_params):
    _search(tmp_path, supernet_params, "--search-mode", "random", "--search-iters", "5",
            "--search-score", "loss")
    top, res = _topk(tmp_path)
    cands = res["candidates"]
    assert len(cands) == 5 and res["config"]["search_score"] == "loss"
    for c in cands:
        assert 0 < c["loss"] and c["fitness"] == pytest.approx(math.exp(-c["loss"]))
    losses = sorted(c["loss"] for c in cands)
    assert [r["loss"] for r in res["topk"]] == pytest.approx(losses[:3])


def test_mismatched_params_name_the_first_parameter(tmp_path, supernet_params):
    proc = _search(tmp_path, supernet_params, "--use-se", "--search-iters", "1", check=False)
    assert proc.returncode == 2
    err = [l for l in proc.stderr.splitlines() if "error:" in l]
    assert len(err) == 1 and "does not fit this supernet configuration: parameter" in err[0]


@pytest.mark.parametrize("args,needle", [
    (["--max-flops", "1"], "admit no architecture"),
    (["--fixed-block-choices", "0,1,2"], "block choices: expected 20 values, got 3"),
    (["--comparison-model", "ResNet"], "invalid choice: 'ResNet'"),
])
def test_bad_inputs_exit_2_with_one_line(tmp_path, supernet_params, args, needle):
    proc = _search(tmp_path, supernet_params, "--search-iters", "1", *args, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = [l for l in proc.stderr.splitlines() if "error:" in l]
    assert len(err) == 1 and needle in err[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_missing_params_file(tmp_path):
    proc = _search(tmp_path, str(tmp_path / "nope.params"), "--search-iters", "1", check=False)
    assert proc.returncode == 2 and "nope.params does not exist" in proc.stderr


def test_the_search_takes_data_and_shape_from_the_supernets_record(tmp_path, supernet_params):
    """No data or model flag typed: the record beside the weights (as the trainer writes it)
    decides, and the data set's search settings apply; a flag that contradicts it is refused in one line naming both values; weights
    without a record warn once and use the defaults."""
    import shutil
    params = str(tmp_path / "recorded.params")
    shutil.copy(supernet_params, params)
    with open(str(tmp_path / "recorded.json"), "w") as f:
        json.dump({"config": {"dataset": "digits", "input_size": 32, "use_se": False,
                              "last_conv_after_pooling": False,
                              "channels_layout": "OneShot"}}, f)
    base = [sys.executable, os.path.join(ROOT, "search_supernet.py"), "--supernet-params",
            params, "--update-bn-images", "128", "--batch-size", "64", "--max-flops", "400",
            "--no-progress", "-j", "1", "--search-iters", "1"]
    proc = subprocess.run(base + ["--output-dir", str(tmp_path / "s")], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, res = _topk(tmp_path / "s")
    assert res["config"]["dataset"] == "digits" and res["config"]["input_size"] == 32
    # the small data sets' search settings where no flag was given
    assert (res["config"]["population_size"], res["config"]["retain_length"],
            res["config"]["search_score"], res["config"]["update_bn_images"]) == \
        (16, 4, "loss", 128)
    assert res["evaluated"] == 16
    assert "--dataset digits --input-size 32" in res["topk"][0]["train_command"]
    assert res["topk"][0]["script_command"].startswith("DATASET=digits INPUT_SIZE=32 ")
    assert res["topk"][0]["script_command"].endswith("sh scripts/train_fixArch.sh")
    for flag, needle in ((["--dataset", "fashion-mnist"],
                          "--dataset fashion-mnist contradicts the record of"),
                         (["--use-se"], "(recorded.json says --no-se)")):
        proc = subprocess.run(base + flag + ["--output-dir", str(tmp_path / "x")],
                              capture_output=True, text=True, timeout=900)
        err = [l for l in proc.stderr.splitlines() if "error:" in l]
        assert proc.returncode == 2 and len(err) == 1 and needle in err[0], proc.stderr[-2000:]
    os.remove(str(tmp_path / "recorded.json"))
    proc = subprocess.run(base + ["--dataset", "digits", "--output-dir", str(tmp_path / "n")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "has no training record beside it" in proc.stderr
