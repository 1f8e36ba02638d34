"""The ground-truth table: building with a stand-in trainer (resume, workers, seeds), its JSON
schema, its noise statistics against scipy, auditing rows, the rank check and the winner check
against a stored table, and the table's own files committed in docs/ranking."""
import copy
import json
from dataclasses import replace
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from oneshot_nas import Architecture
from oneshot_nas.ranking import (BenchmarkCheckConfig, StandaloneProtocol, TableSpec,
                                 WinnerCheckConfig, build_table, load_table, rebuild_rows,
                                 run_benchmark_check, run_winner_check, spread_against_noise,
                                 tau_null_sd)
from oneshot_nas.ranking.table import second_seed_rows, table_jobs, validate_table

from test_ranking import FakeEvaluator, FakeTrainer, _fake_search
from test_samplers import proxy_counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STORED = os.path.join(ROOT, "docs", "ranking", "fashion_mnist_table.json")


class NoisyTrainer(FakeTrainer):
    """Accuracy grows with width; seed 1 adds an architecture-dependent wobble."""

    def __call__(self, cfg):
        arch = Architecture.parse(cfg.block_choices, cfg.channel_choices)
        self.calls.append((arch, cfg.seed))
        wobble = 0.004 * np.sin(sum(arch.blocks) + 3 * sum(arch.channels)) * cfg.seed
        acc = 0.8 + 0.01 * np.mean(arch.channels) + wobble
        return {"epochs": [{"epoch": 0, "val_top1": acc - 0.05, "val_loss": 0.7},
                           {"epoch": 1, "val_top1": acc, "val_loss": 1 - acc}]}


def _spec(k=8, second=4, band_seeds=1):
    return TableSpec(k=k, second_seed_rows=second, band_max_flops=500.0, band_seeds=band_seeds,
                     protocol=StandaloneProtocol.fashion_mnist(epochs=2, val_interval=1))


def test_jobs_cover_every_row_once_then_the_second_seeds():
    spec = _spec(30, 10)
    jobs = table_jobs(spec)
    assert sorted(r for r, s in jobs if s == 0) == list(range(30))
    assert [r for r, s in jobs if s == 1] == second_seed_rows(30, 10)
    assert second_seed_rows(30, 10) == [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]
    first = [r for r, _ in jobs[:4]]
    assert min(first) < 5 and max(first) > 20          # both ends of the FLOPs order early


def test_build_resume_and_schema(tmp_path):
    out = str(tmp_path / "t.json")
    trainer = NoisyTrainer()
    table = build_table(_spec(), out, trainer=trainer, counter=proxy_counter)
    assert len(trainer.calls) == 8 + 4 and table["complete"]
    assert validate_table(json.load(open(out))) and load_table(out)["runs_done"] == 12
    flops = [r["flops"] for r in table["architectures"]]
    assert flops == sorted(flops) and len({r["block_choices"] + r["channel_choices"]
                                           for r in table["architectures"]}) == 8
    assert [len(r["runs"]) for r in table["architectures"]] == \
        [2 if i in second_seed_rows(8, 4) else 1 for i in range(8)]
    assert all(r["in_band"] == (r["flops"] <= 500) for r in table["architectures"])
    run = table["architectures"][0]["runs"][0]
    assert [c["epoch"] for c in run["curve"]] == [1, 2] and run["top1"] == run["curve"][-1]["top1"]
    # resume: nothing is trained again, the same table comes out
    again = build_table(_spec(), out, trainer=trainer, counter=proxy_counter)
    assert len(trainer.calls) == 12
    assert again["architectures"] == table["architectures"]
    # another protocol into the same file is refused
    other = _spec()
    other.protocol.epochs = 3
    with pytest.raises(ValueError, match="another protocol or sampling"):
        build_table(other, out, trainer=trainer, counter=proxy_counter)


def _refuse_constant(name):
    raise ValueError("not standard JSON: %s" % name)


def test_a_table_without_seed_noise_is_standard_json_and_reads_back(tmp_path, capsys):
    """One seed per row: the seed sd and the spread / noise ratio cannot be computed. The file
    holds null for them (Python would write NaN, which jq and browsers refuse), it validates
    against its recomputed statistics, and its summary says n/a."""
    from oneshot_nas.cli.build_table import print_summary
    out = str(tmp_path / "t.json")
    table = build_table(_spec(second=0), out, trainer=NoisyTrainer(), counter=proxy_counter)
    assert np.isnan(table["statistics"]["all"]["spread_against_noise"]["seed_sd"])
    with open(out) as f:
        stored = json.load(f, parse_constant=_refuse_constant)
    noise = stored["statistics"]["all"]["spread_against_noise"]
    assert noise["seed_sd"] is None and noise["ratio"] is None and noise["spread_sd"] > 0
    loaded = load_table(out)                    # recomputes every figure: null == not computable
    print_summary(loaded)
    assert "seed sd n/a points, ratio n/a" in capsys.readouterr().out
    # an edited figure is still refused, also where the stored one is null
    noise["seed_sd"] = 0.01
    with pytest.raises(ValueError, match="spread_against_noise.*seed_sd"):
        validate_table(stored, out, True)


def test_the_summary_of_an_incomplete_table_says_what_is_left(tmp_path, capsys):
    from oneshot_nas.cli.build_table import print_summary
    out = str(tmp_path / "t.json")
    table = build_table(_spec(), out, trainer=NoisyTrainer(), counter=proxy_counter,
                        only=set(table_jobs(_spec())[:3]))
    runs = [run for r in table["architectures"] for run in r["runs"]]
    assert not table["complete"] and len(runs) == table["runs_done"] == 3
    assert table["runs_expected"] == 12
    for n, run in enumerate(runs):          # the stand-in trainer takes no time: give it some
        run["seconds"] = 60.0 * (n + 1)
    print_summary(table)
    assert "left: 9 runs, about 0.3 hours of one worker (--workers N divides it) at the median " \
        "time of the finished runs, 2.0 minutes a run" in capsys.readouterr().out


class NoLossTrainer(NoisyTrainer):
    """A trainer whose summary has no validation loss (the record keeps NaN for it)."""

    def __call__(self, cfg):
        summary = super().__call__(cfg)
        for epoch in summary["epochs"]:
            epoch.pop("val_loss")
        return summary


def test_a_run_without_a_loss_round_trips_as_null(tmp_path):
    out = str(tmp_path / "t.json")
    trainer = NoLossTrainer()
    table = build_table(_spec(), out, trainer=trainer, counter=proxy_counter)
    assert np.isnan(table["architectures"][0]["loss_mean"])
    for path in (out, out.replace(".json", ".runs.json")):
        with open(path) as f:
            json.load(f, parse_constant=_refuse_constant)          # standard JSON, null
    with open(out) as f:
        assert json.load(f)["architectures"][0]["loss_mean"] is None
    loaded = load_table(out)
    assert np.isnan(loaded["architectures"][0]["loss_mean"])
    assert np.isnan(loaded["architectures"][0]["runs"][0]["curve"][-1]["loss"])
    # the runs cache reads the nulls back as NaN: a resumed build trains nothing and writes
    # the same table
    again = build_table(_spec(), out, trainer=trainer, counter=proxy_counter)
    assert len(trainer.calls) == 12
    run = again["architectures"][0]["runs"][0]
    assert np.isnan(run["loss"]) and np.isnan(run["curve"][-1]["loss"])
    assert [r["top1_mean"] for r in again["architectures"]] == \
        [r["top1_mean"] for r in table["architectures"]]


def test_atomic_json_writes_non_finite_figures_as_null(tmp_path):
    from oneshot_nas.files import atomic_write_json
    path = str(tmp_path / "x.json")
    atomic_write_json(path, {"a": float("nan"), "b": [1.5, float("inf"), (float("-inf"), 2)],
                             "c": {"d": np.float64("nan"), "e": "NaN", "f": None, "g": 3,
                                   "h": np.float32(0.5), "i": np.float32("nan"), "j": True}})
    with open(path) as f:
        assert json.load(f, parse_constant=_refuse_constant) == \
            {"a": None, "b": [1.5, None, [None, 2]], "c": {"d": None, "e": "NaN", "f": None,
                                                          "g": 3, "h": 0.5, "i": None,
                                                          "j": True}}


def test_band_rows_get_more_seeds_seed_by_seed(tmp_path):
    spec = _spec(30, 10, band_seeds=4)
    band = [0, 1, 2, 5, 8]
    jobs = table_jobs(spec, band)
    assert len(jobs) == len(set(jobs)) == 30 + 10 + 5 * 3 - 1          # row 1 has seed 1 already
    extra = jobs[40:]
    assert [s for _, s in extra] == sorted(s for _, s in extra)       # seed by seed
    assert {(r, s) for r, s in jobs if r in band} == {(r, s) for r in band for s in range(4)}
    assert table_jobs(_spec(30, 10), band) == table_jobs(_spec(30, 10))

    out = str(tmp_path / "t.json")
    trainer = NoisyTrainer()
    table = build_table(_spec(12, 4, band_seeds=3), out, trainer=trainer, counter=proxy_counter)
    rows = table["architectures"]
    assert [len(r["runs"]) for r in rows] == [3 if r["in_band"] else
                                               2 if r["row"] in second_seed_rows(12, 4) else 1
                                               for r in rows]
    assert sum(r["in_band"] for r in rows) == 3                     # proxy FLOPs <= 500
    assert table["sampling"]["band_seeds"] == 3 and table["complete"]
    assert len(trainer.calls) == table["runs_done"]
    for r in rows:
        assert r["top1_mean"] == pytest.approx(np.mean([run["top1"] for run in r["runs"]]))
        assert [run["seed"] for run in r["runs"]] == list(range(len(r["runs"])))
    # fewer seeds into the same file would drop finished runs: refused in one line
    with pytest.raises(ValueError, match="would drop.*--band-seeds 3"):
        build_table(_spec(12, 4, band_seeds=2), out, trainer=trainer, counter=proxy_counter)
    # more seeds resume it: only the new runs are trained
    calls = len(trainer.calls)
    more = build_table(_spec(12, 4, band_seeds=4), out, trainer=trainer, counter=proxy_counter)
    assert len(trainer.calls) - calls == sum(r["in_band"] for r in rows)
    band_stats = more["statistics"]["band"]
    assert band_stats["two_seed_means"]["rows"] == sum(r["in_band"] for r in rows)
    assert band_stats["rows_with_two_seeds"] == sum(r["in_band"] for r in rows)


def test_two_seed_means_statistic_on_fixed_rows():
    from oneshot_nas.ranking.table import table_statistics
    accs = [[0.80, 0.82, 0.81, 0.83], [0.85, 0.84, 0.86, 0.85], [0.90, 0.88, 0.89, 0.91],
            [0.70, 0.72, 0.69, 0.70]]
    rows = [{"in_band": True, "flops": 100.0 + 10 * i, "params": 1.0 + i,
             "runs": [{"top1": a, "seed": s} for s, a in enumerate(r)]}
            for i, r in enumerate(accs)]
    halves = table_statistics(rows, bootstrap=50)["band"]["two_seed_means"]
    # means of seeds 0-1: 0.81, 0.845, 0.89, 0.71; of seeds 2-3: 0.82, 0.855, 0.90, 0.695
    assert halves["rows"] == 4 and halves["kendall_tau"]["value"] == pytest.approx(1.0)
    for row in rows[:2]:
        row["runs"] = row["runs"][:3]                     # three seeds: not a pair of means
    assert "two_seed_means" not in table_statistics(rows, bootstrap=50)["band"]


def test_workers_split_the_runs_and_share_one_cache(tmp_path):
    out = str(tmp_path / "t.json")
    jobs = table_jobs(_spec())
    a, b = NoisyTrainer(), NoisyTrainer()
    build_table(_spec(), out, only=set(jobs[:5]), trainer=a, counter=proxy_counter)
    build_table(_spec(), out, only=set(jobs[5:]), trainer=b, counter=proxy_counter)
    assert (len(a.calls), len(b.calls)) == (5, 7) and not set(a.calls) & set(b.calls)
    table = build_table(_spec(), out, trainer=NoisyTrainer(), counter=proxy_counter)
    assert table["complete"] and table["runs_done"] == 12
    with pytest.raises(ValueError, match="run row 0 seed 7 is not one of this table's runs"):
        build_table(_spec(), out, only={(0, 7)}, trainer=a, counter=proxy_counter)


def _stand_in_workers(monkeypatch, out, slow_job=None, failing_job=None):
    """Replace the worker processes of a multi-worker build: each trains its run with the
    stand-in trainer when it ends; ``slow_job`` takes six polls, every other one poll."""
    import oneshot_nas.ranking.table as table_module
    log = {"started": [], "live": set(), "written": []}

    class StandInWorker:
        def __init__(self, argv, env=None):
            self.job = tuple(int(x) for x in argv[argv.index("--job") + 1].split("/"))
            self.polls, self.returncode = 0, None
            assert env["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 2) // 2))
            log["started"].append((self.job, sorted(log["live"])))
            log["live"].add(self.job)

        def poll(self):
            self.polls += 1
            if self.polls < (6 if self.job == slow_job else 1):
                return None
            if self.returncode is None:
                self.returncode = 1 if self.job == failing_job else 0
                if not self.returncode:
                    build_table(_spec(), out, only={self.job}, trainer=NoisyTrainer(),
                                counter=proxy_counter)
                log["live"].discard(self.job)
            return self.returncode

        def wait(self):
            return self.returncode
    write = table_module._write_table
    monkeypatch.setattr(table_module, "_write_table",
                        lambda path, table: (log["written"].append(table["runs_done"]),
                                             write(path, table)))
    monkeypatch.setattr(table_module.subprocess, "Popen", StandInWorker)
    monkeypatch.setattr(table_module, "WORKER_POLL_SECONDS", 0.0)
    return log


def test_a_multi_worker_build_keeps_every_worker_busy(tmp_path, monkeypatch):
    """Two workers, one run a process: while the first run takes six polls the other worker
    goes through the queue, and the table is rewritten after every finished run (a fixed
    split of the runs between the workers used to leave one of them idle at the end)."""
    out = str(tmp_path / "t.json")
    jobs = table_jobs(_spec())
    log = _stand_in_workers(monkeypatch, out, slow_job=jobs[0])
    table = build_table(_spec(), out, workers=2, trainer=NoisyTrainer(), counter=proxy_counter)
    assert table["complete"] and table["runs_done"] == 12
    assert [job for job, _ in log["started"]] == jobs          # in the table's order, once each
    assert all(len(live) <= 1 for _, live in log["started"])  # never more than 2 at once
    # runs 2-6 started while the slow first run was still going
    assert all(live == [jobs[0]] for _, live in log["started"][1:6])
    assert log["written"][:3] == [1, 2, 3] and log["written"][-1] == 12


def test_a_failed_worker_run_stops_the_build_and_keeps_the_others(tmp_path, monkeypatch):
    out = str(tmp_path / "t.json")
    jobs = table_jobs(_spec())
    log = _stand_in_workers(monkeypatch, out, failing_job=jobs[2])
    with pytest.raises(RuntimeError, match="row %d seed %d \\(exit code 1\\); rerun the "
                       "command to resume" % jobs[2]):
        build_table(_spec(), out, workers=2, trainer=NoisyTrainer(), counter=proxy_counter)
    assert [job for job, _ in log["started"]] == jobs[:4]      # no run starts after the failure
    # the finished runs are in the cache: a rerun trains only the other nine
    trainer = NoisyTrainer()
    table = build_table(_spec(), out, trainer=trainer, counter=proxy_counter)
    assert len(trainer.calls) == 9 and table["complete"]


@pytest.mark.slow
def test_a_real_two_worker_build_on_fashion_mnist(tmp_path):
    """The command with --workers 2: real worker processes, one a run, real training (two
    batches an epoch), the shared runs cache and the table written once every run is in."""
    out = str(tmp_path / "t.json")
    proc = subprocess.run(
        [sys.executable, "-m", "oneshot_nas.cli.build_table", "--output", out, "-k", "3",
         "--second-seed-rows", "0", "--band-seeds", "1", "--epochs", "1", "--val-interval", "1",
         "--max-batches-per-epoch", "2", "--train-subset", "500", "--workers", "2"],
        capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = load_table(out)
    assert table["complete"] and table["runs_done"] == 3
    done = re.findall(r"\[1/1\] row (\d+) seed (\d+): test top-1", proc.stderr)
    assert sorted(done) == [("0", "0"), ("1", "0"), ("2", "0")]   # one process a run
    assert "2 worker processes at a time" in proc.stderr
    assert "table: 3 architectures, 3 of 3 runs finished" in proc.stdout


@pytest.mark.parametrize("field, value, needle", [
    ("format", 2, "table format 2"),
    ("architectures", "x", "field 'architectures' missing or not list"),
    ("protocol", {"epochs": 2, "wings": 1}, "unknown stand-alone protocol field(s): wings"),
])
def test_malformed_tables_are_refused_in_one_line(tmp_path, field, value, needle):
    out = str(tmp_path / "t.json")
    table = build_table(_spec(), out, trainer=NoisyTrainer(), counter=proxy_counter)
    bad = copy.deepcopy(table)
    bad[field] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError) as info:
        load_table(str(path))
    assert needle in str(info.value) and "\n" not in str(info.value)
    bad = copy.deepcopy(table)
    bad["architectures"][2]["runs"][0]["top1"] = 87.5          # percent instead of a fraction
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="architecture 2 has top-1 87.5 outside 0..1"):
        load_table(str(path))
    with pytest.raises(ValueError, match="does not exist"):
        load_table(str(tmp_path / "none.json"))


def test_table_statistics_against_scipy(tmp_path):
    stats = pytest.importorskip("scipy.stats")
    table = build_table(_spec(12, 8), str(tmp_path / "t.json"), trainer=NoisyTrainer(),
                        counter=proxy_counter)
    pairs = np.array([[r["runs"][0]["top1"], r["runs"][1]["top1"]]
                      for r in table["architectures"] if len(r["runs"]) == 2])
    s2s = table["statistics"]["all"]["seed_to_seed"]
    assert len(pairs) == 8
    assert s2s["kendall_tau"]["value"] == pytest.approx(stats.kendalltau(*pairs.T)[0], abs=1e-12)
    assert s2s["spearman_rho"]["value"] == pytest.approx(stats.spearmanr(*pairs.T)[0], abs=1e-12)
    assert s2s["null_sd"] == pytest.approx(tau_null_sd(8))


def test_noise_figures_on_fixed_inputs():
    # docs/design.md, section 8 (2 digits): 0.28 at K = 8, 0.22 at 12, 0.16 at 20, 0.13 at 30,
    # 0.10 at 50
    for k, sd in ((8, 0.28), (12, 0.22), (20, 0.16), (30, 0.13), (50, 0.10)):
        assert tau_null_sd(k) == pytest.approx(sd, abs=0.01)      # design.md truncates
    res = spread_against_noise([[0.80, 0.82], [0.90], [0.85, 0.85], [0.70]])
    # means 0.81, 0.90, 0.85, 0.70; pooled seed sd from (0.01^2 * 2 + 0) / 2 dof = 0.01
    assert res["seed_sd"] == pytest.approx(0.01)
    assert res["spread_sd"] == pytest.approx(np.std([0.81, 0.90, 0.85, 0.70], ddof=1))
    assert res["ratio"] == pytest.approx(res["spread_sd"] / 0.01)
    assert res["range"] == pytest.approx(0.20) and res["rows_with_seeds"] == 2


def test_rebuilt_rows_are_compared_with_the_stored_ones(tmp_path):
    out = str(tmp_path / "t.json")
    build_table(_spec(), out, trainer=NoisyTrainer(), counter=proxy_counter)
    trainer = NoisyTrainer()
    res = rebuild_rows(out, [1, 5], str(tmp_path / "r.json"), trainer=trainer,
                       counter=proxy_counter)
    assert sorted({row for row, _ in [(r["row"], 0) for r in res["table"]["architectures"]]}) \
        == [1, 5]
    assert {(c["row"], c["seed"]) for c in res["comparison"]} == \
        {(1, 0), (5, 0)} | {(r, 1) for r in (1, 5) if r in second_seed_rows(8, 4)}
    assert all(c["difference"] == pytest.approx(0.0) for c in res["comparison"])
    with pytest.raises(ValueError, match="the table has rows 0..7"):
        rebuild_rows(out, [8], str(tmp_path / "x.json"), trainer=trainer, counter=proxy_counter)


def test_benchmark_check_scores_every_row(tmp_path):
    out = str(tmp_path / "t.json")
    build_table(_spec(12, 6, band_seeds=4), out, trainer=NoisyTrainer(), counter=proxy_counter)
    cfg = BenchmarkCheckConfig(benchmark=out, output_dir=str(tmp_path / "rc"), bootstrap=300,
                               progress=False)
    res = run_benchmark_check(cfg, evaluator=(FakeEvaluator(), {"name": "holdout",
                                                                "images": 300}, 300))
    assert res["k"] == 12 and len(res["architectures"]) == 12
    # the stand-ins both grow with width: a clearly positive ranking
    assert res["correlations"]["loss"]["kendall_tau"]["value"] > 0.6
    assert res["ceiling"] == load_table(out)["statistics"]["all"]["seed_to_seed"]["kendall_tau"]
    assert res["band"]["k"] == sum(r["in_band"] for r in res["architectures"]) == 3
    band_stats = load_table(out)["statistics"]["band"]
    assert res["band"]["ceiling_two_seed_means"] == band_stats["two_seed_means"]["kendall_tau"]
    assert res["null_sd"] == pytest.approx(tau_null_sd(12))
    from oneshot_nas.ranking import kendall_tau
    truth = [r["standalone_top1"] for r in res["architectures"]]
    assert res["baselines"]["flops"]["value"] == pytest.approx(
        kendall_tau([r["flops"] for r in res["architectures"]], truth))
    saved = json.load(open(res["results_path"]))
    assert saved["kendall_tau"] == res["kendall_tau"]
    assert os.path.getsize(res["plot"]) > 5000

    class Exploding(FakeEvaluator):
        def prepare_subnet(self, arch):
            raise AssertionError("scored twice")
    again = run_benchmark_check(cfg, evaluator=(Exploding(), {"name": "holdout",
                                                              "images": 300}, 300))
    assert again["kendall_tau"] == res["kendall_tau"]          # every score from the cache

    # the committed scores.json alone gives every figure again: no weights, nothing scored
    stored = json.load(open(res["scores_path"]))
    assert {"primary", "reliability", "split", "twins"} <= set(stored)
    replay_cfg = BenchmarkCheckConfig(benchmark=out, output_dir=str(tmp_path / "replay"),
                                      bootstrap=300, progress=False,
                                      from_scores=res["scores_path"])
    replay = run_benchmark_check(replay_cfg, evaluator=(Exploding(), None, None))
    for key in ("kendall_tau", "spearman_rho", "band", "beyond_flops", "twins", "reliability",
                "primary_score", "baselines"):
        assert replay[key] == res[key], key
    assert res["twins"]["pairs"] and replay["scores_path"] == res["scores_path"]


def test_benchmark_check_on_fewer_scoring_images(tmp_path):
    """--image-counts: the figures recomputed on subsets of the scoring images; on all of them
    they are the check's own figures, and the per-image scores cannot come from a scores.json."""
    out = str(tmp_path / "t.json")
    build_table(_spec(12, 6, band_seeds=4), out, trainer=NoisyTrainer(), counter=proxy_counter)
    cfg = BenchmarkCheckConfig(benchmark=out, output_dir=str(tmp_path / "rc"), bootstrap=100,
                               progress=False, image_counts=(300, 40, 10), image_draws=5)
    res = run_benchmark_check(cfg, evaluator=(FakeEvaluator(), {"name": "holdout",
                                                                "images": 300}, 300))
    counts = res["image_counts"]
    assert [e["images"] for e in counts["curve"]] == [10, 40, 300]
    assert [e["draws"] for e in counts["curve"]] == [5, 5, 1]
    full = counts["curve"][-1]
    assert full["all"]["kendall_tau"] == {"mean": pytest.approx(res["kendall_tau"]["value"]),
                                          "sd": 0.0}
    assert full["all"]["partial_tau"]["mean"] == pytest.approx(
        res["beyond_flops"]["all"]["partial_tau"]["value"])
    assert full["reliability"]["mean"] == pytest.approx(res["reliability"][res["primary_score"]])
    assert counts["reliability_twice_the_images"] > full["reliability"]["mean"]
    assert "band" not in full or full["band"]["kendall_tau"]["mean"] == pytest.approx(
        res["beyond_flops"]["band"]["kendall_tau"]["value"])
    assert json.load(open(res["results_path"]))["image_counts"]["curve"][-1]["images"] == 300
    with pytest.raises(ValueError, match="between 2 and the 300 images"):
        run_benchmark_check(replace(cfg, image_counts=(301,)),
                            evaluator=(FakeEvaluator(), {"name": "holdout", "images": 300}, 300))
    with pytest.raises(ValueError, match="needs the per-image scores"):
        run_benchmark_check(replace(cfg, from_scores=res["scores_path"]))


class ShiftedEvaluator(FakeEvaluator):
    """A later checkpoint: every image's loss moved by an architecture-dependent amount and
    every hit flipped where the image's index is a multiple of the blocks' sum."""

    def per_image(self, arch):
        hits, _, loss = super().per_image(arch)
        hits = hits.copy()
        hits[::max(2, sum(arch.blocks))] ^= True
        return hits, hits, loss + 0.01 * (sum(arch.blocks) % 7)


def test_benchmark_check_averages_checkpoints_image_by_image(tmp_path):
    out = str(tmp_path / "t.json")
    build_table(_spec(8, 4), out, trainer=NoisyTrainer(), counter=proxy_counter)
    files = []
    for name in ("a", "b"):
        files.append(str(tmp_path / ("%s.params" % name)))
        open(files[-1], "w").write(name)
    split = {"name": "holdout", "images": 300}
    evaluators = [(FakeEvaluator(), split, 300), (ShiftedEvaluator(), split, 300)]

    def check(params, where, evaluator):
        return run_benchmark_check(BenchmarkCheckConfig(
            benchmark=out, supernet_params=params, output_dir=str(tmp_path / where),
            bootstrap=200, progress=False, twins=2), evaluator=evaluator)
    one = [check(f, "one%d" % i, ev) for i, (f, ev) in enumerate(zip(files, evaluators))]
    both = check(files, "both", evaluators)
    for k, row in enumerate(both["architectures"]):
        for key in ("supernet_loss", "supernet_top1"):
            assert row[key] == pytest.approx(np.mean([o["architectures"][k][key] for o in one]))
    assert one[0]["kendall_tau"] != one[1]["kendall_tau"] or \
        one[0]["architectures"][0]["supernet_loss"] != one[1]["architectures"][0]["supernet_loss"]
    twins = both["twins"]["pairs"]
    assert twins and twins[0]["twin_loss"] == pytest.approx(
        np.mean([o["twins"]["pairs"][0]["twin_loss"] for o in one]))
    stored = json.load(open(both["scores_path"]))
    assert stored["supernet"]["checkpoints"] == 2 and stored["supernet"]["params"] == files
    assert len(set(stored["supernet"]["digest"])) == 2 and "mean over 2" in stored["score"]

    class Exploding(FakeEvaluator):
        def prepare_subnet(self, arch):
            raise AssertionError("scored twice")
    # every checkpoint's scores are cached under its own digest: a rerun scores nothing
    again = check(files, "both", [(Exploding(), split, 300)] * 2)
    assert again["kendall_tau"] == both["kendall_tau"]
    with pytest.raises(ValueError, match="lists .*a.params more than once"):
        check([files[0], files[0]], "twice", [(FakeEvaluator(), split, 300)] * 2)
    # checkpoints scored on different held-out images are not averaged
    with pytest.raises(ValueError, match="another held-out split"):
        check(files, "mixed", [(FakeEvaluator(), split, 300),
                               (ShiftedEvaluator(), dict(split, images=200), 200)])


def test_replayed_scores_are_checked_against_the_table(tmp_path):
    out = str(tmp_path / "t.json")
    build_table(_spec(8, 4), out, trainer=NoisyTrainer(), counter=proxy_counter)
    cfg = BenchmarkCheckConfig(benchmark=out, output_dir=str(tmp_path / "rc"), bootstrap=100,
                               progress=False, twins=0)
    res = run_benchmark_check(cfg, evaluator=(FakeEvaluator(), {"name": "holdout",
                                                                "images": 300}, 300))
    stored = json.load(open(res["scores_path"]))

    def replay(doc, table=out):
        path = str(tmp_path / "s.json")
        json.dump(doc, open(path, "w"))
        return run_benchmark_check(BenchmarkCheckConfig(
            benchmark=table, output_dir=str(tmp_path / "r"), from_scores=path, twins=0))
    with pytest.raises(ValueError, match="no score for rows \\[3\\]"):
        replay(dict(stored, rows=[r for r in stored["rows"] if r["row"] != 3]))
    with pytest.raises(ValueError, match="scores the rows of other.json"):
        replay(dict(stored, table="other.json"))
    with pytest.raises(ValueError, match="written by an older rank_check"):
        replay(dict(stored, rows=[{"row": r["row"], "score": r["score"]}
                                  for r in stored["rows"]]))
    assert not os.path.exists(str(tmp_path / "r"))          # refused: nothing written


def test_winner_against_the_table_gives_its_percentile(tmp_path):
    out = str(tmp_path / "t.json")
    table = build_table(_spec(10, 4), out, trainer=NoisyTrainer(), counter=proxy_counter)
    search = _fake_search(tmp_path / "s.json", 0, [0.1, 0.5], "genetic", max_flops=10 ** 6)
    trainer = NoisyTrainer()
    res = run_winner_check(WinnerCheckConfig(search_results=search, benchmark=out,
                                             seeds=(0, 1), output_dir=str(tmp_path / "w")),
                           counter=proxy_counter, trainer=trainer)
    assert len(trainer.calls) == 2                     # only the winner, two seeds
    winner = res["winner"]["standalone_top1"]
    accs = np.array([r["top1_mean"] for r in table["architectures"]])
    assert res["percentile"] == pytest.approx(100 * ((accs < winner).sum()
                                                     + 0.5 * (accs == winner).sum()) / 10)
    assert res["winner_rank"] == 1 + int((accs > winner).sum())
    noise = res["percentile_noise"]                    # the winner has two seeds
    assert noise["ci"][0] <= res["percentile"] <= noise["ci"][1]
    # a search with other model flags is another network: refused
    saved = json.load(open(search))
    saved["config"]["use_se"] = False
    open(search, "w").write(json.dumps(saved))
    with pytest.raises(ValueError, match="use_se"):
        run_winner_check(WinnerCheckConfig(search_results=search, benchmark=out),
                         counter=proxy_counter, trainer=trainer)


def test_the_winner_gets_as_many_seeds_as_the_band_rows(tmp_path):
    from oneshot_nas.ranking.winner import table_seeds
    out = str(tmp_path / "t.json")
    table = build_table(_spec(12, 4, band_seeds=3), out, trainer=NoisyTrainer(),
                        counter=proxy_counter)
    assert table_seeds(table) == (0, 1, 2)
    before = {k: v for k, v in table["sampling"].items() if k != "band_seeds"}
    assert table_seeds(dict(table, sampling=before)) == (0, 1)       # a table before band seeds
    search = _fake_search(tmp_path / "s.json", 0, [0.1, 0.5], "genetic", max_flops=10 ** 6)
    trainer = NoisyTrainer()
    res = run_winner_check(WinnerCheckConfig(search_results=search, benchmark=out,
                                             output_dir=str(tmp_path / "w")),
                           counter=proxy_counter, trainer=trainer)
    assert sorted(seed for _, seed in trainer.calls) == [0, 1, 2]
    assert len(res["winner"]["standalone_per_seed"]) == 3


def test_percentile_interval_follows_the_seed_noise():
    from oneshot_nas.ranking.winner import percentile_interval
    peers = [[0.850 + 0.001 * i] for i in range(20)]          # one seed each, 0.850-0.869
    # seed sd pooled over the two-seed architectures (the winner and the last peer)
    quiet = percentile_interval([0.878, 0.882], peers + [[0.84, 0.84]])
    assert quiet["seed_sd"] == pytest.approx(np.sqrt((2 * 0.002 ** 2 + 0) / 2))
    assert quiet["ci"] == [100.0, 100.0] and quiet["p_top_quarter"] == 1.0
    # the same means with seeds 1 point apart: the winner could land far lower
    noisy = percentile_interval([0.870, 0.890], peers + [[0.835, 0.845]])
    assert noisy["seed_sd"] == pytest.approx(np.sqrt((2 * 0.01 ** 2 + 2 * 0.005 ** 2) / 2))
    assert noisy["ci"][0] < 75 <= noisy["ci"][1] and 0.3 < noisy["p_top_quarter"] < 1.0
    assert noisy["architectures_with_seeds"] == 2
    assert percentile_interval([0.88], peers) is None         # no two-seed architecture
    again = percentile_interval([0.870, 0.890], peers + [[0.835, 0.845]])
    assert again == noisy                                     # seeded: reproducible


def test_rank_check_benchmark_cli_bad_table_is_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for table, needle in ((str(tmp_path / "none.json"), "does not exist"),
                          (str(bad), "cannot read ground-truth table")):
        proc = subprocess.run([sys.executable, "-m", "oneshot_nas.cli.rank_check",
                               "--benchmark", table, "--supernet-params", "x.params",
                               "--output-dir", str(tmp_path / "o")],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert proc.returncode == 2
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("rank_check: error: ") and needle in last
        # the folder made for its log is gone again: a refused command leaves nothing behind
        assert not os.path.exists(str(tmp_path / "o"))


@pytest.mark.skipif(not os.path.isfile(STORED), reason="no stored table yet")
def test_the_stored_table_is_valid_and_spans_the_flops_range():
    table = load_table(STORED)
    assert table["dataset"] == "fashion-mnist" and table["format"] == 1
    rows = table["architectures"]
    assert len(rows) == table["sampling"]["k"] >= 30
    flops = [r["flops"] for r in rows]
    assert flops == sorted(flops) and flops[-1] > 2 * flops[0]
    finished = [r for r in rows if r["runs"]]
    assert all(0.5 < r["top1_mean"] < 1.0 for r in finished)    # far above chance (10 %)
    assert os.path.getsize(STORED) < 200_000                     # a few kB, no weights
