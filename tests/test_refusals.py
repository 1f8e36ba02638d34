"""Library-level answers to settings that used to be silently wrong: they work or refuse."""
import ast
import json
import os
import types

import mxnet as mx
import numpy as np
import pytest

from oneshot_nas import Architecture, get_model
from oneshot_nas.files import atomic_write, atomic_write_json
from oneshot_nas.models.params import load_params_checked
from oneshot_nas.profiling import LookupTable
from oneshot_nas.search import Constraints, Objective
from oneshot_nas.training import TrainConfig
from oneshot_nas.training.trainer import build_model

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src",
                   "oneshot_nas")
S_PLUS = ("0,0,0,1,0,0,1,0,3,2,0,1,2,2,1,2,0,0,2,0", "8,7,6,8,5,7,3,4,2,4,2,3,4,5,6,6,3,3,4,6")


def _param_names(net):
    return set(net._collect_params_with_prefix())


# ---- presets and the SE / tail flags ------------------------------------------------------------
@pytest.mark.parametrize("model,flags,se,tail", [
    ("OneShot", {}, False, False),
    ("OneShot", {"use_se": True}, True, False),
    ("OneShot", {"use_se": True, "last_conv_after_pooling": True}, True, True),
    ("OneShot+", {}, True, True),
])
def test_preset_builds_with_the_se_and_tail_flags(model, flags, se, tail):
    net = build_model(TrainConfig(model=model, input_size=32, **flags), classes=10)
    assert net.config["use_se"] is se and net.config["last_conv_after_pooling"] is tail
    # the preset's architecture is kept: the same blocks as the preset without the flags
    assert net.architecture == get_model(model, classes=10).architecture
    reference = get_model("ShuffleNas_fixArch", architecture=net.architecture, classes=10,
                          use_se=se, last_conv_after_pooling=tail)
    assert _param_names(net) == _param_names(reference)


def test_preset_with_se_trains_with_se_params():
    plain = build_model(TrainConfig(model="OneShot"), classes=10)
    with_se = build_model(TrainConfig(model="OneShot", use_se=True), classes=10)
    assert any("se" in name.lower() for name in _param_names(with_se) - _param_names(plain))


# ---- TrainConfig.validate ---------------------------------------------------------------------
@pytest.mark.parametrize("settings,needle", [
    (dict(model="OneShot-S+", channel_choices=S_PLUS[1]), "cannot change the preset"),
    (dict(model="ShuffleNas", block_choices=S_PLUS[0]), "trains the supernet on sampled paths"),
    (dict(train_constraint_method="random"), "needs --train-upper-constraints"),
    (dict(train_bottom_constraints="flops-190-params-2.8"),
     "--train-bottom-constraints needs --train-upper-constraints"),
    (dict(train_upper_constraints="flops-100-params-5.0",
          train_bottom_constraints="flops-190-params-2.8"), "lies above upper constraint"),
    (dict(model="ShuffleNas_fixArch", block_choices=S_PLUS[0], use_all_blocks=True),
     "--use-all-blocks only apply to the supernet"),
    (dict(dtype="float16"), "--dtype float16 needs a GPU"),
    (dict(num_epochs=0), "--num-epochs must be >= 1, got 0"),
    (dict(train_upper_constraints="flops-330-params-5.0", flops_bins=5),
     "--flops-bins 5 needs --train-constraint-method bins"),
    (dict(train_upper_constraints="flops-330-params-5.0", train_constraint_method="bins",
          flops_bins=0), "--flops-bins must be >= 1, got 0"),
])
def test_train_config_refuses_ignored_or_impossible_settings(settings, needle):
    if settings.get("dtype") == "float16" and mx.context.num_gpus():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**settings).validate()


def test_train_config_accepts_the_published_combinations():
    TrainConfig(model="ShuffleNas", train_upper_constraints="flops-330-params-5.0",
                train_bottom_constraints="flops-190-params-2.8",
                train_constraint_method="evolution", use_se=True).validate()
    TrainConfig(model="ShuffleNas", train_upper_constraints="flops-330-params-5.0").validate()
    TrainConfig(model="ShuffleNas_fixArch", block_choices=S_PLUS[0],
                channel_choices=S_PLUS[1]).validate()
    TrainConfig(model="OneShot", use_se=True, last_conv_after_pooling=True).validate()


def test_train_runs_the_validation_too():
    from oneshot_nas.training import train
    with pytest.raises(ValueError, match="needs --train-upper-constraints"):
        train({"dataset": "digits", "train_constraint_method": "random"})


# ---- search constraints and objectives ----------------------------------------------------------
@pytest.mark.parametrize("kwargs,flags", [
    (dict(flop_max=1.0), "--flop-max is"),
    (dict(param_max=1.0), "--param-max is"),
    (dict(normalised_score_max=1.0), "--normalised-score-max is"),
    (dict(flop_max=1.0, param_max=2.0), "--flop-max / --param-max are"),
])
def test_relative_limits_need_a_comparison_model(kwargs, flags):
    with pytest.raises(ValueError, match="%s relative to a comparison model" % flags):
        Constraints.build(**kwargs)
    limited = Constraints.build("MobileNetV3_large", **kwargs)
    assert not limited.satisfied([10000.0], [100.0])      # the limit now applies


def test_absolute_limits_need_no_comparison_model():
    c = Constraints.build(max_flops=300, max_params=4.0)
    assert c.satisfied([299], [3.9]) and not c.satisfied([301], [3.9])


def test_balanced_target_needs_a_reference_and_then_differs_from_acc():
    with pytest.raises(ValueError, match="--search-target balanced_flop_acc subtracts"):
        Objective("balanced_flop_acc", score_acc_ratio=0.1, constraints=Constraints())
    c = Constraints.build("SinglePathOneShot")
    bal = Objective("balanced_flop_acc", score_acc_ratio=0.1, constraints=c)
    acc = Objective("acc", constraints=c)
    # a smaller net scores better at equal accuracy; plain accuracy cannot tell them apart
    assert bal(0.7, 200, 2.0) > bal(0.7, 400, 5.0)
    assert acc(0.7, 200, 2.0) == acc(0.7, 400, 5.0) == 0.7
    assert bal(0.7, 328, 3.4) == pytest.approx(0.6)


# ---- architecture values --------------------------------------------------------------------------
def test_architecture_refuses_non_integral_choices_from_json():
    blocks, channels = [0] * 20, [9] * 20
    text = json.dumps({"blocks": blocks[:3] + [1.7] + blocks[4:], "channels": channels})
    with pytest.raises(ValueError, match=r"^block choices: position 3 is 1.7, not an integer$"):
        Architecture.from_json(text)
    text = json.dumps({"blocks": blocks, "channels": channels[:19] + ["9"]})
    with pytest.raises(ValueError, match="channel choices: position 19 is '9', not an integer"):
        Architecture.from_json(text)
    # integral floats and numpy integers are the same architecture as ints
    same = Architecture.from_json(json.dumps({"blocks": [2.0] * 20, "channels": channels}))
    assert same == Architecture([2] * 20, np.array(channels, dtype=np.int64))
    assert same.to_json() == json.dumps({"blocks": [2] * 20, "channels": channels})


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return LookupTable.load_or_build(cache_dir=str(tmp_path_factory.mktemp("lut")),
                                     progress=False)


@pytest.mark.parametrize("blocks,channels,needle", [
    ([0] * 19, [9] * 19, "block choices: expected 20 values, got 19"),
    ([0] * 21, [9] * 21, "block choices: expected 20 values, got 21"),
    ([0] * 20, [9] * 19, "channel choices: expected 20 values, got 19"),
    ([0] * 20, [10] * 20, "channel choices: position 0 is 10, must be in 0..9"),
    ([0.5] * 20, [9] * 20, "block choices: position 0 is 0.5, not an integer"),
])
def test_lookup_table_refuses_wrong_input(table, blocks, channels, needle):
    with pytest.raises(ValueError, match=needle):
        table.flops_params(types.SimpleNamespace(blocks=blocks, channels=channels))


def test_lookup_table_accepts_any_architecture_like_value(table):
    arch = Architecture.parse(*S_PLUS)
    like = types.SimpleNamespace(blocks=list(arch.blocks), channels=list(arch.channels))
    assert table.flops_params(like) == table.flops_params(arch)


# ---- parameter files ---------------------------------------------------------------------------
def test_load_params_checked_names_the_first_mismatch(tmp_path):
    net = get_model("OneShot", classes=10)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    path = str(tmp_path / "oneshot.params")
    net.save_parameters(path)
    fresh = get_model("OneShot", classes=10)
    fresh.initialize()
    load_params_checked(fresh, path, "--flag")
    for name, p in net._collect_params_with_prefix().items():
        assert np.array_equal(fresh._collect_params_with_prefix()[name].data().asnumpy(),
                              p.data().asnumpy())
    other_classes = get_model("OneShot", classes=7)
    other_classes.initialize()
    other_classes(mx.nd.zeros((1, 3, 32, 32)))
    with pytest.raises(ValueError, match=r"--flag .* does not fit the model: parameter head\."
                                         r".* has shape \(10, .*\), expected \(7, "):
        load_params_checked(other_classes, path, "--flag")
    with_se = get_model("OneShot", classes=10, use_se=True)
    with_se.initialize()
    with pytest.raises(ValueError, match="does not fit the model: parameter .* is missing "
                                         r"\(check this\)"):
        load_params_checked(with_se, path, "--flag", hint="check this")
    (tmp_path / "junk.params").write_bytes(b"not params")
    with pytest.raises(ValueError, match="--flag file .*junk.params is not an MXNet params"):
        load_params_checked(fresh, str(tmp_path / "junk.params"), "--flag")
    with pytest.raises(ValueError, match="--flag file .*none.params does not exist"):
        load_params_checked(fresh, str(tmp_path / "none.params"), "--flag")


# ---- crash-safe files ----------------------------------------------------------------------------
def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "state.json"
    atomic_write_json(str(path), {"step": 1})

    def broken(tmp):
        with open(tmp, "w") as f:
            f.write('{"step": ')
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError, match="No space left"):
        atomic_write(str(path), broken)
    assert json.loads(path.read_text()) == {"step": 1}
    assert os.listdir(str(tmp_path)) == ["state.json"]        # no temporary file left


def test_search_and_latency_table_do_not_import_the_trainer():
    """The crash-safe helpers live in oneshot_nas.files; search / profiling do not reach into
    the trainer's checkpoint module for them (the ranking check may run the trainer itself)."""
    for folder in ("search", "profiling"):
        for name in os.listdir(os.path.join(SRC, folder)):
            if not name.endswith(".py"):
                continue
            with open(os.path.join(SRC, folder, name)) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    assert not node.module.startswith("training.checkpoint"), \
                        (folder, name, node.module)
                    assert "checkpoint" not in node.module, (folder, name, node.module)


def test_make_sampler_never_falls_back_to_uniform_sampling():
    from oneshot_nas.training.samplers import ConstraintBox, UniformSampler, make_sampler
    with pytest.raises(ValueError, match="--train-constraint-method evolution needs "
                                         "--train-upper-constraints"):
        make_sampler("evolution", lambda b, c: (b.sum(1), c.sum(1)), None)
    with pytest.raises(ValueError, match="needs a constraint method"):
        make_sampler(None, None, ConstraintBox.from_strings("flops-330-params-5.0"))
    assert type(make_sampler()) is UniformSampler
