# Shared settings of the training scripts (sourced). Override with environment variables:
#   DATASET=imagenet|digits|fashion-mnist   IMAGENET_REC=~/imagenet/rec   NUM_GPUS=1   BATCH_SIZE=...
#   NUM_EPOCHS=...  SAVE_DIR=...  LOG_DIR=logs  PYTHON=python  HOROVOD=1 (launch under horovodrun)
#   INPUT_SIZE=48 (px; default 32 for digits and Fashion-MNIST, 224 for ImageNet)
# Extra command-line arguments are passed through to train_imagenet.py.
DATASET=${DATASET:-imagenet}
IMAGENET_REC=${IMAGENET_REC:-$HOME/imagenet/rec}
LOG_DIR=${LOG_DIR:-logs}
PYTHON=${PYTHON:-python}
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x .venv/bin/python ] && [ "$PYTHON" = python ]; then
    PYTHON=.venv/bin/python
fi
mkdir -p "$LOG_DIR"

# data_flags <per-device batch for imagenet>
data_flags() {
    if [ "$DATASET" = digits ]; then
        echo "--dataset digits --input-size ${INPUT_SIZE:-32} --num-gpus 0 -j 2 --batch-size ${BATCH_SIZE:-64}"
    elif [ "$DATASET" = fashion-mnist ]; then
        # Debian's dataset-fashion-mnist (or FASHION_MNIST_DIR with the four IDX files)
        echo "--dataset fashion-mnist ${FASHION_MNIST_DIR:+--data-dir $FASHION_MNIST_DIR} \
--input-size ${INPUT_SIZE:-32} --num-gpus 0 -j 0 --batch-size ${BATCH_SIZE:-64}"
    else
        echo "--dataset imagenet --use-rec --rec-train $IMAGENET_REC/train.rec \
--rec-train-idx $IMAGENET_REC/train.idx --rec-val $IMAGENET_REC/val.rec \
--rec-val-idx $IMAGENET_REC/val.idx --num-gpus ${NUM_GPUS:-1} -j ${NUM_WORKERS:-16} \
--batch-size ${BATCH_SIZE:-$1} --dtype float16 ${INPUT_SIZE:+--input-size $INPUT_SIZE}"
    fi
}

horovod_flag() {
    if [ "${HOROVOD:-0}" = 1 ]; then echo "--horovod"; fi
}
