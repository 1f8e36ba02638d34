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

    def images(n, with_labels=False):
        cls = mx.nd.array(rng.randint(0, 10, n))
        x = prototypes[cls] + 0.1 * mx.nd.array(rng.normal(0, 1, (n, 3, size, size)))
        return (x, cls.asnumpy().astype(np.int64)) if with_labels else x

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
    with pytest.raises(DeployError, match="params file .* does not fit the subnet: parameter "):
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
    batches, labels, fp32_pred = [], [], []
    for _ in range(2):
        x, y = images(16, with_labels=True)
        batches.append((x, mx.nd.array(y)))                 # labels = the prototype classes
        labels.append(y)
        fp32_pred.append(net(x).argmax(axis=1).asnumpy().astype(np.int64))
    labels, fp32_pred = np.concatenate(labels), np.concatenate(fp32_pred)
    graphs = {"fp32": graph, "int8": quantize_graph(*graph, "naive", calib)}
    results = evaluate_variants(graphs, 32, batches, speed=True, batch_size=4, repeats=1,
                                min_seconds=0.01)
    by_name = {r.name: r for r in results}
    fp32 = by_name["fp32"]
    assert fp32.num_images == 32 and fp32.predictions == fp32_pred.tolist()
    assert fp32.top1 == pytest.approx((fp32_pred == labels).mean()) and fp32.top1 >= 0.9
    assert by_name["fp32-folded"].agreement == 1.0
    assert by_name["fp32-fused"].agreement == 1.0
    assert by_name["float16"].note == "n/a (needs GPU)"
    int8 = by_name["int8"]
    assert int8.agreement == pytest.approx((np.array(int8.predictions) == fp32_pred).mean())
    assert int8.agreement >= 0.9
    assert int8.top1 == pytest.approx((np.array(int8.predictions) == labels).mean())
    assert all(by_name[n].throughput and by_name[n].latency_ms
               for n in ("fp32", "fp32-fused", "fp32-folded", "int8"))
    table = results_table(results, 4, {"float32": {"score": 1.03}, "float16": {"score": 0.64},
                                       "int8": {"score": 0.28}})
    lines = table.splitlines()
    assert len(lines) == 2 + 5 and all(l.count("|") == lines[0].count("|") for l in lines)
    assert "n/a (needs GPU)" in table and "0.280" in table


class _SleepyBlock:
    """Stands in for a network: every forward pass takes ``seconds``."""

    def __init__(self, seconds):
        self.seconds, self.calls = seconds, 0

    def __call__(self, data):
        import time
        self.calls += 1
        time.sleep(self.seconds)
        return mx.nd.zeros((data.shape[0], 10))


def test_throughput_and_latency_measure_the_forward_time():
    from oneshot_nas.deploy.evaluate import measure_latency, measure_throughput
    block = _SleepyBlock(0.02)
    ips = measure_throughput(block, 8, batch_size=4, repeats=3, min_seconds=0.05)
    # 4 images per forward of at least 20 ms; the overhead on a loaded machine is allowed to
    # be large, never to make the figure faster than the forward time allows
    assert 4 / 0.2 <= ips <= 4 / 0.02
    # warm-up, then every round repeats the forward until >= 50 ms have passed (3 forwards
    # of 20 ms on a quiet machine; at least one when a loaded machine stretches them)
    assert block.calls >= 2 + 3
    ms = measure_latency(_SleepyBlock(0.03), 8, repeats=3, min_seconds=0.05)
    assert 30 <= ms <= 300


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


def _write_images(folder, tensors, mean, std, crop_ratio=0.875):
    """Save normalised CHW images as PNG files that the validation pipeline turns back into
    them: pixels (rounded), padded to the pre-crop size, then each pixel doubled in both
    directions (so that the bilinear resize back to the pre-crop size is exact)."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    size = tensors.shape[-1]
    resized = int(np.ceil(size / crop_ratio))
    lo = (resized - size) // 2
    paths = []
    for i, x in enumerate(tensors.asnumpy()):
        pixels = x.transpose(1, 2, 0) * np.array(std) + np.array(mean)
        canvas = np.full((resized, resized, 3), 128.0)
        canvas[lo:lo + size, lo:lo + size] = pixels
        canvas = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
        path = os.path.join(folder, "img%02d.png" % i)
        Image.fromarray(canvas.repeat(2, axis=0).repeat(2, axis=1)).save(path)
        paths.append(path)
    return paths


def _bilinear(pixels, out_h, out_w):
    """Bilinear resize with pixel centres aligned (OpenCV's INTER_LINEAR, no antialiasing)."""
    def axis(n_in, n_out):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, pos - lo
    r0, r1, fr = axis(pixels.shape[0], out_h)
    c0, c1, fc = axis(pixels.shape[1], out_w)
    rows = pixels[r0] * (1 - fr)[:, None, None] + pixels[r1] * fr[:, None, None]
    return rows[:, c0] * (1 - fc)[None, :, None] + rows[:, c1] * fc[None, :, None]


def _reference_preprocess(path, size, mean, std, crop_ratio=0.875):
    """The validation transform written out with PIL (decoding) and numpy: shorter side to
    ceil(size / crop_ratio), centre crop, scale to 0..1, normalise, CHW."""
    from PIL import Image
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    resized = int(np.ceil(size / crop_ratio))
    h, w = pixels.shape[:2]
    scale = resized / min(w, h)
    pixels = _bilinear(pixels, int(round(h * scale)), int(round(w * scale)))
    top, left = (pixels.shape[0] - size) // 2, (pixels.shape[1] - size) // 2
    pixels = pixels[top:top + size, left:left + size]
    return ((pixels / 255.0 - np.array(mean) / 255.0) / (np.array(std) / 255.0)).transpose(2, 0, 1)


def test_quantize_and_predict_clis(capsys, tmp_path):
    """A subnet with separable classes (fixed weights): quantize it with the CLI, then predict
    PNG files of known class with the float32 and the int8 model."""
    rng = np.random.RandomState(5)
    net, images = _variance_preserving_subnet("OneShot", rng, 32)
    params = str(tmp_path / "oneshot.params")
    net.save_parameters(params)
    out = str(tmp_path / "out")
    rc = quantize_cli.main(["--model", "OneShot", "--params", params, "--classes", "10",
                            "--dataset", "synthetic", "--input-size", "32", "--batch-size", "8",
                            "--num-calib-batches", "2", "--output-dir", out, "--no-progress"])
    assert rc == 0
    capsys.readouterr()
    for name in ("OneShot", "OneShot-fused", "OneShot-folded", "OneShot-quantized-naive"):
        assert os.path.isfile(os.path.join(out, name + "-symbol.json"))
        assert os.path.isfile(os.path.join(out, name + "-0000.params"))
        assert os.path.isfile(os.path.join(out, name + "-deploy.json"))
    from oneshot_nas.deploy import read_meta
    meta = read_meta(os.path.join(out, "OneShot"))
    assert meta["input_size"] == 32 and meta["style"] == "imagenet"
    # synthetic data is not normalised (mean 0, std 1): pass ImageNet's statistics instead
    assert meta["mean"] == [0, 0, 0] and meta["std"] == [1, 1, 1]
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    norm = ["--mean", ",".join(map(str, mean)), "--std", ",".join(map(str, std))]
    tensors, labels = images(24, with_labels=True)
    paths = _write_images(str(tmp_path / "imgs"), tensors, mean, std)
    synset = tmp_path / "synset.txt"
    synset.write_text("\n".join("class%d" % i for i in range(10)))

    # the independent reference: PIL + numpy preprocessing, the in-memory float32 network
    reference = np.stack([_reference_preprocess(p, 32, mean, std) for p in paths])
    np.testing.assert_allclose(reference, tensors.asnumpy(), atol=0.02)   # pixel rounding
    ref_probs = mx.nd.softmax(net(mx.nd.array(reference)), axis=1).asnumpy()
    ref_top1 = ref_probs.argmax(axis=1)
    assert (ref_top1 == labels).mean() >= 0.9 and len(set(labels.tolist())) >= 5

    predicted = {}
    for name in ("OneShot", "OneShot-quantized-naive"):
        prefix = os.path.join(out, name)
        assert predict_cli.main(["--model-prefix", prefix, "--synset", str(synset), *norm,
                                 str(tmp_path / "imgs")]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == len(paths) and lines[0].startswith(paths[0] + ": class")
        assert all(line.count("(") == 5 for line in lines)
        text_top1 = [int(line.split(": class")[1].split(" (")[0]) for line in lines]
        assert predict_cli.main(["--model-prefix", prefix, "--json", "--topk", "10", *norm,
                                 str(tmp_path / "imgs")]) == 0
        rows = [json.loads(l) for l in capsys.readouterr().out.strip().splitlines()]
        assert [r["image"] for r in rows] == paths
        probs = np.zeros((len(rows), 10))
        for i, row in enumerate(rows):
            p = [t["prob"] for t in row["top"]]
            assert p == sorted(p, reverse=True) and sum(p) == pytest.approx(1.0, abs=1e-4)
            for t in row["top"]:
                probs[i, t["class"]] = t["prob"]
        assert probs.argmax(axis=1).tolist() == text_top1
        predicted[name] = probs
    # float32: the CLI's probabilities are the reference's
    np.testing.assert_allclose(predicted["OneShot"], ref_probs, atol=2e-3)
    # int8: the same classes for (almost) every image, and as accurate
    int8_top1 = predicted["OneShot-quantized-naive"].argmax(axis=1)
    assert (int8_top1 == ref_top1).mean() >= 0.9
    assert (int8_top1 == labels).mean() >= (ref_top1 == labels).mean() - 0.1


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
def test_trained_digits_subnet_int8_within_two_points(tmp_path):
    """Train OneShot-S+ at 32 px on digits (10 epochs), then int8 with naive and entropy
    calibration loses at most 2 points of top-1 (7 of the 359 validation images) and BN
    folding changes no prediction; a graph calibrated on blank images, a broken quantization,
    fails that bound.

    The bound comes from the measured drops. Run alone (bench/int8_drop_distribution.py,
    docs/int8_drop_distribution.json: 12 training seeds, seed 0 twice with identical figures),
    naive calibration lost at most 1 image (0.28 points) and entropy at most 3 (0.84 points,
    seed 7). Inside the CI suite two of nine runs lost 4 and 5 images with entropy (1.11 and
    1.39 points, fp32 at 97.2 %, lower than any run alone): the old 1-point bound failed by
    chance. 2 points is 2 images above the worst drop seen; blank calibration loses far more."""
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
    # the regression the bound must catch: thresholds taken from blank images
    blank, _ = calibration_iter([mx.nd.zeros((32, 3, 32, 32))] * 10, 10)
    graphs["int8-blank"] = quantize_graph(*graph, calib_mode="naive", calib_data=blank)
    results = {r.name: r for r in evaluate_variants(
        graphs, 32, val_data, speed=False,
        variants=("fp32", "fp32-folded", "int8-naive", "int8-entropy", "int8-blank"))}
    fp32 = results["fp32"].top1
    assert fp32 > 0.9
    assert results["fp32-folded"].predictions == results["fp32"].predictions
    for mode in ("naive", "entropy"):
        assert results["int8-" + mode].top1 >= fp32 - 0.02, (mode, results)
    assert results["int8-blank"].top1 < fp32 - 0.02, results
