"""Fashion-MNIST: the IDX reader against hand-made files (good, gzipped, truncated, wrong magic,
mismatched counts, bad labels), the loaders built from them, one-line CLI errors, and the real
files from Debian's dataset-fashion-mnist when installed (make test installs them as root)."""
import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from oneshot_nas.data import DataError, make_split_loaders, read_idx
from oneshot_nas.data.fashion_mnist import (DEBIAN_DIR, FASHION_MNIST_FILES, load_fashion_mnist,
                                            stratified_subset, to_network_input)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _idx_images(images, magic=2051):
    n, rows, cols = images.shape
    return b"".join(v.to_bytes(4, "big") for v in (magic, n, rows, cols)) + images.tobytes()


def _idx_labels(labels, magic=2049):
    return magic.to_bytes(4, "big") + len(labels).to_bytes(4, "big") + labels.tobytes()


def write_fake_set(folder, train=40, test=20, gz=True, seed=0, corrupt=None):
    """Four IDX files of random 28x28 images; ``corrupt`` = (file key, bytes) replaces one."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    content = {}
    for split, n in (("train", train), ("test", test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = labels          # a visible fingerprint of the label
        content[split + "_images"] = _idx_images(images)
        content[split + "_labels"] = _idx_labels(labels)
    if corrupt:
        content[corrupt[0]] = corrupt[1]
    for key, data in content.items():
        name = FASHION_MNIST_FILES[key]
        if gz:
            with gzip.open(os.path.join(folder, name + ".gz"), "wb") as f:
                f.write(data)
        else:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
    return str(folder)


@pytest.mark.parametrize("gz", [True, False])
def test_reader_reads_what_was_written(tmp_path, gz):
    folder = write_fake_set(tmp_path / "f", gz=gz)
    data = load_fashion_mnist(folder)
    assert data["train_images"].shape == (40, 28, 28) and data["test_images"].shape == (20, 28, 28)
    np.testing.assert_array_equal(data["train_labels"], np.arange(40) % 10)
    np.testing.assert_array_equal(data["train_images"][:, 0, 0], data["train_labels"])
    # the digest is of the content: plain and gzipped files give the same one
    other = load_fashion_mnist(write_fake_set(tmp_path / "g", gz=not gz))
    assert other["digest"] == data["digest"]


def _error(tmp_path, corrupt):
    folder = write_fake_set(tmp_path / "bad", corrupt=corrupt)
    with pytest.raises(DataError) as info:
        load_fashion_mnist(folder)
    message = str(info.value)
    assert "\n" not in message and "dataset-fashion-mnist" in message
    return message


def test_truncated_file_is_one_line(tmp_path):
    images = _idx_images(np.zeros((40, 28, 28), np.uint8))
    message = _error(tmp_path, ("train_images", images[:-100]))
    assert "train-images-idx3-ubyte" in message and "truncated" in message


def test_wrong_magic_is_one_line(tmp_path):
    message = _error(tmp_path, ("test_labels", _idx_labels(np.zeros(20, np.uint8), magic=2051)))
    assert "t10k-labels-idx1-ubyte" in message and "magic number 2051, expected 2049" in message


def test_label_count_mismatch_is_one_line(tmp_path):
    message = _error(tmp_path, ("train_labels", _idx_labels(np.zeros(39, np.uint8))))
    assert "40 images" in message and "39 labels" in message


def test_label_out_of_range_is_one_line(tmp_path):
    message = _error(tmp_path, ("train_labels", _idx_labels(np.full(40, 12, np.uint8))))
    assert "label 12" in message


def test_header_shorter_than_its_size_and_missing_file(tmp_path):
    with open(tmp_path / "x", "wb") as f:
        f.write(b"\x00\x00\x08")
    with pytest.raises(DataError, match="shorter than its 8-byte header"):
        read_idx(str(tmp_path / "x"), "labels")
    folder = write_fake_set(tmp_path / "m")
    os.remove(os.path.join(folder, "t10k-images-idx3-ubyte.gz"))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*not found in .*apt-get install "
                                        "dataset-fashion-mnist"):
        load_fashion_mnist(folder)


def test_network_input_is_zero_padded_grey_in_three_channels():
    images = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28).astype(np.uint8)
    x = to_network_input(images, 32)
    assert x.shape == (2, 32, 32, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:, 2:30, 2:30, 1], images)
    assert x[:, :2].max() == 0 and x[:, :, 30:].max() == 0
    np.testing.assert_array_equal(x[..., 0], x[..., 2])
    assert to_network_input(images, 64).shape == (2, 64, 64, 3)


def test_image_file_pipeline_matches_the_in_memory_one(tmp_path):
    """predict / quantize on a 28 x 28 image file give the network what training gave it."""
    import mxnet as mx
    from oneshot_nas.data.transforms import folder_transform
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (1, 28, 28), dtype=np.uint8)
    mean, std = (55.8,) * 3, (84.6,) * 3
    expected = (to_network_input(grey)[0].transpose(2, 0, 1).astype(np.float32) - 55.8) / 84.6
    image = mx.nd.array(np.repeat(grey[0][..., None], 3, axis=2), dtype="uint8")
    got = folder_transform("fashion-mnist", False, 32, 0.875, False, mean, std)(image)
    np.testing.assert_allclose(got.asnumpy(), expected, rtol=1e-5, atol=1e-5)


def test_stratified_subset_is_balanced_fixed_and_inside_the_candidates():
    labels = np.repeat(np.arange(10), 30)
    positions = np.arange(0, 300, 2)                   # 15 per class remain
    keep = stratified_subset(labels, positions, 100)
    assert len(keep) == 100 and set(keep) <= set(positions)
    assert (np.bincount(labels[keep], minlength=10) == 10).all()
    np.testing.assert_array_equal(keep, stratified_subset(labels, positions, 100))
    with pytest.raises(ValueError, match="multiple of the 10 classes"):
        stratified_subset(labels, positions, 101)
    scarce = np.array([p for p in range(300) if labels[p] != 3 or p % 30 < 5])
    with pytest.raises(ValueError, match="needs 10 images of class 3, only 5 remain"):
        stratified_subset(labels, scarce, 100)
    np.testing.assert_array_equal(stratified_subset(labels, positions, 0), positions)


def test_loaders_split_holdout_subset_and_test(tmp_path):
    folder = write_fake_set(tmp_path / "f", train=200, test=30)
    splits = make_split_loaders("fashion-mnist", data_dir=folder, batch_size=16, holdout=40,
                                train_subset=100, num_workers=0)
    info = splits.info
    assert (info.num_classes, info.num_train, info.num_val, info.num_holdout) == (10, 100, 30, 40)
    assert info.classes[0] == "T-shirt/top" and info.input_size == 32
    held = set(splits.holdout.shard_indices(0))
    trained = set(splits.train.shard_indices(0)) | set(splits.train.shard_indices(1))
    assert len(held) == 40 and not held & trained
    x, y = next(iter(splits.val))
    assert x.shape == (16, 3, 32, 32)
    # the same count holds out the same images, whatever the seed
    again = make_split_loaders("fashion-mnist", data_dir=folder, batch_size=16, holdout=40,
                               seed=5, num_workers=0)
    assert again.info.holdout_digest == info.holdout_digest
    with pytest.raises(ValueError, match="--train-subset applies to --dataset fashion-mnist"):
        make_split_loaders("synthetic", batch_size=4, train_subset=100)


def test_train_cli_missing_data_is_one_line_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "train_imagenet.py", "--dataset", "fashion-mnist", "--data-dir",
         str(tmp_path / "nothing"), "--model", "OneShot-S+", "--num-epochs", "1", "--save-dir",
         "", "--logging-file", ""], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("train_imagenet.py: error: Fashion-MNIST file train-images-idx3-ubyte")
    assert "apt-get install dataset-fashion-mnist" in last and "Traceback" not in proc.stderr


needs_data = pytest.mark.skipif(
    not os.path.isfile(os.path.join(DEBIAN_DIR, "train-images-idx3-ubyte.gz")),
    reason="Debian's dataset-fashion-mnist is not installed (make test installs it as root)")


@needs_data
def test_the_real_files():
    data = load_fashion_mnist()
    assert data["train_images"].shape == (60000, 28, 28)
    assert data["test_images"].shape == (10000, 28, 28)
    assert (np.bincount(data["train_labels"]) == 6000).all()
    assert (np.bincount(data["test_labels"]) == 1000).all()
    # the mean pixel of Fashion-MNIST's training images is 72.94 (0.286 on the 0..1 scale)
    assert data["train_images"].mean() == pytest.approx(72.94, abs=0.01)


@needs_data
def test_a_protocol_at_64_px_trains_on_64_px_images_end_to_end(monkeypatch):
    """The table protocol's input size reaches the trainer: a tiny stand-alone run at 64 px
    (two batches, real files) sees 64-px batches and records a test top-1; the size is part of
    the protocol's settings and cache key, and the default (32 px) is left out of both."""
    from oneshot_nas import Architecture
    from oneshot_nas.ranking.protocol import StandaloneProtocol, train_standalone
    from oneshot_nas.training import train
    from oneshot_nas.training import trainer as trainer_module
    seen, shapes = [], set()
    split = trainer_module._split

    def recording_split(batch, ctx):
        shapes.add(tuple(batch[0].shape[1:]))
        return split(batch, ctx)
    monkeypatch.setattr(trainer_module, "_split", recording_split)

    def trainer(cfg):
        seen.append(cfg.input_size)
        return train(cfg)
    protocol = StandaloneProtocol.fashion_mnist(input_size=64, epochs=1, val_interval=1,
                                                train_subset=1000, max_batches_per_epoch=2)
    result = train_standalone(Architecture.smallest(), protocol, trainer=trainer)
    assert seen == [64] and shapes == {(3, 64, 64)}
    assert 0.0 <= result["top1"] <= 1.0 and np.isfinite(result["loss"])
    assert protocol.settings()["input_size"] == 64
    assert protocol.key(Architecture.smallest(), 0) != \
        StandaloneProtocol.fashion_mnist(input_size=48).key(Architecture.smallest(), 0)
    assert "input_size" not in StandaloneProtocol.fashion_mnist().settings()


@pytest.mark.slow
@needs_data
def test_build_table_input_size_end_to_end(tmp_path, monkeypatch, capsys):
    """``build_table --input-size 48`` on a tiny run (real files, real trainer, two batches per
    run): every run sees 48-px batches, the size is stored in the table's protocol, and a
    resumed build with another size is refused instead of mixing sizes in one table."""
    from oneshot_nas.cli import build_table
    from oneshot_nas.ranking import load_table
    from oneshot_nas.training import trainer as trainer_module
    shapes = set()
    split = trainer_module._split

    def recording_split(batch, ctx):
        shapes.add(tuple(batch[0].shape[1:]))
        return split(batch, ctx)
    monkeypatch.setattr(trainer_module, "_split", recording_split)
    out = str(tmp_path / "t48.json")
    argv = ["--output", out, "-k", "3", "--second-seed-rows", "0", "--band-seeds", "1",
            "--train-subset", "1000", "--epochs", "1", "--val-interval", "1",
            "--max-batches-per-epoch", "2", "--input-size", "48"]
    assert build_table.main(argv) == 0
    assert shapes == {(3, 48, 48)}
    table = load_table(out)
    assert table["protocol"]["input_size"] == 48 and table["complete"]
    assert "table: 3 architectures, 3 of 3 runs finished" in capsys.readouterr().out
    assert build_table.main(argv[:-1] + ["64"]) == 2
    assert "another protocol or sampling" in capsys.readouterr().err
