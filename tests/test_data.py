"""Data layer: digits cache, RecordIO / folder / synthetic loaders, sharding, errors."""
import os
import shutil

import cv2
import mxnet as mx
import numpy as np
import pytest

from oneshot_nas.data import (DataError, DataInfo, digits_split, make_loaders, prepare_digits,
                              read_index, read_labels, read_lst, reduced_subset)
from oneshot_nas.data import digits as digits_module
from oneshot_nas.data.transforms import record_augmentation

SIZE = 32


@pytest.fixture(scope="session")
def digits_cache(tmp_path_factory):
    """One digits preparation for the whole session, in a temporary cache."""
    cache = str(tmp_path_factory.mktemp("cache"))
    paths = prepare_digits(SIZE, cache_dir=cache)
    return cache, paths


@pytest.fixture(autouse=True)
def _cache_env(digits_cache, monkeypatch):
    # Every test reads the temporary cache through the environment, never ~/.cache.
    monkeypatch.setenv("ONESHOT_NAS_CACHE", digits_cache[0])


@pytest.fixture()
def paths(digits_cache):
    return digits_cache[1]


def _write_rec(folder, num, name="t", label=lambda i: i, payload=None):
    """A small indexed RecordIO file whose record i holds an 8x8 image of value i."""
    os.makedirs(folder, exist_ok=True)
    rec, idx = os.path.join(folder, name + ".rec"), os.path.join(folder, name + ".idx")
    writer = mx.recordio.MXIndexedRecordIO(idx, rec, "w")
    for i in range(num):
        header = mx.recordio.IRHeader(0, float(label(i)), i, 0)
        image = np.full((8, 8, 3), i % 256, np.uint8)
        writer.write_idx(i, payload(header, i) if payload else
                         mx.recordio.pack_img(header, image, quality=3, img_fmt=".png"))
    writer.close()
    return rec, idx


def _epoch_labels(loader):
    return np.concatenate([label.asnumpy() for _, label in loader])


def _decode_all(loader):
    data, labels = zip(*[(d.asnumpy(), l.asnumpy()) for d, l in loader])
    return np.concatenate(data), np.concatenate(labels)


# -- preparation ----------------------------------------------------------------------------

def test_prepare_writes_folder_rec_idx_lst_in_the_env_cache(paths, digits_cache):
    assert paths["dir"].startswith(digits_cache[0])
    assert (paths["num_classes"], paths["num_train"], paths["num_val"]) == (10, 1438, 359)
    for split, count in (("train", 1438), ("val", 359)):
        reader = mx.recordio.MXIndexedRecordIO(paths["rec_%s_idx" % split],
                                               paths["rec_" + split], "r")
        keys, labels, rel = read_lst(paths["lst_" + split])
        assert len(reader.keys) == len(keys) == count
        assert list(reader.keys) == keys.tolist()
        for key, label in list(zip(keys, labels))[:20]:
            header, image = mx.recordio.unpack_img(reader.read_idx(int(key)))
            assert header.label == label and header.id == key
            assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
        reader.close()
    # .lst lines as im2rec writes them: key, label with %f, path relative to the split root.
    first = open(paths["lst_train"]).readline().rstrip("\n").split("\t")
    assert len(first) == 3 and first[1].endswith(".000000") and first[2].endswith(".png")
    assert os.path.isfile(os.path.join(paths["root"], "train", first[2]))


def test_folder_and_rec_hold_the_same_images_per_split_and_class(paths):
    for split in ("train", "val"):
        rec_labels = read_labels(read_index(paths["rec_" + split], paths["rec_%s_idx" % split]))
        per_class = [len(os.listdir(os.path.join(paths["root"], split, str(c))))
                     for c in range(10)]
        assert np.bincount(rec_labels.astype(int)).tolist() == per_class
        keys, labels, rel = read_lst(paths["lst_" + split])
        reader = mx.recordio.MXIndexedRecordIO(paths["rec_%s_idx" % split],
                                               paths["rec_" + split], "r")
        for key, path in list(zip(keys, rel))[::37]:
            _, from_rec = mx.recordio.unpack_img(reader.read_idx(int(key)))
            from_png = cv2.imread(os.path.join(paths["root"], split, path))
            np.testing.assert_array_equal(from_rec, from_png)  # PNG: lossless, identical
        reader.close()


def test_split_is_fixed_stratified_and_disjoint():
    from sklearn.datasets import load_digits
    labels = load_digits().target
    train, val = digits_split(labels)
    train2, val2 = digits_split(labels)
    np.testing.assert_array_equal(val, val2)
    np.testing.assert_array_equal(train, train2)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 1797
    # 20 % of every class, rounded.
    np.testing.assert_array_equal(np.bincount(labels[val]),
                                  np.round(np.bincount(labels) * 0.2).astype(int))
    # Pinned: a change of the split would silently change every reported accuracy.
    assert (len(val), int(val.sum()), val[:5].tolist()) == (359, 323812, [8, 14, 23, 26, 34])


def test_prepare_reuses_the_cache(paths, digits_cache, monkeypatch):
    def fail(*args):
        raise AssertionError("the cache was rebuilt")
    monkeypatch.setattr(digits_module, "_build", fail)
    again = prepare_digits(SIZE)
    assert again == paths


def test_interrupted_preparation_leaves_no_cache(tmp_path, monkeypatch):
    real_build = digits_module._build

    def interrupted(folder, size):
        real_build(folder, size)
        raise KeyboardInterrupt  # after every file was written, before the rename

    monkeypatch.setattr(digits_module, "_build", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_digits(16, cache_dir=str(tmp_path))
    assert os.listdir(str(tmp_path)) == []
    monkeypatch.setattr(digits_module, "_build", real_build)
    paths = prepare_digits(16, cache_dir=str(tmp_path))
    assert sorted(os.listdir(str(tmp_path))) == [os.path.basename(paths["dir"])]
    assert cv2.imread(os.path.join(paths["root"], "val", "3",
                                   os.listdir(os.path.join(paths["root"], "val", "3"))[0])
                      ).shape == (16, 16, 3)


def test_cache_defaults_to_home_without_env(monkeypatch, tmp_path):
    monkeypatch.delenv("ONESHOT_NAS_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert digits_module.cache_root() == os.path.join(str(tmp_path), ".cache", "oneshot_nas")


# -- loaders ---------------------------------------------------------------------------------

@pytest.mark.parametrize("use_rec", [True, False])
def test_digits_loaders_shapes_counts_and_info(use_rec):
    train, val, info = make_loaders("digits", use_rec=use_rec, input_size=SIZE, batch_size=64,
                                    num_workers=2 if use_rec else 0)
    assert isinstance(info, DataInfo)
    assert (info.num_classes, info.num_train, info.num_val) == (10, 1438, 359)
    assert info.source == ("recordio" if use_rec else "folder")
    assert len(train) == 1438 // 64 and len(val) == 6
    sizes = []
    for data, label in train:
        assert data.shape == (64, 3, SIZE, SIZE) and data.dtype == np.float32
        assert label.shape == (64,) and label.dtype == np.float32
        sizes.append(data.shape[0])
    assert len(sizes) == len(train)  # the last partial batch is dropped
    data, labels = _decode_all(val)
    assert data.shape == (359, 3, SIZE, SIZE)  # all of val: the last batch is smaller
    assert np.bincount(labels.astype(int)).tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
    # Normalised with the training pixel statistics.
    assert abs(data.mean()) < 0.2 and 0.8 < data.std() < 1.2


def _centroid_accuracy(train_x, train_y, test_x, test_y):
    centroids = np.stack([train_x[train_y == c].mean(0) for c in range(10)])
    flat = centroids.reshape(10, -1)
    distances = ((test_x.reshape(len(test_x), -1)[:, None, :] - flat[None]) ** 2).sum(-1)
    return float((distances.argmin(1) == test_y).mean())


@pytest.mark.parametrize("use_rec", [True, False])
@pytest.mark.skipif(mx.context.num_gpus() > 0, reason="GPU machines keep pinned batches")
def test_batches_feed_a_hybridized_cpu_network(use_rec):
    # ImageRecordIter yields pinned and DataLoader workers shared memory, which a hybridized
    # network on mx.cpu() refuses.
    train, _, _ = make_loaders("digits", use_rec=use_rec, input_size=SIZE, batch_size=16,
                               num_workers=1)
    net = mx.gluon.nn.Dense(10)
    net.initialize(ctx=mx.cpu())
    net.hybridize()
    data, label = next(iter(train))
    assert data.context == label.context == mx.cpu()
    assert net(data).shape == (16, 10)


def test_labels_are_real_and_agree_between_rec_and_folder():
    train, val, _ = make_loaders("digits", use_rec=True, input_size=SIZE, batch_size=100,
                                 augment=False, num_workers=2)
    train_x, train_y = _decode_all(train)
    val_x, val_y = _decode_all(val)
    # Nearest class centroid: about 90 % on these digits; chance is 10 %.
    assert _centroid_accuracy(train_x, train_y, val_x, val_y) > 0.8
    _, folder_val, _ = make_loaders("digits", use_rec=False, input_size=SIZE, batch_size=100,
                                    num_workers=0)
    folder_x, folder_y = _decode_all(folder_val)
    assert _centroid_accuracy(train_x, train_y, folder_x, folder_y) > 0.8
    # Same images, same normalisation, other order: the class means agree.
    for c in range(10):
        np.testing.assert_allclose(val_x[val_y == c].mean(0), folder_x[folder_y == c].mean(0),
                                   atol=1e-4)


@pytest.mark.parametrize("use_rec", [True, False])
def test_digit_augmentation_is_mild_and_never_mirrors(use_rec):
    kwargs = record_augmentation("digits", True, SIZE, 0.875, True, (0,) * 3, (1,) * 3)
    assert not kwargs.get("rand_mirror") and not kwargs.get("mirror")
    plain, _, _ = make_loaders("digits", use_rec=True, input_size=SIZE, batch_size=100,
                               augment=False, num_workers=2)
    plain_x, plain_y = _decode_all(plain)
    augmented, _, _ = make_loaders("digits", use_rec=use_rec, input_size=SIZE, batch_size=100,
                                   num_workers=2 if use_rec else 0)
    aug_x, aug_y = _decode_all(augmented)
    assert not np.allclose(np.sort(aug_x.ravel()), np.sort(plain_x.ravel()))  # it augments
    assert _centroid_accuracy(plain_x, plain_y, aug_x, aug_y) > 0.75


@pytest.mark.parametrize("use_rec", [True, False])
def test_training_order_reshuffles_per_epoch_from_seed_and_epoch(use_rec):
    def loader(seed=0):
        return make_loaders("digits", use_rec=use_rec, input_size=SIZE, batch_size=128,
                            num_workers=2 if use_rec else 0, seed=seed)[0]
    first = loader()
    epoch0, epoch1 = _epoch_labels(first), _epoch_labels(first)
    assert not np.array_equal(epoch0, epoch1)
    again = loader()
    np.testing.assert_array_equal(_epoch_labels(again), epoch0)
    resumed = loader()
    resumed.set_epoch(1)  # a resumed run sees the uninterrupted run's order
    np.testing.assert_array_equal(_epoch_labels(resumed), epoch1)
    assert not np.array_equal(_epoch_labels(loader(seed=1)), epoch0)


def test_reduced_dataset_scale_uses_a_fixed_fraction():
    for use_rec in (True, False):
        train, _, info = make_loaders("digits", use_rec=use_rec, input_size=SIZE, batch_size=32,
                                      reduced_dataset_scale=4, num_workers=0)
        assert abs(info.num_train - 1438 / 4) < 2
        assert len(train) == info.num_train // 32
        assert len(_epoch_labels(train)) == len(train) * 32
    np.testing.assert_array_equal(reduced_subset(1438, 4), reduced_subset(1438, 4))
    assert len(np.unique(reduced_subset(1438, 4))) == 1438 // 4


def test_rec_shards_partition_the_records(tmp_path):
    rec, idx = _write_rec(str(tmp_path), 103)
    kwargs = dict(use_rec=True, rec_train=rec, rec_val=rec, input_size=8, batch_size=11,
                  num_workers=1, num_parts=3, augment=False)
    train_sets, val_sets, lengths = [], [], []
    for part in range(3):
        train, val, info = make_loaders("imagenet", part_index=part, **kwargs)
        assert (info.num_classes, info.num_train, info.num_val) == (103, 103, 103)
        labels = _epoch_labels(train)
        assert len(labels) == len(train) * 11 == 33  # equal shards: lock-step workers
        lengths.append(len(train))
        train_sets.append(set(labels.astype(int)))
        val_sets.append(_epoch_labels(val).astype(int).tolist())
    assert lengths == [3, 3, 3]
    assert not train_sets[0] & train_sets[1] and not train_sets[1] & train_sets[2]
    # Validation keeps every record: the shards are contiguous and cover the file.
    assert sum(val_sets, []) == list(range(103))
    # Data travels with its label: the image of record i has the value i.
    train, _, _ = make_loaders("imagenet", part_index=1, **kwargs)
    for data, label in train:
        pixels = data.asnumpy()[:, 0, 0, 0] * 58.395 + 123.675
        np.testing.assert_allclose(pixels, label.asnumpy(), atol=0.01)
    # Reduced scale with shards: the first 1/k of the file, split between the workers.
    train, _, info = make_loaders("imagenet", reduced_dataset_scale=2, part_index=2,
                                  **dict(kwargs, batch_size=5))
    assert info.num_train == 54 and len(train) == 3
    assert set(_epoch_labels(train).astype(int)) <= set(range(36, 54))


def test_folder_shards_partition_the_training_set():
    parts = [make_loaders("digits", use_rec=False, input_size=SIZE, batch_size=16,
                          num_parts=3, part_index=p, num_workers=0)
             for p in range(3)]
    for epoch in (0, 1):
        shards = [train.shard_indices(epoch) for train, _, _ in parts]
        joined = np.concatenate(shards)
        assert len(np.unique(joined)) == len(joined) == 3 * (1438 // 3 // 16) * 16
    assert len({len(train) for train, _, _ in parts}) == 1
    val_total = sum(len(_epoch_labels(val)) for _, val, _ in parts)
    assert val_total == 359
    train = parts[1][0]
    train.set_epoch(1)
    items = train._loader._dataset._items
    expected = [items[i][1] for i in train.shard_indices(1)]
    np.testing.assert_array_equal(_epoch_labels(train), expected)


def test_imagenet_style_pipelines_on_the_digits_files(paths):
    common = dict(input_size=24, batch_size=50, num_workers=2, crop_ratio=0.875)
    for kwargs in (dict(use_rec=True, rec_train=paths["rec_train"], rec_val=paths["rec_val"]),
                   dict(data_dir=paths["root"], num_workers=0)):
        train, val, info = make_loaders("imagenet", **dict(common, **kwargs))
        assert info.num_classes == 10 and info.mean[0] == 123.675
        data, label = next(iter(train))
        assert data.shape == (50, 3, 24, 24)
        assert np.isfinite(data.asnumpy()).all()
        data, label = next(iter(val))
        assert data.shape == (50, 3, 24, 24)


def test_synthetic_data_is_fixed_and_configurable():
    train, val, info = make_loaders("synthetic", batch_size=8, input_size=64, synthetic_size=40,
                                    num_classes=7, dtype="float16")
    assert (info.num_classes, info.num_train, info.num_val) == (7, 40, 10)
    assert len(train) == 5 and len(val) == 2
    batches = [(d.asnumpy(), l.asnumpy()) for d, l in train]
    assert all(d.shape == (8, 3, 64, 64) and d.dtype == np.float16 for d, _ in batches)
    assert all(l.dtype == np.float32 and l.max() < 7 for _, l in batches)
    second = [(d.asnumpy(), l.asnumpy()) for d, l in train]
    key = lambda pair: pair[0].sum()  # noqa: E731
    for (a, _), (b, _) in zip(sorted(batches, key=key), sorted(second, key=key)):
        np.testing.assert_array_equal(a, b)  # the same images, reshuffled batch order
    assert [d.shape[0] for d, _ in val] == [8, 2]


def test_float16_output_from_records():
    train, _, _ = make_loaders("digits", input_size=SIZE, batch_size=64, dtype="float16",
                               num_workers=1)
    data, label = next(iter(train))
    assert data.dtype == np.float16 and label.dtype == np.float32


# -- errors ----------------------------------------------------------------------------------

def _one_line_error(match, **kwargs):
    with pytest.raises(DataError) as info:
        make_loaders(**kwargs)
    message = str(info.value)
    assert "\n" not in message and match in message, message
    assert isinstance(info.value, ValueError)
    return message


def test_missing_and_corrupt_record_files_give_one_line_errors(tmp_path):
    rec, idx = _write_rec(str(tmp_path / "good"), 30)
    kwargs = dict(dataset="imagenet", use_rec=True, rec_val=rec, input_size=8, batch_size=4)
    _one_line_error(str(tmp_path / "nope.rec"), rec_train=str(tmp_path / "nope.rec"), **kwargs)
    lonely = str(tmp_path / "lonely.rec")
    shutil.copy(rec, lonely)
    _one_line_error(str(tmp_path / "lonely.idx"), rec_train=lonely, **kwargs)

    def broken(name, rec_bytes=None, idx_text=None):
        folder = tmp_path / name
        folder.mkdir()
        rec_path, idx_path = str(folder / "b.rec"), str(folder / "b.idx")
        with open(rec_path, "wb") as handle:
            handle.write(rec_bytes if rec_bytes is not None else open(rec, "rb").read())
        with open(idx_path, "w") as handle:
            handle.write(idx_text if idx_text is not None else open(idx).read())
        return rec_path, idx_path

    rec_bytes, idx_text = open(rec, "rb").read(), open(idx).read()
    lines = idx_text.splitlines(keepends=True)
    cases = {
        "cut_idx_line": (None, idx_text[:-3]),          # interrupted write of the .idx
        "cut_idx_lines": (None, "".join(lines[:20])),   # .idx missing its last lines
        "garbage_idx": (None, "\x00\x01 not an index\n"),
        "empty_idx": (None, ""),
        "wrong_offset": (None, idx_text.replace("\t%s\n" % lines[5].split("\t")[1].strip(),
                                                "\t7\n")),
        "cut_rec": (rec_bytes[:-40], None),             # interrupted write of the .rec
        "garbage_rec": (b"\x00" * len(rec_bytes), None),
    }
    for name, (rec_bytes_case, idx_case) in cases.items():
        rec_path, idx_path = broken(name, rec_bytes_case, idx_case)
        culprit = idx_path if rec_bytes_case is None else rec_path
        _one_line_error(culprit, rec_train=rec_path, rec_train_idx=idx_path, **kwargs)


def test_undecodable_record_is_reported_not_a_crash(tmp_path):
    # MXNet's decoder kills the process on such a record (SIGFPE): it must be caught first.
    rec, idx = _write_rec(str(tmp_path), 12, payload=lambda header, i: mx.recordio.pack(
        header, b"not an image" * 4))
    message = _one_line_error("no decodable image", dataset="imagenet", use_rec=True,
                              rec_train=rec, rec_val=rec, input_size=8, batch_size=4)
    assert rec in message


def test_image_folder_errors_name_the_folder(paths, tmp_path):
    root = tmp_path / "images"
    shutil.copytree(paths["root"], str(root))
    kwargs = dict(dataset="imagenet", data_dir=str(root), input_size=SIZE, batch_size=8,
                  num_workers=0)
    shutil.rmtree(str(root / "val" / "7"))
    _one_line_error(os.path.join(str(root), "val", "7"), **kwargs)
    (root / "val" / "7").mkdir()
    _one_line_error("empty class folder: " + os.path.join(str(root), "val", "7"), **kwargs)
    shutil.rmtree(str(root / "val"))
    _one_line_error(os.path.join(str(root), "val"), **kwargs)
    _one_line_error(str(tmp_path / "absent"), **dict(kwargs, data_dir=str(tmp_path / "absent")))
    _one_line_error("no data given", dataset="imagenet")


def test_undecodable_image_file_is_named(paths, tmp_path):
    root = tmp_path / "images"
    shutil.copytree(paths["root"], str(root))
    victim = root / "val" / "0" / sorted(os.listdir(str(root / "val" / "0")))[0]
    victim.write_bytes(b"truncated png")
    _, val, _ = make_loaders("imagenet", data_dir=str(root), input_size=SIZE, batch_size=400,
                             num_workers=0)
    with pytest.raises(DataError, match="cannot decode image .*%s" % victim.name):
        next(iter(val))


@pytest.mark.parametrize("kwargs,match", [
    (dict(dataset="cifar"), "unknown dataset 'cifar'"),
    (dict(dataset="synthetic", num_parts=2, part_index=2), "part index 2"),
    (dict(dataset="synthetic", reduced_dataset_scale=0), "reduced dataset scale"),
    (dict(dataset="synthetic", dtype="int8"), "dtype"),
    (dict(dataset="digits", input_size=SIZE, batch_size=2000), "fewer than the batch size"),
])
def test_bad_arguments_give_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_loaders(**kwargs)
