"""Layers: activations, SE, channel shuffle, elastic convolution, NasBatchNorm."""
from .activations import HardSigmoid, HardSwish, make_activation
from .batchnorm import (NasBatchNorm, bn_recalibration, iter_blocks, recalibrate_bn,
                        sync_bn_statistics)
from .layers import SE, ElasticConv2D
from .shuffle import ShuffleConv, ShuffleReshape, make_shuffle, shuffle_permutation
