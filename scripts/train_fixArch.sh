#!/bin/sh
# Train the OneShot subnet (docs/design.md, section 5; no SE) from scratch, hybridized.
# ImageNet recipe: lr 1.3, wd 3e-5, cosine, 360 epochs, 4 GPUs x 256, float16, label smoothing,
# no wd on BN/bias, 5 warm-up epochs, NAG. DATASET=digits: the digits recipe on the CPU.
set -e
. "$(dirname "$0")/common.sh"
BLOCK_CHOICES=${BLOCK_CHOICES:-0,0,3,1,1,1,0,0,2,0,2,1,1,0,2,0,2,1,3,2}
CHANNEL_CHOICES=${CHANNEL_CHOICES:-6,5,3,5,2,6,3,4,2,5,7,5,4,6,7,4,4,5,4,3}
if [ "$DATASET" = digits ]; then
    RECIPE="--num-epochs ${NUM_EPOCHS:-12} --lr 0.2 --wd 3e-5 --lr-mode cosine --warmup-epochs 1 --no-augment"
elif [ "$DATASET" = fashion-mnist ]; then
    # the stand-alone protocol of the ground-truth table (docs/ranking.md)
    RECIPE="--num-epochs ${NUM_EPOCHS:-8} --lr 0.1 --wd 4e-5 --lr-mode cosine --warmup-epochs 1 \
--train-subset ${TRAIN_SUBSET:-10000} --val-interval 4"
else
    RECIPE="--num-epochs ${NUM_EPOCHS:-360} --lr 1.3 --wd 3e-5 --lr-mode cosine --warmup-epochs 5 --label-smoothing"
    NUM_GPUS=${NUM_GPUS:-4}
fi
# shellcheck disable=SC2046
exec $PYTHON train_imagenet.py $(data_flags 256) $(horovod_flag) \
    --model ShuffleNas_fixArch --block-choices "$BLOCK_CHOICES" --channel-choices "$CHANNEL_CHOICES" \
    --channels-layout ${CHANNELS_LAYOUT:-OneShot} ${FIXARCH_FLAGS:-} --mode hybrid \
    --no-wd --optimizer nag --momentum 0.9 $RECIPE \
    --save-frequency ${SAVE_FREQUENCY:-10} --save-dir ${SAVE_DIR:-params_fixArch} \
    --logging-file "$LOG_DIR/${LOG_NAME:-shufflenas_oneshot}.log" "$@"
