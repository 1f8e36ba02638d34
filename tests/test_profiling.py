"""Profiling: the reference figures of docs/design.md (section 5), lookup table == symbolic
count, cache, MicroNet profile."""
import csv
import io
import json
import os

import mxnet as mx
import numpy as np
import pytest

from oneshot_nas import Architecture
from oneshot_nas.models.zoo import PRESETS
from oneshot_nas.profiling import (FlopsCounter, LookupTable, build_symbol, count_flops_params,
                                   count_symbol, micronet_profile, parse_data_shapes)
from oneshot_nas.profiling.lookup_table import CACHE_ENV, default_cache_dir

# docs/design.md, section 5: (preset, layout) -> (MFLOPs, MFLOPs incl. ReLU+BN, params)
REFERENCE_ROWS = [
    ("OneShot", "OneShot", 327.91, 344.98, 3433579),
    ("OneShot", "ShuffleNetV2+", 218.70, 232.17, 2692590),
    ("OneShot+", "OneShot", 297.06, 312.22, 3742955),
    ("OneShot-S+", "OneShot", 291.48, 307.89, 3541829),
    ("OneShot-S+", "ShuffleNetV2+", 189.27, 202.11, 2755117),
]
CONFIGS = {
    "no SE": dict(),
    "SE + last conv after pooling": dict(use_se=True, last_conv_after_pooling=True),
    "ShuffleNetV2+ layout": dict(channels_layout="ShuffleNetV2+"),
}


def preset(name, layout):
    (blocks, channels), defaults = PRESETS[name]
    return Architecture.parse(blocks, channels), dict(defaults, channels_layout=layout)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("lut_cache"))


@pytest.fixture(scope="module")
def tables(cache_dir):
    return {name: LookupTable.load_or_build(cache_dir=cache_dir, progress=False, **cfg)
            for name, cfg in CONFIGS.items()}


# ---- symbolic counter -------------------------------------------------------------------------
@pytest.mark.parametrize("name,layout,mflops,mflops_rb,params", REFERENCE_ROWS)
def test_symbolic_count_matches_spec(name, layout, mflops, mflops_rb, params):
    arch, config = preset(name, layout)
    sym = build_symbol(arch, **config)
    plain = count_symbol(sym, relu_bn=False)
    full = count_symbol(sym, relu_bn=True)
    # docs/design.md gives both totals to 0.01 M: they must round to its figures
    assert round(plain.mflops, 2) == mflops, plain.mflops
    assert plain.params == params == full.params
    assert round(full.mflops, 2) == mflops_rb, full.mflops
    assert sum(l.flops for l in full.layers) == full.flops


def test_shape_inference_runs_once_for_the_whole_graph(monkeypatch):
    calls = []
    original = mx.sym.Symbol.infer_shape

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)
    monkeypatch.setattr(mx.sym.Symbol, "infer_shape", counting)
    arch, config = preset("OneShot-S+", "OneShot")
    count_symbol(build_symbol(arch, **config), "data,1,3,224,224")
    assert len(calls) == 1


def test_counts_are_per_image():
    arch, config = preset("OneShot", "OneShot")
    sym = build_symbol(arch, **config)
    one = count_symbol(sym, {"data": (1, 3, 224, 224)})
    four = count_symbol(sym, {"data": (4, 3, 224, 224)})
    assert (one.flops, one.params) == (four.flops, four.params)


def test_counting_rules_on_a_small_graph():
    data = mx.sym.var("data")
    x = mx.sym.Convolution(data, num_filter=8, kernel=(3, 3), pad=(1, 1), name="c1")  # bias
    x = mx.sym.BatchNorm(x, name="bn")
    x = mx.sym.Activation(x, act_type="relu", name="r")
    x = mx.sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max", name="p")
    x = mx.sym.Pooling(x, global_pool=True, kernel=(1, 1), pool_type="avg", name="gap")
    x = mx.sym.FullyConnected(x, num_hidden=5, name="fc")
    plain = count_symbol(x, {"data": (1, 3, 8, 8)}, relu_bn=False)
    conv = 8 * 8 * (8 * 3 * 3 * 3) + 8 * 8 * 8
    pool = 8 * 4 * 4 * 4
    gap = 8 * 4 * 4
    fc = 5 * 8 + 5
    assert plain.flops == conv + pool + gap + fc
    full = count_symbol(x, {"data": (1, 3, 8, 8)}, relu_bn=True)
    assert full.flops == plain.flops + 8 * 8 * 8 + 3 * 8 * 8 * 8
    # weights + biases + gamma + beta; BN running statistics are not parameters
    assert plain.params == 8 * 27 + 8 + 8 + 8 + 5 * 8 + 5


def test_parse_data_shapes():
    assert parse_data_shapes("data,1,3,224,224") == {"data": (1, 3, 224, 224)}
    assert parse_data_shapes(["a,1,2", "b,3"]) == {"a": (1, 2), "b": (3,)}
    assert parse_data_shapes("a,1,2;b,3") == {"a": (1, 2), "b": (3,)}
    for bad in ("data", "data,1,x", "1,3,224", "data,0,3", ""):
        with pytest.raises(ValueError):
            parse_data_shapes(bad)


def test_missing_input_is_reported_with_the_real_inputs():
    arch, config = preset("OneShot", "OneShot")
    with pytest.raises(ValueError, match="no input named 'image'.*data"):
        count_symbol(build_symbol(arch, **config), {"image": (1, 3, 224, 224)})


# ---- lookup table -----------------------------------------------------------------------------
def check_table_against_symbol(table, config, n, seed):
    rng = np.random.default_rng(seed)
    archs = [Architecture.sample(rng) for _ in range(n)]
    for arch in archs:
        count = count_symbol(build_symbol(arch, **config), relu_bn=False)
        mflops, mparams = table.flops_params(arch)
        assert abs(mflops - count.mflops) < 1e-6
        assert round(mparams * 1e6) == count.params
    # the counts including ReLU and BN come from the same table
    for arch in archs[:3]:
        count = count_symbol(build_symbol(arch, **config), relu_bn=True)
        assert abs(table.flops_params(arch, relu_bn=True)[0] - count.mflops) < 1e-6


@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_lookup_table_equals_symbolic_count(tables, config_name):
    check_table_against_symbol(tables[config_name], CONFIGS[config_name], 30, seed=11)


@pytest.mark.slow
@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_lookup_table_equals_symbolic_count_for_200_architectures(tables, config_name):
    check_table_against_symbol(tables[config_name], CONFIGS[config_name], 200, seed=2024)


def test_lookup_table_reproduces_spec_rows(cache_dir):
    for name, layout, mflops, mflops_rb, params in REFERENCE_ROWS:
        arch, config = preset(name, layout)
        table = LookupTable.load_or_build(cache_dir=cache_dir, progress=False, **config)
        f, p = table.flops_params(arch)
        assert round(f, 2) == mflops and round(p * 1e6) == params
        assert round(table.flops_params(arch, relu_bn=True)[0], 2) == mflops_rb


def test_vectorised_lookup_equals_single_lookups(tables):
    table = tables["SE + last conv after pooling"]
    rng = np.random.default_rng(7)
    blocks = rng.integers(0, 4, (500, 20))
    channels = rng.integers(0, 10, (500, 20))
    flops, params = table.flops_params_many(blocks, channels)
    assert flops.shape == params.shape == (500,)
    for i in range(0, 500, 37):
        f, p = table.flops_params(Architecture(blocks[i], channels[i]))
        assert abs(f - flops[i]) < 1e-9 and abs(p - params[i]) < 1e-12
    with pytest.raises(ValueError, match="shape"):
        table.flops_params_many(blocks[:, :19], channels[:, :19])
    with pytest.raises(ValueError, match="0..9"):
        table.flops_params_many(blocks, channels + 1)


def test_count_flops_params_methods_agree(cache_dir):
    arch = Architecture.sample(np.random.default_rng(5))
    config = dict(channels_layout="ShuffleNetV2+", use_se=True, last_conv_after_pooling=True)
    by_table = count_flops_params(arch, cache_dir=cache_dir, **config)
    by_symbol = count_flops_params(arch, method="symbol", **config)
    assert abs(by_table[0] - by_symbol[0]) < 1e-6 and abs(by_table[1] - by_symbol[1]) < 1e-12
    counter = FlopsCounter.for_model(config, cache_dir=cache_dir)
    assert counter.one(arch) == pytest.approx(by_table, abs=1e-9)
    assert FlopsCounter.for_model(config, method="symbol").one(arch) == \
        pytest.approx(by_symbol, abs=1e-9)
    others = [Architecture.sample(np.random.default_rng(s)) for s in range(3)]
    flops, params = counter(np.array([a.blocks for a in others]),
                            np.array([a.channels for a in others]))
    assert [(f, p) for f, p in zip(flops, params)] == [counter.one(a) for a in others]
    with pytest.raises(ValueError, match="lookup_table"):
        FlopsCounter.for_model(config, method="guess")
    with pytest.raises(ValueError, match="lookup_table"):
        count_flops_params(arch, method="guess")
    with pytest.raises(TypeError, match="norm_layer"):
        count_flops_params(arch, norm_layer=None)


# ---- cache ------------------------------------------------------------------------------------
def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert default_cache_dir() == str(tmp_path / "c")
    path = LookupTable.cache_path(channels_layout="OneShot")
    assert path.startswith(str(tmp_path / "c"))
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_cache_dir() == str(tmp_path / "home" / ".cache" / "oneshot_nas")


def test_cache_is_keyed_by_configuration():
    paths = {LookupTable.cache_path("/c", **cfg) for cfg in (
        dict(), dict(use_se=True), dict(last_conv_after_pooling=True), dict(input_size=192),
        dict(classes=10), dict(channels_layout="ShuffleNetV2+"))}
    assert len(paths) == 6


def test_cached_table_is_reused_and_bad_files_are_rebuilt(monkeypatch, tmp_path, tables):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    good = tables["no SE"]
    path = LookupTable.cache_path(**good.config)
    assert path.startswith(str(tmp_path))
    good.save(path)
    builds = []
    by_config = {tuple(sorted(t.config.items())): t for t in tables.values()}

    def counting_build(cls, progress=True, **kwargs):
        # Building is tested above; here only whether load_or_build decides to rebuild.
        builds.append(kwargs)
        return by_config[tuple(sorted(kwargs.items()))]
    monkeypatch.setattr(LookupTable, "build", classmethod(counting_build))
    arch = Architecture.sample(np.random.default_rng(1))

    table = LookupTable.load_or_build(progress=False)
    assert builds == [] and table.flops_params(arch) == good.flops_params(arch)

    with open(path, "w") as f:          # corrupt (truncated) file
        f.write(json.dumps(good.to_dict())[:100])
    table = LookupTable.load_or_build(progress=False)
    assert len(builds) == 1 and table.flops_params(arch) == good.flops_params(arch)
    LookupTable.load(path)              # rewritten with a valid table

    other = tables["SE + last conv after pooling"]
    other.save(path)                    # a table of another configuration under this name
    table = LookupTable.load_or_build(progress=False)
    assert len(builds) == 2 and table.config == good.config
    assert table.flops_params(arch) == good.flops_params(arch)

    obj = good.to_dict()
    obj["fingerprint"] = "stale"        # built for another search space / version
    with open(path, "w") as f:
        json.dump(obj, f)
    LookupTable.load_or_build(progress=False)
    assert len(builds) == 3
    assert not [n for n in os.listdir(os.path.dirname(path)) if n.startswith(".lut-")]


# ---- MicroNet ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def oneshot_s_plus_profile():
    arch, config = preset("OneShot-S+", "OneShot")
    return micronet_profile(build_symbol(arch, **config))


def test_micronet_totals_match_reference(oneshot_s_plus_profile):
    """Every total rounds to the reference figure at the precision the reference gives it
    (params to 0.001 M, multiplies / adds to 0.1 M; no_quant adds to 0.001 M)."""
    t = oneshot_s_plus_profile.totals()
    params, mults, adds = t["total"]
    assert (round(params, 3), round(mults, 1), round(adds, 1)) == (3.652, 301.4, 288.3), t
    assert round(t["quant"][0], 3) == 3.520 and round(t["no_quant"][0], 3) == 0.132, t
    assert round(t["quant"][1], 1) == 292.8 and round(t["no_quant"][2], 3) == 2.105, t
    # quantizable + not quantizable = total, per column
    for q, nq, total in zip(t["quant"], t["no_quant"], t["total"]):
        assert q + nq == pytest.approx(total, abs=1e-9)
    # the reference's 589.6 MFLOPs is its rounded 301.4 + 288.3 (= 589.7) less rounding:
    # within 0.1
    assert abs((mults + adds) - 589.6) <= 0.11, mults + adds


def test_micronet_scores_match_reference(oneshot_s_plus_profile):
    s = oneshot_s_plus_profile.scores()
    assert round(s["float32"]["score"], 2) == 1.03
    assert round(s["float16"]["score"], 2) == 0.64
    assert round(s["int8"]["score"], 2) == 0.28
    assert round(s["float32"]["param"], 3) == 0.529 and round(s["float32"]["flop"], 3) == 0.504


def test_micronet_rows_follow_the_reference_table(oneshot_s_plus_profile):
    rows = oneshot_s_plus_profile.rows
    labels = [r.label for r in rows]
    assert labels[:2] == ["First conv", "HSwish"]
    assert labels[-4:] == ["GAP", "Last conv", "HSwish", "Classifier"]
    blocks = rows[2:-4]
    assert [b.label for b in blocks] == [
        "SNB-3x3", "SNB-3x3", "SNB-3x3", "SNB-5x5", "SNB-3x3", "SNB-3x3", "SNB-5x5", "SNB-3x3",
        "SXB-3x3", "SNB-7x7", "SNB-3x3", "SNB-5x5", "SNB-7x7", "SNB-7x7", "SNB-5x5", "SNB-7x7",
        "SNB-3x3", "SNB-3x3", "SNB-7x7", "SNB-3x3"]
    assert [(b.inp_size, b.cin, b.cout) for b in blocks[:5]] == [
        (112, 16, 64), (56, 64, 64), (56, 64, 64), (56, 64, 64), (56, 64, 160)]
    first = rows[0]                       # the reference: 5.419 / 5.218
    assert (first.mults, first.adds, first.quantizable) == (5419008, 5218304, True)
    # stage 0 without SE: the reference's 12.136 / 11.255 (block 2), 16.389 / 15.451 (block 4)
    assert round(blocks[1].mults / 1e6, 3) == 12.136 and round(blocks[1].adds / 1e6, 3) == 11.255
    assert round(blocks[3].mults / 1e6, 3) == 16.389 and round(blocks[3].adds / 1e6, 3) == 15.451
    assert blocks[1].quantizable == "Mixed"
    last, classifier = rows[-3], rows[-1]
    assert round(last.params / 1e6, 3) == 0.656 and round(classifier.params / 1e6, 3) == 1.025
    assert sum(r.mults for r in rows) == sum(o.mults for o in oneshot_s_plus_profile.ops)


def test_micronet_markdown_and_csv(oneshot_s_plus_profile):
    md = oneshot_s_plus_profile.to_markdown()
    assert md.splitlines()[0].startswith("| op_name | quantizable | inp_size")
    assert "| Total | " in md and "| float16 |" in md
    rows = list(csv.reader(io.StringIO(oneshot_s_plus_profile.to_csv())))
    assert rows[0][0] == "op_name" and rows[-1][0] == "Total"
    assert abs(float(rows[-1][6]) - 3.652225) < 1e-6
    detailed = list(csv.reader(io.StringIO(oneshot_s_plus_profile.to_csv(detailed=True))))
    assert len(detailed) > len(rows)


def test_micronet_unfused_hswish_counts_like_the_fused_op():
    data = mx.sym.var("data")
    fused = data * mx.sym.hard_sigmoid(data, alpha=1 / 6, beta=0.5)
    unfused = data * (mx.sym.clip(data + 3.0, 0, 6) / 6.0)   # _plus_scalar, clip, _div_scalar
    a = micronet_profile(fused, {"data": (1, 4, 5, 5)}).totals()["total"]
    b = micronet_profile(unfused, {"data": (1, 4, 5, 5)}).totals()["total"]
    assert a == b == (0.0, 4 * 100 / 1e6, 100 / 1e6)


def test_micronet_se_scale_is_optional():
    arch, config = preset("OneShot-S+", "OneShot")
    sym = build_symbol(arch, **config)
    base = micronet_profile(sym).totals()["no_quant"][1]
    with_se = micronet_profile(sym, count_se_scale=True).totals()["no_quant"][1]
    # 8 SE blocks at 14x14x160 and 4 at 7x7x320
    assert abs((with_se - base) * 1e6 - (8 * 14 * 14 * 160 + 4 * 7 * 7 * 320)) < 1e-3
