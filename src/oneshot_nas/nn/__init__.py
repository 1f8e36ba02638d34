"""Layers: activations, SE, channel shuffle, depthwise / elastic convolution, NasBatchNorm."""
from .activations import HardSigmoid, HardSwish, make_activation
from .batchnorm import (NasBatchNorm, bn_recalibration, iter_blocks, recalibrate_bn,
                        share_bn_statistics, sync_bn_statistics)
from .depthwise import (DepthwiseConv2D, depthwise_conv, specialized_graph,
                        use_fast_depthwise)
from .layers import SE, ElasticConv2D
from .shuffle import ShuffleConv, ShuffleReshape, make_shuffle, shuffle_permutation
