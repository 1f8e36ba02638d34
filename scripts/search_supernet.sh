#!/bin/sh
# Genetic search in a trained supernet with the published settings: population 50, retain 10,
# 20 generations, 20,000 BN recalibration images, joint block + channel genes, subnets no worse
# than SinglePathOneShot in normalised FLOPs / params score.
# SUPERNET_PARAMS=... (default params_supernet/ShuffleNas-supernet-final.params);
# DATASET=digits / fashion-mnist search the small data sets on the CPU; extra arguments pass
# through. Fashion-MNIST: population 16, 10 generations, fitness from the held-out loss
# (--search-score loss), the settings measured in docs/ranking.md.
# Candidates are scored on the training images the supernet held out (the count is read from
# the JSON beside SUPERNET_PARAMS); the validation split is left for the final report.
set -e
. "$(dirname "$0")/common.sh"
SUPERNET_PARAMS=${SUPERNET_PARAMS:-params_supernet/ShuffleNas-supernet-final.params}
if [ "$DATASET" = digits ]; then
    DATA="--dataset digits -j 1 --batch-size 128"
    SETTINGS="--population-size ${POPULATION:-16} --retain-length 4 --search-iters ${GENERATIONS:-5} \
--update-bn-images 1024 --max-flops ${MAX_FLOPS:-300}"
elif [ "$DATASET" = fashion-mnist ]; then
    DATA="--dataset fashion-mnist ${FASHION_MNIST_DIR:+--data-dir $FASHION_MNIST_DIR} -j 0 --batch-size 128"
    SETTINGS="--population-size ${POPULATION:-16} --retain-length 4 --search-iters ${GENERATIONS:-10} \
--update-bn-images 1024 --max-flops ${MAX_FLOPS:-300} --search-score loss"
else
    DATA="--dataset imagenet --use-rec --rec-train $IMAGENET_REC/train.rec \
--rec-train-idx $IMAGENET_REC/train.idx --rec-val $IMAGENET_REC/val.rec \
--rec-val-idx $IMAGENET_REC/val.idx --num-gpus ${NUM_GPUS:-1} -j ${NUM_WORKERS:-16} --batch-size 256"
    SETTINGS="--population-size 50 --retain-length 10 --search-iters 20 --update-bn-images 20000 \
--comparison-model SinglePathOneShot --normalised-score-max 1.0"
fi
# shellcheck disable=SC2086
exec $PYTHON search_supernet.py $DATA --supernet-params "$SUPERNET_PARAMS" \
    --use-se --last-conv-after-pooling --channels-layout OneShot --search-mode genetic \
    --random-select 0.1 --mutate-chance 0.1 --topk 5 $SETTINGS \
    --output-dir ${OUTPUT_DIR:-search_results} --export-best ${OUTPUT_DIR:-search_results}/best \
    --logging-file "$LOG_DIR/search_supernet.log" "$@"
