"""Deployment: BN folding, MKLDNN int8 quantization, variant evaluation, quantize / predict CLIs."""
import json
import os

import numpy as np
import mxnet as mx
import pytest
from mxnet.gluon import nn

from oneshot_nas.cli import predict as predict_cli
from oneshot_nas.cli import quantize as quantize_cli
from oneshot_nas.deploy import (DeployError, build_subnet, calibration_iter, count_ops,
                                evaluate_variants, first_conv_name, float16_support,
                                fold_batchnorm, fold_net, fuse_graph, graph_block, load_graph,
                                net_to_graph, quantize_graph, results_table, save_graph)
from oneshot_nas.models import get_model


def _randomise_bn(net, rng):
    """Non-trivial BN parameters and statistics, so that folding has something to fold."""
    for name, param in net.collect_params().items():
        shape = param.shape
        if name.endswith("gamma"):
            param.set_data(mx.nd.array(rng.uniform(0.5, 1.5, shape)))
        elif name.endswith("beta") or name.endswith("running_mean"):
            param.set_data(mx.nd.array(rng.normal(0, 0.3, shape)))
        elif name.endswith("running_var"):
            param.set_data(mx.nd.array(rng.uniform(0.3, 2.0, shape)))


def _rel_err(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


# ---- BN folding ---------------------------------------------------------------------------
@pytest.mark.parametrize("model,kwargs", [
    ("OneShot-S+", {}),
    ("OneShot", {"shuffle_method": "conv"}),
    ("OneShot+", {"last_conv_after_pooling": False}),     # BN in the SE tail
])
def test_folded_subnet_equals_original_in_inference(model, kwargs):
    rng = np.random.RandomState(0)
    net = get_model(model, classes=10, **kwargs)
    net.initialize(mx.init.Xavier())
    _randomise_bn(net, rng)
    x = mx.nd.array(rng.uniform(-1, 1, (4, 3, 32, 32)))
    expected = net(x).asnumpy()
    symbol, args, auxs = fold_batchnorm(*net_to_graph(net))
    assert "BatchNorm" not in count_ops(symbol)
    assert auxs == {}
    folded = graph_block(symbol, args, auxs)(x).asnumpy()
    assert _rel_err(folded, expected) <= 1e-4
    # the convenience wrapper gives the same BN-free block
    assert _rel_err(fold_net(net)(x).asnumpy(), expected) <= 1e-4


def test_folding_formula_with_conv_bias_fixed_gamma_and_unfoldable_bn():
    data = mx.sym.var("data")
    conv = mx.sym.Convolution(data, num_filter=4, kernel=(3, 3), pad=(1, 1), name="c1")
    bn1 = mx.sym.BatchNorm(conv, fix_gamma=True, eps=1e-3, name="bn1")        # gamma ignored
    conv2 = mx.sym.Convolution(bn1, num_filter=4, kernel=(1, 1), no_bias=True, name="c2")
    bn2 = mx.sym.BatchNorm(conv2, fix_gamma=False, eps=2e-5, name="bn2")
    pool = mx.sym.Pooling(bn2, kernel=(2, 2), stride=(2, 2), pool_type="avg", name="p")
    bn3 = mx.sym.BatchNorm(pool, fix_gamma=False, name="bn3")                  # not after conv
    out = mx.sym.elemwise_add(bn3, mx.sym.Pooling(conv2, kernel=(2, 2), stride=(2, 2),
                                                  pool_type="max", name="q"))  # conv2 read twice
    rng = np.random.RandomState(1)
    arg_shapes, _, aux_shapes = out.infer_shape(data=(2, 3, 8, 8))
    args = {n: mx.nd.array(rng.uniform(0.5, 1.5, s)) for n, s in
            zip(out.list_arguments(), arg_shapes) if n != "data"}
    auxs = {n: mx.nd.array(rng.uniform(0.5, 1.5, s)) for n, s in
            zip(out.list_auxiliary_states(), aux_shapes)}
    symbol, fargs, fauxs = fold_batchnorm(out, args, auxs)
    # bn1 folds into c1 (which keeps its bias); bn2 stays because c2 is also read by q.
    assert count_ops(symbol)["BatchNorm"] == 2
    assert "bn1_gamma" not in fargs and "c1_bias" in fargs
    x = mx.nd.array(rng.uniform(-1, 1, (2, 3, 8, 8)))
    expected = graph_block(out, args, auxs)(x).asnumpy()
    assert _rel_err(graph_block(symbol, fargs, fauxs)(x).asnumpy(), expected) <= 1e-5


# ---- int8 round trip on random weights ------------------------------------------------------
def _variance_preserving_subnet(model, rng, size):
    """A subnet with random weights whose predictions depend on the input robustly.

    Random BN networks are either chaotic (recalibrated BN amplifies any perturbation) or
    collapse every input to the same output (BN at its initial statistics with the
    Normal(1/fan_in) initialisation), and neither says anything about quantization. Here the
    convolutions get variance-preserving He weights with BN at identity, ten random smooth
    images act as class prototypes and the classifier is the nearest prototype in feature
    space: random weights with the well-separated classes of a trained net.
    """
    net = get_model(model, classes=10)
    net.initialize()
    for name, param in net.collect_params().items():
        shape = param.shape
        if name.endswith("weight"):
            value = rng.normal(0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
        elif name.endswith("gamma") or name.endswith("running_var"):
            value = np.ones(shape)
        else:
            value = np.zeros(shape)
        param.set_data(mx.nd.array(value))
    grid = mx.nd.array(rng.uniform(-1, 1, (10, 3, 4, 4)))
    prototypes = mx.nd.UpSampling(grid, scale=size // 4, sample_type="nearest")

    def images(n):
        cls = mx.nd.array(rng.randint(0, 10, n))
        return prototypes[cls] + 0.1 * mx.nd.array(rng.normal(0, 1, (n, 3, size, size)))

    features = nn.HybridSequential(prefix="")
    features.add(net.stem, net.blocks, net.tail)
    centres = features(prototypes).reshape((10, -1))
    classifier = net.head[1]
    classifier.weight.set_data(centres.reshape(classifier.weight.shape))
    classifier.bias.set_data(-0.5 * (centres ** 2).sum(axis=1))
    return net, images


@pytest.mark.parametrize("model", ["OneShot-S+", "OneShot"])
def test_naive_int8_round_trip_agrees_with_fp32(model):
    rng = np.random.RandomState(0)
    net, images = _variance_preserving_subnet(model, rng, 64)
    calib, count = calibration_iter([images(32), images(32)], 2)
    assert count == 64
    qgraph = quantize_graph(*net_to_graph(net), calib_mode="naive", calib_data=calib)
    x = images(64)
    fp32 = net(x).argmax(axis=1).asnumpy()
    assert len(set(fp32.tolist())) >= 5                     # the inputs are told apart
    int8 = graph_block(*qgraph)(x).argmax(axis=1).asnumpy()
    assert (int8 == fp32).mean() >= 0.9
    ops = count_ops(qgraph[0])
    assert ops.get("_contrib_quantize_v2", 0) > 0
    assert "elemwise_mul" in ops or model == "OneShot"      # hard-swish multiply kept float


def test_entropy_calibration_runs_and_relu_ranges_start_at_zero():
    rng = np.random.RandomState(2)
    net, images = _variance_preserving_subnet("OneShot", rng, 32)
    calib, _ = calibration_iter([images(32)], 1)
    qsym, qargs, qauxs = quantize_graph(*net_to_graph(net), calib_mode="entropy",
                                        calib_data=calib)
    # Without the fix MXNet's int8 entropy graph fails here: a fused conv + ReLU emits uint8
    # while the next convolution expects int8 ("Expect int8 when data_min < 0").
    x = images(16)
    out = graph_block(qsym, qargs, qauxs)(x).asnumpy()
    assert np.isfinite(out).all()
    relu_convs = [n for n in json.loads(qsym.tojson())["nodes"]
                  if n["op"] == "_sg_mkldnn_conv" and "_act_" in n["name"]]
    assert relu_convs and all(float(n["attrs"]["min_calib_range"]) == 0.0 for n in relu_convs)


def test_auto_dtype_failure_is_reported_with_the_fix():
    net = build_subnet("OneShot-S+", classes=10, input_size=32)
    calib, _ = calibration_iter([np.random.uniform(-1, 1, (8, 3, 32, 32))], 1)
    with pytest.raises(DeployError, match="use --quantized-dtype int8"):
        quantize_graph(*net_to_graph(net), calib_mode="naive", calib_data=calib,
                       quantized_dtype="auto", excluded_op_names=())


def test_quantize_graph_rejects_bad_settings():
    graph = net_to_graph(build_subnet("OneShot", classes=10, input_size=32))
    with pytest.raises(DeployError, match="calibration mode 'kl'"):
        quantize_graph(*graph, calib_mode="kl")
    with pytest.raises(DeployError, match="needs calibration data"):
        quantize_graph(*graph, calib_mode="naive")
    with pytest.raises(DeployError, match="quantized dtype"):
        quantize_graph(*graph, calib_mode="none", quantized_dtype="int4")


def test_exclude_first_conv_keeps_it_float():
    net = build_subnet("OneShot", classes=10, input_size=32)
    symbol, args, auxs = net_to_graph(net)
    name = first_conv_name(symbol)
    qsym, _, _ = quantize_graph(symbol, args, auxs, calib_mode="none", exclude_first_conv=True)
    nodes = {n["name"]: n for n in json.loads(qsym.tojson())["nodes"]}
    assert name in nodes and nodes[name]["attrs"].get("quantized") != "true"


def test_fused_graph_matches_and_relu_stays_separate():
    net = build_subnet("OneShot", classes=10, input_size=32)
    symbol, args, auxs = net_to_graph(net)
    x = mx.nd.random.uniform(-1, 1, (2, 3, 32, 32))
    fused = fuse_graph(symbol)
    assert "BatchNorm" not in count_ops(fused) and count_ops(fused)["relu"] > 0
    assert _rel_err(graph_block(fused, args, auxs)(x).asnumpy(),
                    graph_block(symbol, args, auxs)(x).asnumpy()) <= 1e-4
    assert "relu" not in count_ops(fuse_graph(symbol, fuse_relu=True))


# ---- loading, evaluation --------------------------------------------------------------------
def test_build_subnet_errors(tmp_path):
    with pytest.raises(DeployError, match="supernet"):
        build_subnet("ShuffleNas")
    with pytest.raises(DeployError, match="does not exist"):
        build_subnet("OneShot-S+", params_file=str(tmp_path / "missing.params"))
    other = get_model("OneShot", classes=10)
    other.initialize()
    wrong = str(tmp_path / "oneshot.params")
    other.save_parameters(wrong)
    with pytest.raises(DeployError, match="does not match the subnet"):
        build_subnet("OneShot-S+", params_file=wrong)
    # the reshape-trained weights load into the shuffle-by-conv variant; classes inferred
    net = build_subnet("OneShot", params_file=wrong, shuffle_method="conv")
    x = mx.nd.random.uniform(shape=(1, 3, 32, 32))
    assert net(x).shape == (1, 10)
    np.testing.assert_allclose(net(x).asnumpy(), other(x).asnumpy(), rtol=1e-4, atol=1e-6)


def test_save_and_load_graph_round_trip(tmp_path):
    net = build_subnet("OneShot", classes=10, input_size=32)
    graph = net_to_graph(net)
    symbol_file, params_file = save_graph(str(tmp_path / "m"), *graph)
    loaded = load_graph(symbol_file, params_file)
    x = mx.nd.random.uniform(shape=(2, 3, 32, 32))
    np.testing.assert_allclose(graph_block(*loaded)(x).asnumpy(), net(x).asnumpy(),
                               rtol=1e-5, atol=1e-6)


def test_float16_is_reported_not_crashed_on_cpu():
    ok, note = float16_support(mx.cpu())
    assert not ok and note == "n/a (needs GPU)"


def test_evaluate_variants_accuracy_agreement_and_table():
    rng = np.random.RandomState(3)
    net, images = _variance_preserving_subnet("OneShot", rng, 32)
    graph = net_to_graph(net)
    calib, _ = calibration_iter([images(32)], 1)
    batches = []
    for _ in range(2):
        x = images(16)
        batches.append((x, net(x).argmax(axis=1)))          # labels = fp32 predictions
    graphs = {"fp32": graph, "int8": quantize_graph(*graph, "naive", calib)}
    results = evaluate_variants(graphs, 32, batches, speed=True, batch_size=4, repeats=1,
                                min_seconds=0.01)
    by_name = {r.name: r for r in results}
    assert by_name["fp32"].top1 == 1.0 and by_name["fp32"].num_images == 32
    assert by_name["fp32-folded"].agreement == 1.0
    assert by_name["fp32-fused"].agreement == 1.0
    assert by_name["float16"].note == "n/a (needs GPU)"
    assert by_name["int8"].agreement >= 0.9 and by_name["int8"].throughput > 0
    table = results_table(results, 4, {"float32": {"score": 1.03}, "float16": {"score": 0.64},
                                       "int8": {"score": 0.28}})
    lines = table.splitlines()
    assert len(lines) == 2 + 5 and all(l.count("|") == lines[0].count("|") for l in lines)
    assert "n/a (needs GPU)" in table and "0.280" in table


# ---- command lines --------------------------------------------------------------------------
def _one_line_exit_2(capsys, main, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_quantize_cli_bad_input_exits_2_with_one_line(capsys, tmp_path):
    err = _one_line_exit_2(capsys, quantize_cli.main, ["--model", "ShuffleNas", "--params",
                                                       __file__, "--dataset", "synthetic"])
    assert "supernet" in err
    err = _one_line_exit_2(capsys, quantize_cli.main, ["--model", "OneShot-S+", "--params",
                                                       str(tmp_path / "nope.params")])
    assert "nope.params does not exist" in err
    err = _one_line_exit_2(capsys, quantize_cli.main, ["--model", "OneShot-S+", "--params",
                                                       __file__, "--calib-mode", "kl"])
    assert "unsupported --calib-mode 'kl'" in err
    # argparse's own errors are one line too
    _one_line_exit_2(capsys, quantize_cli.main, ["--no-such-flag"])


def _write_images(folder, count, size):
    import cv2
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(4)
    paths = []
    for i in range(count):
        path = os.path.join(folder, "img%d.png" % i)
        cv2.imwrite(path, rng.randint(0, 256, (size + 6, size + 3, 3)).astype(np.uint8))
        paths.append(path)
    return paths


def test_quantize_and_predict_clis(capsys, tmp_path):
    out = str(tmp_path / "out")
    rc = quantize_cli.main(["--model", "OneShot", "--random-weights", "--classes", "10",
                            "--dataset", "synthetic", "--input-size", "32", "--batch-size", "8",
                            "--num-calib-batches", "2", "--output-dir", out, "--no-progress"])
    assert rc == 0
    capsys.readouterr()
    for name in ("OneShot", "OneShot-fused", "OneShot-folded", "OneShot-quantized-naive"):
        assert os.path.isfile(os.path.join(out, name + "-symbol.json"))
        assert os.path.isfile(os.path.join(out, name + "-0000.params"))
        assert os.path.isfile(os.path.join(out, name + "-deploy.json"))
    images = _write_images(str(tmp_path / "imgs"), 3, 32)
    synset = tmp_path / "synset.txt"
    synset.write_text("\n".join("class%d" % i for i in range(10)))

    predictions = {}
    for name in ("OneShot", "OneShot-quantized-naive"):
        prefix = os.path.join(out, name)
        assert predict_cli.main(["--model-prefix", prefix, "--synset", str(synset),
                                 str(tmp_path / "imgs")]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 3 and lines[0].startswith(images[0] + ": class")
        assert all(line.count("(") == 5 for line in lines)
        assert predict_cli.main(["--model-prefix", prefix, "--json", "--topk", "3",
                                 images[1]]) == 0
        row = json.loads(capsys.readouterr().out)
        assert row["image"] == images[1] and len(row["top"]) == 3
        probs = [t["prob"] for t in row["top"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6
        predictions[name] = [line.split(": ")[1].split(" (")[0] for line in lines]
    # same preprocessing: the exported float32 graph gives what the library computes
    from oneshot_nas.deploy import load_model, predict_topk, preprocess, read_meta
    meta = read_meta(os.path.join(out, "OneShot"))
    assert meta["input_size"] == 32 and meta["style"] == "imagenet"
    block = load_model(os.path.join(out, "OneShot-symbol.json"),
                       os.path.join(out, "OneShot-0000.params"))
    top = predict_topk(block, preprocess(images, meta), 1)
    assert ["class%d" % row[0][0] for row in top] == predictions["OneShot"]


def test_predict_cli_bad_input_exits_2(capsys, tmp_path):
    err = _one_line_exit_2(capsys, predict_cli.main, ["--model-prefix", str(tmp_path / "m"),
                                                      str(tmp_path)])
    assert "does not exist" in err
    net = build_subnet("OneShot", classes=10, input_size=32)
    save_graph(str(tmp_path / "m"), *net_to_graph(net))
    err = _one_line_exit_2(capsys, predict_cli.main, ["--model-prefix", str(tmp_path / "m"),
                                                      str(tmp_path / "missing.png")])
    assert "missing.png" in err


# ---- the acceptance run on digits -----------------------------------------------------------
@pytest.mark.slow
def test_trained_digits_subnet_int8_within_one_point(tmp_path):
    """Train OneShot-S+ at 32 px on digits (10 epochs), then int8 with naive and entropy
    calibration loses at most 1 point of top-1 and BN folding changes no prediction."""
    from oneshot_nas.data import make_loaders
    from oneshot_nas.training import train
    from oneshot_nas.training.config import TrainConfig
    cfg = TrainConfig(dataset="digits", model="OneShot-S+", input_size=32, batch_size=64,
                      num_epochs=10, lr=0.2, lr_mode="cosine", no_augment=True,
                      save_dir=str(tmp_path), logging_file=str(tmp_path / "log.txt"),
                      num_workers=2, progress=False)
    train(cfg)
    params = str(tmp_path / "OneShot-S+-final.params")
    net = build_subnet("OneShot-S+", params_file=params, input_size=32)
    graph = net_to_graph(net)
    train_data, val_data, _ = make_loaders(dataset="digits", input_size=32, batch_size=32,
                                           augment=False, num_workers=2)
    graphs = {"fp32": graph}
    for mode in ("naive", "entropy"):
        calib, _ = calibration_iter(train_data, 10)
        graphs["int8-" + mode] = quantize_graph(*graph, calib_mode=mode, calib_data=calib)
    results = {r.name: r for r in evaluate_variants(
        graphs, 32, val_data, variants=("fp32", "fp32-folded", "int8-naive", "int8-entropy"),
        speed=False)}
    fp32 = results["fp32"].top1
    assert fp32 > 0.9
    assert results["fp32-folded"].predictions == results["fp32"].predictions
    for mode in ("naive", "entropy"):
        assert results["int8-" + mode].top1 >= fp32 - 0.01, (mode, results)
