"""Section 5, the search: wall time and trials finished of one fixed small search
(:func:`tune.search.run_search`: Ray Tune + Optuna + Ray Train) with and without ASHA.

ASHA is always on in ``run_search``; "without ASHA" sets its grace period to the number of epochs,
so ASHA cannot stop a trial before its last epoch. Both searches use the same seed, so Optuna
(TPE, whose first trials are random) proposes the same configurations. The wall time is the whole
``run_search`` call: Ray start, shard reuse check, every trial, the summary and scoring the best
trial on the test set.

On a CPU it also measures trials per hour of the two CPU layouts on the same search (issue 23): one
trial at a time with 2 DDP workers (``--workers 2``) against 1-worker trials side by side, one per core
(``--workers 1``, the CPU default), six trials of four epochs each, no early stopping.

On a GPU (``--device cuda``) it also measures trials per hour on one GPU with one trial at a time
(``--gpus-per-trial 1``) against four trials packed on it (``--gpus-per-trial 0.25``), one DDP
worker per trial, no early stopping, eight trials each.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .common import Context, Section, Timer, quiet, small_corpus

if TYPE_CHECKING:
    from tune.results import Summary

TITLE = "5. Search: wall time and trials of one fixed small search"


def search_argv(ctx: Context, small: dict[str, Any], name: str, grace: int | None) -> list[str]:
    """Command-line arguments of the fixed search (tiny model, small synthetic corpus); ``grace=None``
    sets ASHA's grace period to the number of epochs (no early stopping)."""
    epochs = 3 if ctx.quick else 4
    argv = ["--num-samples", "4" if ctx.quick else "6", "--epochs", str(epochs),
            "--grace-period", str(grace or epochs),
            "--workers", "1" if ctx.quick else "2", "--widths", "4,6", "--stem-channels", "8", "--blocks", "1",
            "--modules", "1,1,1,1", "--n-mels", str(small["n_mels"]), "--segment-seconds", "1.0",
            "--batch-size", "16", "--seed", "0", "--data-root", str(small["root"]),
            "--shard-dir", str(small["shard_dir"]), "--build-workers", "1",
            "--storage-path", str(ctx.work / "search"), "--name", name]
    for key, value in small["options"].items():
        argv += ["--corpus-option", f"{key}={json.dumps(value)}"]
    return argv


def run(ctx: Context) -> Section:
    """Run the search without ASHA (grace = epochs) and with ASHA (grace 1).

    Returns:
        rows in s (wall time), trials, epochs and x (time ratio).
    """
    import ray

    from tune.search import parse_args, run_search

    sec = Section("search", TITLE)
    small = small_corpus(ctx)
    walls: dict[str, float] = {}
    for label, grace in (("without ASHA", None), ("with ASHA", 1)):
        args = parse_args(search_argv(ctx, small, label.replace(" ", "-"), grace))
        if not sec.settings:
            sec.settings = {"trials": args.num_samples, "epochs": args.epochs, "workers_per_trial": args.workers,
                            "widths": list(args.widths), "stem_channels": args.stem_channels,
                            "blocks": args.blocks, "modules": args.modules, "n_mels": args.n_mels,
                            "segment_seconds": args.segment_seconds, "batch_size": args.batch_size,
                            "corpus": f"synthetic, {small['files']} files, options {small['options']}",
                            "asha": "reduction factor 3, max_t = epochs",
                            "timing": "whole run_search call (Ray start to summary)"}
        # run_search starts a local Ray of its own, findable by Ray Train's placement-group cleaner
        try:
            with Timer() as t:
                summary = run_search(args, log=quiet)
        finally:
            ray.shutdown()
        walls[label] = t.s
        trials = summary.trials
        completed = sum(tr.status == "completed" for tr in trials)
        stopped = sum(tr.status.startswith("stopped early") for tr in trials)
        errors = sum(tr.status == "error" for tr in trials)
        epochs = sum(tr.epochs_run or 0 for tr in trials)
        note = f"grace period {args.grace_period}" + (" = epochs: ASHA cannot stop a trial early"
                                                      if grace is None else "")
        sec.add(f"{label}: wall time", t.s, "s", note=note, grace_period=args.grace_period)
        sec.add(f"{label}: trials run to the last epoch", completed, "trials", of=len(trials))
        sec.add(f"{label}: trials stopped early by ASHA", stopped, "trials", errors=errors)
        sec.add(f"{label}: epochs trained, all trials", epochs, "epochs",
                of=args.num_samples * args.epochs)
        sec.add(f"{label}: best val UA", summary.best_val_ua, "fraction", trial=summary.best_trial)
    sec.add("wall time with ASHA / without", walls["with ASHA"] / walls["without ASHA"], "x")
    if ctx.device == "cuda":
        packing(ctx, sec, small)
    else:
        cpu_layouts(ctx, sec, small)
    return sec


def trials_per_hour(argv: list[str]) -> tuple[float, Summary, Any, int]:
    """Run one search (``argv``: its command line) and return ``(trials per hour, summary, timer, trials
    run to their last epoch)``; the search's local Ray is shut down after it."""
    import ray

    from tune.search import parse_args, run_search

    try:
        with Timer() as t:
            summary = run_search(parse_args(argv), log=quiet)
    finally:
        ray.shutdown()
    done = sum(tr.status == "completed" for tr in summary.trials)
    return done / (t.s / 3600), summary, t, done


def cpu_layouts(ctx: Context, sec: Section, small: dict[str, Any]) -> None:
    """Trials per hour on the CPUs: ``--workers 2`` (one trial at a time, DDP over the cores) against
    ``--workers 1`` (trials side by side, one per core), the same six trials of four epochs (no ASHA)."""
    rates = {}
    for workers in (2, 1):
        rates[workers], summary, t, done = trials_per_hour(search_argv(ctx, small, f"cpu-layout-{workers}", None) + [
            "--workers", str(workers), "--num-samples", "6", "--epochs", "4", "--grace-period", "4"])
        layout = "one trial at a time, 2 DDP workers" if workers == 2 else "1-worker trials side by side"
        sec.add(f"--workers {workers} ({layout}): trials per hour", rates[workers], "trials/h",
                wall_s=t.s, trials=done, of=6, best_val_ua=summary.best_val_ua)
    sec.add("side by side against one at a time (--workers 1 / --workers 2)", rates[1] / rates[2], "x")


def packing(ctx: Context, sec: Section, small: dict[str, Any]) -> None:
    """Trials per hour on one GPU: ``--gpus-per-trial 1`` (one at a time) against 0.25 (four at once)."""
    rates = {}
    for share in (1.0, 0.25):
        rates[share], _, t, done = trials_per_hour(search_argv(ctx, small, f"packing-{share:g}", None) + [
            "--workers", "1", "--gpus-per-trial", f"{share:g}", "--num-samples", "8", "--cpus-per-worker", "1"])
        sec.add(f"--gpus-per-trial {share:g}: trials per hour on one GPU", rates[share], "trials/h",
                wall_s=t.s, trials=done, of=8)
    sec.add("packing gain (0.25 against 1)", rates[0.25] / rates[1.0], "x")
