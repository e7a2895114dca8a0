"""Stopping the run tool: Ctrl-C stops it cleanly, a second Ctrl-C at once, and no worker
outlives it.

- **In the tool** (:class:`Stopper`): the first SIGINT (or SIGTERM) cancels the queued runs and
  asks the running workers to stop (SIGTERM); each keeps its checkpoint and exits; the tool
  then exits with one line that says what was kept and how to resume. A second SIGINT kills
  the workers and exits at once.
- **In a worker** (:func:`worker_init`): SIGINT is ignored (a terminal's Ctrl-C reaches every
  process of the group; the tool decides), SIGTERM asks for a stop, and a watchdog thread ends
  the worker when the tool is gone (killed with ``kill -9``): the worker's parent changes and
  it exits within a second.
- **In a training loop**: a stop asked for is honoured between two batches (:func:`check`), so
  a checkpoint never holds half an optimizer step: the trainer keeps the checkpoint of its
  last complete epoch, the pretraining loop saves one where it stopped. With one job the tool
  trains in its own process: the first Ctrl-C asks for that stop, the second interrupts at once.
"""

from __future__ import annotations

import os
import signal
import threading
import time


class Stopped(KeyboardInterrupt):
    """Raised in a worker asked to stop: training loops save what they can, then let it go."""


_ASKED = threading.Event()


def ask_to_stop(signum=None, frame=None) -> None:
    """A signal handler: the first call asks the training loop to stop at the next batch, the
    second raises ``KeyboardInterrupt`` at once."""
    if _ASKED.is_set():
        raise KeyboardInterrupt
    _ASKED.set()


def check() -> None:
    """Raise :class:`Stopped` if a stop was asked for (called between batches)."""
    if _ASKED.is_set():
        raise Stopped("asked to stop")


def reset() -> None:
    _ASKED.clear()


def _watch_parent(parent: int, period: float) -> None:
    while True:
        time.sleep(period)
        if os.getppid() != parent:
            os._exit(3)  # the tool is gone: nobody waits for this worker's result


def worker_init(parent: int, period: float = 1.0) -> None:
    """Set up a worker process of the run tool (see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, ask_to_stop)
    threading.Thread(target=_watch_parent, args=(parent, period), daemon=True).start()


class Stopper:
    """Within the block, SIGINT and SIGTERM stop ``pool`` (a ProcessPoolExecutor) as the module
    docstring says; :attr:`stopping` tells the caller to stop waiting for results."""

    def __init__(self, pool, futures):
        self.pool, self.futures = pool, futures
        self.stopping = False

    def _workers(self) -> list:
        return list((getattr(self.pool, "_processes", None) or {}).values())

    def _handle(self, signum, frame):
        if self.stopping:  # the second one: at once
            for process in self._workers():
                process.kill()
            print("\nStopped at once; the runs' last checkpoints are kept.", flush=True)
            os._exit(130)
        self.stopping = True
        for future in self.futures:
            future.cancel()
        for process in self._workers():
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    def __enter__(self):
        self.before = {
            s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)
        }
        return self

    def __exit__(self, *exc):
        for s, handler in self.before.items():
            signal.signal(s, handler)
        return False
