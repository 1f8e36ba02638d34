"""Search: evaluator exactness, genetic / random algorithms, resume, latency objective, plots."""
import math
import zlib

import mxnet as mx
import numpy as np
import pytest
from mxnet import nd

from oneshot_nas import Architecture, get_model
from oneshot_nas.search import (CandidateEvaluator, Constraints, Objective, SearchState,
                                genetic_search, random_search, sample_population)
from oneshot_nas.search.plots import pareto_front, plot_candidates, plot_history

from test_samplers import proxy_counter


def fake_accuracy(arch):
    """A deterministic stand-in for a supernet: wider and SXB-heavier is better, plus noise."""
    rng = np.random.default_rng(zlib.crc32(arch.to_json().encode()))
    base = 0.5 + 0.02 * np.mean(arch.channels) + 0.01 * arch.blocks.count(3)
    return {"top1": float(base + 0.01 * rng.random()), "top5": 1.0}


def _run_genetic(seed, generations, state=None, checkpoint=None):
    state = state or SearchState("genetic", seed)
    constraints = Constraints(max_flops=950)
    return genetic_search(state, fake_accuracy, proxy_counter, constraints,
                          Objective(constraints=constraints), population_size=20, retain_length=5,
                          generations=generations, checkpoint=checkpoint)


def _top(state, k=5):
    ranked = sorted(state.results.items(), key=lambda kv: (-kv[1]["fitness"], kv[0].to_json()))
    return [(a, r["fitness"]) for a, r in ranked[:k]]


def test_genetic_respects_constraints_and_beats_random():
    state = _run_genetic(0, 8)
    flops = np.array([r["flops"] for r in state.results.values()])
    assert (flops <= 950).all()
    assert state.history[-1]["best"] >= state.history[0]["best"]
    rand = random_search(SearchState("random", 0), fake_accuracy, proxy_counter,
                         Constraints(max_flops=950),
                         Objective(constraints=Constraints(max_flops=950)),
                         iters=len(state.results))
    assert max(r["fitness"] for r in state.results.values()) >= \
        max(r["fitness"] for r in rand.results.values())


def test_resumed_genetic_search_ends_with_same_topk(tmp_path):
    full = _run_genetic(3, 6)
    path = tmp_path / "state.json"
    saved = {}

    def checkpoint(st):
        st.save(str(path))
        if st.step == 2:
            saved["text"] = path.read_text()
    _run_genetic(3, 2, checkpoint=checkpoint)          # "killed" after generation 2
    resumed = SearchState.from_json(saved["text"])
    assert resumed.step == 2
    resumed = _run_genetic(3, 6, state=resumed)
    assert _top(resumed) == _top(full)
    assert resumed.history == full.history


def test_impossible_constraints_fail_after_bounded_tries():
    with pytest.raises(ValueError, match="admit no architecture"):
        sample_population(np.random.default_rng(0), 10, proxy_counter, Constraints(max_flops=1),
                          max_tries=5000)


def test_relative_constraints_and_objectives():
    c = Constraints.build("SinglePathOneShot", flop_max=1.0, normalised_score_max=1.0)
    assert c.max_flops == 328.0
    assert c.satisfied([300], [3.0]) and not c.satisfied([300], [4.0])   # score > 1
    with pytest.raises(ValueError, match="unknown --comparison-model"):
        Constraints.build("ResNet")
    bal = Objective("balanced_flop_acc", score_acc_ratio=0.1, constraints=c)
    assert math.isclose(bal(0.7, 328, 3.4), 0.7 - 0.1)
    soft = Objective(latency_fn=lambda a: 0, target_latency=10.0)
    assert math.isclose(soft(0.7, 0, 0, latency=20.0), 0.7 * 2 ** -0.07)
    hard = Objective(latency_fn=lambda a: 0, target_latency=10.0, hard_latency=True)
    assert hard(0.7, 0, 0, latency=5.0) == 0.7 and math.isclose(hard(0.7, 0, 0, latency=20.0), 0.35)


def test_evaluator_accuracy_independent_of_recalibration_batch_size():
    mx.random.seed(0)
    supernet = get_model("ShuffleNas", use_se=True, last_conv_after_pooling=True, classes=10)
    supernet.initialize()
    rng = np.random.RandomState(0)
    calib = nd.array(rng.uniform(size=(96, 3, 32, 32)))
    val = [(nd.array(rng.uniform(size=(32, 3, 32, 32))), nd.array(rng.randint(0, 10, 32)))
           for _ in range(2)]
    arch = Architecture.sample(np.random.default_rng(1))
    outs, accs = [], []
    for batch_size in (16, 128):
        ev = CandidateEvaluator(supernet, calib, val, batch_size=batch_size)
        outs.append(ev.prepare_subnet(arch)(val[0][0]).asnumpy())
        res = ev.evaluate(arch)
        assert ev.evaluate(arch) is res          # cached, never evaluated twice
        accs.append(res["top1"])
    assert abs(accs[0] - accs[1]) < 1e-6
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-4 * np.abs(outs[0]).max())
    np.testing.assert_array_equal(outs[0].argmax(1), outs[1].argmax(1))


def test_pareto_front_and_plots(tmp_path):
    flops = np.array([100, 150, 120, 300, 90])
    acc = np.array([0.5, 0.7, 0.6, 0.65, 0.4])
    assert pareto_front(flops, acc) == [4, 0, 2, 1]
    recs = [{"flops": f, "top1": a} for f, a in zip(flops, acc)]
    png = plot_candidates(recs, str(tmp_path / "c.png"), max_flops=200)
    hist = plot_history([{"generation": 0, "best": 0.5, "mean": 0.4},
                         {"generation": 1, "best": 0.6, "mean": 0.5}], str(tmp_path / "h.png"))
    for path in (png, hist):
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_latency_table_predicts_subnet_latency(tmp_path, monkeypatch):
    """The table times the right blocks at the right shapes and a prediction adds exactly one
    entry per choice block. A stand-in clock returns each timed block's parameter count, which
    is additive over the network, so the 'predicted latency' of a subnet must equal its real
    parameter count: a wrong block, width, stride, SE flag or lookup index breaks the sum.
    (How well the real timings rank subnets: bench/bench_latency.py prints the Spearman rank
    correlation over 10 random subnets.)"""
    from oneshot_nas.search import latency
    from oneshot_nas.models import ShuffleNasOneShotFix

    def param_clock(block, shape, ctx, warmup=5, repeats=20):
        block(nd.zeros(shape, ctx=ctx))
        return float(sum(p.data().size for p in block.collect_params().values()))
    monkeypatch.setattr(latency, "time_block", param_clock)
    cfg = dict(use_se=True, last_conv_after_pooling=True)
    table = latency.LatencyTable.measure(input_size=32, classes=10, progress=False, **cfg)
    assert table.blocks_ms.shape == (20, 4, 10)
    rng = np.random.default_rng(0)
    for arch in [Architecture.largest(), Architecture.smallest()] + \
            [Architecture.sample(rng) for _ in range(3)]:
        net = ShuffleNasOneShotFix(arch, classes=10, **cfg)
        net.initialize()
        net(nd.zeros((1, 3, 32, 32)))
        size = sum(p.data().size for p in net.collect_params().values())
        assert table.predict(arch) == size, arch
    # a wider channel choice costs more in every position and block type
    assert (np.diff(table.blocks_ms, axis=2) > 0).all()
    # the prediction picks entry [i, block_i, channel_i] of the table, nothing else
    probe = latency.LatencyTable(table.config, 1000.0, 2000.0,
                                 np.arange(800, dtype=float).reshape(20, 4, 10), "probe")
    arch = Architecture.sample(rng)
    expected = 3000.0 + sum(40 * i + 10 * b + c
                            for i, (b, c) in enumerate(zip(arch.blocks, arch.channels)))
    assert probe.predict(arch) == expected
    # saved and loaded tables predict the same, a table for another model is refused
    path = str(tmp_path / "lat.json")
    table.save(path)
    again = latency.LatencyTable.load(path, expected_config={"channels_layout": "OneShot"})
    assert again.predict(arch) == table.predict(arch)
    with pytest.raises(ValueError, match="measured for use_se=True"):
        latency.LatencyTable.load(path, expected_config={"use_se": False})
    # the real clock: check_latency_table times the subnets it is given
    monkeypatch.undo()
    small = latency.LatencyTable(table.config, 0.0, 0.0, np.zeros((20, 4, 10)), "zeros")
    rows = latency.check_latency_table(small, n=2, warmup=1, repeats=2)
    assert [r[1] for r in rows] == [0.0, 0.0] and all(r[2] > 0 for r in rows)


def test_topk_hits_and_cross_entropy_count_as_the_definitions_say():
    from oneshot_nas.accuracy import cross_entropy, topk_hits
    scores = np.array([[0.1, 0.9, 0.0, 0.0, 0.0, 0.0, -1.0],      # top-1: class 1
                       [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0],       # label 4 is 5th: top-5 only
                       [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])      # label 6 is last: no hit
    labels = np.array([1, 4, 6])
    predicted, hit1, hit5 = topk_hits(scores, labels)
    assert predicted.tolist() == [1, 0, 0]
    assert hit1.tolist() == [True, False, False] and hit5.tolist() == [True, True, False]
    expected = [np.log(np.exp(row).sum()) - row[y] for row, y in zip(scores, labels)]
    np.testing.assert_allclose(cross_entropy(scores, labels), expected, rtol=1e-12)


def test_loss_score_orders_candidates_by_held_out_loss_and_keeps_the_objective_positive():
    c = Constraints.build("SinglePathOneShot")
    by_loss = Objective(constraints=c, score="loss")
    better, worse = {"top1": 0.70, "loss": 0.40}, {"top1": 0.72, "loss": 0.55}
    assert by_loss.quality(better) == pytest.approx(math.exp(-0.40))
    assert by_loss.quality(better) > by_loss.quality(worse)          # top-1 alone says otherwise
    assert Objective(constraints=c).quality(better) < Objective(constraints=c).quality(worse)
    # the latency reward multiplies the quality: it must still favour the faster net
    soft = Objective(latency_fn=lambda a: 0, target_latency=10.0, score="loss")
    q = soft.quality(better)
    assert soft(q, 0, 0, latency=5.0) > soft(q, 0, 0, latency=20.0)
    assert by_loss.quality({"top1": 0.1, "loss": float("nan")}) == 0.0     # diverged outputs
    assert by_loss.quality({"top1": 0.1, "loss": float("inf")}) == 0.0
    with pytest.raises(ValueError, match="unknown --search-score 'top5'"):
        Objective(score="top5")
    with pytest.raises(ValueError, match="needs each candidate's held-out loss"):
        by_loss.quality({"top1": 0.7, "top5": 1.0})


def test_genetic_search_by_loss_maximises_the_loss_score():
    def fake_scores(arch):
        res = fake_accuracy(arch)
        return dict(res, loss=2.0 - 2.0 * res["top1"])           # lower loss for better nets
    constraints = Constraints(max_flops=950)
    by_loss = Objective(constraints=constraints, score="loss")
    state = genetic_search(SearchState("genetic", 0), fake_scores, proxy_counter, constraints,
                           by_loss, population_size=20, retain_length=5, generations=4)
    fitness = {a: r["fitness"] for a, r in state.results.items()}
    best = max(fitness, key=fitness.get)
    assert state.results[best]["loss"] == min(r["loss"] for r in state.results.values())
    assert all(r["fitness"] == pytest.approx(math.exp(-r["loss"])) for r in state.results.values())
