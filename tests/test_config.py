"""The configuration pieces: one declaration and one default per field, one constructor per
collaborator, for every configuration made of them."""
import math
from dataclasses import fields

import pytest

from oneshot_nas.config import (ConstraintConfig, DataConfig, DeviceConfig, ModelConfig,
                                piece_values)
from oneshot_nas.ranking import BenchmarkCheckConfig, RankCheckConfig, StandaloneProtocol
from oneshot_nas.search.algorithms import Constraints
from oneshot_nas.search.runner import SearchConfig
from oneshot_nas.training import TrainConfig

MADE_OF = [(TrainConfig, (DataConfig, DeviceConfig, ModelConfig)),
           (SearchConfig, (DataConfig, DeviceConfig, ModelConfig, ConstraintConfig)),
           (RankCheckConfig, (ModelConfig, ConstraintConfig)),
           (StandaloneProtocol, (ModelConfig,))]


@pytest.mark.parametrize("config, pieces", MADE_OF, ids=lambda v: getattr(v, "__name__", ""))
def test_configurations_take_the_pieces_defaults(config, pieces):
    made = config()
    for piece in pieces:
        assert isinstance(made, piece)
        assert piece_values(made, piece) == piece_values(piece(), piece)


def test_the_model_flags_have_one_default_everywhere():
    values = {cls.__name__: cls().model_settings() for cls, _ in MADE_OF}
    assert all(v == dict(channels_layout="OneShot", use_se=False,
                         last_conv_after_pooling=False) for v in values.values()), values
    # the stored table's protocol states its model flags
    assert StandaloneProtocol.fashion_mnist().model_settings() == dict(
        channels_layout="OneShot", use_se=True, last_conv_after_pooling=True)


def test_the_two_ranking_checks_share_their_scoring_fields():
    rank = {f.name for f in fields(RankCheckConfig)}
    bench = {f.name for f in fields(BenchmarkCheckConfig)}
    assert {"supernet_params", "holdout_search", "update_bn_images", "bn_group_size",
            "batch_size", "score", "bootstrap", "seed", "output_dir"} <= rank & bench


def test_constraints_from_a_config_or_a_saved_dict():
    cfg = SearchConfig(comparison_model="MobileNetV3_large", flop_max=1.0, max_params=4.0)
    a = Constraints.from_config(cfg)
    b = Constraints.from_config({"comparison_model": "MobileNetV3_large", "flop_max": 1.0,
                                 "max_params": 4.0, "dataset": "digits"})
    assert a == b and a.max_params == 4.0 and math.isfinite(a.max_flops)
    assert Constraints.from_config(RankCheckConfig()) == Constraints.build()


def test_set_model_takes_a_saved_dict_with_defaults_for_missing_keys():
    protocol = StandaloneProtocol.fashion_mnist()
    protocol.set_model({"use_se": False})
    assert protocol.model_settings() == dict(channels_layout="OneShot", use_se=False,
                                             last_conv_after_pooling=False)


def test_split_loaders_pass_the_data_fields(monkeypatch):
    seen = {}
    monkeypatch.setattr("oneshot_nas.data.make_split_loaders", lambda **kw: seen.update(kw))
    TrainConfig(dataset="digits", input_size=32, train_subset=7).split_loaders(batch_size=3)
    assert seen == dict(piece_values(DataConfig(), DataConfig), dataset="digits", input_size=32,
                        train_subset=7, use_rec=None, batch_size=3)
