"""Fault tests: SIGKILL at random moments (training and search), a full or read-only save
directory, truncated or corrupt data and parameter files.

A killed run must leave only complete checkpoints, each of which loads, and resuming must end
where an uninterrupted run ends. A file or disk the run cannot use must give one line naming
it (exit status 2), never a traceback, and never damage the checkpoint already written.
"""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from oneshot_nas import Architecture, get_model
from oneshot_nas.training.checkpoint import latest_checkpoint, load_meta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALLEST = Architecture.smallest().block_string()     # also the smallest channel choices

# Runs the trainer CLI and SIGKILLs itself half-way through the KILL_AT_SAVE-th parameter file
# it writes (the file is left truncated at half its size): a kill while a checkpoint is written.
DYING_SAVE = """
import os, signal, sys
import mxnet as mx
from oneshot_nas.cli.train_imagenet import main
save, target, count = mx.nd.save, int(os.environ["KILL_AT_SAVE"]), [0]
def dying_save(fname, data):
    count[0] += 1
    save(fname, data)
    if count[0] == target:
        with open(fname, "r+b") as f:
            f.truncate(os.path.getsize(fname) // 2)
        os.kill(os.getpid(), signal.SIGKILL)
mx.nd.save = dying_save
sys.exit(main(sys.argv[1:]))
"""


def _train_cmd(save_dir, *extra):
    return [sys.executable, os.path.join(ROOT, "train_imagenet.py"), "--dataset", "digits",
            "--batch-size", "32", "--lr", "0.02", "--no-augment", "-j", "1",
            "--save-dir", str(save_dir), "--logging-file", str(save_dir / "log.txt"),
            "--no-progress", "--save-frequency", "1", "--log-interval", "1"] + list(extra)


def _run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kwargs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _wait_or_kill(proc, seconds):
    """Let ``proc`` run ``seconds`` more (or finish first), then SIGKILL it; True if killed."""
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def _kill_after(cmd, seconds):
    """Start ``cmd``, SIGKILL it after ``seconds`` (or let it finish first); True if killed."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return _wait_or_kill(proc, seconds)


def _kill_after_progress(cmd, path, delay):
    """Start ``cmd``; once it has rewritten ``path`` (a checkpoint), wait ``delay`` seconds
    more and SIGKILL it. True if it was killed (not finished before)."""
    before = os.stat(path).st_mtime_ns if os.path.exists(path) else None
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while proc.poll() is None and time.time() < deadline:
        if os.path.exists(path) and os.stat(path).st_mtime_ns != before:
            break
        time.sleep(0.02)
    return _wait_or_kill(proc, delay)


def _last_rows(save_dir, kind):
    """The last row per epoch (and batch) of a metrics file a killed run appended to."""
    rows = {}
    with open(save_dir / "log.jsonl") as f:
        for row in map(json.loads, f):
            if row["kind"] == kind:
                rows[(row.get("epoch"), row.get("batch"))] = row
    return rows


def _check_checkpoints(save_dir, model, prefix):
    """No temporary file is taken for a checkpoint, and every checkpoint's files load."""
    names = os.listdir(save_dir)
    metas = [n for n in names if re.fullmatch(re.escape(prefix) + r"-(\d{4}|best)\.json", n)]
    for name in metas:
        meta = load_meta(str(save_dir / name))
        net = _smallest_subnet() if model == "ShuffleNas_fixArch" else get_model(model,
                                                                                 classes=10)
        net.load_parameters(meta["params_path"])
        states = mx.gluon.Trainer(net.collect_params(), "nag", {"momentum": 0.9})
        states.load_states(meta["states_path"])
    return len(metas)


def _smallest_subnet():
    from oneshot_nas import Architecture
    return get_model("ShuffleNas_fixArch", classes=10,
                     architecture=Architecture.parse(SMALLEST, SMALLEST))


def _compare_runs(ref_dir, run_dir, epochs, exact_paths=False):
    ref, got = _last_rows(ref_dir, "train"), _last_rows(run_dir, "train")
    assert sorted(k[0] for k in got) == list(range(epochs))
    for key, row in ref.items():
        assert got[key]["lr"] == pytest.approx(row["lr"], rel=1e-9), key
        # MKLDNN's run-to-run noise only (two uninterrupted runs: up to 7e-4 here)
        assert got[key]["loss"] == pytest.approx(row["loss"], rel=5e-3), key
    ref_val, got_val = _last_rows(ref_dir, "val"), _last_rows(run_dir, "val")
    for key, row in ref_val.items():
        assert abs(got_val[key]["top1"] - row["top1"]) <= 0.01, key
    if exact_paths:
        ref_paths, got_paths = _last_rows(ref_dir, "sample"), _last_rows(run_dir, "sample")
        assert {k: r["arch"] for k, r in got_paths.items()} == \
            {k: r["arch"] for k, r in ref_paths.items()}
    ref_final = _last_rows(ref_dir, "final")[(None, None)]["param_norms"]
    got_final = _last_rows(run_dir, "final")[(None, None)]["param_norms"]
    assert set(ref_final) == set(got_final)
    # two uninterrupted runs of the subnet differ by up to 0.4 % in a small BN beta's norm
    for name, norm in ref_final.items():
        assert got_final[name] == pytest.approx(norm, rel=1e-2, abs=1e-6), name
    total = np.sqrt(sum(v ** 2 for v in ref_final.values()))
    assert np.sqrt(sum(v ** 2 for v in got_final.values())) == pytest.approx(total, rel=1e-4)


# ---- SIGKILL and resume ---------------------------------------------------------------------
def test_killed_subnet_training_auto_resumes_to_the_same_figures(tmp_path):
    """The fast kill / resume check (run by `make test`): a small fixed subnet, killed after
    its first checkpoint, resumed with --auto-resume: the same lr, loss, validation accuracy
    and final weights as an uninterrupted run."""
    args = ["--model", "ShuffleNas_fixArch", "--block-choices", SMALLEST, "--channel-choices",
            SMALLEST, "--num-epochs", "3", "--max-batches-per-epoch", "6",
            "--warmup-epochs", "1"]
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    _run(_train_cmd(ref_dir, *args))
    proc = subprocess.Popen(_train_cmd(run_dir, *args), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (run_dir / "ShuffleNas_fixArch-0001.json").exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.02)
    # a seeded random moment of epoch 1 (its best checkpoint, or its first batches)
    time.sleep(np.random.default_rng(3).uniform(0.0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "ShuffleNas_fixArch-final.params").exists()
    assert _check_checkpoints(run_dir, "ShuffleNas_fixArch", "ShuffleNas_fixArch") >= 1
    _run(_train_cmd(run_dir, *args, "--auto-resume"))
    _compare_runs(ref_dir, run_dir, 3)
    assert _check_checkpoints(run_dir, "ShuffleNas_fixArch", "ShuffleNas_fixArch") == 4


@pytest.mark.slow
def test_supernet_killed_at_random_moments_auto_resumes_to_the_same_figures(tmp_path):
    """One supernet run killed three times, each time resumed with --auto-resume: in the
    middle of writing epoch 2's parameters, then at two seeded random moments."""
    args = ["--model", "ShuffleNas", "--num-epochs", "4", "--max-batches-per-epoch", "4",
            "--val-subnets", "1", "--update-bn-images", "64"]
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    tic = time.time()
    _run(_train_cmd(ref_dir, *args))
    duration = time.time() - tic
    prefix = "ShuffleNas-supernet"
    # parameter files written: 0001, best (epoch 1), then 0002: killed half-way through it
    env = dict(os.environ, KILL_AT_SAVE="3")
    proc = subprocess.run([sys.executable, "-c", DYING_SAVE] + _train_cmd(run_dir, *args)[2:],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    leftovers = [n for n in os.listdir(run_dir) if n.startswith(".tmp-")]
    assert leftovers and leftovers[0].endswith("-0002.params"), leftovers
    assert latest_checkpoint(str(run_dir), prefix)["epoch"] == 1
    assert _check_checkpoints(run_dir, "ShuffleNas", prefix) == 2     # 0001 and best
    rng = np.random.default_rng(12)
    killed = 0
    for fraction in sorted(rng.uniform(0.15, 0.5, size=2)):
        killed += _kill_after(_train_cmd(run_dir, *args, "--auto-resume"), fraction * duration)
        _check_checkpoints(run_dir, "ShuffleNas", prefix)
    assert killed >= 1
    _run(_train_cmd(run_dir, *args, "--auto-resume"))
    assert not [n for n in os.listdir(run_dir) if n.startswith(".tmp-")]   # cleaned up
    assert latest_checkpoint(str(run_dir), prefix)["epoch"] == 4
    assert _check_checkpoints(run_dir, "ShuffleNas", prefix) == 5
    _compare_runs(ref_dir, run_dir, 4, exact_paths=True)


def _search_cmd(out, params, *extra):
    return [sys.executable, os.path.join(ROOT, "search_supernet.py"), "--dataset", "digits",
            "--supernet-params", params, "--output-dir", str(out), "--update-bn-images", "128",
            "--batch-size", "64", "--population-size", "6", "--retain-length", "2",
            "--max-flops", "400", "--topk", "3", "--no-progress", "-j", "1",
            "--search-iters", "8"] + list(extra)


@pytest.mark.slow
def test_search_killed_at_random_moments_resumes_to_the_same_results(tmp_path, supernet_params):
    """Three kills, each at a seeded random moment of the generation after a new checkpoint,
    each followed by --resume; then the search finishes exactly as an uninterrupted one."""
    from oneshot_nas.search import SearchState
    _run(_search_cmd(tmp_path / "full", supernet_params))
    run_dir = tmp_path / "cut"
    state = run_dir / "search_state.json"
    rng = np.random.default_rng(5)
    steps = []
    # short delays over 8 generations: three kills cannot reach the end (with 2-s delays and 5
    # generations a quiet machine finished the search before the third kill)
    for delay in rng.uniform(0.0, 0.5, size=3):
        assert _kill_after_progress(_search_cmd(run_dir, supernet_params, "--resume"),
                                    str(state), delay)
        steps.append(SearchState.load(str(state)).step)      # the checkpoint always loads
    assert steps == sorted(steps) and steps[-1] < 8, steps  # progress, and not finished
    _run(_search_cmd(run_dir, supernet_params, "--resume"))
    with open(tmp_path / "full" / "search_results.json") as f:
        full = json.load(f)
    with open(run_dir / "search_results.json") as f:
        resumed = json.load(f)
    # exactly the same search: every candidate, every figure, the same history and top-k
    for key in ("topk", "history", "candidates", "evaluated"):
        assert resumed[key] == full[key], key


# ---- a full or read-only disk ---------------------------------------------------------------
def _cli(capsys, argv):
    from oneshot_nas.cli.train_imagenet import main
    code = main(argv)
    err = [l for l in capsys.readouterr().err.splitlines() if "error:" in l]
    return code, err


def _subnet_argv(save_dir, *extra):
    return ["--dataset", "digits", "--model", "ShuffleNas_fixArch", "--block-choices", SMALLEST,
            "--channel-choices", SMALLEST, "--batch-size", "32", "--max-batches-per-epoch", "2",
            "--num-epochs", "2", "--save-frequency", "1", "--save-dir", str(save_dir),
            "--logging-file", "", "--metrics-file", "", "--no-progress", "-j", "1"] + list(extra)


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path, capsys, monkeypatch):
    save = mx.nd.save
    calls = []

    def filling_save(fname, data):
        calls.append(fname)
        if len(calls) == 3:          # epoch 2's parameters: half the file, then ENOSPC
            with open(fname, "wb") as f:
                f.write(b"\0" * 1000)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return save(fname, data)
    monkeypatch.setattr(mx.nd, "save", filling_save)
    code, err = _cli(capsys, _subnet_argv(tmp_path))
    assert code == 2 and len(err) == 1, err
    assert "No space left on device" in err[0] and "ShuffleNas_fixArch-0002.params" in err[0]
    # epoch 1's checkpoint is complete and loads; nothing half-written is left (the best set's
    # files carry the epoch and a random suffix; its JSON names them)
    names = sorted(os.listdir(tmp_path))
    best = load_meta(str(tmp_path / "ShuffleNas_fixArch-best.json"))
    assert names == sorted(["ShuffleNas_fixArch-%s.%s" % (tag, ext) for tag in ("0001", "best")
                            for ext in ("json", "params", "states") if tag != "best"
                            or ext == "json"] + [best["params"], best["states"]])
    assert re.fullmatch(r"ShuffleNas_fixArch-best-0001-[0-9a-f]{8}\.params", best["params"])
    assert latest_checkpoint(str(tmp_path), "ShuffleNas_fixArch")["epoch"] == 1
    _check_checkpoints(tmp_path, "ShuffleNas_fixArch", "ShuffleNas_fixArch")


def test_read_only_save_dir_is_reported_before_training(tmp_path, capsys, monkeypatch):
    # root ignores permission bits: the save directory refuses new files through mkstemp
    import tempfile
    mkstemp = tempfile.mkstemp
    locked = str(tmp_path / "locked")
    os.makedirs(locked)

    def refusing_mkstemp(*args, **kwargs):
        if os.path.abspath(kwargs.get("dir") or "") == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return mkstemp(*args, **kwargs)
    monkeypatch.setattr(tempfile, "mkstemp", refusing_mkstemp)
    tic = time.time()
    code, err = _cli(capsys, _subnet_argv(locked))
    assert code == 2 and len(err) == 1, err
    assert "--save-dir" in err[0] and locked in err[0] and "Permission denied" in err[0]
    assert time.time() - tic < 10                # before any training
    # a file where the directory should be
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    code, err = _cli(capsys, _subnet_argv(blocker))
    assert code == 2 and len(err) == 1 and str(blocker) in err[0], err


def test_save_dir_turning_read_only_mid_run_keeps_the_previous_checkpoint(tmp_path, capsys,
                                                                           monkeypatch):
    replace = os.replace

    def refusing_replace(src, dst):
        if str(dst).endswith("-0002.params"):
            raise PermissionError(errno.EROFS, os.strerror(errno.EROFS))
        return replace(src, dst)
    monkeypatch.setattr(os, "replace", refusing_replace)
    code, err = _cli(capsys, _subnet_argv(tmp_path))
    assert code == 2 and len(err) == 1 and "Read-only file system" in err[0], err
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]
    assert latest_checkpoint(str(tmp_path), "ShuffleNas_fixArch")["epoch"] == 1
    _check_checkpoints(tmp_path, "ShuffleNas_fixArch", "ShuffleNas_fixArch")


# ---- truncated or corrupt files -------------------------------------------------------------
def _truncate(path, keep=0.5):
    with open(path, "r+b") as f:
        f.truncate(int(os.path.getsize(path) * keep))


@pytest.fixture(scope="module")
def subnet_checkpoint(tmp_path_factory):
    """A finished one-epoch run of the smallest subnet (its checkpoint and final weights)."""
    from oneshot_nas.cli.train_imagenet import main
    folder = tmp_path_factory.mktemp("trained")
    argv = _subnet_argv(folder)
    argv[argv.index("--num-epochs") + 1] = "1"
    assert main(argv) == 0
    return folder


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_params_files_are_named_in_one_line(tmp_path, capsys, subnet_checkpoint, damage):
    def broken(name):
        path = tmp_path / name
        shutil.copy(subnet_checkpoint / "ShuffleNas_fixArch-final.params", path)
        if damage == "truncated":
            _truncate(path)
        else:
            path.write_bytes(b"\x12\x01" + os.urandom(3000))
        return str(path)
    # the trainer: --resume-params, --teacher-params
    bad = broken("resume.params")
    code, err = _cli(capsys, _subnet_argv(tmp_path / "a", "--resume-params", bad))
    assert code == 2 and len(err) == 1 and bad in err[0], err
    bad = broken("teacher.params")
    code, err = _cli(capsys, _subnet_argv(tmp_path / "b", "--teacher", "OneShot",
                                          "--teacher-params", bad))
    assert code == 2 and len(err) == 1 and bad in err[0], err
    # --auto-resume from a checkpoint whose parameters were damaged afterwards
    run = tmp_path / "run"
    shutil.copytree(subnet_checkpoint, run)
    bad = str(run / "ShuffleNas_fixArch-0001.params")
    if damage == "truncated":
        _truncate(bad)
    else:
        with open(bad, "wb") as f:
            f.write(os.urandom(3000))
    code, err = _cli(capsys, _subnet_argv(run, "--auto-resume"))
    assert code == 2 and len(err) == 1 and bad in err[0], err
    # the search's --supernet-params and the deployment CLIs' --params
    from oneshot_nas.cli import predict, quantize, search_supernet
    bad = broken("supernet.params")
    assert search_supernet.main(["--dataset", "digits", "--supernet-params", bad,
                                 "--output-dir", str(tmp_path / "s"), "--search-iters", "1",
                                 "--no-progress", "-j", "1"]) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if "error:" in l]
    assert len(err) == 1 and bad in err[0], err
    bad = broken("deploy.params")
    assert quantize.main(["--model", "ShuffleNas_fixArch", "--block-choices", SMALLEST,
                          "--channel-choices", SMALLEST, "--params", bad, "--dataset",
                          "digits", "--no-progress"]) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if "error:" in l]
    assert len(err) == 1 and bad in err[0], err
    from oneshot_nas.deploy import build_subnet, net_to_graph, save_graph
    symbol_file, params_file = save_graph(str(tmp_path / "m"), *net_to_graph(
        build_subnet("OneShot", classes=10, input_size=32)))
    if damage == "truncated":
        _truncate(params_file)
    else:
        with open(params_file, "wb") as f:
            f.write(os.urandom(3000))
    image = tmp_path / "x.png"
    image.write_bytes(b"")
    assert predict.main(["--model-prefix", str(tmp_path / "m"), str(image)]) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if "error:" in l]
    assert len(err) == 1 and params_file in err[0], err


def _digits_rec(tmp_path):
    from oneshot_nas.data.digits import prepare_digits
    paths = prepare_digits(input_size=32)
    folder = tmp_path / "rec"
    folder.mkdir()
    copies = {}
    for split in ("train", "val"):
        for ext, key in (("rec", "rec_" + split), ("idx", "rec_%s_idx" % split)):
            copies[split, ext] = str(folder / ("%s.%s" % (split, ext)))
            shutil.copy(paths[key], copies[split, ext])
    return copies


@pytest.mark.parametrize("damage", ["cut_rec", "cut_idx", "garbage_idx"])
def test_corrupt_record_files_are_named_in_one_line(tmp_path, capsys, damage):
    files = _digits_rec(tmp_path)
    culprit = files["train", "rec" if damage == "cut_rec" else "idx"]
    if damage == "garbage_idx":
        with open(culprit, "w") as f:
            f.write("0\tzero\n")
    else:
        _truncate(culprit, 0.7)
    rec_flags = ["--use-rec", "--rec-train", files["train", "rec"], "--rec-train-idx",
                 files["train", "idx"], "--rec-val", files["val", "rec"], "--rec-val-idx",
                 files["val", "idx"], "--input-size", "32"]
    argv = _subnet_argv(tmp_path / "out", *rec_flags)
    argv[argv.index("digits")] = "imagenet"
    code, err = _cli(capsys, argv)
    assert code == 2 and len(err) == 1 and culprit in err[0], err
