"""Two runs of one command train the same network, bit for bit, validation included."""
import hashlib

from oneshot_nas.training import TrainConfig, train


def _run(tmp_path, k):
    summary = train(TrainConfig(
        dataset="digits", model="ShuffleNas_fixArch",
        block_choices="3,2,2,1,3,0,2,2,3,2,1,1,1,1,2,3,0,3,2,1",
        channel_choices="9,4,4,0,6,1,8,8,0,0,7,6,5,9,1,6,0,3,6,1", use_se=True,
        last_conv_after_pooling=True, input_size=32, batch_size=64, num_epochs=3, lr=0.1,
        warmup_epochs=1, no_augment=True, max_batches_per_epoch=8, num_workers=0,
        save_dir=str(tmp_path / ("run%d" % k)), save_frequency=0, logging_file=None,
        metrics_file=None, progress=False))
    with open(summary["final_params"], "rb") as f:
        digest = hashlib.sha1(f.read()).hexdigest()
    return digest, [(e["val_top1"], e["val_loss"]) for e in summary["epochs"]]


def test_validating_between_epochs_leaves_training_repeatable(tmp_path):
    # Validating the training network itself let MKLDNN's in-place weight reorder race the
    # next training step: the second run in a process trained other weights than the first.
    runs = [_run(tmp_path, k) for k in range(2)]
    assert runs[0] == runs[1]
    assert len(runs[0][1]) == 3 and all(top1 is not None for top1, _ in runs[0][1])
