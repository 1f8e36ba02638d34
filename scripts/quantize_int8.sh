#!/bin/sh
# Quantize a trained fixed subnet to int8 with MKLDNN and evaluate the deployed variants.
#   MODEL=OneShot-S+            a preset, or with BLOCK_CHOICES / CHANNEL_CHOICES (and USE_SE=1,
#                               LAST_CONV_AFTER_POOLING=1 as trained) ShuffleNas_fixArch
#   PARAMS=params/OneShot-S+-final.params   trained weights (net.save_parameters)
#   DATASET=imagenet|digits|fashion-mnist   calibration (training split) and evaluation (validation split)
#   IMAGENET_REC=~/imagenet/rec RecordIO folder for DATASET=imagenet
#   CALIB_MODE=naive|entropy|none   NUM_CALIB_BATCHES=10   OUTPUT_DIR=(folder of PARAMS)
#   SYMBOL=run/OneShot-S+-symbol.json   an exported pair instead of MODEL (PARAMS defaults to
#                               its -0000.params)
# Extra arguments are passed through, e.g. --speed, --exclude-first-conv, --shuffle-method conv,
# --no-quantize.
# Example: DATASET=digits PARAMS=/tmp/run/OneShot-S+-final.params sh scripts/quantize_int8.sh
set -e
. "$(dirname "$0")/common.sh"
if [ -n "${BLOCK_CHOICES:-}" ]; then
    MODEL=${MODEL:-ShuffleNas_fixArch}
else
    MODEL=${MODEL:-OneShot-S+}
fi
CALIB_MODE=${CALIB_MODE:-naive}
NUM_CALIB_BATCHES=${NUM_CALIB_BATCHES:-10}

set -- --calib-mode "$CALIB_MODE" --num-calib-batches "$NUM_CALIB_BATCHES" --eval \
    --logging-file "$LOG_DIR/quantize_${CALIB_MODE}.log" "$@"
if [ -n "${OUTPUT_DIR:-}" ]; then
    set -- --output-dir "$OUTPUT_DIR" "$@"
fi
if [ -n "${BLOCK_CHOICES:-}" ]; then
    set -- --block-choices "$BLOCK_CHOICES" --channel-choices "$CHANNEL_CHOICES" "$@"
    if [ "${USE_SE:-0}" = 1 ]; then set -- --use-se "$@"; fi
    if [ "${LAST_CONV_AFTER_POOLING:-0}" = 1 ]; then set -- --last-conv-after-pooling "$@"; fi
fi
if [ "$DATASET" = digits ]; then
    set -- --dataset digits --input-size 32 "$@"
elif [ "$DATASET" = fashion-mnist ]; then
    set -- --dataset fashion-mnist ${FASHION_MNIST_DIR:+--data-dir "$FASHION_MNIST_DIR"} \
        --input-size 32 -j 0 "$@"
else
    set -- --dataset imagenet --use-rec --rec-train "$IMAGENET_REC/train.rec" \
        --rec-train-idx "$IMAGENET_REC/train.idx" --rec-val "$IMAGENET_REC/val.rec" \
        --rec-val-idx "$IMAGENET_REC/val.idx" -j "${NUM_WORKERS:-4}" "$@"
fi
if [ -n "${SYMBOL:-}" ]; then
    if [ -n "${PARAMS:-}" ]; then set -- --params "$PARAMS" "$@"; fi
    exec "$PYTHON" -m oneshot_nas.cli.quantize --symbol "$SYMBOL" "$@"
fi
exec "$PYTHON" -m oneshot_nas.cli.quantize --model "$MODEL" \
    --params "${PARAMS:-params/$MODEL-final.params}" "$@"
