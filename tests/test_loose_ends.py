"""Loose ends a user could hit, each fixed: file modes, exact recalibration counts, modifier
flags without their main flag, Adam's learning rate, the resume flags' warning, the ``best``
checkpoint replaced as a whole and results written crash-safely (with SIGKILL fault tests)."""
import json
import os
import pickle
import re
import signal
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import nd

from oneshot_nas import Architecture, get_model
from oneshot_nas.files import atomic_write, atomic_write_json
from oneshot_nas.nn import NasBatchNorm, recalibrate_bn
from oneshot_nas.training import TrainConfig, train
from oneshot_nas.training.checkpoint import load_meta, save_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALLEST = Architecture.smallest().block_string()     # also the smallest channel choices


# ---- file modes follow the umask ------------------------------------------------------------
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_files_get_the_mode_of_any_new_file(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_json(str(tmp_path / "a.json"), {"x": 1})
        atomic_write(str(tmp_path / "b.params"),
                     lambda tmp: nd.save(tmp, {"w": nd.ones((2,))}))
        with open(tmp_path / "plain.txt", "w") as f:      # what open() gives, for reference
            f.write("x")
    finally:
        os.umask(old)
    for name in ("a.json", "b.params", "plain.txt"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == mode, name


def test_checkpoint_files_are_readable_by_the_group_and_others(tmp_path):
    old = os.umask(0o022)
    try:
        net = nn_dense()
        trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
        json_path = save_checkpoint(str(tmp_path), "m", "0001", net, trainer, {"epoch": 1})
        save_checkpoint(str(tmp_path), "m", "best", net, trainer, {"epoch": 1})
    finally:
        os.umask(old)
    meta = load_meta(json_path)
    best = load_meta(str(tmp_path / "m-best.json"))
    for path in (json_path, meta["params_path"], meta["states_path"], best["params_path"],
                 best["states_path"], str(tmp_path / "m-best.json")):
        assert os.stat(path).st_mode & 0o777 == 0o644, path


def nn_dense():
    net = mx.gluon.nn.Dense(3, in_units=4)
    net.initialize()
    return net


# ---- recalibrate_bn reads exactly max_images ------------------------------------------------
class _Counting:
    """Batches of ``size`` images; counts how many were read."""

    def __init__(self, batches, size):
        self.batches, self.size, self.read = batches, size, 0

    def __iter__(self):
        rng = np.random.default_rng(0)
        for _ in range(self.batches):
            self.read += 1
            yield nd.array(rng.uniform(-1, 1, size=(self.size, 3, 32, 32)))


@pytest.mark.parametrize("size,max_images,read", [
    (32, 64, 2),        # max_images a multiple of the forward chunk: no third batch
    (16, 64, 4),
    (48, 64, 2),        # the second batch is cut at 64 images
    (32, 40, 2),
    (32, 1000, 6),      # fewer images than max_images: all of them
])
def test_recalibration_reads_no_batch_beyond_max_images(size, max_images, read):
    subnet = get_model("ShuffleNas_fixArch", classes=10, input_size=32, norm_layer=NasBatchNorm,
                       architecture=Architecture.parse(SMALLEST, SMALLEST))
    subnet.initialize()
    batches = _Counting(6, size)
    used = recalibrate_bn(subnet, batches, group_size=16, batch_size=32, max_images=max_images)
    assert used == min(max_images, 6 * size)
    assert batches.read == read


# ---- modifier flags without their main flag -------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["--mixup-alpha", "0.4"], "--mixup-alpha 0.4 needs --mixup"),
    (["--temperature", "4"], "--temperature 4 needs --teacher"),
    (["--hard-weight", "0.3"], "--hard-weight 0.3 needs --teacher"),
    (["--mixup-off-epoch", "2"], "--mixup-off-epoch 2 needs --mixup"),
])
def test_train_modifier_flags_without_their_main_flag_exit_2(capsys, tmp_path, argv, needle):
    from oneshot_nas.cli import train_imagenet
    # a one-batch run of the smallest subnet if the flag were accepted (as it used to be)
    code = train_imagenet.main(["--dataset", "digits", "--num-epochs", "1", "--no-progress",
                                "--model", "ShuffleNas_fixArch", "--block-choices", SMALLEST,
                                "--channel-choices", SMALLEST, "--batch-size", "8",
                                "--max-batches-per-epoch", "1", "-j", "0",
                                "--logging-file", str(tmp_path / "t.log"), "--save-dir",
                                str(tmp_path / "p")] + argv)
    err = [l for l in capsys.readouterr().err.splitlines() if "error:" in l]
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "p").exists()


def test_modifier_flags_with_their_main_flag_keep_their_defaults():
    cfg = TrainConfig(mixup=True).validate()
    assert cfg.mixup_beta == 0.2
    assert TrainConfig(mixup=True, mixup_alpha=0.4).validate().mixup_beta == 0.4
    assert TrainConfig().distillation == (20.0, 0.5)


def test_score_acc_ratio_without_the_balanced_target_exit_2(capsys, tmp_path,
                                                            supernet_params):
    from oneshot_nas.cli import search_supernet
    code = search_supernet.main(["--dataset", "digits", "--supernet-params", supernet_params,
                                 "--output-dir", str(tmp_path / "s"), "--score-acc-ratio",
                                 "0.5", "--no-progress", "--search-mode", "random",
                                 "--search-iters", "1", "--update-bn-images", "32",
                                 "--batch-size", "32", "--holdout-search", "0", "-j", "0"])
    err = [l for l in capsys.readouterr().err.splitlines() if "error:" in l]
    assert code == 2 and len(err) == 1, err
    assert "--score-acc-ratio 0.5 weighs the normalised score of --search-target " \
           "balanced_flop_acc; with --search-target acc it would be ignored" in err[0]


def test_score_acc_ratio_default_is_kept_for_resume_checks():
    from oneshot_nas.search.runner import SearchConfig, score_acc_ratio
    assert score_acc_ratio(SearchConfig(search_target="balanced_flop_acc")) == 1.0
    assert score_acc_ratio(SearchConfig(search_target="balanced_flop_acc",
                                        score_acc_ratio=0.3)) == 0.3
    assert score_acc_ratio(SearchConfig()) == 1.0


# ---- Adam's learning rate -------------------------------------------------------------------
def _tiny_config(tmp_path, **overrides):
    values = dict(dataset="digits", model="ShuffleNas_fixArch", block_choices=SMALLEST,
                  channel_choices=SMALLEST, input_size=32, batch_size=16, num_epochs=2,
                  max_batches_per_epoch=2, lr=0.05, lr_mode="cosine", no_augment=True,
                  num_workers=1, save_dir=str(tmp_path), save_frequency=1, progress=False,
                  logging_file=None, metrics_file=str(tmp_path / "m.jsonl"), log_interval=1)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.parametrize("optimizer", ["adam", "nag"])
def test_optimizer_keeps_the_learning_rate_given(tmp_path, capfd, optimizer):
    """The optimizer saved in the checkpoint's states has --lr as its learning rate (Adam's
    own default 0.001 used to replace it, with a printed 'overwritten' warning), and the
    schedule the run followed starts from --lr."""
    train(_tiny_config(tmp_path, optimizer=optimizer))
    assert "overwritten" not in capfd.readouterr().out
    meta = load_meta(str(tmp_path / "ShuffleNas_fixArch-0001.json"))
    with open(meta["states_path"], "rb") as f:
        _, saved = pickle.loads(f.read())        # our own file, written by this test
    assert saved.lr == 0.05
    assert saved.lr_scheduler.base_lr == 0.05
    with open(tmp_path / "m.jsonl") as f:
        lrs = [r["lr"] for r in map(json.loads, f) if r["kind"] == "step"]
    assert lrs[0] == pytest.approx(0.05 * (1 + np.cos(np.pi / 3)) / 2)


# ---- the resume flags say that states files are pickles --------------------------------------
def test_resume_help_and_readme_warn_that_states_files_are_pickles():
    from oneshot_nas.cli.train_imagenet import build_parser
    text = " ".join(build_parser().format_help().split())
    # a flag's own help ends at its default or, for a switch (no default shown), the next flag
    for entry in (r"--resume-states RESUME_STATES (.*?)\(default",
                  r"--auto-resume (\w.*?) --log-interval"):
        part = re.search(entry, text).group(1)          # the flag's own help text
        assert "pickle" in part and ("trusted" in part or "your own" in part), part
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = " ".join(f.read().split())
    assert re.search(r"--resume-states.{0,400}pickle.{0,200}trusted source", readme)


# ---- the best checkpoint is replaced as a whole ---------------------------------------------
def test_best_set_is_replaced_as_a_whole(tmp_path):
    """A new best set gets new files; the JSON switches to them last; the old set's files are
    removed afterwards; nothing the current JSON names is ever overwritten."""
    net = nn_dense()
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    save_checkpoint(str(tmp_path), "m", "best", net, trainer, {"epoch": 1})
    first = load_meta(str(tmp_path / "m-best.json"))
    before = {p: open(first[p + "_path"], "rb").read() for p in ("params", "states")}
    net.weight.set_data(net.weight.data() + 1)
    replaced = []
    real_replace = os.replace

    def watching_replace(src, dst):
        replaced.append(os.path.basename(dst))
        # until the JSON switches, the first set is on disk unchanged
        if not dst.endswith("m-best.json"):
            for p in ("params", "states"):
                assert open(first[p + "_path"], "rb").read() == before[p]
        return real_replace(src, dst)
    os.replace = watching_replace
    try:
        save_checkpoint(str(tmp_path), "m", "best", net, trainer, {"epoch": 1})
    finally:
        os.replace = real_replace
    second = load_meta(str(tmp_path / "m-best.json"))
    assert replaced[-1] == "m-best.json" and len(replaced) == 3
    assert second["params"] != first["params"] and second["states"] != first["states"]
    assert sorted(os.listdir(tmp_path)) == sorted(["m-best.json", second["params"],
                                                   second["states"]])


KILL_AT_BEST_REPLACE = """
import os, signal, sys
import mxnet as mx
from oneshot_nas.cli.train_imagenet import main
from oneshot_nas.training import trainer
target, count, replace = int(os.environ["KILL_AT"]), [0], os.replace
def dying_replace(src, dst):
    replace(src, dst)
    if "best" in os.path.basename(dst):
        count[0] += 1
        if count[0] == target:
            os.kill(os.getpid(), signal.SIGKILL)
os.replace = dying_replace
evaluate, calls = trainer.evaluate, [0]
def improving(*args, **kwargs):       # every epoch is a new best
    calls[0] += 1
    out = evaluate(*args, **kwargs)
    return (0.1 * calls[0],) + tuple(out[1:])
trainer.evaluate = improving
sys.exit(main(sys.argv[1:]))
"""


def _subnet_train(save_dir, *extra):
    return ["--dataset", "digits", "--model", "ShuffleNas_fixArch", "--block-choices",
            SMALLEST, "--channel-choices", SMALLEST, "--batch-size", "16",
            "--max-batches-per-epoch", "2", "--num-epochs", "2", "--save-frequency", "1",
            "--save-dir", str(save_dir), "--logging-file", "", "--metrics-file", "",
            "--no-progress", "-j", "1", "--no-augment"] + list(extra)


@pytest.mark.parametrize("kill_at,epoch", [(4, 1), (5, 1), (6, 2)])
def test_sigkill_while_the_trainer_replaces_best_leaves_one_complete_set(tmp_path, kill_at,
                                                                         epoch):
    """Killed right after the kill_at-th file rename of a best set (epoch 1 writes 3, epoch 2
    the next 3): what ``best`` names loads and is one epoch's complete set: its parameters and
    states are byte for byte those of that epoch's checkpoint."""
    env = dict(os.environ, KILL_AT=str(kill_at))
    proc = subprocess.run([sys.executable, "-c", KILL_AT_BEST_REPLACE]
                          + _subnet_train(tmp_path), env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    best = load_meta(str(tmp_path / "ShuffleNas_fixArch-best.json"))
    assert best["epoch"] == epoch
    same_epoch = load_meta(str(tmp_path / ("ShuffleNas_fixArch-%04d.json" % epoch)))
    for part in ("params", "states"):
        with open(best[part + "_path"], "rb") as f, open(same_epoch[part + "_path"], "rb") as g:
            assert f.read() == g.read(), part
    net = get_model("ShuffleNas_fixArch", classes=10,
                    architecture=Architecture.parse(SMALLEST, SMALLEST))
    net.load_parameters(best["params_path"])
    mx.gluon.Trainer(net.collect_params(), "nag", {"momentum": 0.9}).load_states(
        best["states_path"])


# ---- the search writes its results crash-safely ----------------------------------------------
KILL_WHILE_WRITING = """
import builtins, os, signal, sys
from oneshot_nas.cli.search_supernet import main
real_open = builtins.open
class Dying:
    def __init__(self, f):
        self.f = f
    def write(self, text):               # half of the first write reaches the disk
        self.f.write(text[: max(1, len(text) // 2)])
        self.f.flush()
        os.fsync(self.f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    def __getattr__(self, name):
        return getattr(self.f, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.f.close()
def dying_open(path, mode="r", *args, **kwargs):
    f = real_open(path, mode, *args, **kwargs)
    if "w" in mode and str(path).endswith("search_results.json"):
        return Dying(f)
    return f
builtins.open = dying_open
sys.exit(main(sys.argv[1:]))
"""


def test_sigkill_while_the_search_writes_its_results_keeps_the_previous_file(tmp_path,
                                                                          supernet_params):
    """A finished search's results, then the search resumed for one more step in the same
    folder and killed in the middle of writing its results: the file on disk is still the
    first, complete one."""
    out = tmp_path / "out"
    argv = ["--dataset", "digits", "--supernet-params", supernet_params, "--output-dir",
            str(out), "--update-bn-images", "64", "--batch-size", "64", "--search-mode",
            "random", "--search-iters", "2", "--topk", "1", "--max-flops", "400",
            "--no-progress", "-j", "0", "--holdout-search", "0"]
    search = [sys.executable, os.path.join(ROOT, "search_supernet.py")]
    proc = subprocess.run(search + argv, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out / "search_results.json") as f:
        first = f.read()
    assert json.loads(first)["config"]["seed"] == 0
    resumed = [a if a != "2" else "3" for a in argv] + ["--resume"]    # --search-iters 3
    proc = subprocess.run([sys.executable, "-c", KILL_WHILE_WRITING] + resumed,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    with open(out / "search_results.json") as f:
        assert f.read() == first                  # complete, and the old one


def test_validation_says_when_outputs_are_not_finite(caplog):
    from oneshot_nas.training.trainer import evaluate

    def net(x):             # a "diverged" classifier: the first image's logits overflow
        out = nd.one_hot(nd.array([0, 1, 2]), 4) * 5
        out[0] = float("inf")
        return out

    batch = (nd.zeros((3, 1)), nd.array([0, 1, 2]))
    with caplog.at_level("WARNING"):
        top1, _, loss = evaluate(net, [batch], [mx.cpu()], with_loss=True)
    assert np.isnan(loss)
    assert "1 of 3 validation images gave non-finite outputs" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        _, _, loss = evaluate(lambda x: nd.one_hot(nd.array([0, 1, 2]), 4) * 5, [batch],
                              [mx.cpu()], with_loss=True)
    assert np.isfinite(loss) and "non-finite" not in caplog.text
