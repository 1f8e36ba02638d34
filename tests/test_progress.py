"""Stages a user waits on show progress: search candidates, supernet validation, the demo."""
import logging
import os
import re
import sys

import mxnet as mx
import numpy as np
import pytest

from oneshot_nas import get_model
from oneshot_nas.cli.demo import _settled, _Stage
from oneshot_nas.search import Constraints, Objective, SearchState, genetic_search, random_search

from test_samplers import proxy_counter


def _fake_accuracy(arch):
    return {"top1": 0.5 + 0.01 * float(np.mean(arch.channels)), "top5": 1.0}


@pytest.mark.parametrize("mode", ["genetic", "random"])
def test_every_new_evaluation_is_reported(mode):
    seen = []

    def on_evaluated(state, arch, rec):
        assert state.results[arch] is rec
        seen.append(arch)
    c = Constraints(max_flops=950)
    if mode == "genetic":
        state = genetic_search(SearchState(mode, 0), _fake_accuracy, proxy_counter, c,
                               Objective(constraints=c), population_size=8, retain_length=3,
                               generations=3, on_evaluated=on_evaluated)
    else:
        state = random_search(SearchState(mode, 0), _fake_accuracy, proxy_counter, c,
                              Objective(constraints=c), iters=12, on_evaluated=on_evaluated)
    assert len(seen) == len(set(seen)) == len(state.results) > 8


def test_search_without_bar_logs_a_line_per_candidate(caplog, tmp_path, supernet_params):
    from oneshot_nas.search.runner import SearchConfig, run_search
    cfg = SearchConfig(dataset="digits", supernet_params=supernet_params, input_size=32,
                       batch_size=64, num_workers=0, update_bn_images=32, val_images=64,
                       search_mode="random", search_iters=3, topk=1, progress=False,
                       output_dir=str(tmp_path))
    with caplog.at_level(logging.INFO, logger="oneshot_nas"):
        res = run_search(cfg, counter=proxy_counter)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("candidate ")]
    assert len(lines) == res["evaluated"] == 3
    assert lines[0].startswith("candidate 1 (step 1): top-1 ")
    assert "fitness" in lines[-1] and "best" in lines[-1]


def test_supernet_validation_shows_a_bar_and_logs_every_subnet(caplog, capsys):
    from oneshot_nas.training import TrainConfig, train
    cfg = TrainConfig(dataset="digits", model="ShuffleNas", input_size=32, batch_size=32,
                      num_workers=0, num_epochs=1, max_batches_per_epoch=1, update_bn_images=32,
                      val_subnets=2, save_dir="", logging_file=None, metrics_file=None,
                      progress=True)
    with caplog.at_level(logging.INFO, logger="oneshot_nas"):
        train(cfg)
    assert "epoch 0 validation (2 subnets)" in capsys.readouterr().err
    lines = [r.getMessage() for r in caplog.records if "validation subnet" in r.getMessage()]
    assert [l.split(":")[0] for l in lines] == ["[Epoch 0] validation subnet 1/2",
                                                 "[Epoch 0] validation subnet 2/2"]
    assert all("recalibrated top-1 " in l for l in lines)


def test_settled_output_keeps_the_last_state_of_each_bar():
    text = "start\nbar  10%\rbar  50%\rbar 100%\nINFO done\n\r   \r\nend"
    assert _settled(text) == "start\nbar 100%\nINFO done\nend\n"


def test_demo_stage_echoes_all_output_while_it_runs(capfd, tmp_path):
    """The old stage printed only the last 8 lines after the command ended; now every line
    (and progress bar) reaches the console, and the log keeps the settled text."""
    code = ("import sys, time\n"
            "for i in range(20):\n"
            "    print('line %d' % i)\n"
            "    sys.stderr.write('\\rbar %d/20' % (i + 1))\n"
            "    time.sleep(0.01)\n"
            "sys.stderr.write('\\n')\n")
    stage = _Stage(str(tmp_path), str(tmp_path), {"PATH": "/usr/bin:/bin"})
    text = stage.run("echo", [sys.executable, "-c", code])
    out = capfd.readouterr().out
    assert "line 0\n" in out and "line 19\n" in out and "\rbar 20/20" in out
    assert "[echo done in" in out
    assert text.splitlines()[0] == "line 0" and "bar 20/20" in text and "\r" not in text
    assert (tmp_path / "demo_echo.log").read_text() == text


def test_genetic_search_bar_counts_candidates(capsys, tmp_path, supernet_params):
    """The bar of a genetic search counts candidates (population x generations), so its rate
    and ETA move within a generation."""
    from oneshot_nas.search.runner import SearchConfig, run_search
    cfg = SearchConfig(dataset="digits", supernet_params=supernet_params, input_size=32,
                       batch_size=64, num_workers=0, update_bn_images=32, val_images=64,
                       search_mode="genetic", population_size=4, retain_length=2,
                       search_iters=2, topk=1, progress=True, output_dir=str(tmp_path))
    run_search(cfg, counter=proxy_counter)
    err = capsys.readouterr().err
    assert "genetic search" in err and "8/8 [" in err
    assert "cand/s" in err or "s/cand" in err
    assert "gen/s" not in err and "s/gen" not in err
    _one_frame_per_count(err, "genetic search", 8)


def _one_frame_per_count(err, desc, total):
    """No count drawn twice in a row (a captured log used to get each candidate twice: the
    count, then the same count with the new postfix); a log line in between redraws the bar,
    which is fine, and so is the closing frame. The total is drawn."""
    tokens = re.split("[\r\n]", err)
    counts = [re.search(r" (\d+)/%d \[" % total, t) if t.startswith(desc) else None
              for t in tokens]
    twice = [a.group(1) for a, b in zip(counts, counts[1:]) if a and b and
             a.group(1) == b.group(1) != str(total)]        # the last: tqdm's closing frame
    assert not twice, twice
    assert any(c and c.group(1) == str(total) for c in counts)


def test_random_search_bar_draws_each_candidate_once(capsys, tmp_path, supernet_params):
    from oneshot_nas.search.runner import SearchConfig, run_search
    cfg = SearchConfig(dataset="digits", supernet_params=supernet_params, input_size=32,
                       batch_size=64, num_workers=0, update_bn_images=32, val_images=64,
                       search_mode="random", search_iters=5, topk=1, progress=True,
                       output_dir=str(tmp_path))
    run_search(cfg, counter=proxy_counter)
    err = capsys.readouterr().err
    assert "5/5 [" in err and "evaluated=5" in err
    _one_frame_per_count(err, "random search", 5)


def test_the_demo_writes_into_its_own_run_folder(monkeypatch):
    """``make demo`` never rewrites committed files: without DEMO_DIR / LOG_DIR / PLOT_DIR its
    logs and figures go into a new runs/demo-<date>-<time>; only ``make demo-record`` names
    the committed logs/ and docs/demo/."""
    from oneshot_nas.cli.demo import _fill_dirs, build_parser
    for var in ("DEMO_DIR", "LOG_DIR", "PLOT_DIR"):
        monkeypatch.delenv(var, raising=False)
    args = _fill_dirs(build_parser().parse_args([]))
    assert args.work_dir.startswith(os.path.join("runs", "demo-"))
    assert args.log_dir == os.path.join(args.work_dir, "logs")
    assert args.plot_dir == os.path.join(args.work_dir, "plots")
    monkeypatch.setenv("DEMO_DIR", "/tmp/d")
    monkeypatch.setenv("LOG_DIR", "logs")
    args = _fill_dirs(build_parser().parse_args([]))
    assert (args.work_dir, args.log_dir, args.plot_dir) == ("/tmp/d", "logs", "/tmp/d/plots")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    makefile = open(os.path.join(root, "Makefile")).read()
    demo = makefile.split("\ndemo:")[1].split("\n\n")[0]
    record = makefile.split("\ndemo-record:")[1].split("\n\n")[0]
    assert "logs" not in demo and "docs/demo" not in demo
    assert "LOG_DIR=logs PLOT_DIR=docs/demo" in record


def test_the_demo_reports_a_loss_fitness_search_as_held_out_loss():
    """A search with loss fitness (the small-data default) stores exp(-loss) as its fitness;
    the demo's summary used to print that as a top-1 percentage (26.75 % for a held-out loss of
    1.3186)."""
    import math
    from oneshot_nas.cli.demo import _search_row
    pair = {"candidates": 55, "genetic_best": math.exp(-1.3186), "random_best": math.exp(-1.3111)}
    label, value = _search_row("holdout", pair, "loss")
    assert value == "1.3186 / 1.3111" and label.endswith("(held-out loss)")
    label, value = _search_row("holdout", {"candidates": 55, "genetic_best": 0.6,
                                           "random_best": 0.5583}, "acc")
    assert value == "60.00 % / 55.83 %" and label.endswith("(supernet scores)")
