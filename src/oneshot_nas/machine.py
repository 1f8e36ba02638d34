"""Describe the machine that produced a measurement (benchmarks, latency tables)."""
import os
import platform

import mxnet as mx

__all__ = ["cpu_name", "describe_machine", "check_num_gpus", "parse_devices",
           "resolve_contexts"]


def cpu_name():
    """The CPU model from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe_machine():
    """``'<cpu>, <n> cores, Python x.y.z, mxnet a.b.c (MKLDNN True)'``."""
    return "%s, %d cores, Python %s, mxnet %s (MKLDNN %s)" % (
        cpu_name(), os.cpu_count(), platform.python_version(), mx.__version__,
        mx.runtime.Features().is_enabled("MKLDNN"))


def check_num_gpus(num_gpus, flag="--num-gpus"):
    """ValueError naming ``flag`` unless ``num_gpus`` GPUs are present (0 always is)."""
    if num_gpus < 0:
        raise ValueError("%s must be >= 0, got %d" % (flag, num_gpus))
    if num_gpus == 0:
        return
    try:
        present = mx.context.num_gpus()
    except mx.base.MXNetError:          # no CUDA driver
        present = 0
    if num_gpus > present:
        raise ValueError("%s %d, but this machine has %d GPU(s)%s"
                         % (flag, num_gpus, present,
                            "" if present else " (use --num-gpus 0 to run on the CPU)"))


def _present_gpus():
    try:
        return mx.context.num_gpus()
    except mx.base.MXNetError:          # no CUDA driver
        return 0


def parse_devices(text, flag="--devices"):
    """The contexts named by ``text`` (``'cpu:0,cpu:1'``, ``'gpu:2,gpu:3'``; ``'cpu'`` means
    ``cpu:0``), in the given order.

    Raises
    ------
    ValueError
        One line naming ``flag`` for an unknown device type, a malformed or repeated entry,
        or a GPU this machine does not have.
    """
    entries = [e.strip() for e in str(text or "").split(",")]
    if not text or not all(entries):
        raise ValueError("%s %r: give a comma-separated list such as cpu:0,cpu:1 or gpu:0,gpu:1"
                         % (flag, text))
    contexts, seen = [], set()
    for entry in entries:
        kind, _, index = entry.lower().partition(":")
        index = index or "0"
        if kind not in ("cpu", "gpu") or not index.isdigit():
            raise ValueError("%s: unknown device %r; use cpu:N or gpu:N (e.g. cpu:0,cpu:1)"
                             % (flag, entry))
        if (kind, int(index)) in seen:
            raise ValueError("%s: device %s:%s is listed twice" % (flag, kind, index))
        seen.add((kind, int(index)))
        if kind == "gpu":
            present = _present_gpus()
            if int(index) >= present:
                raise ValueError("%s: device %s is absent: this machine has %d GPU(s)%s"
                                 % (flag, entry, present,
                                    " (gpu:0 to gpu:%d)" % (present - 1) if present
                                    else "; use cpu:0 (or cpu:0,cpu:1 for two CPU contexts)"))
            contexts.append(mx.gpu(int(index)))
        else:
            contexts.append(mx.cpu(int(index)))
    return contexts


def resolve_contexts(devices=None, num_gpus=0):
    """The contexts of ``--devices`` if given, else ``--num-gpus`` GPUs, else ``[cpu(0)]``.

    ``--devices`` and a non-zero ``--num-gpus`` together are refused (ValueError)."""
    if devices:
        if num_gpus:
            raise ValueError("--devices %s and --num-gpus %d both choose the devices; give "
                             "only one of them" % (devices, num_gpus))
        return parse_devices(devices)
    check_num_gpus(num_gpus)
    return [mx.gpu(i) for i in range(num_gpus)] or [mx.cpu()]
