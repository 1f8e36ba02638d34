"""Describe the machine that produced a measurement (benchmarks, latency tables)."""
import os
import platform

__all__ = ["cpu_name", "describe_machine", "check_num_gpus"]


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
    import mxnet as mx
    return "%s, %d cores, Python %s, mxnet %s (MKLDNN %s)" % (
        cpu_name(), os.cpu_count(), platform.python_version(), mx.__version__,
        mx.runtime.Features().is_enabled("MKLDNN"))


def check_num_gpus(num_gpus, flag="--num-gpus"):
    """ValueError naming ``flag`` unless ``num_gpus`` GPUs are present (0 always is)."""
    import mxnet as mx
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
