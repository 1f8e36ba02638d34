"""Architecture samplers: determinism, warm-up ranges, constraint boxes, strolling coverage."""
import numpy as np
import pytest

from oneshot_nas.search_space import block_layout
from oneshot_nas.training.samplers import (ConstrainedRandomSampler, ConstraintBox,
                                           FlopsBinSampler, Prefetcher,
                                           StrollingEvolutionSampler, UniformSampler,
                                           make_sampler, parse_constraint)

_OUT = np.array([out_c for _, _, out_c, _ in block_layout("OneShot")])


def proxy_counter(blocks, channels):
    """A monotone stand-in for the lookup table: cost grows with width and block kernel."""
    scale = np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0])[channels]
    kernel = np.array([1.0, 1.2, 1.5, 1.8])[blocks]
    flops = (scale * kernel * _OUT).sum(axis=1) / 10.0
    params = (scale * _OUT ** 1.5).sum(axis=1) / 1e4
    return flops, params


def _take(stream, n):
    return [next(stream) for _ in range(n)]


def test_parse_constraint_and_errors():
    assert parse_constraint("flops-330-params-5.0") == (330.0, 5.0)
    with pytest.raises(ValueError, match="flops-<MFLOPs>-params-<M params>"):
        parse_constraint("330-5")
    with pytest.raises(ValueError, match="lies above"):
        ConstraintBox.from_strings("flops-100-params-1", "flops-200-params-2")


def test_streams_are_deterministic_per_seed_and_epoch():
    a = _take(UniformSampler(seed=3).stream(5), 20)
    b = _take(UniformSampler(seed=3).stream(5), 20)
    c = _take(UniformSampler(seed=3).stream(6), 20)
    assert a == b and a != c


def test_warm_up_ranges():
    s = UniformSampler(epoch_start_cs=10, cs_warm_up=True)
    assert {c for a in _take(s.stream(3), 50) for c in a.channels} == {9}
    assert {c for a in _take(s.stream(10), 200) for c in a.channels} == {8, 9}
    assert min(c for a in _take(s.stream(40), 200) for c in a.channels) == 0


def test_constrained_random_stays_in_box():
    box = ConstraintBox(850, 950, 0, 1e9)
    s = ConstrainedRandomSampler(proxy_counter, box, seed=0)
    archs = _take(s.stream(0), 300)
    f, p = proxy_counter(np.array([a.blocks for a in archs]), np.array([a.channels for a in archs]))
    assert box.contains(f, p).all()


def test_impossible_box_fails_clearly():
    s = ConstrainedRandomSampler(proxy_counter, ConstraintBox(1e6, 2e6, 0, 1e9), max_tries=5000)
    with pytest.raises(ValueError, match="no architecture inside the constraint box"):
        next(s.stream(0))
    prefetch = Prefetcher(s.stream(0))
    with pytest.raises(ValueError, match="no architecture inside"):
        prefetch.next()


def test_strolling_evolution_covers_the_box():
    box = ConstraintBox(600, 1200, 0, 1e9)
    archs = _take(StrollingEvolutionSampler(proxy_counter, box, seed=1).stream(0), 300)
    f, p = proxy_counter(np.array([a.blocks for a in archs]), np.array([a.channels for a in archs]))
    assert box.contains(f, p).all()
    bins = np.histogram(f, bins=10, range=(box.flops_min, box.flops_max))[0]
    assert (bins > 0).mean() >= 0.8, bins
    rand = _take(ConstrainedRandomSampler(proxy_counter, box, seed=1).stream(0), 300)
    fr, _ = proxy_counter(np.array([a.blocks for a in rand]), np.array([a.channels for a in rand]))
    # the random sampler clusters in the middle; strolling spreads wider
    assert np.std(f) > np.std(fr)


def _flops(archs):
    return proxy_counter(np.array([a.blocks for a in archs]),
                         np.array([a.channels for a in archs]))[0]


def test_flops_bins_are_sampled_uniformly():
    box = ConstraintBox(600, 1300, 0, 1e9)
    sampler = make_sampler("bins", proxy_counter, box, bins=7, seed=4)
    assert isinstance(sampler, FlopsBinSampler)
    f = _flops(_take(sampler.stream(0), 1400))
    assert box.contains(f, np.zeros_like(f)).all()
    counts = np.histogram(f, bins=sampler.edges())[0]
    # 200 expected per bin; binomial sd 13: uniform over bins, not over architectures
    assert np.abs(counts - 200).max() < 60, counts
    fr = _flops(_take(ConstrainedRandomSampler(proxy_counter, box, seed=4).stream(0), 1400))
    random_counts = np.histogram(fr, bins=sampler.edges())[0]
    assert random_counts.min() < 60 and random_counts.max() > 300, random_counts
    # inside a bin the draw stays uniform: the same mean width as rejection sampling there
    lo, hi = sampler.edges()[3:5]
    archs = _take(make_sampler("bins", proxy_counter, box, bins=7, seed=5).stream(0), 1400)
    mid = [np.mean(a.channels) for a, x in zip(archs, _flops(archs)) if lo <= x < hi]
    rand = _take(ConstrainedRandomSampler(proxy_counter, box, seed=5).stream(0), 3000)
    mid_rand = [np.mean(a.channels) for a, x in zip(rand, _flops(rand)) if lo <= x < hi]
    assert len(mid) > 150 and len(mid_rand) > 500
    assert abs(np.mean(mid) - np.mean(mid_rand)) < 0.15
    assert _take(sampler.stream(0), 30) == _take(
        make_sampler("bins", proxy_counter, box, bins=7, seed=4).stream(0), 30)


def test_flops_bins_out_of_reach_are_left_out(caplog):
    # before channel selection starts every path is at full width: only the top bins exist
    box = ConstraintBox(600, 1700, 0, 1e9)
    sampler = FlopsBinSampler(proxy_counter, box, bins=7, epoch_start_cs=5)
    with caplog.at_level("INFO"):
        f = _flops(_take(sampler.stream(0), 100))
    assert "out of reach of this epoch's channel range" in caplog.text
    assert "600-757" in caplog.text and box.contains(f, np.zeros_like(f)).all()
    assert f.min() >= sampler.edges()[4]        # full width: the top bins only
    with pytest.raises(ValueError, match="no architecture inside the constraint box"):
        next(FlopsBinSampler(proxy_counter, ConstraintBox(1e6, 2e6, 0, 1e9)).stream(0))
    # a box below every full-width path: the full-width epochs draw blocks uniformly
    low = FlopsBinSampler(proxy_counter, ConstraintBox(600, 1300, 0, 1e9), epoch_start_cs=2)
    caplog.clear()
    with caplog.at_level("INFO"):
        warm = _take(low.stream(1), 50)
    assert "uniform blocks until channel selection starts" in caplog.text
    assert warm == _take(UniformSampler(epoch_start_cs=2).stream(1), 50)
    assert low.box.contains(_flops(_take(low.stream(2), 50)), np.zeros(50)).all()


def test_prefetcher_skips_consumed_steps():
    full = _take(UniformSampler(seed=2).stream(1), 10)
    pre = Prefetcher(UniformSampler(seed=2).stream(1), skip=4)
    assert [pre.next() for _ in range(6)] == full[4:]
    pre.close()
