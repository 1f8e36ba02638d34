"""What a score adds beyond FLOPs: residuals on log FLOPs, partial tau, the paired tau
difference and leave-one-out predictions against hand computations and scipy; the table's
FLOPs-matched set, its statistics, and a table refused when a stored figure differs from its
runs."""
import copy
import json

import numpy as np
import pytest

from oneshot_nas.ranking import StandaloneProtocol, TableSpec, build_table, load_table
from oneshot_nas.ranking.stats import (kendall_tau, loo_predictions, paired_tau_difference,
                                       partial_tau, partial_tau_ci, residuals)

from test_samplers import proxy_counter
from test_table import NoisyTrainer


def test_residuals_by_hand():
    # y = [1, 2, 4] on x = [0, 1, 2]: slope 1.5, intercept 5/6, residuals 1/6, -1/3, 1/6
    np.testing.assert_allclose(residuals([1, 2, 4], [0, 1, 2]), [1 / 6, -1 / 3, 1 / 6])
    assert np.isnan(residuals([1, 2, 3], [5, 5, 5])).all()       # constant covariate


def test_partial_tau_by_hand():
    z = np.array([1.0, 2, 3, 4, 5])
    a = np.array([1.0, -2, 0, 2, -1])      # sums to 0 and is orthogonal to z - 3
    b = np.array([1.0, 0, -2, 0, 1])       # the same
    x, y = 2 * z + a, -3 * z + a           # residuals after the line on z: a and a
    assert kendall_tau(x, y) < 0           # the raw orders disagree through z
    assert partial_tau(x, y, z) == pytest.approx(1.0)
    # a against b by hand: concordant 4, discordant 4, b has two ties (tau-b 0 / sqrt(80))
    assert partial_tau(x, -3 * z + b, z) == pytest.approx(0.0)


def test_partial_tau_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    flops = rng.uniform(80, 600, 25)
    truth = 0.02 * np.log(flops) + rng.normal(0, 0.004, 25)
    score = 0.5 * np.log(flops) + rng.normal(0, 0.05, 25) + 3 * (truth - 0.02 * np.log(flops))

    def scipy_residuals(y, x):
        fit = stats.linregress(x, y)
        return y - (fit.intercept + fit.slope * x)
    want = stats.kendalltau(scipy_residuals(score, np.log(flops)),
                            scipy_residuals(truth, np.log(flops)))[0]
    got = partial_tau_ci(score, truth, np.log(flops), num_resamples=300)
    assert got["value"] == pytest.approx(want, abs=1e-12)
    assert got["ci"][0] <= got["value"] <= got["ci"][1]


def test_paired_tau_difference():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=20)
    good, poor = truth + rng.normal(0, 0.1, 20), truth + rng.normal(0, 2.0, 20)
    res = paired_tau_difference(good, poor, truth, num_resamples=400)
    assert res["value"] == pytest.approx(kendall_tau(good, truth) - kendall_tau(poor, truth))
    assert res["ci"][0] > 0                         # the better score wins on every resample
    same = paired_tau_difference(good, good, truth, num_resamples=100)
    assert same["value"] == 0.0 and same["ci"] == [0.0, 0.0]


def test_leave_one_out_predictions_equal_explicit_refits():
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=12), rng.normal(size=12)
    y = 1 + 2 * f1 - f2 + rng.normal(0, 0.3, 12)
    got = loo_predictions([f1, f2], y)
    for i in range(12):
        keep = np.arange(12) != i
        design = np.column_stack([np.ones(12), f1, f2])
        coef = np.linalg.lstsq(design[keep], y[keep], rcond=None)[0]
        assert got[i] == pytest.approx(design[i] @ coef, abs=1e-10)
    with pytest.raises(ValueError, match="needs more than 4 rows"):
        loo_predictions([f1[:4], f2[:4]], y[:4])


def _matched_spec(**kw):
    values = dict(k=8, second_seed_rows=4, band_max_flops=1000.0, band_seeds=1, matched_k=5,
                  matched_flops=900.0, matched_tolerance=0.03, matched_seeds=3,
                  protocol=StandaloneProtocol.fashion_mnist(epochs=2, val_interval=1))
    values.update(kw)
    return TableSpec(**values)


def test_spearman_brown_by_hand_and_against_a_simulation():
    from oneshot_nas.ranking.image_counts import spearman_brown
    from oneshot_nas.ranking.stats import score_reliability
    assert spearman_brown(0.5, 2.0) == pytest.approx(2.0 / 3.0)
    assert spearman_brown(0.8, 0.5) == pytest.approx(0.4 / 0.6)
    # 40 architectures, per-image score = quality + noise: the reliability of 2,000 images
    # is what the formula projects from 1,000
    rng = np.random.default_rng(0)
    values = rng.normal(0, 0.05, (40, 1)) + rng.normal(0, 1.0, (40, 2000))
    half = score_reliability(values[:, :1000])
    assert 0.5 < half < 0.9
    assert score_reliability(values) == pytest.approx(spearman_brown(half, 2.0), abs=0.04)


def _image_rows(k=30):
    rng = np.random.default_rng(1)
    flops = np.sort(rng.uniform(100, 600, k))
    quality = rng.normal(0, 1, k)                        # what FLOPs cannot see
    truth = 0.8 + 0.02 * np.log(flops) + 0.003 * quality
    rows = [{"standalone_top1": t, "flops": f, "in_band": f <= 300, "set": "spread"}
            for t, f in zip(truth, flops)]
    return rows, flops, quality


def test_image_count_curve_on_scores_with_known_noise():
    from oneshot_nas.ranking.image_counts import image_count_curve
    rows, flops, quality = _image_rows()
    rng = np.random.default_rng(2)
    # per image: log FLOPs + the hidden quality + image noise (sd 4 per image)
    per_image = (np.log(flops) + 0.3 * quality)[:, None] + rng.normal(0, 4.0, (30, 4000))
    curve = image_count_curve(rows, per_image, [4000, 50, 500], draws=8, seed=0)
    assert [e["images"] for e in curve] == [50, 500, 4000]
    assert [e["draws"] for e in curve] == [8, 8, 1]
    whole = [e["all"] for e in curve]
    # more images: less noise, so the reliability, tau and partial tau all rise
    rel = [e["reliability"]["mean"] for e in curve]
    assert rel[0] < rel[1] < rel[2]
    assert whole[0]["partial_tau"]["mean"] < whole[1]["partial_tau"]["mean"] < \
        whole[2]["partial_tau"]["mean"]
    assert whole[0]["kendall_tau"]["sd"] > whole[1]["kendall_tau"]["sd"] > 0
    # all images, one draw: the figures of the full mean
    score = per_image.mean(axis=1)
    truth = [r["standalone_top1"] for r in rows]
    assert whole[2]["kendall_tau"] == {"mean": pytest.approx(kendall_tau(score, truth)),
                                       "sd": 0.0}
    assert whole[2]["partial_tau"]["mean"] == pytest.approx(
        partial_tau(score, truth, np.log(flops)))
    band = [i for i, r in enumerate(rows) if r["in_band"]]
    assert curve[2]["band"]["kendall_tau"]["mean"] == pytest.approx(
        kendall_tau(score[band], np.array(truth)[band]))
    assert "matched" not in curve[2]                        # no matched row
    # the same seed draws the same subsets
    assert image_count_curve(rows, per_image, [50], draws=8, seed=0)[0] == curve[0]


def test_image_count_curve_noise_free_scores_do_not_move():
    from oneshot_nas.ranking.image_counts import image_count_curve
    rows, flops, quality = _image_rows()
    per_image = np.repeat((np.log(flops) + 0.3 * quality)[:, None], 100, axis=1)
    curve = image_count_curve(rows, per_image, [5, 100], draws=4)
    assert curve[0]["all"]["kendall_tau"] == curve[1]["all"]["kendall_tau"]
    assert curve[0]["all"]["kendall_tau"]["sd"] == 0.0


@pytest.mark.parametrize("counts, draws, needle", [
    ([1], 5, "between 2 and the 100 images"), ([101], 5, "between 2 and the 100 images"),
    ([10], 1, "--image-draws must be >= 2")])
def test_image_count_curve_bad_settings(counts, draws, needle):
    from oneshot_nas.ranking.image_counts import image_count_curve
    rows, _, _ = _image_rows()
    with pytest.raises(ValueError, match=needle):
        image_count_curve(rows, np.zeros((30, 100)), counts, draws)
    with pytest.raises(ValueError, match="per-image scores of 30 architectures"):
        image_count_curve(rows, np.zeros((29, 100)), [10], 5)


def test_a_matched_set_is_within_the_window_varied_and_seeded(tmp_path):
    out = str(tmp_path / "t.json")
    trainer = NoisyTrainer()
    table = build_table(_matched_spec(), out, trainer=trainer, counter=proxy_counter)
    rows = table["architectures"]
    spread = [r for r in rows if r["set"] == "spread"]
    matched = [r for r in rows if r["set"] == "matched"]
    assert [r["row"] for r in matched] == list(range(8, 13)) and len(spread) == 8
    assert all(873.0 <= r["flops"] <= 927.0 and len(r["runs"]) == 3 for r in matched)
    assert len(trainer.calls) == 8 + 4 + 5 * 3 and table["complete"]
    codes = {(r["block_choices"], r["channel_choices"]) for r in rows}
    assert len(codes) == 13                                     # no row twice
    for i, a in enumerate(matched):                             # varied, not clustered
        for b in matched[i + 1:]:
            differ = sum(x != y for x, y in zip(a["block_choices"].split(",") +
                                                a["channel_choices"].split(","),
                                                b["block_choices"].split(",") +
                                                b["channel_choices"].split(",")))
            assert differ >= 20
    # the spread rows are those of the same table without a matched set
    plain = build_table(_matched_spec(matched_k=0), str(tmp_path / "p.json"),
                        trainer=NoisyTrainer(), counter=proxy_counter)
    assert [r["block_choices"] for r in plain["architectures"]] == \
        [r["block_choices"] for r in spread]
    stats = table["statistics"]["matched"]
    assert stats["rows"] == 5 and stats["rows_with_two_seeds"] == 5
    assert set(stats) >= {"seed_to_seed", "flops_alone", "params_alone",
                          "residual_seed_to_seed", "spread_against_noise"}
    # resumed from the file: nothing trained again; another matched target is refused
    again = NoisyTrainer()
    build_table(_matched_spec(), out, trainer=again, counter=proxy_counter)
    assert again.calls == []
    with pytest.raises(ValueError, match="another protocol or sampling"):
        build_table(_matched_spec(matched_flops=850.0), out, trainer=again,
                    counter=proxy_counter)


def test_matched_settings_are_checked():
    with pytest.raises(ValueError, match="--matched-seeds must be at least 2"):
        _matched_spec(matched_seeds=1).validate()
    with pytest.raises(ValueError, match="--matched-archs must be 0 or at least 3"):
        _matched_spec(matched_k=2).validate()
    assert _matched_spec(matched_flops=None, band_max_flops=300.0).matched_target == \
        pytest.approx(291.0)


@pytest.mark.parametrize("edit, needle", [
    (lambda t: t["architectures"][3].__setitem__("top1_mean",
                                                 t["architectures"][3]["top1_mean"] + 0.01),
     "architecture 3 stores top1_mean"),
    (lambda t: t["architectures"][1]["runs"][0].__setitem__(
        "top1", t["architectures"][1]["runs"][0]["top1"] - 0.02),
     "architecture 1 stores top1_mean"),
    (lambda t: t["statistics"]["matched"]["flops_alone"].__setitem__("value", 0.99),
     "statistics['matched']['flops_alone']['value'] differ"),
    (lambda t: t["statistics"]["all"].pop("residual_seed_to_seed"),
     "statistics['all'] differ"),
])
def test_a_table_whose_stored_figures_differ_from_its_runs_is_refused(tmp_path, edit, needle):
    out = str(tmp_path / "t.json")
    table = build_table(_matched_spec(), out, trainer=NoisyTrainer(), counter=proxy_counter)
    assert load_table(out)["complete"]                          # as written, it loads
    bad = copy.deepcopy(table)
    bad.pop("plot", None)
    edit(bad)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError) as info:
        load_table(str(path))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_a_winner_is_placed_among_the_matched_set(tmp_path, monkeypatch, capsys):
    from oneshot_nas.ranking import WinnerCheckConfig, run_winner_check
    from test_ranking import _fake_search
    out = str(tmp_path / "t.json")
    table = build_table(_matched_spec(), out, trainer=NoisyTrainer(), counter=proxy_counter)
    search = _fake_search(tmp_path / "s.json", 0, [0.1, 0.5], "random", max_flops=927)
    trainer = NoisyTrainer()
    res = run_winner_check(WinnerCheckConfig(search_results=search, benchmark=out,
                                             output_dir=str(tmp_path / "w"), command="x"),
                           counter=proxy_counter, trainer=trainer)
    assert sorted(s for _, s in trainer.calls) == [0, 1, 2]   # as many seeds as matched rows
    matched = [r for r in table["architectures"] if r["set"] == "matched"]
    assert [r["row"] for r in res["random"]] == [r["row"] for r in matched]
    assert res["peers"] == "the FLOPs-matched set" and res["search_mode"] == "random"
    assert res["command"] == "x" and len(res["winner"]["standalone_per_seed"]) == 3
    # the FLOPs line: least squares of the band rows' means on log FLOPs, by numpy here
    band = [r for r in table["architectures"] if r["in_band"] and r["runs"]]
    slope, intercept = np.polyfit(np.log([r["flops"] for r in band]),
                                  [r["top1_mean"] for r in band], 1)
    line = res["flops_line"]
    assert line["rows"] == len(band) >= 3 and line["over"] == "band rows"
    assert line["predicted_top1"] == pytest.approx(intercept + slope * np.log(res["winner"]["flops"]))
    assert line["residual"] == pytest.approx(res["winner"]["standalone_top1"] -
                                             line["predicted_top1"])
    sampling = table["sampling"]
    low, high = res["matched_window"]["flops"]
    assert (low, high) == pytest.approx((sampling["matched_flops"] * (1 - sampling["matched_tolerance"]),
                                         sampling["matched_flops"] * (1 + sampling["matched_tolerance"])))
    assert res["matched_window"]["inside"] == (low <= res["winner"]["flops"] <= high)
    # what the command prints from it, inside the window and outside
    from oneshot_nas.cli import winner_check
    for inside in (True, False):
        shown = dict(res, matched_window=dict(res["matched_window"], inside=inside))
        monkeypatch.setattr(winner_check, "run_winner_check", lambda cfg, shown=shown: shown)
        assert winner_check.main(["--search-results", search, "--benchmark", out,
                                  "--output-dir", str(tmp_path / "w")]) == 0
        printed = capsys.readouterr().out
        assert "FLOPs line over %d band rows: %.2f %% predicted" % (
            len(band), 100 * line["predicted_top1"]) in printed
        assert ("outside the matched set's window" in printed) == (not inside)
