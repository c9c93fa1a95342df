"""Child processes under a deadline, the one mechanism of gpu_check's stages: a kernel that never
returns, or a compile slower than its budget, costs its own stage alone, and what the child printed
before it was stopped comes back with it."""
from __future__ import annotations

import os
import signal
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(cmd: list[str], group: bool = False) -> subprocess.Popen:
    """``cmd`` from the repository root, stdout and stderr together. ``group``: in a process group of
    its own, so that stopping it also stops the processes it started (pytest-xdist's workers)."""
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=group)


def finish(proc: subprocess.Popen, timeout: float, group: bool = False) -> tuple[str, bool]:
    """``(output, stopped)``: everything ``proc`` printed, waiting at most ``timeout`` seconds before
    killing it (with its group when it was started with one)."""
    try:
        return proc.communicate(timeout=timeout)[0], False
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        return proc.communicate()[0], True  # a retried communicate loses none of the output


def run(cmd: list[str], timeout: float, group: bool = False) -> tuple[str, bool, int | None]:
    """``start`` then ``finish``: ``(output, stopped, returncode)``."""
    proc = start(cmd, group)
    out, stopped = finish(proc, timeout, group)
    return out, stopped, proc.returncode
