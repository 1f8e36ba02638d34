"""ONNX export checked with onnxruntime: the Reshape translation, every registered fixed model
(both channel layouts, SE on and off, random subnets), BN folding, a trained digits subnet on
real images, the export and predict commands, refusals."""
import json
import os
import subprocess
import sys

import numpy as np
import mxnet as mx
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from oneshot_nas import Architecture                                         # noqa: E402
from oneshot_nas.cli import export_onnx as export_cli                        # noqa: E402
from oneshot_nas.cli import predict as predict_cli                           # noqa: E402
from oneshot_nas.deploy import (SUPERNET_MODELS, DeployError, build_subnet,  # noqa: E402
                                calibration_iter, fold_batchnorm, fuse_graph, graph_block,
                                load_graph, net_to_graph, quantize_graph, save_graph)
from oneshot_nas.deploy.onnx_export import (compare_with_mxnet, export_onnx,  # noqa: E402
                                            onnx_session, relative_difference, reshape_nodes,
                                            run_onnx)
from oneshot_nas.models import list_models                                   # noqa: E402

from test_deploy import _one_line_exit_2                                     # noqa: E402

TOLERANCE = 1e-4
FIXED_MODELS = [m for m in list_models() if m not in SUPERNET_MODELS]


def _randomise(net, rng):
    """Random weights under which the logits depend on the input: variance-preserving (He)
    convolutions, BN near identity but with every statistic and affine parameter distinct
    (a wrong translation of any of them shows), a unit-scale classifier. (The models' own
    initialisation with BN at its initial statistics maps every input to nearly the same
    logits, which would make any comparison vacuous.)"""
    for name, param in net.collect_params().items():
        if isinstance(param, mx.gluon.Constant):         # the shuffle's permutation weight
            continue
        shape = param.shape
        if name.endswith("weight"):
            value = rng.normal(0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
        elif name.endswith("gamma") or name.endswith("running_var"):
            value = rng.uniform(0.8, 1.25, shape)
        else:                                              # beta, running_mean, biases
            value = rng.normal(0, 0.1, shape)
        param.set_data(mx.nd.array(value))


def _export_and_compare(net, path, rng, **kwargs):
    net.hybridize(static_alloc=True, static_shape=True)
    graph = net_to_graph(net)
    model = export_onnx(*graph, str(path), input_size=32, **kwargs)
    rows = compare_with_mxnet(onnx_session(str(path)), graph_block(*graph), batch_sizes=(1, 7),
                              input_sizes=(32, 64), seed=int(rng.randint(1000)))
    return model, rows, graph


# ---- the Reshape translation on its own -----------------------------------------------------
@pytest.mark.parametrize("spec,shape", [
    ((0, -4, 2, -1, -2), (3, 8, 5, 4)),         # the shuffle's split
    ((0, -3, -2), (3, 4, 2, 5, 4)),             # the shuffle's merge
    ((0, -4, -1, 4, 0, 0), (2, 8, 3, 5)),
    ((-3, -1), (2, 3, 4, 5)),
    ((0, 0, -3), (2, 3, 4, 5)),
    ((-4, 2, -1, -2), (6, 3, 2)),
    ((2, -1, 0), (4, 3, 5)),                    # 0 copies the dimension at its own position
    ((-2,), (2, 3, 4)),
    ((0, 6, -1), (2, 3, 4, 5)),
])
def test_reshape_translation_equals_mxnet(spec, shape):
    from onnx import TensorProto, helper
    initializer = []
    nodes = reshape_nodes("r", "x", list(spec), initializer)
    expected = mx.nd.arange(int(np.prod(shape))).reshape(shape).reshape(spec).asnumpy()
    graph = helper.make_graph(
        nodes, "reshape", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                         [None] * len(shape))],
        [helper.make_tensor_value_info("r", TensorProto.FLOAT, [None] * expected.ndim)],
        initializer)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    got = session.run(None, {"x": x})[0]
    assert got.shape == expected.shape and np.array_equal(got, expected)


# ---- every registered fixed model ------------------------------------------------------------
CASES = [(model, layout, se) for model in FIXED_MODELS for layout in ("OneShot", "ShuffleNetV2+")
         for se in (False, True)]


@pytest.mark.parametrize("model,layout,use_se", CASES)
def test_fixed_models_match_mxnet(model, layout, use_se, tmp_path):
    rng = np.random.RandomState(len(model) * 7 + int(use_se) + 2 * (layout == "OneShot"))
    kwargs = dict(channels_layout=layout, use_se=use_se, classes=10, input_size=32)
    if model == "ShuffleNas_fixArch":       # a random subnet
        arch = Architecture.sample(rng)
        kwargs.update(block_choices=arch.block_string(), channel_choices=arch.channel_string(),
                      last_conv_after_pooling=bool(rng.randint(2)))
        net = build_subnet(**kwargs)
    else:
        net = build_subnet(model, **kwargs)
    _randomise(net, rng)
    model_proto, rows, _ = _export_and_compare(net, tmp_path / "m.onnx", rng)
    assert [(r["batch"], r["size"]) for r in rows] == [(1, 32), (7, 32), (1, 64), (7, 64)]
    assert max(r["relative"] for r in rows) <= TOLERANCE, rows
    assert all(r["top1_agree"] == 1.0 for r in rows), rows
    # the file as written passes the checker; weights are initializers, not inputs
    loaded = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(loaded, full_check=True)
    assert [i.name for i in loaded.graph.input] == ["data"]
    assert [o.version for o in loaded.opset_import] == [13]
    dims = loaded.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]
    # one output named plainly, its class count static, also after strict shape inference
    inferred = onnx.shape_inference.infer_shapes(loaded, strict_mode=True)
    for graph in (loaded.graph, inferred.graph):
        assert [o.name for o in graph.output] == ["logits"]
        dims = graph.output[0].type.tensor_type.shape.dim
        assert [d.dim_param or d.dim_value for d in dims] == ["batch", 10]


@pytest.mark.parametrize("seed", [11])     # the matrix above holds four more random subnets
def test_random_subnet_matches_mxnet_and_depends_on_its_input(seed, tmp_path):
    rng = np.random.RandomState(seed)
    arch = Architecture.sample(rng)
    net = build_subnet(block_choices=arch.block_string(), channel_choices=arch.channel_string(),
                       channels_layout=["OneShot", "ShuffleNetV2+"][seed % 2],
                       use_se=bool(rng.randint(2)), last_conv_after_pooling=bool(rng.randint(2)),
                       classes=10, input_size=32)
    _randomise(net, rng)
    _, rows, graph = _export_and_compare(net, tmp_path / "m.onnx", rng)
    assert max(r["relative"] for r in rows) <= TOLERANCE, rows
    # the tolerance is meaningful: different images give clearly different logits
    x = mx.nd.array(rng.standard_normal((2, 3, 32, 32)))
    out = graph_block(*graph)(x).asnumpy()
    assert relative_difference(out[0], out[1]) > 100 * TOLERANCE


def test_folded_graph_conv_shuffle_and_opset_12_match_mxnet(tmp_path):
    rng = np.random.RandomState(3)
    net = build_subnet("OneShot-S+", classes=10, input_size=32)
    _randomise(net, rng)
    folded = fold_batchnorm(*net_to_graph(net))
    export_onnx(*folded, str(tmp_path / "folded.onnx"), input_size=32)
    rows = compare_with_mxnet(str(tmp_path / "folded.onnx"), graph_block(*folded))
    assert max(r["relative"] for r in rows) <= TOLERANCE, rows
    ops = {n.op_type for n in onnx.load(str(tmp_path / "folded.onnx")).graph.node}
    assert "BatchNormalization" not in ops
    # the same net at opset 12
    model, rows, _ = _export_and_compare(net, tmp_path / "o12.onnx", rng, opset=12)
    assert [o.version for o in model.opset_import] == [12]
    assert max(r["relative"] for r in rows) <= TOLERANCE, rows
    # the shuffle as a 1x1 permutation convolution needs no Reshape at all
    conv = build_subnet("OneShot-S+", classes=10, input_size=32, shuffle_method="conv")
    _randomise(conv, rng)
    model, rows, _ = _export_and_compare(conv, tmp_path / "conv.onnx", rng)
    assert "Reshape" not in {n.op_type for n in model.graph.node}
    assert max(r["relative"] for r in rows) <= TOLERANCE, rows


def test_unexportable_graphs_and_opsets_are_refused(tmp_path):
    net = build_subnet("OneShot", classes=10, input_size=32)
    graph = net_to_graph(net)
    with pytest.raises(DeployError, match="unsupported ONNX opset 17"):
        export_onnx(*graph, str(tmp_path / "x.onnx"), opset=17)
    with pytest.raises(DeployError, match="MKLDNN-fused graph"):
        export_onnx(fuse_graph(graph[0]), *graph[1:], str(tmp_path / "x.onnx"))
    calib, _ = calibration_iter([np.random.RandomState(0).uniform(
        -1, 1, (4, 3, 32, 32)).astype("float32")], 1)
    qgraph = quantize_graph(*graph, calib_mode="naive", calib_data=calib)
    with pytest.raises(DeployError, match="int8 graph .*export the float32 graph"):
        export_onnx(*qgraph, str(tmp_path / "x.onnx"))
    assert not os.path.exists(tmp_path / "x.onnx")


# ---- a trained subnet on real digits images ---------------------------------------------------
@pytest.fixture(scope="module")
def trained_digits(tmp_path_factory):
    """OneShot-S+ trained two epochs on the digits at 32 px, exported as the trainer does."""
    from oneshot_nas.training import train
    from oneshot_nas.training.config import TrainConfig
    folder = tmp_path_factory.mktemp("digits_subnet")
    mx.random.seed(0)
    np.random.seed(0)
    summary = train(TrainConfig(dataset="digits", model="OneShot-S+", input_size=32,
                                batch_size=64, num_epochs=2, lr=0.2, lr_mode="cosine",
                                no_augment=True, save_dir=str(folder), progress=False,
                                logging_file=None, metrics_file=None, num_workers=1,
                                save_frequency=0))
    return folder, summary["epochs"][-1]["val_top1"]


def _digits_validation(input_size=32, with_info=False):
    from oneshot_nas.data import make_loaders
    _, val, info = make_loaders(dataset="digits", batch_size=64, input_size=input_size,
                             augment=False, num_workers=1)
    images, labels = [], []
    for data, label in val:
        images.append(data.asnumpy())
        labels.append(label.asnumpy())
    images, labels = np.concatenate(images), np.concatenate(labels).astype(np.int64)
    return (images, labels, info) if with_info else (images, labels)


def test_trained_digits_subnet_same_top1_on_real_images(trained_digits, capsys):
    folder, val_top1 = trained_digits
    symbol = str(folder / "OneShot-S+-symbol.json")
    out = str(folder / "onnx" / "subnet.onnx")
    assert export_cli.main(["--symbol", symbol, "--output", out]) == 0
    printed = capsys.readouterr().out
    assert "check passed" in printed and printed.count("onnxruntime vs MXNet") == 4
    images, labels = _digits_validation()
    assert len(labels) >= 350
    session = onnx_session(out)
    block = graph_block(*load_graph(symbol, str(folder / "OneShot-S+-0000.params")))
    ours = np.concatenate([run_onnx(session, images[i:i + 64]) for i in range(0, len(images), 64)])
    theirs = np.concatenate([block(mx.nd.array(images[i:i + 64])).asnumpy()
                             for i in range(0, len(images), 64)])
    assert relative_difference(ours, theirs) <= TOLERANCE
    assert np.array_equal(ours.argmax(1), theirs.argmax(1))
    top1 = float(np.mean(ours.argmax(1) == labels))
    assert top1 == pytest.approx(val_top1, abs=1e-6) and top1 > 0.3     # chance: 0.1


def test_export_cli_json_and_predict_with_onnxruntime(trained_digits, capsys, tmp_path):
    folder, _ = trained_digits
    symbol = str(folder / "OneShot-S+-symbol.json")
    out = str(tmp_path / "s.onnx")
    assert export_cli.main(["--symbol", symbol, "--output", out, "--fold-bn",
                            "--check-batch-sizes", "2", "--check-sizes", "40", "--json",
                            "--input-size", "32"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["passed"] and [(c["batch"], c["size"]) for c in summary["checks"]] == [(2, 40)]
    assert summary["max_relative"] <= TOLERANCE
    meta = json.load(open(str(tmp_path / "s-deploy.json")))
    assert meta["input_size"] == 32 and meta["folded_bn"] and meta["onnx_opset"] == 13
    # PNG files of real digits, predicted by both backends with the same preprocessing
    import cv2
    images, _, info = _digits_validation(with_info=True)
    mean, std = np.array(info.mean), np.array(info.std)
    os.makedirs(str(tmp_path / "imgs"))
    for i in range(6):
        pixels = np.clip(images[i].transpose(1, 2, 0) * std + mean, 0, 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / "imgs" / ("%d.png" % i)), pixels[:, :, ::-1])
    norm = ["--input-size", "32", "--style", "imagenet", "--crop-ratio", "1.0",
            "--mean", ",".join(map(str, mean)), "--std", ",".join(map(str, std))]
    results = {}
    for backend in (["--onnx", out], ["--symbol", symbol]):
        assert predict_cli.main(backend + norm + ["--json", "--topk", "3",
                                                  str(tmp_path / "imgs")]) == 0
        rows = [json.loads(l) for l in capsys.readouterr().out.strip().splitlines()]
        results[backend[0]] = rows
    assert len(results["--onnx"]) == 6
    for a, b in zip(results["--onnx"], results["--symbol"]):
        assert [t["class"] for t in a["top"]] == [t["class"] for t in b["top"]]
        for ta, tb in zip(a["top"], b["top"]):
            assert ta["prob"] == pytest.approx(tb["prob"], abs=1e-4)


def test_export_cli_bad_input_exits_2_with_one_line(capsys, tmp_path):
    err = _one_line_exit_2(capsys, export_cli.main, ["--symbol", str(tmp_path / "no-symbol.json")])
    assert "does not exist" in err
    net = build_subnet("OneShot", classes=10, input_size=32)
    graph = net_to_graph(net)
    prefix = str(tmp_path / "m")
    save_graph(prefix, *graph)
    err = _one_line_exit_2(capsys, export_cli.main, ["--symbol", prefix + "-symbol.json",
                                                     "--opset", "18"])
    assert "unsupported ONNX opset 18" in err
    calib, _ = calibration_iter([np.random.RandomState(0).uniform(
        -1, 1, (4, 3, 32, 32)).astype("float32")], 1)
    save_graph(prefix + "-quantized", *quantize_graph(*graph, calib_mode="naive",
                                                      calib_data=calib))
    err = _one_line_exit_2(capsys, export_cli.main, ["--symbol", prefix + "-quantized-symbol.json"])
    assert "int8 graph" in err and "export the float32 graph" in err
    err = _one_line_exit_2(capsys, export_cli.main, ["--model", "ShuffleNas", "--random-weights"])
    assert "supernet" in err
    err = _one_line_exit_2(capsys, export_cli.main, ["--model", "OneShot"])
    assert "--params" in err
    err = _one_line_exit_2(capsys, export_cli.main, ["--symbol", prefix + "-symbol.json",
                                                     "--check-sizes", "0"])
    assert "positive integers" in err
    err = _one_line_exit_2(capsys, predict_cli.main, ["--onnx", str(tmp_path / "none.onnx"),
                                                      str(tmp_path)])
    assert "does not exist" in err


# ---- packaging ----------------------------------------------------------------------------------
def _console_scripts():
    import tomllib
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as handle:
        return tomllib.load(handle)["project"]["scripts"]


def test_every_cli_command_has_a_console_script_and_runs_with_python_m():
    import oneshot_nas.cli as cli
    folder = os.path.dirname(cli.__file__)
    scripts = _console_scripts()
    targets = {value.split(":")[0] for value in scripts.values()}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py") or name in ("__init__.py", "errors.py", "common.py"):
            continue
        module = "oneshot_nas.cli." + name[:-3]
        text = open(os.path.join(folder, name)).read()
        assert "\ndef main(" in text, module
        assert 'if __name__ == "__main__":' in text, module
        assert module in targets, module
    assert all(value.endswith(":main") for value in scripts.values())


def test_version_is_written_once_and_commands_run_from_the_venv():
    import importlib.metadata
    import oneshot_nas
    assert importlib.metadata.version("oneshot_nas") == oneshot_nas.__version__
    bin_dir = os.path.dirname(sys.executable)
    script = os.path.join(bin_dir, "oneshot-export-onnx")
    if not os.path.exists(script):
        pytest.skip("the package is not installed in this interpreter's environment")
    out = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "usage: oneshot-export-onnx " in out.stdout  # its own name
    out = subprocess.run([sys.executable, "-m", "oneshot_nas.cli.train_imagenet", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--block-choices" in out.stdout


def test_the_trainers_export_carries_its_preprocessing_to_onnx_and_predict(trained_digits,
                                                                             capsys, tmp_path):
    """No preprocessing flag after training: the trainer's ``-deploy.json`` (32 px, the digits'
    normalisation and class names) travels into the ONNX export, and predicting real digit
    images from PNG files gives the classes the network gives the validation tensors."""
    import cv2
    folder, val_top1 = trained_digits
    meta = json.load(open(str(folder / "OneShot-S+-deploy.json")))
    assert meta["input_size"] == 32 and meta["style"] == "digits"
    assert meta["classes"] == [str(i) for i in range(10)] and meta["dataset"] == "digits"
    out = str(tmp_path / "plain.onnx")
    assert export_cli.main(["--symbol", str(folder / "OneShot-S+-symbol.json"), "--output", out,
                            "--no-check"]) == 0
    onnx_meta = json.load(open(str(tmp_path / "plain-deploy.json")))
    assert (onnx_meta["input_size"], onnx_meta["style"], onnx_meta["mean"]) == \
        (32, "digits", meta["mean"])
    # each file names the command that wrote it; the ONNX record also the trainer's
    assert onnx_meta["source_command"] == meta["command"] and "--symbol" in onnx_meta["command"]
    props = {p.key: json.loads(p.value) for p in onnx.load(out).metadata_props}
    assert props["oneshot_nas"]["classes"] == meta["classes"]
    images, labels, info = _digits_validation(with_info=True)
    block = graph_block(*load_graph(str(folder / "OneShot-S+-symbol.json"),
                                    str(folder / "OneShot-S+-0000.params")))
    n = 60
    expected = block(mx.nd.array(images[:n])).asnumpy().argmax(1)
    mean, std = np.array(info.mean), np.array(info.std)
    os.makedirs(str(tmp_path / "imgs"))
    for i in range(n):
        pixels = np.clip(np.round(images[i].transpose(1, 2, 0) * std + mean), 0, 255)
        cv2.imwrite(str(tmp_path / "imgs" / ("%02d.png" % i)), pixels.astype(np.uint8)[:, :, ::-1])
    capsys.readouterr()
    assert predict_cli.main(["--onnx", out, "--json", "--topk", "1", str(tmp_path / "imgs")]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.strip().splitlines()]
    predicted = np.array([int(r["top"][0]["class"]) for r in rows])
    assert len(predicted) == n
    assert (predicted == expected).mean() >= 0.95
    # the accuracy the trainer logged, within the noise of 60 images (sd <= 0.065)
    assert abs((predicted == labels[:n]).mean() - val_top1) <= 0.2
