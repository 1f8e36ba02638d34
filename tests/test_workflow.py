"""A user's workflow on the command line, as the README gives it: each command writes into its
own folder, refuses to overwrite another run, and ends by printing the files a user needs next
and the next command, which runs as printed. The slow test walks the whole chain on the real
Fashion-MNIST files with no model flag typed after the first command: supernet -> search ->
the search's train command -> the trainer's printed ONNX export -> prediction on test images
written as PNG files, at the accuracy the trainer logged."""
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from oneshot_nas.data.fashion_mnist import DEBIAN_DIR

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(words, check=True, timeout=900):
    """One command as a user runs it from the checkout (``python`` is this interpreter)."""
    words = [sys.executable if w == "python" else w for w in words]
    proc = subprocess.run(words, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, (words, proc.stderr[-3000:])
    return proc


def _printed(proc, label):
    """The value of the ``label: ...`` line a command printed (the last one)."""
    lines = [l for l in proc.stdout.splitlines() if l.startswith(label + ": ")]
    assert lines, (label, proc.stdout[-2000:])
    return lines[-1][len(label) + 2:]


def _one_error_line(proc):
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [l for l in proc.stderr.splitlines() if "error:" in l]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return errors[0]


def test_a_run_says_where_its_files_went_and_never_overwrites_another(tmp_path):
    folder = str(tmp_path / "subnet")
    train = ["python", "train_imagenet.py", "--dataset", "digits", "--model", "OneShot-S+",
             "--num-epochs", "1", "--max-batches-per-epoch", "2", "--batch-size", "32",
             "--num-gpus", "0", "-j", "0", "--save-dir", folder, "--logging-file",
             str(tmp_path / "train.log")]
    first = _run(train)
    final = _printed(first, "final weights").split(" ")[0]
    assert final == os.path.join(folder, "OneShot-S+-final.params") and os.path.isfile(final)
    nxt = _printed(first, "next")
    assert nxt == "python -m oneshot_nas.cli.export_onnx --symbol %s" \
        % os.path.join(folder, "OneShot-S+-symbol.json")
    before = {n: os.path.getmtime(os.path.join(folder, n)) for n in os.listdir(folder)}
    log = (tmp_path / "train.log").read_text()
    again = _one_error_line(_run(train, check=False))
    assert "already holds a run of OneShot-S+" in again and "--auto-resume" in again
    assert before == {n: os.path.getmtime(os.path.join(folder, n)) for n in os.listdir(folder)}
    assert (tmp_path / "train.log").read_text() == log      # the refused run logged nothing
    # the printed next command runs as printed
    exported = _run(shlex.split(nxt) + ["--no-check"])
    assert os.path.isfile(os.path.join(folder, "OneShot-S+.onnx")), exported.stdout


needs_fashion_mnist = pytest.mark.skipif(
    not os.path.isfile(os.path.join(DEBIAN_DIR, "train-images-idx3-ubyte.gz")),
    reason="Fashion-MNIST is not installed (make data)")


@pytest.mark.slow
@needs_fashion_mnist
def test_supernet_search_train_export_predict_with_no_model_flag_after_the_first(tmp_path):
    import cv2
    from oneshot_nas.data.fashion_mnist import load_fashion_mnist
    tiny = ["--max-batches-per-epoch", "30", "--logging-file", str(tmp_path / "log.txt")]
    # 1. the supernet: the only command that names the model's shape and the data
    supernet = _run(["python", "train_imagenet.py", "--dataset", "fashion-mnist",
                     "--model", "ShuffleNas", "--channels-layout", "OneShot", "--use-se",
                     "--num-epochs", "1", "--batch-size", "64", "--num-gpus", "0", "-j", "0",
                     "--holdout-search", "500", "--update-bn-images", "128", "--val-subnets",
                     "1", "--save-dir", str(tmp_path / "supernet")] + tiny)
    params = _printed(supernet, "final weights").split(" ")[0]
    search_cmd = shlex.split(_printed(supernet, "next"))
    assert search_cmd[:4] == ["python", "search_supernet.py", "--supernet-params", params]
    # 2. the search, as printed, at tiny scale (no data set, input size or shape flag)
    search = _run(search_cmd + ["--search-iters", "2", "--population-size", "4",
                                "--retain-length", "2", "--update-bn-images", "128",
                                "--max-flops", "400", "--no-progress", "-j", "0"])
    results = json.load(open(_printed(search, "results")))
    again = _one_error_line(_run(search_cmd, check=False))
    assert "already holds a search" in again and "--resume" in again
    # 3. the winner trained from scratch with the search's train command
    train_cmd = shlex.split(results["topk"][0]["train_command"])
    assert "--use-se" in train_cmd and "fashion-mnist" in train_cmd
    subnet = _run(train_cmd + ["--num-epochs", "1", "--batch-size", "64", "--lr", "0.1",
                               "--num-gpus", "0", "-j", "0", "--save-dir",
                               str(tmp_path / "subnet"), "--max-batches-per-epoch", "100",
                               "--logging-file", str(tmp_path / "subnet.log")])
    # 4. the ONNX export the trainer printed, as printed
    onnx_out = _run(shlex.split(_printed(subnet, "next")))
    onnx_file = re.search(r"wrote (\S+\.onnx)", onnx_out.stdout).group(1)
    # 5. prediction on 300 real test images written as PNG files, no preprocessing flag
    data = load_fashion_mnist()
    images, labels = data["test_images"][:300], data["test_labels"][:300]
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / ("%03d.png" % i)), image)
    pred = _run(["python", "-m", "oneshot_nas.cli.predict", "--onnx", onnx_file, "--json",
                 "--topk", "1", str(folder)])
    rows = [json.loads(l) for l in pred.stdout.strip().splitlines()]
    names = json.load(open(onnx_file[:-len(".onnx")] + "-deploy.json"))["classes"]
    assert names[0] == "T-shirt/top" and len(rows) == len(labels)
    assert all(r["top"][0]["name"] == names[int(r["top"][0]["class"])] for r in rows)
    predicted = np.array([int(r["top"][0]["class"]) for r in rows])
    accuracy = float((predicted == labels).mean())
    val_top1 = _val_top1(str(tmp_path / "subnet"))
    # well above chance, and the accuracy the trainer logged within the noise of 300 images
    # (sd <= 0.029; 3.5 sd)
    assert val_top1 > 0.4 and abs(accuracy - val_top1) <= 0.1, (accuracy, val_top1)


def _val_top1(folder):
    """The validation top-1 the trainer logged for its one epoch (its best checkpoint's)."""
    with open(os.path.join(folder, "ShuffleNas_fixArch-best.json")) as f:
        saved = json.load(f)
    assert saved["epoch"] == 1
    return saved["top1"]
