"""report_crashes: a native crash ends a worker at once with its Python stacks; SIGUSR1 prints
the stacks of a live one (what tests/test_horovod.py collects from a hung run)."""
import os
import signal
import subprocess
import sys
import time

# A segmentation fault inside a running MXNet operator (a custom operator's forward, in
# MXNet's custom-operator thread), as a crash in an engine operation of a Horovod worker.
CRASH_IN_OPERATOR = """
import ctypes, sys
import mxnet as mx
from oneshot_nas.cli.common import report_crashes
if sys.argv[1] == "report":
    report_crashes()

class Crash(mx.operator.CustomOp):
    def forward(self, is_train, req, in_data, out_data, aux):
        ctypes.string_at(0)

@mx.operator.register("crash_in_forward")
class CrashProp(mx.operator.CustomOpProp):
    def create_operator(self, ctx, shapes, dtypes):
        return Crash()

mx.nd.Custom(mx.nd.ones(3), op_type="crash_in_forward").asnumpy()
"""

WAITING = """
import sys, time
from oneshot_nas.cli.common import report_crashes
report_crashes()

def waiting_for_a_peer():
    print("ready", flush=True)
    time.sleep(600)

waiting_for_a_peer()
"""


def _python(code, *args):
    return [sys.executable, "-c", code] + list(args)


def test_a_crash_in_an_operator_kills_the_process_with_its_python_stacks():
    proc = subprocess.run(_python(CRASH_IN_OPERATOR, "report"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGSEGV, proc.stderr[-3000:]
    assert "Fatal Python error: Segmentation fault" in proc.stderr
    # the crashing thread's Python frames, and the main thread waiting for the result
    assert "in forward" in proc.stderr and "in asnumpy" in proc.stderr, proc.stderr[-3000:]


def test_without_it_mxnet_reports_the_crash_without_a_stack():
    """What MXNet 1.9.1's own SIGSEGV handler does (the reason for report_crashes): it calls
    exit() from the signal handler, which does not end with the crash signal (here the
    process aborts in a destructor or exits with 255; in a Horovod worker it hung)."""
    proc = subprocess.run(_python(CRASH_IN_OPERATOR, "mxnet"), capture_output=True, text=True,
                          timeout=300)
    assert "Segmentation fault: 11" in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode != -signal.SIGSEGV
    assert "in forward" not in proc.stderr


def test_sigusr1_prints_the_python_stacks_of_a_live_process():
    proc = subprocess.Popen(_python(WAITING), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGUSR1)
        time.sleep(2)
        assert proc.poll() is None            # still running: the dump does not end it
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=60)
    assert "in waiting_for_a_peer" in err, err[-3000:]
