"""Horovod on localhost with Gloo: two real workers training on digits.

A run that hangs fails within minutes with a diagnosis instead of blocking for the full time
limit: when it has written nothing for ``SILENCE_LIMIT`` seconds, its workers' Python stacks
(SIGUSR1, see ``report_crashes``) and native stacks (gdb, when installed) go into the failure
message before it is killed. (Horovod's own stall check, HOROVOD_STALL_CHECK_TIME_SECONDS, was
tried and said nothing in 4 minutes of a run whose rank 1 never joined the broadcasts.)
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
hvd = pytest.importorskip("horovod.mxnet", reason="horovod is built by `make install`")
HOROVODRUN = shutil.which("horovodrun") or os.path.join(os.path.dirname(sys.executable),
                                                        "horovodrun")


TIME_LIMIT = 900
# A healthy run writes a log line every two batches; the longest quiet stretches are the start
# (imports, rendezvous) and the validation, under a minute each on a loaded 2-core machine.
SILENCE_LIMIT = 180


def _workers(launcher_pid):
    """``{pid: rank}`` of the Python worker processes below horovodrun (Linux /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except (OSError, ValueError):
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = {}, list(children.get(launcher_pid, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open("/proc/%d/comm" % pid) as f:
                comm = f.read()
            with open("/proc/%d/cmdline" % pid) as f:
                cmdline = f.read()
            with open("/proc/%d/environ" % pid) as f:
                env = dict(e.split("=", 1) for e in f.read().split("\0") if "=" in e)
        except OSError:
            continue
        if comm.startswith("python") and "train_imagenet.py" in cmdline:
            found[pid] = env.get("HOROVOD_RANK", "?")
    return found


def _diagnose_hang(proc, tmp_path):
    """Every worker's Python stacks (into horovodrun's output) and native stacks (returned)."""
    workers = _workers(proc.pid)
    for pid in workers:
        try:
            os.kill(pid, signal.SIGUSR1)    # faulthandler prints the stacks on stderr
        except OSError:
            pass
    time.sleep(5)                           # ... which horovodrun forwards to its output
    for pid in workers:
        try:
            # frozen together: while gdb holds one worker, the other would time out in Gloo
            os.kill(pid, signal.SIGSTOP)
        except OSError:
            pass
    native = []
    gdb = shutil.which("gdb")
    for pid, rank in sorted(workers.items(), key=lambda item: item[1]):
        if gdb is None:
            native.append("rank %s (pid %d): no gdb for native stacks" % (rank, pid))
            continue
        try:
            bt = subprocess.run([gdb, "-p", str(pid), "-batch", "-ex", "thread apply all bt 30"],
                                capture_output=True, text=True, timeout=180).stdout
        except subprocess.TimeoutExpired:
            bt = "gdb timed out"
        (tmp_path / ("native_stacks.rank%s.txt" % rank)).write_text(bt)
        native.append("rank %s (pid %d), native stacks in %s:\n%s"
                      % (rank, pid, tmp_path / ("native_stacks.rank%s.txt" % rank), bt[-4000:]))
    return workers, "\n".join(native)


def _stop(proc, workers):
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _last_write(tmp_path, started):
    """When the run last wrote into ``tmp_path`` (horovodrun's output, logs, checkpoints)."""
    last = started
    for path in tmp_path.iterdir():
        try:
            last = max(last, path.stat().st_mtime)
        except OSError:                     # a temporary file renamed in the meantime
            pass
    return last


def _run(tmp_path, *args):
    cmd = [HOROVODRUN, "-np", "2", "-H", "localhost:2", "--gloo", sys.executable,
           os.path.join(ROOT, "train_imagenet.py"), "--horovod", "--dataset", "digits",
           "--batch-size", "32", "--lr", "0.05", "--no-augment", "-j", "1", "--log-interval", "2",
           "--save-dir", str(tmp_path), "--logging-file", str(tmp_path / "log.txt"),
           "--no-progress", "--save-frequency", "0"] + list(args)
    output = tmp_path / "horovodrun.out"
    started = time.time()
    with open(output, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            time.sleep(1)
            now = time.time()
            quiet = now - _last_write(tmp_path, started)
            if quiet > SILENCE_LIMIT or now - started > TIME_LIMIT:
                workers, native = _diagnose_hang(proc, tmp_path)
                _stop(proc, workers)
                pytest.fail("hung: nothing written for %.0f s (%.0f s after the start); "
                            "horovodrun output with the workers' Python stacks:\n%s\n%s"
                            % (quiet, now - started, output.read_text()[-12000:], native))
    text = output.read_text()
    assert proc.returncode == 0, text[-6000:]
    records = {}
    for rank, name in ((0, "log.jsonl"), (1, "log.rank1.jsonl")):
        with open(tmp_path / name) as f:
            records[rank] = [json.loads(l) for l in f]
    return records


def _assert_same_parameters(rec):
    norms = [next(r for r in rec[k] if r["kind"] == "final")["param_norms"] for k in (0, 1)]
    assert norms[0].keys() == norms[1].keys() and len(norms[0]) > 100
    for name, value in norms[0].items():
        # equal up to the float32 rounding of Gloo's rank-dependent summation order
        assert norms[1][name] == pytest.approx(value, rel=1e-5, abs=1e-7), name


@pytest.mark.slow
def test_two_workers_learn_and_stay_identical(tmp_path):
    rec = _run(tmp_path, "--model", "OneShot-S+", "--num-epochs", "2")
    steps = [r["loss"] for r in rec[0] if r["kind"] == "step"]
    assert steps[-1] < steps[0] - 0.2, steps
    _assert_same_parameters(rec)


@pytest.mark.slow
def test_supernet_workers_sample_the_same_paths(tmp_path):
    rec = _run(tmp_path, "--model", "ShuffleNas", "--num-epochs", "1",
               "--max-batches-per-epoch", "8", "--update-bn-images", "64")
    paths = [[r["arch"] for r in rec[k] if r["kind"] == "sample"] for k in (0, 1)]
    assert len(paths[0]) == 8 and paths[0] == paths[1]
    assert len(set(paths[0])) > 1
    _assert_same_parameters(rec)


def _run_wrapped(tmp_path, wrapper, code, *extra):
    """Two workers running ``code`` (a wrapper around train_imagenet's main, written to
    ``wrapper``) on a one-epoch OneShot-S+ digits run; returns the process and its output."""
    wrapper.write_text(code)
    cmd = [HOROVODRUN, "-np", "2", "-H", "localhost:2", "--gloo", sys.executable, str(wrapper),
           "--horovod", "--dataset", "digits", "--model", "OneShot-S+", "--batch-size", "32",
           "--no-augment", "-j", "0", "--num-epochs", "1", "--no-progress",
           "--save-frequency", "0", "--save-dir", str(tmp_path),
           "--logging-file", str(tmp_path / "log.txt")] + list(extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIME_LIMIT)
    return proc, proc.stdout + proc.stderr


# A worker stuck before its first batch: rank 1 of this wrapper never starts its epoch.
STUCK_RANK_1 = """import os, sys, time
from oneshot_nas.training import trainer
if os.environ.get("HOROVOD_RANK") == "1":
    def stuck_before_the_first_batch(run, epoch):
        time.sleep(3600)
    trainer._one_epoch = stuck_before_the_first_batch
from oneshot_nas.cli.train_imagenet import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_stuck_worker_fails_the_run_with_both_workers_stacks(tmp_path):
    """The in-process watchdog turns a hang into a failure within its period and grace (plus
    horovodrun's shutdown), with the Python stacks of both workers in the output: rank 1
    where it is stuck, rank 0 waiting for it."""
    wrapper = tmp_path / "stuck_rank_1.py"
    tic = time.time()
    proc, text = _run_wrapped(tmp_path, wrapper, STUCK_RANK_1, "--watchdog-seconds", "20")
    seconds = time.time() - tic
    assert proc.returncode != 0, text[-4000:]
    assert seconds < 20 + 15 + 120, seconds
    # horovodrun prefixes every line of a worker with its rank
    for rank in (0, 1):
        assert "[%d]<stderr>:Timeout (0:00:20)!" % rank in text, (rank, text[-6000:])
    assert "[1]<stderr>:  File \"%s\", line 5 in stuck_before_the_first_batch" % wrapper \
        in text, text[-6000:]
    assert any(line.startswith("[0]<stderr>:") and "in _train_epoch" in line
               for line in text.splitlines()), text[-6000:]


OTHER_SEED_ON_RANK_1 = """import os, sys
from oneshot_nas.cli.train_imagenet import main
extra = ["--seed", "1"] if os.environ.get("HOROVOD_RANK") == "1" else []
sys.exit(main(sys.argv[1:] + extra))
"""


@pytest.mark.slow
def test_workers_that_start_from_other_weights_are_refused(tmp_path):
    """No per-parameter broadcast: every worker initialises from the seed, and one digest
    broadcast refuses a worker whose weights differ (here: another --seed) in one line."""
    proc, text = _run_wrapped(tmp_path, tmp_path / "other_seed.py", OTHER_SEED_ON_RANK_1)
    assert proc.returncode != 0, text[-4000:]
    assert "[1]<stderr>:train_imagenet.py: error: Horovod worker 1 starts from other weights " \
           "than rank 0" in text, text[-4000:]
