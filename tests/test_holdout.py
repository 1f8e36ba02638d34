"""The held-out search split: fixed, disjoint from training and validation, shared by the
trainer and the search, and the images the search scores on."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

from oneshot_nas import Architecture, get_model
from oneshot_nas.data import (holdout_split, make_split_loaders, prepare_digits, read_index,
                              scan_image_folder)
from oneshot_nas.search import CandidateEvaluator
from oneshot_nas.search.runner import SearchConfig, load_search_data, resolve_holdout

SIZE = 32
HOLD = 120


@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("cache"))
    return cache, prepare_digits(SIZE, cache_dir=cache)


@pytest.fixture(autouse=True)
def _cache_env(digits_cache, monkeypatch):
    monkeypatch.setenv("ONESHOT_NAS_CACHE", digits_cache[0])


def _splits(use_rec, holdout=HOLD, **kwargs):
    return make_split_loaders("digits", use_rec=use_rec, input_size=SIZE, batch_size=32,
                              num_workers=0, holdout=holdout, **kwargs)


def test_holdout_split_is_fixed_disjoint_and_complete():
    train, held = holdout_split(1438, 360)
    again_train, again_held = holdout_split(1438, 360)
    np.testing.assert_array_equal(held, again_held)
    np.testing.assert_array_equal(train, again_train)
    assert len(held) == 360 and len(np.unique(held)) == 360
    assert not set(train) & set(held)
    np.testing.assert_array_equal(np.union1d(train, held), np.arange(1438))
    # a random subset, not a block of the file
    assert held.min() < 100 and held.max() > 1338
    assert len(holdout_split(1438, 0)[1]) == 0
    for bad in (-1, 1438):
        with pytest.raises(ValueError, match="--holdout-search"):
            holdout_split(1438, bad)


def _keys(use_rec, paths, loader, epoch=0):
    """Sample keys of what ``loader`` yields: record keys, or the keys in the file names
    (``<class>/<key>.png``); the digits keys are unique over both splits."""
    positions = loader.shard_indices(epoch)
    if use_rec:
        return set(read_index(paths["rec_train"]).keys[positions].tolist())
    items = scan_image_folder(paths["root"])["train"]
    return {int(os.path.splitext(os.path.basename(items[i][0]))[0]) for i in positions}


@pytest.mark.parametrize("use_rec", [True, False])
def test_held_out_images_reach_neither_training_nor_validation(digits_cache, use_rec):
    paths = digits_cache[1]
    splits = _splits(use_rec)
    assert splits.info.num_holdout == HOLD and splits.info.num_train == 1438 - HOLD
    held = _keys(use_rec, paths, splits.holdout)
    assert len(held) == HOLD
    seen = set()
    for epoch in range(3):
        seen |= _keys(use_rec, paths, splits.train, epoch)
    assert not seen & held
    # over a few epochs training visits (nearly) everything else
    assert len(seen) > 0.95 * (1438 - HOLD)
    if use_rec:
        val_keys = set(read_index(paths["rec_val"]).keys.tolist())
    else:
        val_keys = {int(os.path.splitext(os.path.basename(p))[0])
                    for p, _ in scan_image_folder(paths["root"])["val"]}
    assert len(val_keys) == 359 and not val_keys & held and not val_keys & seen
    # the loader yields those images with their labels: all ten classes, HOLD of them
    labels = np.concatenate([l.asnumpy() for _, l in splits.holdout])
    assert len(labels) == HOLD and len(np.unique(labels)) == 10


def test_rec_and_folder_hold_out_the_same_count_and_report_their_identity():
    rec, folder = _splits(True).info, _splits(False).info
    assert rec.num_holdout == folder.num_holdout == HOLD
    # other files, other identities: the digest tells them apart (the search checks it)
    assert rec.holdout_digest and folder.holdout_digest
    assert rec.holdout_digest != folder.holdout_digest
    assert _splits(True).info.holdout_digest == rec.holdout_digest
    assert _splits(True, holdout=HOLD + 1).info.holdout_digest != rec.holdout_digest


def test_digits_memory_loader_matches_the_gluon_pipeline():
    from oneshot_nas.data import RecordSubsetLoader
    from oneshot_nas.data.transforms import folder_transform
    splits = _splits(True, augment=False)
    info = splits.info
    index = read_index(prepare_digits(SIZE)["rec_train"])
    reference = RecordSubsetLoader(index, splits.holdout.shard_indices(0),
                                   folder_transform("digits", False, SIZE, 0.875, True,
                                                    info.mean, info.std), 32, False,
                                   num_workers=0)
    ours = np.concatenate([d.asnumpy() for d, _ in splits.holdout])
    theirs = np.concatenate([d.asnumpy() for d, _ in reference])
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # training batches are shifted copies of the same images (augmentation on)
    shifted = _splits(True)
    x = next(iter(shifted.train))[0].asnumpy()
    assert x.shape == (32, 3, SIZE, SIZE) and abs(x.mean()) < 0.5


def _write_supernet_json(tmp_path, split):
    params = tmp_path / "ShuffleNas-supernet-final.params"
    params.write_bytes(b"")
    with open(str(tmp_path / "ShuffleNas-supernet-final.json"), "w") as f:
        json.dump({"config": {"holdout_search": split.get("holdout", 0)}, "split": split}, f)
    return str(params)


def test_search_takes_the_supernets_split_and_refuses_another(tmp_path):
    params = _write_supernet_json(tmp_path, {"holdout": HOLD, "digest": "x"})
    assert resolve_holdout(None, params)[0] == HOLD
    assert resolve_holdout(HOLD, params)[0] == HOLD
    assert resolve_holdout(0, params)[0] == 0          # scoring on val leaks nothing
    with pytest.raises(ValueError, match="does not match the supernet, which held out 120"):
        resolve_holdout(HOLD + 10, params)
    assert resolve_holdout(None, str(tmp_path / "elsewhere.params"))[0] == 0
    # same count, other images (e.g. folder vs RecordIO): refused by digest
    cfg = SearchConfig(dataset="digits", input_size=SIZE, batch_size=64, num_workers=0,
                       update_bn_images=32)
    count, known = resolve_holdout(None, params)
    with pytest.raises(ValueError, match="held-out images differ"):
        load_search_data(cfg, mx.cpu(), count, known)


def test_search_scores_candidates_on_the_held_out_images():
    cfg = SearchConfig(dataset="digits", input_size=SIZE, batch_size=64, num_workers=0,
                       update_bn_images=64)
    data = load_search_data(cfg, mx.cpu(), HOLD)
    assert data.split["name"] == "holdout" and data.split["images"] == HOLD
    held = _splits(True).holdout
    expected_x = np.concatenate([d.asnumpy() for d, _ in held])
    expected_y = np.concatenate([l.asnumpy() for _, l in held])
    got_x = np.concatenate([d.asnumpy() for d, _ in data.scoring])
    np.testing.assert_array_equal(got_x, expected_x)
    # calibration images come from the training part (not one of them is held out)
    calib = data.calib.asnumpy().reshape(len(data.calib), -1)
    flat = expected_x.reshape(len(expected_x), -1)
    assert not any(np.allclose(c, h) for c in calib[:16] for h in flat)
    # the evaluator's accuracy is the accuracy on exactly these images
    mx.random.seed(0)
    supernet = get_model("ShuffleNas", use_se=True, last_conv_after_pooling=True, classes=10)
    supernet.initialize()
    evaluator = CandidateEvaluator(supernet, data.calib, data.scoring)
    arch = Architecture.sample(np.random.default_rng(3))
    res = evaluator.evaluate(arch)
    out = evaluator.prepare_subnet(arch)(mx.nd.array(expected_x)).asnumpy()
    assert res["top1"] == pytest.approx(float((out.argmax(1) == expected_y).mean()))
    z = out - out.max(1, keepdims=True)
    loss = -(z - np.log(np.exp(z).sum(1, keepdims=True)))[np.arange(HOLD),
                                                          expected_y.astype(int)]
    assert res["loss"] == pytest.approx(float(loss.mean()), rel=1e-4)


def test_validation_split_without_holdout():
    cfg = SearchConfig(dataset="digits", input_size=SIZE, batch_size=64, num_workers=0,
                       update_bn_images=32)
    data = load_search_data(cfg, mx.cpu(), 0)
    assert data.split["name"] == "val" and data.split["images"] == 359


def test_trainer_and_search_hold_out_the_same_images(tmp_path):
    from oneshot_nas.training import TrainConfig, train
    cfg = TrainConfig(dataset="digits", input_size=SIZE, batch_size=32, num_epochs=1,
                      use_se=True, last_conv_after_pooling=True, num_workers=0,
                      max_batches_per_epoch=2, update_bn_images=64, holdout_search=HOLD,
                      save_dir=str(tmp_path), metrics_file=str(tmp_path / "m.jsonl"),
                      progress=False, lr=0.05)
    summary = train(cfg)
    assert summary["eval_split"] == "holdout"
    with open(str(tmp_path / "m.jsonl")) as f:
        vals = [json.loads(l) for l in f if '"val"' in l]
    assert vals and all(v["split"] == "holdout" for v in vals)
    params = summary["final_params"]
    count, known = resolve_holdout(None, params)
    assert count == HOLD and known["digest"] == summary["split"]["digest"]
    search_cfg = SearchConfig(dataset="digits", input_size=SIZE, batch_size=64, num_workers=0,
                              update_bn_images=32)
    data = load_search_data(search_cfg, mx.cpu(), count, known)
    assert data.split["digest"] == known["digest"] and data.split["images"] == HOLD


def test_imagenet_records_with_a_held_out_split_and_shards(tmp_path):
    """RecordIO (ImageNet style): records read by position, sharded, held-out ones never
    trained on; the image of record i has the value i and the label i."""
    writer_dir = str(tmp_path)
    rec, idx = os.path.join(writer_dir, "t.rec"), os.path.join(writer_dir, "t.idx")
    writer = mx.recordio.MXIndexedRecordIO(idx, rec, "w")
    for i in range(90):
        header = mx.recordio.IRHeader(0, float(i), i, 0)
        writer.write_idx(i, mx.recordio.pack_img(header, np.full((8, 8, 3), i, np.uint8),
                                                 quality=3, img_fmt=".png"))
    writer.close()
    kwargs = dict(use_rec=True, rec_train=rec, rec_val=rec, input_size=8, batch_size=8,
                  num_workers=0, augment=False, holdout=20, num_parts=2)
    held_all, train_all = [], []
    for part in range(2):
        splits = make_split_loaders("imagenet", part_index=part, **kwargs)
        assert splits.info.num_holdout == 20 and splits.info.num_train == 70
        for data, label in splits.train:
            pixels = data.asnumpy()[:, 0, 0, 0] * 58.395 + 123.675
            np.testing.assert_allclose(pixels, label.asnumpy(), atol=0.01)
            train_all += label.asnumpy().astype(int).tolist()
        held_all += np.concatenate([l.asnumpy() for _, l in splits.holdout]).astype(int).tolist()
    assert sorted(held_all) == holdout_split(90, 20)[1].tolist()   # every held-out image once
    assert not set(train_all) & set(held_all)
    assert len(train_all) == len(set(train_all)) == 2 * (35 // 8) * 8  # disjoint equal shards
