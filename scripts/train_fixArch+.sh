#!/bin/sh
# Train OneShot-S+ (SE, last conv after pooling, the searched choices of docs/design.md, section 5) from
# scratch; BLOCK_CHOICES / CHANNEL_CHOICES override the architecture (e.g. a search result).
BLOCK_CHOICES=${BLOCK_CHOICES:-0,0,0,1,0,0,1,0,3,2,0,1,2,2,1,2,0,0,2,0}
CHANNEL_CHOICES=${CHANNEL_CHOICES:-8,7,6,8,5,7,3,4,2,4,2,3,4,5,6,6,3,3,4,6}
FIXARCH_FLAGS="--use-se --last-conv-after-pooling"
LOG_NAME=${LOG_NAME:-shufflenas_oneshot+}
export BLOCK_CHOICES CHANNEL_CHOICES FIXARCH_FLAGS LOG_NAME
exec sh "$(dirname "$0")/train_fixArch.sh" "$@"
