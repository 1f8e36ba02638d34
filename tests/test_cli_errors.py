"""Every command line answers a user error with one line naming the flag or file, exit status 2.

The cases run each CLI's ``main()`` in the test process; the root logger's handlers (which
``train_imagenet`` and ``search_supernet`` configure) are restored after every test.
"""
import logging
import os
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest

from oneshot_nas import get_model
from oneshot_nas.cli import calculate_flops, latency_table, plot_training, predict
from oneshot_nas.cli import search_supernet, train_imagenet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S_PLUS = ("0,0,0,1,0,0,1,0,3,2,0,1,2,2,1,2,0,0,2,0", "8,7,6,8,5,7,3,4,2,4,2,3,4,5,6,6,3,3,4,6")
GPUS = mx.context.num_gpus()


@pytest.fixture(autouse=True)
def _restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def _exit_2(capsys, main, argv):
    """Run ``main(argv)``; assert exit status 2 and one stderr line; return that line."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as done:          # argparse's own exit
        code = done.code
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == 2, err
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


# ---- train_imagenet.py -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def params_files(tmp_path_factory):
    """Saved weights of OneShot (no SE) and of the supernet, for 10 classes."""
    root = tmp_path_factory.mktemp("params")
    files = {}
    for name in ("OneShot", "ShuffleNas"):
        net = get_model(name, classes=10)
        net.initialize(mx.init.Xavier())
        net(mx.nd.zeros((1, 3, 32, 32)))
        files[name] = str(root / ("%s.params" % name))
        net.save_parameters(files[name])
    return files


def _train_argv(tmp_path, *extra):
    return ["--dataset", "digits", "--num-epochs", "1", "--batch-size", "16", "-j", "0",
            "--max-batches-per-epoch", "1", "--no-progress", "--logging-file",
            str(tmp_path / "train.log"), "--save-dir", str(tmp_path / "params")] + list(extra)


TRAIN_CASES = [
    (["--model", "OneShot", "--block-choices", S_PLUS[0], "--channel-choices", S_PLUS[1]],
     "--block-choices / --channel-choices cannot change the preset --model OneShot"),
    (["--model", "ShuffleNas", "--block-choices", S_PLUS[0]],
     "--model ShuffleNas trains the supernet on sampled paths"),
    (["--model", "ShuffleNas_fixArch", "--channel-choices", S_PLUS[1]],
     "--model ShuffleNas_fixArch needs --block-choices"),
    (["--train-constraint-method", "evolution"],
     "--train-constraint-method evolution needs --train-upper-constraints"),
    (["--train-bottom-constraints", "flops-190-params-2.8"],
     "--train-bottom-constraints needs --train-upper-constraints"),
    (["--model", "OneShot", "--cs-warm-up", "--epoch-start-cs", "3"],
     "--epoch-start-cs / --cs-warm-up only apply to the supernet"),
    (["--model", "OneShot", "--train-upper-constraints", "flops-330-params-5.0"],
     "--train-upper-constraints only apply to the supernet"),
    (["--teacher-params", "teacher.params"], "--teacher-params needs --teacher"),
    (["--resume-states", "x.states"], "--resume-states needs --resume-params"),
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--model", "OneShot", "--teacher", "OneShot"],
     "--teacher OneShot needs --teacher-params pointing to an existing file"),
]
if GPUS == 0:
    TRAIN_CASES += [
        (["--dtype", "float16"], "--dtype float16 needs a GPU (--num-gpus >= 1)"),
        (["--num-gpus", "1"], "--num-gpus 1, but this machine has 0 GPU(s)"),
    ]
TRAIN_CASES += [(["--num-gpus", str(GPUS + 1)], "--num-gpus %d, but this machine has %d GPU(s)"
                 % (GPUS + 1, GPUS))]


@pytest.mark.parametrize("args,needle", TRAIN_CASES)
def test_train_flags_that_would_be_ignored_or_cannot_run_exit_2(capsys, tmp_path, args, needle):
    err = _exit_2(capsys, train_imagenet.main, _train_argv(tmp_path, *args))
    assert needle in err
    assert err.startswith("train_imagenet.py: error: ")
    assert not (tmp_path / "params").exists()        # refused before anything was built


@pytest.mark.parametrize("args,needle", [
    (["--model", "OneShot", "--use-se", "--resume-params", "{OneShot}"],
     "--resume-params {OneShot} does not fit the model: parameter "),
    (["--model", "OneShot", "--resume-params", "{ShuffleNas}"],
     "--resume-params {ShuffleNas} does not fit the model: parameter "),
    (["--model", "OneShot", "--teacher", "OneShot+", "--teacher-params", "{OneShot}"],
     "--teacher-params {OneShot} does not fit the model: parameter "),
])
def test_train_mismatching_params_files_are_named(capsys, tmp_path, params_files, args,
                                                  needle):
    args = [a.format(**params_files) for a in args]
    err = _exit_2(capsys, train_imagenet.main, _train_argv(tmp_path, *args))
    assert needle.format(**params_files) in err


def test_train_unwritable_logging_file_is_one_line(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    err = _exit_2(capsys, train_imagenet.main,
                  ["--logging-file", str(blocker / "sub" / "train.log")])
    assert str(blocker) in err


def test_no_message_points_to_a_missing_make_target():
    with open(os.path.join(ROOT, "Makefile")) as f:
        targets = {line.split(":")[0] for line in f if line[:1].isalpha() and ":" in line}
    assert "install" in targets and "dist" not in targets
    for folder in ("src", "scripts"):
        for base, _, names in os.walk(os.path.join(ROOT, folder)):
            for name in names:
                if name.endswith((".py", ".sh")):
                    with open(os.path.join(base, name)) as f:
                        assert "make dist" not in f.read(), name


# ---- search_supernet.py ------------------------------------------------------------------------
def _search_argv(tmp_path, params, *extra):
    return ["--dataset", "digits", "--supernet-params", params, "--output-dir",
            str(tmp_path / "out"), "--update-bn-images", "32", "--batch-size", "32",
            "--population-size", "4", "--retain-length", "2", "--search-iters", "1",
            "--no-progress", "-j", "0"] + list(extra)


SEARCH_CASES = [
    (["--flop-max", "1.0"], "--flop-max is relative to a comparison model: add "
                            "--comparison-model"),
    (["--param-max", "1.0", "--normalised-score-max", "1.0"],
     "--param-max / --normalised-score-max are relative to a comparison model"),
    (["--search-target", "balanced_flop_acc"],
     "--search-target balanced_flop_acc subtracts the normalised score against a comparison "
     "model: add --comparison-model"),
    (["--hard-latency"], "--hard-latency needs --target-latency"),
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--population-size", "0"], "--population-size must be >= 1, got 0"),
    (["--population-size", "2", "--retain-length", "5"],
     "--retain-length 5 keeps more parents than --population-size 2 has candidates"),
    (["--num-gpus", str(GPUS + 1)], "--num-gpus %d, but this machine has %d GPU(s)"
                                    % (GPUS + 1, GPUS)),
]


@pytest.mark.parametrize("args,needle", SEARCH_CASES)
def test_search_flags_that_would_be_ignored_or_cannot_run_exit_2(capsys, tmp_path,
                                                                 params_files, args, needle):
    err = _exit_2(capsys, search_supernet.main,
                  _search_argv(tmp_path, params_files["ShuffleNas"], *args))
    assert needle in err and err.startswith("search_supernet.py: error: ")


def _checkpoint(tmp_path, params, settings_change=None, **cfg_change):
    """A search checkpoint in tmp_path/out made with the test's settings (changed as given)."""
    from oneshot_nas.search import SearchState
    from oneshot_nas.search.runner import SearchConfig, resume_settings, search_defaults
    cfg = SearchConfig(**dict(search_defaults("digits"), dataset="digits",
                              supernet_params=params, update_bn_images=32, batch_size=32,
                              population_size=4, retain_length=2, search_iters=1,
                              input_size=32, output_dir=str(tmp_path / "out")))
    for key, value in cfg_change.items():
        setattr(cfg, key, value)
    settings = resume_settings(cfg)
    if settings_change is not None:
        settings = settings_change(settings)
    os.makedirs(cfg.output_dir, exist_ok=True)
    SearchState("genetic", 0, settings).save(os.path.join(cfg.output_dir, "search_state.json"))


@pytest.mark.parametrize("change,args,needle", [
    (dict(population_size=6), ["--population-size", "4"],
     "was made with --population-size 6, not 4"),
    (dict(max_flops=300.0), [], "was made with --max-flops 300.0, not None"),
    (dict(use_se=True), [], "was made with --use-se True, not False"),
    (dict(mutate_chance=0.3), [], "was made with --mutate-chance 0.3, not 0.1"),
])
def test_search_resume_refuses_a_checkpoint_of_other_settings(capsys, tmp_path, params_files,
                                                              change, args, needle):
    _checkpoint(tmp_path, params_files["ShuffleNas"], **change)
    err = _exit_2(capsys, search_supernet.main,
                  _search_argv(tmp_path, params_files["ShuffleNas"], "--resume", *args))
    assert "search_state.json " + needle in err


def test_search_resume_refuses_a_checkpoint_of_another_supernet(capsys, tmp_path, params_files):
    other = tmp_path / "other.params"
    other.write_bytes(open(params_files["ShuffleNas"], "rb").read())
    _checkpoint(tmp_path, str(other))
    with open(str(other), "ab") as f:           # same name, other content
        f.write(b"\0")
    err = _exit_2(capsys, search_supernet.main, _search_argv(tmp_path, str(other), "--resume"))
    assert "was made with --supernet-params another file" in err


def test_search_resume_refuses_a_checkpoint_without_settings(capsys, tmp_path, params_files):
    _checkpoint(tmp_path, params_files["ShuffleNas"], settings_change=lambda s: {})
    err = _exit_2(capsys, search_supernet.main,
                  _search_argv(tmp_path, params_files["ShuffleNas"], "--resume"))
    assert "does not record the settings it was made with" in err


def test_search_resume_says_when_there_is_no_checkpoint(caplog, tmp_path, params_files):
    from oneshot_nas.search.runner import SearchConfig, start_or_resume
    cfg = SearchConfig(dataset="digits", supernet_params=params_files["ShuffleNas"],
                       resume=True, output_dir=str(tmp_path))
    path = str(tmp_path / "search_state.json")
    with caplog.at_level(logging.WARNING):
        state = start_or_resume(cfg, path)
    assert state.step == 0 and not state.results
    assert "--resume: no search checkpoint %s yet; starting a new search" % path in caplog.text
    state.save(path)                                # a checkpoint of the same settings resumes
    with caplog.at_level(logging.INFO):
        assert start_or_resume(cfg, path).settings == state.settings
    assert "resuming genetic search at step 0" in caplog.text


# ---- predict -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A conv + dense graph exported at 8 x 8 px (another size fails shape inference), and an
    image."""
    root = tmp_path_factory.mktemp("tiny")
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Conv2D(4, 3, padding=1), mx.gluon.nn.Flatten(), mx.gluon.nn.Dense(3))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    net(mx.nd.zeros((1, 3, 8, 8)))
    prefix = str(root / "tiny")
    net.export(prefix)
    image = str(root / "img.png")
    cv2.imwrite(image, np.random.RandomState(0).randint(0, 256, (12, 12, 3)).astype(np.uint8))
    return prefix, image


@pytest.mark.parametrize("args,needle", [
    (["--input-size", "0"], "--input-size must be >= 1, got 0"),
    (["--input-size", "16"], "tiny-symbol.json cannot run on 16x16 images"),
    ([], "tiny-symbol.json cannot run on 224x224 images"),
    (["--input-size", "8", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--input-size", "8", "--crop-ratio", "1.5"], "--crop-ratio must be in (0, 1], got 1.5"),
])
def test_predict_bad_inputs_exit_2(capsys, tiny_export, args, needle):
    prefix, image = tiny_export
    err = _exit_2(capsys, predict.main, ["--model-prefix", prefix, image] + args)
    assert needle in err and err.startswith("predict: error: ")


def test_predict_works_at_the_exported_size(capsys, tiny_export):
    prefix, image = tiny_export
    assert predict.main(["--model-prefix", prefix, image, "--input-size", "8"]) == 0
    assert capsys.readouterr().out.startswith(image + ": ")


# ---- calculate_flops.py ------------------------------------------------------------------------
@pytest.mark.parametrize("args,needle", [
    (["--input-size", "0"], "--input-size must be a positive integer, got 0"),
    (["--input-size", "-3"], "--input-size must be a positive integer, got -3"),
    (["-ds", "data,1,3,8,8", "--input-size", "8"],
     "--input-size and --data-shapes both set the input shape"),
    (["--classes", "5"], "model flags (--model, --block-choices, --use-se, --classes, ...) "
                         "cannot be combined"),
])
def test_calculate_flops_symbol_path_checks_its_flags(capsys, tiny_export, args, needle):
    err = _exit_2(capsys, calculate_flops.main, ["-s", tiny_export[0]] + args)
    assert needle in err and err.startswith("calculate_flops.py: error: ")


def test_calculate_flops_symbol_path_uses_input_size(capsys, tiny_export):
    assert calculate_flops.main(["-s", tiny_export[0], "--input-size", "8", "--json"]) == 0
    assert "inputs: data (1, 3, 8, 8)" in capsys.readouterr().out


# ---- latency_table ----------------------------------------------------------------------------
@pytest.mark.parametrize("args,needle", [
    (["--repeats", "0"], "--repeats must be >= 1, got 0"),
    (["--warmup", "-1"], "--warmup must be >= 0, got -1"),
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--input-size", "16"], "--input-size must be >= 32, got 16"),
    (["--check", "-2"], "--check must be >= 0, got -2"),
])
def test_latency_table_bad_counts_exit_2(capsys, tmp_path, args, needle):
    out = tmp_path / "lat.json"
    err = _exit_2(capsys, latency_table.main, ["--output", str(out)] + args)
    assert needle in err and err.startswith("latency_table: error: ")
    assert not out.exists()


def test_time_block_refuses_zero_repeats():
    from oneshot_nas.search.latency import time_block
    with pytest.raises(ValueError, match="repeats must be >= 1, got 0"):
        time_block(lambda x: x, (1, 1), mx.cpu(), warmup=0, repeats=0)


# ---- plot_training ------------------------------------------------------------------------------
@pytest.mark.parametrize("content,needle", [
    (b"not json\n{\"kind\": \"train\"}\n", "line 1 is not a JSON object"),
    (b"{\"kind\": \"train\", \"epoch\": 0}\n[1, 2]\n", "line 2 is not a JSON object"),
    (b"\xff\xfe\x00binary", "is not text"),
    (b"{\"kind\": \"val\", \"epoch\": 0, \"top1\": 0.5}\n", "has no training records"),
])
def test_plot_training_bad_metrics_file_exits_2(capsys, tmp_path, content, needle):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(content)
    err = _exit_2(capsys, plot_training.main, [str(path), "--output-dir", str(tmp_path)])
    assert "metrics file %s" % path in err and needle in err


def test_plot_training_missing_file_exits_2(capsys, tmp_path):
    err = _exit_2(capsys, plot_training.main, [str(tmp_path / "none.jsonl")])
    assert "none.jsonl cannot be read" in err


# ---- the edge catches what a user can cause ------------------------------------------------------
def test_error_line_picks_the_informative_line_of_an_mxnet_error():
    from oneshot_nas.cli.errors import error_line
    try:
        mx.nd.load(__file__)
    except mx.base.MXNetError as err:
        line = error_line(err)
    assert "\n" not in line and ("Check failed" in line or "Error" in line)
    assert error_line(FileNotFoundError(2, "No such file or directory", "/x/y")) == \
        "/x/y: No such file or directory"
    assert error_line(ValueError("first\nsecond")) == "first"


# ---- the kit's main wrapper (cli.common.command) --------------------------------------------
def test_the_ranking_commands_report_an_unwritable_log_in_one_line(capsys, tmp_path):
    """The log is set up inside the wrapper: an OSError there is one line too (rank_check and
    winner_check set it up outside their try blocks before the kit)."""
    from oneshot_nas.cli import rank_check, winner_check
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = str(blocker / "sub" / "x.log")
    line = _exit_2(capsys, rank_check.main, ["--supernet-params", "x", "--logging-file", log])
    assert line.startswith("rank_check: error: ") and str(blocker) in line
    line = _exit_2(capsys, winner_check.main, ["--search-results", "x", "--logging-file", log])
    assert line.startswith("winner_check: error: ") and str(blocker) in line


def test_compare_searches_reports_an_unwritable_output_in_one_line(capsys, tmp_path):
    """It caught ValueError only before the kit: an unwritable plot was a traceback."""
    import shutil
    from oneshot_nas.cli import compare_searches
    results = str(tmp_path / "search_results.json")
    shutil.copy(os.path.join(ROOT, "tests", "fixtures", "beae4ed", "search_results.json"),
                results)
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = _exit_2(capsys, compare_searches.main, ["--genetic", results, "--random", results,
                                                  "--output", str(blocker / "sub" / "c.png")])
    assert line.startswith("compare_searches: error: ") and str(blocker) in line


def test_ctrl_c_stops_training_with_one_line_and_a_resume_hint(tmp_path):
    """SIGINT (Ctrl-C) during training: exit status 130, one line saying how to go on, no
    traceback."""
    import signal
    import time
    cmd = [sys.executable, os.path.join(ROOT, "train_imagenet.py"), "--dataset", "digits",
           "--input-size", "32", "--num-gpus", "0", "-j", "0", "--batch-size", "32",
           "--num-epochs", "200", "--save-dir", str(tmp_path / "p"), "--no-progress",
           "--log-interval", "1", "--logging-file", str(tmp_path / "t.log")]
    # SIGINT as a terminal delivers it: a shell without job control starts background
    # commands (a CI job, `make test &`) with SIGINT ignored, the child would inherit that, and
    # Python keeps an ignored SIGINT ignored: the run would never see the Ctrl-C
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if os.path.isfile(str(tmp_path / "t.log")) and \
                    "Batch [" in open(str(tmp_path / "t.log")).read():
                break
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:             # a failed test leaves no 200-epoch run behind
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    # stopped in its first epoch: no checkpoint to go on from, and the line says so
    assert last == "train_imagenet.py: interrupted; no epoch checkpoint in %s yet " \
        "(--save-frequency 10); rerun the same command to start again" % (tmp_path / "p")


def test_the_ctrl_c_hint_names_auto_resume_once_a_checkpoint_is_saved(tmp_path):
    from oneshot_nas.cli import train_imagenet
    argv = ["--dataset", "digits", "--model", "OneShot-S+", "--num-gpus", "0", "-j", "0",
            "--batch-size", "32", "--num-epochs", "2", "--max-batches-per-epoch", "1",
            "--save-frequency", "1", "--save-dir", str(tmp_path / "p"), "--no-progress"]
    assert train_imagenet._resume_hint(argv).startswith("no epoch checkpoint in")
    assert train_imagenet.main(argv) == 0
    assert train_imagenet._resume_hint(argv) == "rerun the same command with --auto-resume " \
        "to go on from the last checkpoint in %s" % (tmp_path / "p")


def test_a_held_ctrl_c_does_not_log_inside_the_signal_handler(monkeypatch, capfd):
    """The first Ctrl-C inside a training or search loop is only noted (one line written
    straight to stderr): the handler must not enter logging, which the interrupted code may be
    in the middle of (every batch logs a line). The held interrupt is raised at check()."""
    import logging
    import os
    import signal
    from oneshot_nas import interrupts

    def no_logging_here(*args, **kwargs):
        raise AssertionError("logging called from the signal handler")
    # Ctrl-C with Python's meaning, as in a terminal (a background job started by a shell
    # without job control has SIGINT ignored, and then deferred() rightly leaves it alone)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with interrupts.deferred():
            monkeypatch.setattr(logging.Logger, "warning", no_logging_here)
            os.kill(os.getpid(), signal.SIGINT)
            assert interrupts.requested()
            monkeypatch.undo()
            with pytest.raises(KeyboardInterrupt):
                interrupts.check()
        assert "interrupted: stopping after the current step" in capfd.readouterr().err
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)


def test_an_ignored_ctrl_c_stays_ignored():
    """A run started with SIGINT ignored (nohup, a background job of a script) keeps it so:
    deferred() installs no handler and restores none."""
    import signal
    from oneshot_nas import interrupts
    inherited = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts.deferred():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, inherited)
