"""calculate_flops.py: the reference figures (docs/design.md) through the command line,
exported symbols, bad input."""
import json
import os
import subprocess
import sys

import mxnet as mx
import pytest

from oneshot_nas import get_model
from oneshot_nas.cli.calculate_flops import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE_ROWS = [
    (["--model", "OneShot"], 327.91, 344.98, 3433579),
    (["--model", "OneShot", "--channels-layout", "ShuffleNetV2+"], 218.70, 232.17, 2692590),
    (["--model", "OneShot+"], 297.06, 312.22, 3742955),
    (["--model", "OneShot-S+"], 291.48, 307.89, 3541829),
    (["--model", "OneShot-S+", "--channels-layout", "ShuffleNetV2+"], 189.27, 202.11, 2755117),
]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("flags,mflops,mflops_rb,params", REFERENCE_ROWS)
def test_model_flags_match_spec(capsys, flags, mflops, mflops_rb, params):
    code, out, _ = run(capsys, *flags, "-norelubn", "--json")
    result = last_json(out)
    assert code == 0
    # docs/design.md (section 5) gives MFLOPs to 0.01 M, with and without ReLU+BN
    assert round(result["flops_m"], 2) == mflops and result["params"] == params
    assert abs(result["params_m"] - params / 1e6) < 1e-6
    code, out, _ = run(capsys, *flags, "--json")
    assert round(last_json(out)["flops_m"], 2) == mflops_rb


def test_block_and_channel_choices_equal_the_preset(capsys):
    code, out, _ = run(capsys, "--block-choices", "0,0,0,1,0,0,1,0,3,2,0,1,2,2,1,2,0,0,2,0",
                       "--channel-choices", "8,7,6,8,5,7,3,4,2,4,2,3,4,5,6,6,3,3,4,6",
                       "--use-se", "--last-conv-after-pooling", "-norelubn", "--json")
    result = last_json(out)
    assert code == 0 and result["params"] == 3541829 and round(result["flops_m"], 2) == 291.48


@pytest.mark.parametrize("flags,mflops,mflops_rb,params", REFERENCE_ROWS)
def test_symbol_exported_by_the_model_gives_the_same_numbers(capsys, tmp_path, flags, mflops,
                                                            mflops_rb, params):
    kwargs = {"channels_layout": flags[3]} if len(flags) > 2 else {}
    net = get_model(flags[1], **kwargs)
    net.initialize()
    net.hybridize()
    net(mx.nd.zeros((1, 3, 224, 224)))
    prefix = str(tmp_path / "subnet")
    net.export(prefix)
    for path in (prefix + "-symbol.json", prefix):   # the file or the export prefix
        code, out, _ = run(capsys, "-s", path, "-ds", "data,1,3,224,224", "-norelubn", "--json")
        result = last_json(out)
        assert code == 0 and result["params"] == params and round(result["flops_m"], 2) == mflops
    code, out, _ = run(capsys, "-s", prefix + "-symbol.json", "--json")
    assert round(last_json(out)["flops_m"], 2) == mflops_rb


def test_per_layer_table_and_micronet_outputs(capsys, tmp_path):
    csv_path, md_path = tmp_path / "p.csv", tmp_path / "p.md"
    code, out, _ = run(capsys, "--model", "OneShot-S+", "--per-layer", "--micronet",
                       "--micronet-csv", str(csv_path), "--micronet-markdown", str(md_path),
                       "--json")
    assert code == 0
    assert "| layer | op | output shape | MFLOPs | params |" in out
    assert "| First conv | True | 224 | 3 | 3 | 16 |" in out
    assert csv_path.read_text().startswith("op_name,quantizable")
    assert "| int8 |" in md_path.read_text()
    micronet = last_json(out)["micronet"]
    assert round(micronet["scores"]["float32"]["score"], 2) == 1.03
    total = micronet["total"]
    assert (round(total["params_m"], 3), round(total["mults_m"], 1),
            round(total["adds_m"], 1)) == (3.652, 301.4, 288.3)
    assert abs(total["flops_m"] - 589.6) <= 0.11      # see test_micronet_totals_match_reference


def test_default_model_is_oneshot_s_plus(capsys):
    code, out, _ = run(capsys, "-norelubn", "--json")
    assert code == 0 and last_json(out)["params"] == 3541829


@pytest.mark.parametrize("argv,fragment", [
    (["-s", "/nonexistent/model-symbol.json"], "not found"),
    (["--model", "OneShot", "-ds", "data,1,3,x,224"], "malformed data shape"),
    (["--model", "OneShot", "-ds", "data"], "malformed data shape"),
    (["--model", "OneShot", "-ds", "image,1,3,224,224"], "no input named 'image'"),
    (["--model", "OneShot", "-ds", "data,1,5,224,224"], "shape inference failed"),
    (["--model", "ResNet"], "invalid choice"),
    (["--block-choices", "0,1,2"], "expected 20 values"),
    (["--block-choices", "0,0,0,1,0,0,1,0,3,2,0,1,2,2,1,2,0,0,2,9"], "must be in 0..3"),
    (["--model", "OneShot", "--block-choices", "0"], "not both"),
    (["-s", "x-symbol.json", "--model", "OneShot"], "cannot be combined"),
    (["--no-such-flag"], "unrecognized arguments"),
])
def test_bad_input_gives_one_line_and_exit_code_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and fragment in err
    assert err.startswith("calculate_flops.py: error:")


def test_symbol_without_named_input_and_broken_files(capsys, tmp_path):
    data = mx.sym.var("image")
    sym = mx.sym.Convolution(data, num_filter=4, kernel=(1, 1), name="c")
    sym.save(str(tmp_path / "m-symbol.json"))
    code, _, err = run(capsys, "-s", str(tmp_path / "m"))
    assert code == 2 and "no input named 'data'; its inputs are: image" in err
    code, out, _ = run(capsys, "-s", str(tmp_path / "m"), "-ds", "image,1,3,4,4", "--json")
    assert code == 0 and last_json(out)["flops"] == 4 * 4 * 4 * 3 + 4 * 4 * 4
    (tmp_path / "empty-symbol.json").write_text("")
    (tmp_path / "other-symbol.json").write_text('{"nodes": 3}')
    for name in ("empty", "other"):
        code, _, err = run(capsys, "-s", str(tmp_path / name))
        assert code == 2 and len(err.strip().splitlines()) == 1 and "not an MXNet symbol" in err


def test_top_level_script(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "calculate_flops.py"), "--model",
                           "OneShot-S+", "-norelubn", "--json"], capture_output=True, text=True,
                          cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["params"] == 3541829 and round(result["flops_m"], 2) == 291.48
    assert os.listdir(str(tmp_path)) == []       # no scratch files in the working directory
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "calculate_flops.py"), "-s",
                           "missing.json"], capture_output=True, text=True, cwd=str(tmp_path),
                          timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
