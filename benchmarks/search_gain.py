"""The search's measured gain (issue 23): the paper's baseline against the configuration a search chose,
paired per speaker-independent RAVDESS fold, beside a classical reference on the same folds.

Usage::

    python -m benchmarks.search_gain --data-root ../shared/data/ravdess              # hours on 2 cores
    python -m benchmarks.search_gain --stages baseline                               # one stage
    python -m benchmarks.search_gain --report-only                                   # the table from the stages

Stages (each keeps its result in ``--state-dir`` when it finishes; a later run skips finished stages, so
the benchmark can run in parts; ``--rerun STAGE`` runs one again):

- ``baseline``: the paper's searched settings (lr 1e-3, SpecAugment F 27, T 100, the widest HRNet width of
  the search, every recipe lever off) at the CPU size below, trained on every speaker fold, each fold's
  epoch chosen on its validation actors and scored once on its test actors.
- ``search``: ``python -m tune.search --space recipe`` on fold 0 (TPE + ASHA, validation only; the baseline
  is its first trial); the chosen trial's configuration is recorded (its test part is scored once by the
  search, after it ends, and shown but not used).
- ``chosen``: the chosen configuration trained on every fold exactly as the baseline was.
- ``classical``: openSMILE's ComParE_2016 functionals (6,373 per utterance) with a scikit-learn SVM whose C
  and kernel are chosen on each fold's validation actors (``pip install -e ".[classical]"``).

The CPU size (:data:`SIZE`): HRNet W6/W8 (searched), stem 32, 2 blocks per branch, modules 1,1,2,2, 64
log-mel bands, 2 s training segments, batch 32, cosine learning-rate decay, at most :data:`EPOCHS` epochs,
2 speed-perturbed copies per utterance in the shards (used only when a configuration's ``aug_prob`` > 0).
Trials and folds run side by side, one 1-worker run per core.

The search chose on fold 0's validation actors, who are fold 1's test actors: fold 1 is marked and left
out of the paired difference (``clean`` folds). Writes ``benchmarks/results/search-gain-cpu.json`` with the
commit, command, precision (``amp``), machine and wall time of every stage, and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .accuracy import AMP, git_commit, precisions
from .common import DEFAULT_DATA_ROOT, REPO

RESULTS = REPO / "benchmarks" / "results"
DEFAULT_OUT = RESULTS / "search-gain-cpu.json"
DEFAULT_STATE = RESULTS / "search-gain-cpu-stages"
STAGES = ("baseline", "search", "chosen", "classical")
EPOCHS = 40
"""The most epochs a run trains (the baseline trains all; the recipe space may choose 20, 30 or 40)."""

SIZE: dict[str, Any] = {
    "model": "emohrnet", "stem_channels": 32, "blocks_per_branch": 2, "modules": [1, 1, 2, 2],
    "batch_size": 32, "segment_seconds": 2.0, "lr_schedule": "cosine", "seed": 0,
}
"""The fixed CPU-sized settings every run shares (baseline, search trials, chosen)."""
WIDTHS = (6, 8)
"""The HRNet widths the search chooses from; the baseline takes the one closest to the paper's 18."""
N_MELS, SPEED_COPIES, SEARCH_FOLD = 64, 2, 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.search_gain", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="the RAVDESS folder")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    p.add_argument("--rerun", default="", help="comma-separated stages to run again although finished")
    p.add_argument("--report-only", action="store_true", help="only write the JSON and table from finished stages")
    p.add_argument("--num-samples", type=int, default=16, help="search trials, the baseline included (default 16)")
    p.add_argument("--epochs", type=int, default=EPOCHS, help=f"most epochs per run (default {EPOCHS})")
    p.add_argument("--folds", default="all", help="speaker folds: all (0-5) or e.g. 0,2")
    p.add_argument("--workers", type=int, default=1, help="DDP workers per run (default 1: runs side by side)")
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE, help="finished stages' results")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/emohrnet-search-gain"), help="runs and checkpoints")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    args.stages = [s for s in args.stages.split(",") if s]
    args.rerun = {s for s in args.rerun.split(",") if s}
    for s in [*args.stages, *args.rerun]:
        if s not in STAGES:
            p.error(f"argument --stages/--rerun: {s!r} (allowed: {', '.join(STAGES)})")
    args.folds = list(range(6)) if args.folds == "all" else sorted({int(f) for f in args.folds.split(",")})
    if not all(0 <= f < 6 for f in args.folds):
        p.error("argument --folds: RAVDESS has speaker folds 0-5")
    if args.num_samples < 2 or args.epochs < 2 or args.workers < 1:
        p.error("--num-samples and --epochs need at least 2, --workers at least 1")
    return args


def baseline_params() -> dict[str, Any]:
    """The search's baseline trial at this size: the paper's searched values, every lever off, all epochs."""
    from tune.space import baseline_points

    points, _ = baseline_points("emohrnet", WIDTHS, "recipe", EPOCHS)
    return points[0]


def shard_dir(data_root: Path, log=print) -> str:
    """The log-mel shards every stage trains on (built once, reused)."""
    from emohrnet.config.experiment import DataConfig
    from emohrnet.shards import build_shards

    data = DataConfig(dataset="ravdess", data_root=str(data_root), n_mels=N_MELS, speed_copies=SPEED_COPIES,
                      build_workers=2)
    return str(build_shards(**data.build_arguments("logmel"), progress=False, log=log).shard_dir)


def run_on_folds(train: dict[str, Any], args: argparse.Namespace, name: str, log=print) -> list[dict[str, Any]]:
    """Train ``train`` (flat settings on top of :data:`SIZE`) on every fold; one row per fold."""
    import ray

    from emohrnet.config.experiment import ResourcesConfig
    from tune.ray_start import local_cpus, start_local_ray

    from .accuracy import run_folds

    shards = shard_dir(args.data_root, log)
    start_local_ray(local_cpus(ResourcesConfig(workers=args.workers)))
    try:
        rows = run_folds("emohrnet", shards, "speaker", args.folds, args.work_dir / "runs", args.workers, 1.0,
                         train={**SIZE, **train}, selection_fold=SEARCH_FOLD, name=name)
        return [r.to_dict() for r in rows]  # as crossfold.json holds them: a stage's result file
    finally:
        ray.shutdown()


def stage_baseline(args: argparse.Namespace, log=print) -> dict[str, Any]:
    """Stage (a): the baseline on every fold."""
    params = {**baseline_params(), "epochs": args.epochs}
    return {"params": params, "folds": run_on_folds(params, args, "baseline", log)}


def stage_search(args: argparse.Namespace, log=print) -> dict[str, Any]:
    """Stage (b): the recipe-space search on fold 0, validation only."""
    from tune.options import parse_args as search_args
    from tune.search import run_search

    name = f"ravdess-recipe-{time.strftime('%Y%m%d-%H%M%S')}"
    argv = ["--dataset", "ravdess", "--data-root", str(args.data_root), "--space", "recipe",
            "--num-samples", str(args.num_samples), "--epochs", str(args.epochs), "--fold", str(SEARCH_FOLD),
            "--widths", ",".join(map(str, WIDTHS)), "--stem-channels", str(SIZE["stem_channels"]),
            "--blocks", str(SIZE["blocks_per_branch"]), "--modules", ",".join(map(str, SIZE["modules"])),
            "--n-mels", str(N_MELS), "--segment-seconds", str(SIZE["segment_seconds"]),
            "--batch-size", str(SIZE["batch_size"]), "--lr-schedule", "cosine", "--seed", "0",
            "--workers", str(args.workers), "--speed-copies", str(SPEED_COPIES), "--grace-period", "10",
            "--storage-path", str(args.work_dir / "experiments"), "--name", name, "--build-workers", "2"]
    summary = run_search(search_args(argv), log=log, quiet=True)
    keep = ("trial_id", "baseline", "params", "best_val_ua", "best_epoch", "epochs_run", "status", "test_ua")
    return {"command": ["python", "-m", "tune.search", *argv], "space": summary.space,
            "best_trial": summary.best_trial, "best_is_baseline": summary.best_is_baseline,
            "chosen_params": summary.trial(summary.best_trial).params,
            "best_val_ua": summary.best_val_ua, "best_epoch": summary.best_epoch,
            "test_ua_fold0_scored_once": summary.test_ua,
            "trials": [{k: getattr(t, k) for k in keep} for t in summary.trials]}


def stage_chosen(args: argparse.Namespace, search: dict[str, Any], baseline: dict[str, Any] | None,
                 log=print) -> dict[str, Any]:
    """Stage (c): the chosen configuration on every fold, as the baseline was trained. When the search chose
    its baseline trial (the same settings, seed and epochs as stage (a)), stage (a)'s folds are that
    configuration's folds: nothing is trained again, and the result says so (``same_as_baseline``)."""
    params = dict(search["chosen_params"])
    if baseline is not None and search.get("best_is_baseline") and params == baseline["params"]:
        log("chosen: the search chose its baseline trial, whose settings stage (a) trained on every fold: "
            "its folds are reused, not trained again")
        return {"params": params, "folds": baseline["folds"], "same_as_baseline": True,
                "trained_at_commit": baseline["commit"]}
    return {"params": params, "folds": run_on_folds(params, args, "chosen", log), "same_as_baseline": False}


def stage_classical(args: argparse.Namespace, log=print) -> dict[str, Any]:
    """Stage (d): openSMILE ComParE_2016 functionals + an SVM chosen on each fold's validation actors."""
    from .classical import compare_svm_folds

    return compare_svm_folds(args.data_root, args.folds, args.work_dir / "compare.npz", log)


def paired(baseline: dict[str, Any], chosen: dict[str, Any]) -> dict[str, Any]:
    """Per fold baseline vs chosen test UA, and the paired difference over the clean folds (not used in
    selection): mean, sample std and the number of folds."""
    from tune.evaluate import mean_std

    base = {r["fold"]: r for r in baseline["folds"] if r.get("test_ua") is not None}
    rows, diffs = [], []
    for r in chosen["folds"]:
        b = base.get(r["fold"])
        if b is None or r.get("test_ua") is None:
            continue
        d = r["test_ua"] - b["test_ua"]
        rows.append({"fold": r["fold"], "baseline": b["test_ua"], "chosen": r["test_ua"], "difference": d,
                     "used_in_selection": bool(r.get("used_in_selection"))})
        if not r.get("used_in_selection"):
            diffs.append(d)

    clean = [x for x in rows if not x["used_in_selection"]]
    out = {"folds": rows, "n_clean": len(diffs)}
    out["difference_mean"], out["difference_std"] = mean_std(diffs)
    out["baseline_mean"], out["baseline_std"] = mean_std([x["baseline"] for x in clean])
    out["chosen_mean"], out["chosen_std"] = mean_std([x["chosen"] for x in clean])
    return out


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    """Run the missing (and ``--rerun``) stages, each saved when it finishes; return the report."""
    from . import machine

    args.state_dir.mkdir(parents=True, exist_ok=True)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    done = {s: json.loads((args.state_dir / f"{s}.json").read_text()) for s in STAGES
            if (args.state_dir / f"{s}.json").is_file()}
    for stage in ([] if args.report_only else args.stages):
        if stage in done and stage not in args.rerun:
            log(f"{stage}: finished at commit {done[stage]['commit']}, kept (--rerun {stage} runs it again)")
            continue
        if stage == "chosen" and "search" not in done:
            log("chosen: needs the search stage first; skipped")
            continue
        log(f"{stage}: running")
        start = time.perf_counter()
        result = (stage_chosen(args, done["search"], done.get("baseline"), log) if stage == "chosen"
                  else {"baseline": stage_baseline, "search": stage_search,
                        "classical": stage_classical}[stage](args, log))
        result.update(commit=git_commit(), wall_s=round(time.perf_counter() - start, 1),
                      finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), machine=machine.describe(),
                      command=["python", "-m", "benchmarks.search_gain", *sys.argv[1:]],
                      amp=AMP, precision=precisions(result.get("folds") or []))
        _write(args.state_dir / f"{stage}.json", result)
        done[stage] = result
        log(f"{stage}: done in {result['wall_s']:.0f} s")
    report = {"benchmark": "search_gain", "dataset": "ravdess", "protocol": "speaker-independent, 6 folds of 4 "
              "actors (4 test, 4 validation, 16 training)", "size": SIZE, "widths": WIDTHS, "n_mels": N_MELS,
              "max_epochs": args.epochs, "speed_copies": SPEED_COPIES, "search_fold": SEARCH_FOLD,
              "units": "fractions (0-1)", "stages": done}
    if "baseline" in done and "chosen" in done:
        report["paired"] = paired(done["baseline"], done["chosen"])
    _write(args.out, report)
    return report


def markdown(report: dict[str, Any]) -> str:
    """The README's table: per fold baseline, chosen and classical test UA, and the paired difference."""
    from tune.evaluate import mean_std

    stages = report["stages"]
    pct = lambda v: "" if v is None else f"{100 * v:.1f}"  # noqa: E731
    lines = ["| configuration | " + " | ".join(f"fold {f}" for f in range(6)) + " | clean folds mean ± std |",
             "|---|" + "---:|" * 7]
    for name, label in (("baseline", "baseline (paper's settings)"), ("chosen", "chosen by the search"),
                        ("classical", "ComParE_2016 + SVM")):
        if name not in stages:
            continue
        rows = {r["fold"]: r for r in stages[name]["folds"]}
        cells = [pct(rows[f]["test_ua"]) + ("*" if rows[f].get("used_in_selection") else "") if f in rows else ""
                 for f in range(6)]
        clean = [rows[f]["test_ua"] for f in rows if not rows[f].get("used_in_selection")
                 and rows[f].get("test_ua") is not None]
        mean, std = mean_std(clean)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {pct(mean)} ± {pct(std)} (n={len(clean)}) |")
    p = report.get("paired")
    if p:
        lines.append(f"\nPaired difference (chosen - baseline) over the {p['n_clean']} clean folds: "
                     f"{pct(p['difference_mean'])} ± {pct(p['difference_std'])} points.")
    return "\n".join(lines)


def _write(path: Path, data: dict[str, Any]) -> None:
    from emohrnet.io.storage import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(data, indent=1, default=str) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    report = run(args)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
