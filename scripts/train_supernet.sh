#!/bin/sh
# Train the OneShot+ supernet (SE, last conv after pooling; block + channel selection).
# ImageNet recipe (docs/design.md, section 6): lr 0.65, wd 4e-5, cosine, 120 epochs, batch 64 x 1 GPU,
# float16, label smoothing, no wd on BN/bias, 5 warm-up epochs, channel selection from epoch 60
# with warm-up. DATASET=digits / DATASET=fashion-mnist run the small-data recipes on the CPU.
# Both hold training images out for the search (SPOS: 50,000 on ImageNet; 360 of the 1,438
# digits training images): HOLDOUT_SEARCH=n changes the count, 0 trains on every image (and
# RecordIO training goes back to ImageRecordIter, which cannot skip the held-out records).
set -e
. "$(dirname "$0")/common.sh"
if [ "$DATASET" = digits ]; then
    # docs/supernet_digits.md: batch 64, lr 0.1 (NAG, cosine), affine-free choice-block BN,
    # ~2,000 steps (125 epochs of 1,078 images) reach 90+ % held-out top-1 at full width;
    # channel selection over the last 40 % of the run (not measured yet)
    RECIPE="--num-epochs ${NUM_EPOCHS:-125} --lr 0.1 --wd 4e-5 --lr-mode cosine --warmup-epochs 6 \
--affine-free-bn --epoch-start-cs ${EPOCH_START_CS:-75} --cs-warm-up --update-bn-images 512 \
--val-subnets 5 --val-interval ${VAL_INTERVAL:-25} --no-augment \
--holdout-search ${HOLDOUT_SEARCH:-360}"
    BATCH_SIZE=${BATCH_SIZE:-64}
elif [ "$DATASET" = fashion-mnist ]; then
    # docs/ranking.md (recipe C, chosen from the recipes tried there): every training image but
    # 5,000 held out for the search, batch 64, lr 0.1 (NAG, cosine, 1 warm-up epoch),
    # affine-free choice-block BN, uniform blocks from the start, channel selection (uniform
    # 0.2x-2.0x) from epoch 2 after two full-width epochs, 10 epochs (8,590 steps); a
    # checkpoint every epoch so that rank_check --benchmark can follow the ranking along the run
    RECIPE="--num-epochs ${NUM_EPOCHS:-10} --lr 0.1 --wd 4e-5 --lr-mode cosine --warmup-epochs 1 \
--affine-free-bn --epoch-start-cs ${EPOCH_START_CS:-2} --update-bn-images 1024 --val-subnets 3 \
--val-interval ${VAL_INTERVAL:-5} --holdout-search ${HOLDOUT_SEARCH:-5000}"
    SAVE_FREQUENCY=${SAVE_FREQUENCY:-1}
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
