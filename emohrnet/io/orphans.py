"""Worker processes that end when the process that started them dies, and waiting for processes to end.

A ``multiprocessing`` pool's workers block on their task queue; when the parent is killed hard
(SIGKILL, the OOM killer) nothing tells them, and they stay behind holding their memory. A pool
initializer calls :func:`exit_with_parent`: on Linux the kernel sends the worker SIGKILL when its
parent dies (``prctl(PR_SET_PDEATHSIG)``), and everywhere a daemon thread checks every
:data:`WATCH_INTERVAL_S` seconds that the parent is still the one it started with.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

WATCH_INTERVAL_S = 1.0
"""How often (seconds) the fallback watchdog checks the parent process id."""

_PR_SET_PDEATHSIG = 1


def exit_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` (the process that started it) dies.

    Call it first thing in a worker process (a pool initializer). If the parent is already gone
    when it runs, the process exits at once (status 1).

    Args:
        parent_pid: the parent's process id, as the parent saw it (``os.getpid()`` there): read in
            the child, ``os.getppid()`` would already name the new parent if the old one had died.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still ends the process
    if os.getppid() != parent_pid:  # died before the prctl took effect
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="exit-with-parent", daemon=True).start()


def _watch(parent_pid: int) -> None:
    while True:
        time.sleep(WATCH_INTERVAL_S)
        if os.getppid() != parent_pid:
            os._exit(1)


def still_running(procs: list, wait_s: float) -> list:
    """The processes of ``procs`` (``psutil.Process``) still running after up to ``wait_s`` seconds; an
    exited process that its new parent has not reaped yet (a zombie) counts as ended."""
    import psutil

    def running(p) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    deadline = time.monotonic() + wait_s
    alive = [p for p in procs if running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if running(p)]
    return alive
