"""A console people can read: one line per finished epoch, Ray's own output in a log file.

By default a search's console shows the shard build, one line per finished epoch of each trial,
trial ends, and the summary; everything Ray prints (trial tables, worker logs, its warnings) goes
to ``search.log`` (:func:`quiet_console`). ``--verbose`` shows Ray's output as it comes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO


@contextlib.contextmanager
def quiet_console(log_path: Path) -> Iterator[Callable[[str], None]]:
    """Send everything written to this process's stdout and stderr (file descriptors 1 and 2, so
    Ray's C++ output and its forwarded worker logs too) to ``log_path``, appending; yield a ``log``
    function that writes a line to the console (the original stdout) and to the log file.

    The descriptors are restored on exit, also on an exception or Ctrl+C.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console: TextIO = os.fdopen(os.dup(1), "w", buffering=1)
    logfile = open(log_path, "a", buffering=1)  # noqa: SIM115 (kept open for the whole search)
    os.dup2(logfile.fileno(), 1)
    os.dup2(logfile.fileno(), 2)

    def log(message: str) -> None:
        print(message, file=console, flush=True)
        print(message, file=sys.stdout, flush=True)

    try:
        yield log
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        console.close()
        logfile.close()


def epoch_line(trial_id: str, result: dict[str, Any], epochs: int, started: float) -> str:
    """One finished epoch of a trial: ``<trial> epoch e/E  loss x  val UA y%  best z%  t s``; epochs are
    counted from 1 (as the training loop reports them) and ``E`` is the trial's own number of epochs when
    it reports one (a searched number of epochs), else ``epochs``."""
    loss = result.get("train_loss")
    loss_text = f"{loss:.3f}" if isinstance(loss, (int, float)) else "-"
    planned = int(result.get("epochs") or epochs)
    return (f"{trial_id} epoch {int(result.get('epoch', 0)):>3d}/{planned}  train loss {loss_text}  "
            f"val UA {result.get('val_ua', float('nan')):6.2%}  best {result.get('best_val_ua', float('nan')):6.2%}  "
            f"{time.time() - started:6.0f} s")


def make_progress(log: Callable[[str], None], epochs: int):
    """A Ray Tune callback writing one line per finished epoch of each trial, and one when a trial
    starts, ends, is stopped early or fails."""
    from ray.tune import Callback

    class EpochLines(Callback):
        def __reduce__(self):
            # Ray pickles the run config, callbacks included, into tuner.pkl: store a no-op
            # callback there, never this one's state (the signing key, the console)
            return (Callback, ())

        def __init__(self) -> None:
            self.started = time.time()
            self.last: dict[str, int] = {}
            self.planned: dict[str, int] = {}

        def on_trial_start(self, iteration, trials, trial, **info) -> None:
            params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in sorted(trial.config.items()))
            log(f"{trial.trial_id} started: {params}")

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            if "val_ua" in result:
                self.last[trial.trial_id] = int(result.get("epoch", 0))
                self.planned[trial.trial_id] = int(result.get("epochs") or epochs)
                log(epoch_line(trial.trial_id, result, epochs, self.started))

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            done = self.last.get(trial.trial_id, 0)
            planned = self.planned.get(trial.trial_id, epochs)
            how = "finished" if done >= planned else f"stopped early after {done} of {planned} epochs"
            log(f"{trial.trial_id} {how}")

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            log(f"{trial.trial_id} failed; its error is in {getattr(trial, 'path', 'its trial folder')}/error.txt")

    return EpochLines()
