#!/bin/sh
# The same supernet recipe on the ShuffleNetV2+ channel layout ([48, 128, 256, 512]), never
# sampling the 0.2x / 0.4x scales.
exec sh "$(dirname "$0")/train_supernet.sh" --channels-layout ShuffleNetV2+ --ignore-first-two-cs "$@"
