"""Describe the machine that produced a measurement (benchmarks, latency tables)."""
import os
import platform

__all__ = ["cpu_name", "describe_machine"]


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
