#!/bin/sh
# Train the OneShot+ supernet (SE, last conv after pooling; block + channel selection).
# ImageNet recipe (SPEC section 7): lr 0.65, wd 4e-5, cosine, 120 epochs, batch 64 x 1 GPU,
# float16, label smoothing, no wd on BN/bias, 5 warm-up epochs, channel selection from epoch 60
# with warm-up. DATASET=digits runs the digits recipe on the CPU.
# Both hold training images out for the search (SPOS: 50,000 on ImageNet; 360 of the 1,438
# digits training images): HOLDOUT_SEARCH=n changes the count, 0 trains on every image (and
# RecordIO training goes back to ImageRecordIter, which cannot skip the held-out records).
set -e
. "$(dirname "$0")/common.sh"
if [ "$DATASET" = digits ]; then
    # the best of the digits probes (batch 16, lr 0.05, block selection first); random-path
    # supernets learn slowly on this tiny set (about 23 % after 10 minutes, see issue notes)
    RECIPE="--num-epochs ${NUM_EPOCHS:-12} --lr 0.05 --wd 4e-5 --lr-mode cosine --warmup-epochs 1 \
--epoch-start-cs ${EPOCH_START_CS:-6} --cs-warm-up --update-bn-images 512 --val-subnets 5 --no-augment \
--holdout-search ${HOLDOUT_SEARCH:-360}"
    BATCH_SIZE=${BATCH_SIZE:-16}
else
    RECIPE="--num-epochs ${NUM_EPOCHS:-120} --lr 0.65 --wd 4e-5 --lr-mode cosine \
--warmup-epochs 5 --label-smoothing --epoch-start-cs 60 --cs-warm-up --update-bn-images 20000 \
--holdout-search ${HOLDOUT_SEARCH:-50000}"
fi
# shellcheck disable=SC2046
exec $PYTHON train_imagenet.py $(data_flags 64) $(horovod_flag) \
    --model ShuffleNas --use-se --last-conv-after-pooling --channels-layout OneShot \
    --no-wd --optimizer nag --momentum 0.9 $RECIPE \
    --save-frequency ${SAVE_FREQUENCY:-10} --save-dir ${SAVE_DIR:-params_supernet} \
    --logging-file "$LOG_DIR/shufflenas_supernet.log" "$@"
