"""Ranking check: rank statistics and their bootstrap intervals, architecture spread, the
stand-alone cache, the check and the winner comparison with stand-in trainers, the CLIs."""
import itertools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from oneshot_nas import Architecture
from oneshot_nas.search.algorithms import Constraints
from oneshot_nas.search.plots import best_so_far, compare_searches
from oneshot_nas.ranking import (RankCheckConfig, StandaloneCache, StandaloneProtocol,
                                        WinnerCheckConfig, bootstrap_ci, kendall_tau,
                                        rank_correlations, run_rank_check, run_winner_check,
                                        sample_spread, score_reliability, spearman_rho,
                                        train_standalone)

from test_samplers import proxy_counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- statistics -------------------------------------------------------------------------------
def _brute_tau_b(x, y):
    concordant = discordant = ties_x = ties_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        if x[i] == x[j] and y[i] == y[j]:
            ties_x += 1
            ties_y += 1
        elif x[i] == x[j]:
            ties_x += 1
        elif y[i] == y[j]:
            ties_y += 1
        elif (x[i] - x[j]) * (y[i] - y[j]) > 0:
            concordant += 1
        else:
            discordant += 1
    n0 = len(x) * (len(x) - 1) / 2
    return (concordant - discordant) / math.sqrt((n0 - ties_x) * (n0 - ties_y))


def _brute_spearman(x, y):
    def ranks(v):   # average rank by counting: 1 + smaller + (equal - 1) / 2
        return np.array([1 + sum(w < u for w in v) + (sum(w == u for w in v) - 1) / 2
                         for u in v])
    rx, ry = ranks(x), ranks(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def test_perfect_and_reversed_rankings():
    x = np.arange(12.0)
    for fn in (kendall_tau, spearman_rho):
        assert fn(x, 2 * x + 1) == pytest.approx(1.0)
        assert fn(x, -x ** 3) == pytest.approx(-1.0)
        assert math.isnan(fn(x, np.ones(12)))


def test_statistics_match_a_brute_force_count_with_and_without_ties():
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(4, 15))
        x = rng.normal(size=n)
        y = x + rng.normal(size=n)
        if trial % 2:     # ties in both, as held-out accuracies in steps of 1/N have
            x, y = np.round(x), np.round(y * 2) / 2
            if len(set(x)) < 2 or len(set(y)) < 2:
                continue
        assert kendall_tau(x, y) == pytest.approx(_brute_tau_b(x, y), abs=1e-12)
        assert spearman_rho(x, y) == pytest.approx(_brute_spearman(x, y), abs=1e-12)
    # a hand count: 10 pairs, 8 concordant, 2 discordant
    assert kendall_tau([1, 2, 3, 4, 5], [1, 3, 2, 5, 4]) == pytest.approx(0.6)
    assert spearman_rho([1, 2, 3, 4, 5], [1, 3, 2, 5, 4]) == pytest.approx(0.8)


def test_statistics_agree_with_scipy_when_installed():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    x = np.round(rng.normal(size=30), 1)
    y = np.round(x + rng.normal(size=30), 1)
    assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y)[0], abs=1e-12)
    assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)


def test_bootstrap_intervals():
    x = np.arange(12.0)
    assert bootstrap_ci(x, x, kendall_tau, 300) == (1.0, 1.0)
    assert bootstrap_ci(x, -x, spearman_rho, 300) == (-1.0, -1.0)
    rng = np.random.default_rng(2)
    y = x + rng.normal(scale=4, size=12)
    res = rank_correlations(x, y, 500, seed=3)
    for name in ("kendall_tau", "spearman_rho"):
        low, high = res[name]["ci"]
        assert -1 <= low < res[name]["value"] < high <= 1
    assert rank_correlations(x, y, 500, seed=3) == res            # seeded
    # more architectures, narrower interval
    xs = np.arange(200.0)
    ys = xs + rng.normal(scale=4 * 200 / 12, size=200)
    wide = rank_correlations(xs, ys, 300, seed=3)["kendall_tau"]["ci"]
    assert wide[1] - wide[0] < high - low


def test_reliability_tells_signal_from_noise():
    rng = np.random.default_rng(0)
    same = (rng.random((8, 300)) < 0.9).astype(float)          # 8 equally good subnets
    assert score_reliability(same) < 0.5
    levels = np.linspace(0.3, 0.95, 8)[:, None]
    apart = (rng.random((8, 300)) < levels).astype(float)
    assert score_reliability(apart) > 0.9


# -- architectures ----------------------------------------------------------------------------
def test_spread_sample_is_distinct_constrained_and_covers_the_range():
    constraints = Constraints(max_flops=900)
    archs = sample_spread(12, proxy_counter, constraints, seed=0)
    assert len(set(archs)) == 12
    flops, _ = proxy_counter(np.array([a.blocks for a in archs]),
                             np.array([a.channels for a in archs]))
    assert (flops <= 900).all() and (np.diff(flops) >= 0).all()
    # uniform sampling concentrates near the mean; the spread sample reaches far below it
    rng = np.random.default_rng(0)
    uniform = proxy_counter(rng.integers(0, 4, (2000, 20)), rng.integers(0, 10, (2000, 20)))[0]
    uniform = uniform[uniform <= 900]
    assert flops.max() - flops.min() > 2 * (np.percentile(uniform, 90)
                                            - np.percentile(uniform, 10))
    assert sample_spread(12, proxy_counter, constraints, seed=0) == archs


# -- stand-alone runs with a stand-in trainer -------------------------------------------------
class FakeTrainer:
    """Accuracy grows with the mean channel choice, plus a little seed noise."""

    def __init__(self):
        self.calls = []

    def __call__(self, cfg):
        arch = Architecture.parse(cfg.block_choices, cfg.channel_choices)
        self.calls.append((arch, cfg.seed))
        acc = 0.6 + 0.03 * np.mean(arch.channels) + 0.001 * cfg.seed
        return {"epochs": [{"val_top1": acc, "train_accuracy": acc}]}


def test_standalone_runs_are_cached_per_protocol_and_seed(tmp_path):
    arch = Architecture.sample(np.random.default_rng(0))
    trainer = FakeTrainer()
    path = str(tmp_path / "cache.json")
    protocol = StandaloneProtocol(epochs=2, seeds=(0, 1))
    first = train_standalone(arch, protocol, StandaloneCache(path), trainer)
    assert len(trainer.calls) == 2 and first["top1"] == pytest.approx(np.mean(first["per_seed"]))
    again = train_standalone(arch, protocol, StandaloneCache(path), trainer)   # from the file
    assert len(trainer.calls) == 2 and again["per_seed"] == first["per_seed"]
    train_standalone(arch, StandaloneProtocol(epochs=3, seeds=(0, 1)), StandaloneCache(path),
                     trainer)
    assert len(trainer.calls) == 4
    cfg = protocol.train_config(arch, 1)
    assert (cfg.model, cfg.dataset, cfg.input_size, cfg.num_epochs, cfg.seed) == \
        ("ShuffleNas_fixArch", "digits", 32, 2, 1)
    assert not cfg.save_dir and cfg.metrics_file is None


class FakeEvaluator:
    """Stands in for the supernet: per-image hits / losses from a noisy width signal."""

    def __init__(self, images=300, noise=0.0):
        self.images, self.noise = images, noise

    def prepare_subnet(self, arch):
        return arch

    def per_image(self, arch):
        rng = np.random.default_rng(sum(arch.channels) * 7 + sum(arch.blocks))
        p = np.clip(0.5 + 0.04 * np.mean(arch.channels) + self.noise * rng.normal(), 0, 1)
        hits = rng.random(self.images) < p
        loss = -np.log(np.clip(p + 0.05 * rng.random(self.images), 1e-3, 1))
        return hits, hits, loss


def test_rank_check_end_to_end_with_stand_ins(tmp_path):
    trainer = FakeTrainer()
    cfg = RankCheckConfig(num_archs=8, max_flops=900, output_dir=str(tmp_path), bootstrap=300,
                          protocol=StandaloneProtocol(epochs=1, seeds=(0,)))
    split = {"name": "holdout", "images": 300}
    res = run_rank_check(cfg, counter=proxy_counter, trainer=trainer,
                         evaluator=(FakeEvaluator(), split, 300))
    assert len(res["architectures"]) == 8 and len(trainer.calls) == 8
    assert res["primary_score"] in ("acc", "loss")
    assert res["kendall_tau"] == res["correlations"][res["primary_score"]]["kendall_tau"]
    assert res["correlations"]["loss"]["kendall_tau"]["value"] > 0.8
    assert res["standalone_spread_points"] > 5 and res["spread_ok"]
    assert res["protocol"]["holdout"] == 300
    with open(res["results_path"]) as f:
        saved = json.load(f)
    assert saved["kendall_tau"]["value"] == res["kendall_tau"]["value"]
    assert os.path.getsize(res["plot"]) > 5000
    # a rerun trains nothing again
    again = run_rank_check(cfg, counter=proxy_counter, trainer=trainer,
                           evaluator=(FakeEvaluator(), split, 300))
    assert len(trainer.calls) == 8
    assert again["kendall_tau"] == res["kendall_tau"]


def test_rank_check_prefers_the_less_noisy_score(tmp_path):
    class LossOnly(FakeEvaluator):
        def per_image(self, arch):
            hits, _, loss = super().per_image(arch)
            rng = np.random.default_rng(1)
            return rng.random(self.images) < 0.8, hits, loss    # accuracy: pure noise
    cfg = RankCheckConfig(num_archs=6, max_flops=900, output_dir=str(tmp_path), bootstrap=100)
    res = run_rank_check(cfg, counter=proxy_counter, trainer=FakeTrainer(),
                         evaluator=(LossOnly(), {"name": "holdout", "images": 300}, 300))
    assert res["primary_score"] == "loss"
    assert res["reliability"]["loss"] > res["reliability"]["acc"]


def _fake_search(path, seed, fitness, mode, max_flops=900, search_score="acc"):
    archs = [Architecture.sample(np.random.default_rng([seed, i])) for i in range(len(fitness))]
    res = {"config": {"seed": seed, "search_mode": mode, "max_flops": max_flops,
                      "search_score": search_score,
                      "channels_layout": "OneShot", "use_se": True,
                      "last_conv_after_pooling": True, "supernet_params": None},
           "split": {"name": "holdout", "images": 360, "holdout": 360},
           "topk": [{"blocks": list(archs[int(np.argmax(fitness))].blocks),
                     "channels": list(archs[int(np.argmax(fitness))].channels)}],
           "candidates": [dict(json.loads(a.to_json()), fitness=f, top1=f)
                          for a, f in zip(archs, fitness)]}
    with open(path, "w") as f:
        json.dump(res, f)
    return str(path)


def _fake_accuracy(channels):
    """What FakeTrainer gives seed 0: written out here, not taken from the implementation."""
    return 0.6 + 0.03 * float(np.mean([int(c) for c in channels]))


@pytest.mark.parametrize("winner_channel, expected_rank", [(0, 6), (9, 1)])
def test_winner_check_trains_the_searchs_best_and_ranks_it(tmp_path, winner_channel,
                                                          expected_rank):
    """The search's top-1 is the one trained as the winner; its rank and the random median
    follow from the stand-in accuracies (the narrowest winner loses to all 5 random ones, the
    widest beats them all)."""
    search = _fake_search(tmp_path / "s.json", 0, [0.1, 0.5, 0.3], "genetic")
    with open(search) as f:
        saved = json.load(f)
    best = Architecture.sample(np.random.default_rng(99))
    best = Architecture(best.blocks, [winner_channel] * 20)
    saved["topk"] = [{"blocks": list(best.blocks), "channels": list(best.channels)},
                     saved["topk"][0]]
    with open(search, "w") as f:
        json.dump(saved, f)
    trainer = FakeTrainer()
    cfg = WinnerCheckConfig(search_results=search, num_random=5, output_dir=str(tmp_path),
                            protocol=StandaloneProtocol(epochs=1, seeds=(0,)))
    res = run_winner_check(cfg, counter=proxy_counter, trainer=trainer)
    assert res["winner"]["block_choices"] == best.block_string()
    assert res["winner"]["channel_choices"] == best.channel_string()
    assert trainer.calls[0][0] == best
    assert res["winner"]["standalone_top1"] == pytest.approx(0.6 + 0.03 * winner_channel)
    randoms = sorted(_fake_accuracy(r["channel_choices"].split(",")) for r in res["random"])
    assert len(randoms) == 5 and len(trainer.calls) == 6
    assert res["random_median_top1"] == pytest.approx(randoms[2])
    assert res["random_best_top1"] == pytest.approx(randoms[-1])
    assert res["winner_rank"] == expected_rank
    assert res["winner_beats_median"] is (expected_rank == 1)
    assert all(r["flops"] <= 900 for r in res["random"])
    assert res["protocol"]["holdout"] == 360
    assert os.path.getsize(res["plot"]) > 5000
    with pytest.raises(ValueError, match="--search-results"):
        run_winner_check(WinnerCheckConfig(search_results=str(tmp_path / "none.json")))


def test_genetic_vs_random_best_per_candidate(tmp_path):
    np.testing.assert_array_equal(best_so_far([0.1, 0.3, 0.2, 0.5]), [0.1, 0.3, 0.3, 0.5])
    g = [_fake_search(tmp_path / ("g%d.json" % s), s, [0.1, 0.4, 0.6, 0.7, 0.2], "genetic")
         for s in range(2)]
    r = [_fake_search(tmp_path / ("r%d.json" % s), s, [0.2, 0.5, 0.3, 0.9], "random")
         for s in range(2)]
    res = compare_searches(g, r, str(tmp_path / "cmp.png"))
    assert [p["candidates"] for p in res["pairs"]] == [4, 4]
    assert res["pairs"][0]["genetic_best"] == 0.7 and res["pairs"][0]["random_best"] == 0.9
    assert res["genetic_wins"] == 0
    assert os.path.getsize(res["plot"]) > 5000 and os.path.isfile(res["results_path"])
    with pytest.raises(ValueError, match="in pairs"):
        compare_searches(g, r[:1], str(tmp_path / "x.png"))
    # a loss-scored search's fitness is not a top-1: the two cannot share a comparison
    by_loss = _fake_search(tmp_path / "l.json", 0, [0.5, 0.6], "random", search_score="loss")
    with pytest.raises(ValueError, match="--search-score loss: their fitness values cannot"):
        compare_searches(g[:1], [by_loss], str(tmp_path / "y.png"))
    assert compare_searches([by_loss], [by_loss], str(tmp_path / "z.png"))["search_score"] \
        == "loss"


# -- command lines ----------------------------------------------------------------------------
def _cli(module, *args):
    return subprocess.run([sys.executable, "-m", "oneshot_nas.cli." + module] + list(args),
                          capture_output=True, text=True, timeout=900, cwd=ROOT)


@pytest.mark.parametrize("args, needle", [
    (["--supernet-params", "missing.params"], "--supernet-params file missing.params"),
    (["--supernet-params", "x", "--standalone-seeds", "a,b"], "--standalone-seeds"),
    (["--supernet-params", "x", "-k", "2"], "--num-archs must be at least 3"),
    (["--supernet-params", "x", "y"], "several --supernet-params (checkpoint averaging) need "
                                      "--benchmark"),
    (["--supernet-params", "x", "--image-counts", "100"], "--image-counts needs --benchmark"),
])
def test_rank_check_bad_inputs_exit_2_with_one_line(tmp_path, args, needle):
    proc = _cli("rank_check", "--output-dir", str(tmp_path), *args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("rank_check: error: ") and needle in last
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_rank_check_cli_on_a_tiny_trained_supernet(tmp_path):
    """K=3, very short: the whole path, real trainer, real supernet, real files."""
    from oneshot_nas.training import TrainConfig, train
    summary = train(TrainConfig(dataset="digits", input_size=32, batch_size=32, num_epochs=1,
                                use_se=True, last_conv_after_pooling=True, num_workers=0,
                                max_batches_per_epoch=3, update_bn_images=64,
                                holdout_search=100, save_dir=str(tmp_path / "supernet"),
                                metrics_file=None, progress=False, lr=0.05))
    out = tmp_path / "rank"
    args = ["--supernet-params", summary["final_params"], "--use-se", "-k", "3",
            "--output-dir", str(out),
            "--standalone-epochs", "1", "--standalone-warmup-epochs", "0",
            "--standalone-seeds", "0", "--max-batches-per-epoch", "2",
            "--update-bn-images", "64", "--bootstrap", "200", "--max-flops", "300"]
    proc = _cli("rank_check", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Kendall tau" in proc.stdout and "Spearman rho" in proc.stdout
    with open(str(out / "rank_check.json")) as f:
        res = json.load(f)
    assert len(res["architectures"]) == 3
    assert res["split"] == dict(res["split"], name="holdout", images=100)
    assert all(r["flops"] <= 300 for r in res["architectures"])
    assert os.path.getsize(res["plot"]) > 5000
    # rerun: every stand-alone run comes from the cache
    proc = _cli("rank_check", *args)
    assert proc.returncode == 0
    assert "3 finished runs" in proc.stderr and "stand-alone blocks=" not in proc.stderr


def test_winner_check_and_compare_cli_bad_inputs_exit_2(tmp_path):
    for module, args, needle in (
            ("winner_check", ["--search-results", str(tmp_path / "no.json")],
             "winner_check: error: --search-results file"),
            ("compare_searches", ["--genetic", str(tmp_path / "g.json"), "--random",
                                  str(tmp_path / "r.json")],
             "compare_searches: error: ")):
        proc = _cli(module, *args, "--output-dir" if module == "winner_check" else "--output",
                    str(tmp_path / "out") if module == "winner_check" else
                    str(tmp_path / "c.png"))
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.strip().splitlines()[-1].startswith(needle)
        assert "Traceback" not in proc.stderr


def test_winner_check_defaults_follow_the_searchs_data_set(tmp_path):
    """A Fashion-MNIST search's winner is trained with the table's protocol at the search's
    input size (not the digits protocol), with the --standalone-* flags typed on top."""
    from oneshot_nas.cli.winner_check import _protocol, build_parser
    path = _fake_search(tmp_path / "s.json", 0, [0.5, 0.6], "genetic")
    doc = json.load(open(path))
    doc["config"].update(dataset="fashion-mnist", input_size=48)
    json.dump(doc, open(path, "w"))
    parser = build_parser()
    proto = _protocol(parser.parse_args(["--search-results", path]), parser)
    assert (proto.dataset, proto.image_size, proto.epochs, proto.train_subset) == \
        ("fashion-mnist", 48, 8, 10000)
    proto = _protocol(parser.parse_args(["--search-results", path, "--standalone-epochs", "2",
                                         "--standalone-no-augment"]), parser)
    assert (proto.dataset, proto.epochs, proto.augment, proto.lr) == \
        ("fashion-mnist", 2, False, 0.1)
    digits = _fake_search(tmp_path / "d.json", 0, [0.5, 0.6], "genetic")
    assert _protocol(parser.parse_args(["--search-results", digits]), parser).dataset == "digits"
