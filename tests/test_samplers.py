"""Architecture samplers: determinism, warm-up ranges, constraint boxes, strolling coverage."""
import numpy as np
import pytest

from oneshot_nas.search_space import block_layout
from oneshot_nas.training.samplers import (ConstrainedRandomSampler, ConstraintBox, Prefetcher,
                                           StrollingEvolutionSampler, UniformSampler,
                                           parse_constraint)

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


def test_prefetcher_skips_consumed_steps():
    full = _take(UniformSampler(seed=2).stream(1), 10)
    pre = Prefetcher(UniformSampler(seed=2).stream(1), skip=4)
    assert [pre.next() for _ in range(6)] == full[4:]
    pre.close()
