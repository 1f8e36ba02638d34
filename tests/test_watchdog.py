"""The Horovod watchdog (oneshot_nas.training.watchdog) in a real process: no progress for
its period prints the stacks of its threads and ends the process after the grace; progress
keeps it alive; outside a watched run nothing is armed."""
import signal
import subprocess
import sys
import time

from oneshot_nas.training import watchdog


def _python(code, timeout=90):
    tic = time.time()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout)
    return proc, time.time() - tic


def test_a_worker_without_progress_exits_with_its_stacks():
    proc, seconds = _python(
        "import logging, time\n"
        "from oneshot_nas.training import watchdog\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "def stuck_before_the_first_batch():\n"
        "    time.sleep(60)\n"
        "with watchdog.watching(2):\n"
        "    stuck_before_the_first_batch()\n")
    assert proc.returncode == -signal.SIGALRM, proc.stderr
    assert 2 + watchdog.GRACE_SECONDS <= seconds < 2 + watchdog.GRACE_SECONDS + 20
    assert "no progress for 2 s" in proc.stderr
    assert "Timeout (0:00:02)!" in proc.stderr
    assert "stuck_before_the_first_batch" in proc.stderr


def test_progress_keeps_the_worker_alive_and_the_watch_ends_with_the_run():
    proc, _ = _python(
        "import time\n"
        "from oneshot_nas.training import watchdog\n"
        "with watchdog.watching(1):\n"
        "    for _ in range(12):\n"
        "        time.sleep(0.25)\n"
        "        watchdog.kick()\n"
        "watchdog.kick()\n"                 # outside the run: re-arms nothing
        "time.sleep(2)\n"
        "print('finished')\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "finished"
    assert "Timeout" not in proc.stderr


def test_zero_seconds_watches_nothing():
    with watchdog.watching(0):
        watchdog.kick()
        assert watchdog._seconds == 0
