"""Files written by an earlier version still load, or are refused in one line naming the field.

The fixtures in ``tests/fixtures/beae4ed/`` were written by commit beae4ed (before the
configurations were composed of shared pieces): a tiny digits supernet run
(``train_imagenet.py --dataset digits --num-epochs 1 --max-batches-per-epoch 2
--holdout-search 100``, the ``.params`` left out and the best JSON's random state dropped),
and a one-generation search on it (its checkpoint and results).
"""
import json
import os
import shutil

import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "beae4ed")


def _fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def _supernet_beside(tmp_path, meta, name="ShuffleNas-supernet-final"):
    """A params file (its content does not matter here) with ``meta`` as its JSON."""
    params = tmp_path / (name + ".params")
    params.write_bytes(b"not read")
    (tmp_path / (name + ".json")).write_text(json.dumps(meta))
    return str(params)


@pytest.mark.parametrize("name", ["ShuffleNas-supernet-final.json",
                                  "ShuffleNas-supernet-best.json"])
def test_old_supernet_json_config_loads(name):
    from oneshot_nas.training import TrainConfig
    meta = _fixture(name)
    cfg = TrainConfig.from_dict(meta["config"])
    assert (cfg.dataset, cfg.input_size, cfg.holdout_search) == ("digits", 32, 100)
    assert (cfg.use_se, cfg.last_conv_after_pooling, cfg.channels_layout) == \
        (False, False, "OneShot")
    # every stored setting reads back as stored; settings added since take their defaults
    saved = cfg.to_dict()
    assert {k: v for k, v in saved.items() if k in meta["config"]} == meta["config"]
    assert {k: v for k, v in saved.items() if k not in meta["config"]} == \
        {"watchdog_seconds": 600, "flops_bins": None, "strict_fairness": False}


def test_old_supernet_json_gives_the_search_its_split(tmp_path):
    from oneshot_nas.search.runner import resolve_holdout
    params = _supernet_beside(tmp_path, _fixture("ShuffleNas-supernet-final.json"))
    holdout, known = resolve_holdout(None, params)
    assert holdout == 100 and known["digest"] == "8f36c227b1de5c63"
    with pytest.raises(ValueError, match="--holdout-search 7 does not match"):
        resolve_holdout(7, params)


def test_old_supernet_json_is_checked_against_a_table(tmp_path):
    from oneshot_nas.ranking.check import _check_supernet_matches
    params = _supernet_beside(tmp_path, _fixture("ShuffleNas-supernet-final.json"))
    from oneshot_nas.ranking import StandaloneProtocol
    flags = dict(channels_layout="OneShot", use_se=False, last_conv_after_pooling=False)
    _check_supernet_matches(params, {"dataset": "digits"}, StandaloneProtocol(**flags))
    with pytest.raises(ValueError) as err:
        _check_supernet_matches(params, {"dataset": "digits"},
                                StandaloneProtocol(**dict(flags, use_se=True)))
    assert "use_se=False" in str(err.value) and "\n" not in str(err.value)
    # the old JSON's supernet saw 32-px digits: a table at 48 px is refused
    with pytest.raises(ValueError, match="trained at 32 px, the table's nets at 48 px"):
        _check_supernet_matches(params, {"dataset": "digits"},
                                StandaloneProtocol(input_size=48, **flags))


def test_a_corrupted_supernet_json_field_is_named_in_one_line():
    from oneshot_nas.training import TrainConfig
    config = dict(_fixture("ShuffleNas-supernet-final.json")["config"])
    config["use_sqeeze_excite"] = config.pop("use_se")
    with pytest.raises(ValueError) as err:
        TrainConfig.from_dict(config)
    assert "use_sqeeze_excite" in str(err.value) and "\n" not in str(err.value)


def _search_cfg(tmp_path, **changes):
    from oneshot_nas.search.runner import SearchConfig
    values = dict(_fixture("search_results.json")["config"])
    values.update(supernet_params=str(tmp_path / "supernet.params"),
                  output_dir=str(tmp_path), resume=True)
    values.update(changes)
    return SearchConfig(**values)


def _old_checkpoint(tmp_path):
    """The old checkpoint, its supernet digest pointed at a stand-in params file."""
    from oneshot_nas.files import file_digest
    (tmp_path / "supernet.params").write_bytes(b"stand-in weights")
    state = _fixture("search_state.json")
    state["settings"]["--supernet-params (content)"] = file_digest(
        str(tmp_path / "supernet.params"))
    path = tmp_path / "search_state.json"
    path.write_text(json.dumps(state))
    return str(path)


def test_old_search_checkpoint_resumes(tmp_path):
    from oneshot_nas.search.runner import start_or_resume
    path = _old_checkpoint(tmp_path)
    state = start_or_resume(_search_cfg(tmp_path), path)
    assert (state.mode, state.step) == ("genetic", 1)
    assert len(state.results) == len(_fixture("search_state.json")["results"])


def test_old_search_checkpoint_with_other_settings_is_refused_in_one_line(tmp_path):
    from oneshot_nas.search.runner import start_or_resume
    path = _old_checkpoint(tmp_path)
    with pytest.raises(ValueError) as err:
        start_or_resume(_search_cfg(tmp_path, use_se=True), path)
    assert "--use-se False" in str(err.value) and "\n" not in str(err.value)


def test_old_search_checkpoint_scored_by_accuracy_is_not_continued_by_loss(tmp_path):
    # the checkpoint predates --search-score: it was scored by top-1, and says so when asked
    from oneshot_nas.search.runner import start_or_resume
    path = _old_checkpoint(tmp_path)
    assert "--search-score" not in _fixture("search_state.json")["settings"]
    with pytest.raises(ValueError) as err:
        start_or_resume(_search_cfg(tmp_path, search_score="loss"), path)
    assert "--search-score 'acc', not 'loss'" in str(err.value) and "\n" not in str(err.value)


def test_a_corrupted_search_checkpoint_field_is_named_in_one_line(tmp_path):
    from oneshot_nas.search.runner import start_or_resume
    path = _old_checkpoint(tmp_path)
    state = json.loads(open(path).read())
    state["settings"]["--max-flops"] = "four hundred"
    with open(path, "w") as f:
        json.dump(state, f)
    with pytest.raises(ValueError) as err:
        start_or_resume(_search_cfg(tmp_path), path)
    assert "--max-flops 'four hundred'" in str(err.value) and "\n" not in str(err.value)


def test_old_search_results_feed_the_winner_check(tmp_path):
    from oneshot_nas.ranking.winner import read_search_results
    shutil.copy(os.path.join(FIXTURES, "search_results.json"), tmp_path / "r.json")
    search, scfg, winner = read_search_results(str(tmp_path / "r.json"))
    assert scfg["dataset"] == "digits" and len(winner.blocks) == 20


@pytest.mark.parametrize("change, needle", [
    (lambda m: m["split"].update(holdout="lots"), "field 'split.holdout' is 'lots'"),
    (lambda m: m.update(split=[100]), "field 'split' is [100]"),
    (lambda m: (m.pop("split"), m["config"].update(holdout_search=-5)),
     "field 'config.holdout_search' is -5"),
])
def test_a_corrupted_supernet_split_is_named_in_one_line(tmp_path, change, needle):
    from oneshot_nas.search.runner import resolve_holdout
    meta = _fixture("ShuffleNas-supernet-final.json")
    change(meta)
    params = _supernet_beside(tmp_path, meta)
    with pytest.raises(ValueError) as err:
        resolve_holdout(None, params)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_an_old_supernet_json_without_a_split_record_gives_its_config_count(tmp_path):
    """Older trainers wrote only the settings: the held-out count comes from them."""
    from oneshot_nas.search.runner import resolve_holdout
    meta = _fixture("ShuffleNas-supernet-final.json")
    del meta["split"]
    holdout, known = resolve_holdout(None, _supernet_beside(tmp_path, meta))
    assert holdout == 100 and known["digest"] is None


@pytest.mark.parametrize("change, needle", [
    (lambda s: s.update(step="one"), "field 'step' is 'one', not an integer"),
    (lambda s: s.pop("results"), "field 'results' is missing"),
    (lambda s: s.update(history=3), "field 'history' is 3, not a list"),
])
def test_a_corrupted_search_checkpoint_structure_is_named_in_one_line(tmp_path, change, needle):
    from oneshot_nas.search.runner import start_or_resume
    path = _old_checkpoint(tmp_path)
    state = json.loads(open(path).read())
    change(state)
    with open(path, "w") as f:
        json.dump(state, f)
    with pytest.raises(ValueError) as err:
        start_or_resume(_search_cfg(tmp_path), path)
    assert needle in str(err.value) and path in str(err.value) and "\n" not in str(err.value)


def test_search_logs_the_settings_the_record_filled_in(tmp_path, supernet_params):
    """The search's ``settings:`` log line shows the values it runs with: the model shape and
    data the supernet's record gives and the data set's defaults (it used to log the flags as
    parsed, ``null`` for each of them)."""
    from oneshot_nas.cli import search_supernet
    params = tmp_path / "ShuffleNas-supernet-final.params"
    shutil.copy(supernet_params, params)
    (tmp_path / "ShuffleNas-supernet-final.json").write_text(
        json.dumps(_fixture("ShuffleNas-supernet-final.json")))
    out = tmp_path / "search"
    assert search_supernet.main(["--supernet-params", str(params), "--output-dir", str(out),
                                 "--search-mode", "random", "--search-iters", "1",
                                 "--update-bn-images", "32", "--batch-size", "32",
                                 "--no-progress", "-j", "0"]) == 0
    lines = [l for l in (out / "search.log").read_text().splitlines() if "settings: " in l]
    assert len(lines) == 1
    logged = json.loads(lines[0].split("settings: ", 1)[1])
    assert (logged["dataset"], logged["input_size"], logged["channels_layout"],
            logged["use_se"], logged["last_conv_after_pooling"]) == \
        ("digits", 32, "OneShot", False, False)
    with open(out / "search_results.json") as f:
        config = json.load(f)["config"]
    assert {k: logged[k] for k in config if k in logged} == \
        {k: v for k, v in config.items() if k in logged}
