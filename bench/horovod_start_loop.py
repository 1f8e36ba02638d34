"""Start two Horovod workers (Gloo, localhost) many times and count the starts that hang.

Each start is the two-worker digits run of the Horovod tests cut to its first batches
(``--max-batches-per-epoch 2``, one epoch, a data-loading worker process per Horovod worker as
there), with Horovod's debug log on. A start that has not finished after ``--timeout`` seconds
counts as a hang: its workers' Python stacks (SIGUSR1) and native stacks (gdb, when installed)
are kept in ``--keep-dir`` with its output, and it is killed. Prints one line per start and a
count at the end.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def workers_of(launcher_pid):
    """PIDs of the ``train_imagenet.py`` Python processes below ``launcher_pid`` (Linux)."""
    children = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry))
    found, todo = [], list(children.get(launcher_pid, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open("/proc/%d/cmdline" % pid) as f:
                if "train_imagenet.py" in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def diagnose(proc, keep):
    """Python stacks of every process into the run's output, native stacks into ``keep``."""
    pids = workers_of(proc.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGUSR1)
        except OSError:
            pass
    time.sleep(3)
    gdb = shutil.which("gdb")
    for pid in pids:
        if gdb:
            out = subprocess.run([gdb, "-p", str(pid), "-batch", "-ex", "thread apply all bt 25"],
                                 capture_output=True, text=True, timeout=120).stdout
            with open(os.path.join(keep, "native_stacks.%d.txt" % pid), "w") as f:
                f.write(out)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def one_start(index, args):
    out_dir = tempfile.mkdtemp(prefix="hvd_start_")
    horovodrun = shutil.which("horovodrun") or os.path.join(os.path.dirname(sys.executable),
                                                            "horovodrun")
    cmd = [horovodrun, "-np", "2", "-H", "localhost:2", "--gloo", sys.executable,
           os.path.join(ROOT, "train_imagenet.py"), "--horovod", "--dataset", "digits",
           "--model", args.model, "--batch-size", "32", "--lr", "0.05", "--no-augment",
           "-j", str(args.data_workers), "--num-epochs", "1", "--max-batches-per-epoch", "2",
           "--update-bn-images", "64", "--val-subnets", "1", "--log-interval", "1",
           "--no-progress", "--save-frequency", "0", "--save-dir", out_dir,
           "--logging-file", os.path.join(out_dir, "log.txt")]
    env = dict(os.environ, HOROVOD_LOG_LEVEL="debug", OMP_NUM_THREADS="1")
    tic = time.time()
    with open(os.path.join(out_dir, "output.txt"), "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            proc.wait(timeout=args.timeout)
            hung = False
        except subprocess.TimeoutExpired:
            hung = True
            diagnose(proc, out_dir)
            proc.kill()
            proc.wait()
    seconds = time.time() - tic
    if hung or proc.returncode != 0:
        keep = os.path.join(args.keep_dir, "start_%03d" % index)
        shutil.copytree(out_dir, keep, dirs_exist_ok=True)
        where = " (kept in %s)" % keep
    else:
        where = ""
    shutil.rmtree(out_dir, ignore_errors=True)
    state = "HUNG" if hung else ("ok" if proc.returncode == 0 else "exit %d" % proc.returncode)
    print("start %3d: %-7s %5.1f s%s" % (index, state, seconds, where), flush=True)
    return state


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--starts", type=int, default=50, help="how many starts (default 50)")
    p.add_argument("--timeout", type=int, default=120,
                   help="seconds after which a start counts as hung (default 120)")
    p.add_argument("--model", default="ShuffleNas", help="model trained (default ShuffleNas)")
    p.add_argument("-j", "--data-workers", type=int, default=1,
                   help="data-loading processes per Horovod worker (default 1, as the tests)")
    p.add_argument("--keep-dir", default=os.path.join(tempfile.gettempdir(), "hvd_starts"),
                   help="where the output of hung or failed starts is kept")
    args = p.parse_args(argv)
    os.makedirs(args.keep_dir, exist_ok=True)
    states = [one_start(i, args) for i in range(args.starts)]
    print("%d starts: %d ok, %d hung, %d failed" % (
        len(states), states.count("ok"), states.count("HUNG"),
        len(states) - states.count("ok") - states.count("HUNG")))


if __name__ == "__main__":
    main()
