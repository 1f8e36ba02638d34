"""Block choices that compute the same function at a given input size.

With zero padding ``k // 2``, a ``k x k`` depthwise convolution with stride ``s`` on an
``n x n`` map only ever multiplies data with the taps whose offset ``d`` satisfies
``0 <= c + d <= n - 1`` for some output centre ``c``. Two kernels whose used taps are the same
set compute the same function class (the larger one's outer taps only ever meet padding). On
small maps this makes the ShuffleNet blocks SNB-3, SNB-5 and SNB-7 interchangeable: a
benchmark at that size cannot reward choosing one over the other, and a supernet's score gap
between two such architectures is its own noise.
"""
from ..nn.depthwise import conv_output_size
from ..search_space import BLOCK_TYPES, Architecture, block_layout

__all__ = ["used_taps", "choice_layer_maps", "kernel_groups", "same_function_layers",
           "same_function_twin"]

# the ShuffleNet (depthwise-kernel) choices; the Xception block is left out
_SHUFFLE_CHOICES = tuple(i for i, (name, _) in enumerate(BLOCK_TYPES) if name.startswith("SNB"))


def used_taps(n, kernel, stride):
    """``(first, last)`` offsets of a centred ``kernel`` (padding ``kernel // 2``, ``stride``)
    that ever meet data on an ``n``-pixel map."""
    outputs = (n - 1) // stride + 1
    last_centre = stride * (outputs - 1)
    return max(-(kernel // 2), -last_centre), min(kernel // 2, n - 1)


def choice_layer_maps(input_size, channels_layout="OneShot"):
    """``[(map size entering choice layer i, its stride)]`` for an ``input_size`` input (the
    stride-2 3x3 stem, then the 20 choice blocks)."""
    size = conv_output_size(int(input_size), 3, 2, 1)
    out = []
    for _, _, _, stride in block_layout(channels_layout):
        out.append((size, stride))
        size = conv_output_size(size, 3, stride, 1)
    return out


def kernel_groups(n, stride):
    """The ShuffleNet choices grouped by the function class they compute on an ``n``-px map:
    e.g. ``[[0, 1, 2]]`` (all three the same) or ``[[0], [1, 2]]`` (5x5 = 7x7)."""
    groups = {}
    for choice in _SHUFFLE_CHOICES:
        groups.setdefault(used_taps(n, BLOCK_TYPES[choice][1], stride), []).append(choice)
    return sorted(groups.values())


def same_function_layers(input_size, channels_layout="OneShot"):
    """``(layers where two ShuffleNet kernels coincide, layers where all of them do)``."""
    some, every = [], []
    for i, (n, stride) in enumerate(choice_layer_maps(input_size, channels_layout)):
        groups = kernel_groups(n, stride)
        if len(groups) < len(_SHUFFLE_CHOICES):
            some.append(i)
        if len(groups) == 1:
            every.append(i)
    return some, every


def same_function_twin(arch, input_size, channels_layout="OneShot"):
    """An architecture that computes the same function class as ``arch`` with other block
    choices: in every layer whose ShuffleNet kernel shares its class with another, the next
    member of the class. None when no layer of ``arch`` can change."""
    blocks = list(arch.blocks)
    for i, (n, stride) in enumerate(choice_layer_maps(input_size, channels_layout)):
        for group in kernel_groups(n, stride):
            if blocks[i] in group and len(group) > 1:
                blocks[i] = group[(group.index(blocks[i]) + 1) % len(group)]
                break
    twin = Architecture(blocks, arch.channels)
    return None if twin == arch else twin
