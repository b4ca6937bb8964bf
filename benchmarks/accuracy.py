"""Section 6, accuracy on real speech: both models on RAVDESS, every speaker-independent fold.

Usage::

    python -m benchmarks.accuracy --data-root ../shared/data/ravdess          # about an hour on 2 cores
    python -m benchmarks.accuracy --models cnn1d_attention --folds 0,1         # a part of it
    python -m benchmarks.run --sections accuracy                              # as a section (not in --quick)

Each model trains with a CPU recipe (:data:`RECIPES`: a small EmoHRNet on 64 log-mel bands, the
1D CNN on 40 MFCCs with waveform-augmented copies) on each of RAVDESS's 6 speaker-independent
folds (4 test actors, 4 validation actors, 16 training actors) and once on the random utterance
split (seed 0, 80/10/10: speakers shared between train and test, the protocol the papers' figures
most likely come from). Every run is the project's own path: Ray Train DDP inside a Ray Tune trial
(:func:`tune.trial.run_trial`), the best epoch chosen on the fold's validation part
(:data:`emohrnet.inference.metrics.SELECTION_RULE`), its weights scored once on the fold's test part.

The recipes were fixed before any test figure was seen, from the validation curve of fold 0 (see
:data:`RECIPE_CHOICE`); no figure of a test part took part in choosing them.

Writes ``benchmarks/results/accuracy-cpu.json`` (``--out``): per model and protocol the fold rows
(test UA, WA, macro-F1, best validation UA and epoch, learning curves) and ``test_ua_mean``,
``test_ua_std`` (sample std, ddof=1) and the same for WA and macro-F1, all as fractions; the recipe,
the command, the machine and the wall time. Prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import DEFAULT_DATA_ROOT, Context, Section

if TYPE_CHECKING:
    from tune.results import FoldRow

TITLE = "6. Accuracy on real speech: RAVDESS, both models, every speaker-independent fold"

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "accuracy-cpu.json"

RECIPES: dict[str, dict[str, Any]] = {
    "emohrnet": {
        "features": {"kind": "logmel", "n_mels": 64},
        "train": {"model": "emohrnet", "width": 8, "stem_channels": 32, "blocks_per_branch": 2,
                  "modules": [1, 1, 2, 2], "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "weight_decay": 1e-4,
                  "freq_mask": 27, "time_mask": 100, "batch_size": 32, "segment_seconds": 2.0, "epochs": 40,
                  "lr_schedule": "cosine", "seed": 0},
        "selection_fold": 0,
        "differs_from_paper": [
            "HRNet width 8 (branches 8/16/32/64) instead of 18, stem 32 instead of 64, 2 residual blocks per "
            "branch instead of 4, modules 1,1,2,2 instead of 1,1,4,3 (about 1/20 of W18's compute)",
            "64 log-mel bands instead of 128; training segments of 2 s instead of 3 s",
            "batch 32 instead of 64; 40 epochs instead of 100; cosine learning-rate decay from 1e-3 instead of "
            "a constant 1e-3",
        ],
    },
    "cnn1d_attention": {
        "features": {"kind": "mfcc", "n_mfcc": 40, "augment_copies": 2},
        "train": {"model": "cnn1d_attention", "cnn_width": 64, "dropout": 0.3, "aug_prob": 0.5, "lr": 1e-3,
                  "batch_size": 32, "segment_seconds": 3.0, "epochs": 60, "lr_schedule": "constant", "seed": 0},
        "selection_fold": None,
        "differs_from_paper": [
            "the paper's exact hyperparameters were not available; the search's baseline reading of them "
            "(widths 64/128/256, dropout 0.3, lr 1e-3) with 2 waveform-augmented copies, aug_prob 0.5",
            "batch 32; 60 epochs; evaluated per utterance (whole recordings), not per feature row",
        ],
    },
}
"""The CPU recipes, one per model: shard features, the training settings of every fold, and the
speaker fold whose validation part the recipe was chosen on (``selection_fold``; ``None``: not tuned),
so the fold whose test speakers those validation speakers are is marked (:func:`tune.evaluate.selection_folds`)."""

RECIPE_CHOICE = (
    "fixed before this run from fold 0's validation curves only, and the time budget of 90 minutes for both "
    "models on 2 cores. EmoHRNet: a 30-epoch run at a constant lr 1e-3 was still improving at epoch 30 (best val "
    "UA 0.578 at epoch 27) and swung between 0.41 and 0.58 over its last 10 epochs; 40 epochs with cosine decay "
    "reached 0.586 and stayed between 0.50 and 0.59 over its last 10, so the selected epoch depends less on one "
    "lucky validation pass: cosine, 40 epochs. The 1D CNN: the search's baseline settings, 60 epochs, not tuned. "
    "No test figure was looked at to choose either")

PROTOCOLS = {"speaker": "speaker-independent (6 folds: 4 test, 4 validation, 16 training actors)",
             "random": "random utterance split, seed 0 (80/10/10; speakers shared: NOT speaker-independent)"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="the RAVDESS folder")
    p.add_argument("--models", default=",".join(RECIPES), help="comma-separated (default: both)")
    p.add_argument("--folds", default="all", help="speaker folds: 'all' (0-5) or e.g. 0,1 (default all)")
    p.add_argument("--no-random", action="store_true", help="leave out the random-split run")
    p.add_argument("--workers", type=int, default=1,
                   help="DDP workers per run (default 1: the CPU layout, runs side by side, one per core)")
    p.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs per worker (default 1)")
    p.add_argument("--epochs", type=int, help="override every recipe's epochs (for a short look)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON file (default {DEFAULT_OUT})")
    p.add_argument("--work-dir", type=Path, help="scratch folder (default: a new temporary folder)")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in RECIPES]
    if unknown:
        p.error(f"--models: unknown {unknown}; known: {', '.join(RECIPES)}")
    if args.folds.strip().lower() == "all":
        args.folds = list(range(6))
    else:
        try:
            args.folds = sorted({int(f) for f in args.folds.split(",") if f.strip()})
        except ValueError:
            p.error(f"--folds {args.folds!r}: use 'all' or comma-separated integers 0-5")
        if not args.folds or not all(0 <= f < 6 for f in args.folds):
            p.error("--folds: RAVDESS has speaker folds 0-5")
    if args.workers < 1 or args.cpus_per_worker <= 0:
        p.error("--workers must be at least 1 and --cpus-per-worker above 0")
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be at least 1")
    return args


def build(model: str, data_root: Path, out: Path | None = None, log=print):
    """The shards of ``model``'s recipe, built once into ``out`` (default: the shard cache under
    ``$EMOHRNET_HOME/shards``) and reused while the corpus and the settings are unchanged."""
    from emohrnet.frontend import FeatureConfig, MfccConfig
    from emohrnet.shards import build_shards

    f = RECIPES[model]["features"]
    features = FeatureConfig(n_mels=f["n_mels"]) if f["kind"] == "logmel" else MfccConfig(n_mfcc=f["n_mfcc"])
    return build_shards("ravdess", data_root, out, workers=os.cpu_count() or 1, features=features,
                        augment_copies=f.get("augment_copies", 0), progress=False, log=log)


def run_folds(model: str, shard_dir: str, protocol: str, folds: list[int], storage: Path, workers: int,
              cpus_per_worker: float, epochs: int | None = None, train: dict[str, Any] | None = None,
              selection_fold: int | None = None, name: str | None = None) -> list[FoldRow]:
    """Train ``model``'s recipe on each fold of ``protocol`` (a Ray Tune grid, one Ray Train run per
    fold, as many at once as the CPUs allow) and return one row per fold.

    Each row: ``fold``, ``split``, ``status``, ``test_ua``, ``test_wa``, ``test_macro_f1``,
    ``best_val_ua``, ``best_epoch``, ``epochs_run``, ``test_confusion``, ``wall_s`` and ``curves``
    (``epoch``, ``train_loss``, ``val_loss``, ``val_ua`` per epoch; epochs counted from 1).

    ``train`` replaces the model's recipe (flat training settings, e.g. a search's chosen configuration)
    and ``selection_fold`` then names the speaker fold it was chosen on (``None``: not chosen on any);
    ``name`` is the Tune run's folder name under ``storage``.
    """
    import ray
    from ray import tune

    from emohrnet.config.experiment import ExperimentConfig, ResourcesConfig
    from emohrnet.shards import Manifest
    from tune.evaluate import fold_row, selection_folds
    from tune.ray_start import SPARE_CPUS, max_concurrent
    from tune.trial import TrialResources, trainable

    if train is None:  # the model's own recipe, chosen on its recipe's selection fold
        train, selection_fold = RECIPES[model]["train"], RECIPES[model].get("selection_fold")
    base = ExperimentConfig().with_params({**train, "protocol": protocol})
    if epochs:
        base = base.with_params({"epochs": epochs})
    resources = TrialResources(workers, cpus_per_worker, 0.0, str(storage / "train_runs"))
    total = dict(ray.cluster_resources())
    total["CPU"] = total.get("CPU", 0) - SPARE_CPUS  # the local Ray's spare CPU is not for trials (init_ray)
    concurrent = max_concurrent(ResourcesConfig(workers=workers, cpus_per_worker=cpus_per_worker), total)
    trial = trainable(resources, base, {model: shard_dir}, score_test=True)
    tuner = tune.Tuner(trial, param_space={"fold": tune.grid_search(folds)},
                       tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=min(len(folds), concurrent)),
                       run_config=tune.RunConfig(name=name or f"{model}-{protocol}", storage_path=str(storage)))
    grid = tuner.fit()
    manifest = Manifest.read(shard_dir)
    used = selection_folds(manifest, "speaker", selection_fold, folds) if selection_fold is not None and \
        protocol == "speaker" else set()
    rows = []
    for result in grid:
        fold = int(result.config["fold"])
        row = fold_row(fold, manifest.split(protocol, fold).describe(),
                        result, used_in_selection=fold in used)
        df = result.metrics_dataframe
        if df is not None and not df.empty:
            row.extra["curves"] = {k: [round(float(v), 5) for v in df[k]]
                                   for k in ("epoch", "train_loss", "val_loss", "val_ua") if k in df}
            row.extra["wall_s"] = round(float(df["time_total_s"].iloc[-1]), 1) if "time_total_s" in df else None
        row.extra["precision"] = run_precision(result)
        rows.append(row)
    return sorted(rows, key=lambda r: r.fold)


def run_precision(result) -> str | None:
    """The precision a run trained and scored in, as its checkpoint records it (``speed.amp``, resolved on the
    worker's device): ``"bf16 autocast"`` or ``"float32"``; ``None`` when it kept no checkpoint. :data:`AMP` is
    the policy; this is what it chose on the machine that ran."""
    import torch

    from emohrnet.training.checkpoint import CHECKPOINT_FILE

    df = result.metrics_dataframe
    path = df["checkpoint_path"].iloc[-1] if df is not None and "checkpoint_path" in df else None
    if not isinstance(path, str) or not (Path(path) / CHECKPOINT_FILE).is_file():
        return None
    state = torch.load(Path(path) / CHECKPOINT_FILE, map_location="cpu", weights_only=False)
    amp = (state.get("speed") or {}).get("amp")
    return {"bf16": "bf16 autocast", "off": "float32"}.get(amp, amp)


def precisions(rows: list[dict[str, Any]]) -> list[str]:
    """The precisions the fold rows (their dict form) record, each once."""
    return sorted({r["precision"] for r in rows if r.get("precision")})


def summarize(rows: list[FoldRow]) -> dict[str, Any]:
    """Mean and sample std (ddof=1) of the completed folds' test UA, WA and macro-F1 (fractions).

    ``<metric>_mean``/``_std`` average every completed fold (the 6-fold figure); ``<metric>_mean_clean``/
    ``_std_clean`` leave out the folds marked ``used_in_selection`` (their test speakers were the
    validation speakers the recipe was chosen on), as :func:`tune.evaluate.fold_statistics` does.
    """
    from tune.evaluate import fold_statistics

    stats = fold_statistics(rows)
    folds = [r.to_dict() for r in rows]
    out: dict[str, Any] = {"folds": folds, "precision": precisions(folds), "n_completed": stats["n_completed"],
                           "n_clean": stats["n_clean"], "selection_folds": stats["selection_folds"]}
    for key, name in (("test_ua", "test_ua"), ("test_wa", "test_wa"), ("test_macro_f1", "test_macro_f1"),
                      ("best_val_ua", "val_ua")):
        out[f"{name}_mean"], out[f"{name}_std"] = stats["mean_all"][key], stats["std_all"][key]
        out[f"{name}_mean_clean"], out[f"{name}_std_clean"] = stats["mean"][key], stats["std"][key]
    return out


AMP = "auto: bf16 autocast where the CPU has AVX-512 BF16 or AMX, else float32 (recorded per checkpoint)"
"""The precision policy every run of this benchmark trains and scores under (:mod:`emohrnet.training.loop`'s
automatic choice); what it resolved to is read back from each run's checkpoint (:func:`run_precision`) into the
results' ``precision``."""


def git_commit() -> str:
    """The commit of the code that runs (``+dirty`` when tracked files differ from it; ``unknown``
    outside a git checkout)."""
    import subprocess

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=Path(__file__).resolve().parent, capture_output=True,
                              text=True).stdout.strip()

    commit = git("rev-parse", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def random_split_overlap(manifest, selection_fold: int | None) -> str:
    """What the random split's row must say about its recipe: the speaker fold whose validation actors the
    recipe was chosen on, and how many of those actors' utterances are in the random split's test part
    (seed 0), counted over ``manifest`` (:class:`emohrnet.shards.manifest.Manifest`, the shards the runs read)."""
    if selection_fold is None:
        return "the recipe was not chosen on any validation part"
    chosen_on = manifest.split("speaker", selection_fold).speakers["val"]
    speaker_of = {e["key"]: e["speaker"] for e in manifest.utterances}
    test = manifest.split("random", 0).test
    n = sum(speaker_of[k] in chosen_on for k in test)
    return (f"the recipe was chosen on speaker fold {selection_fold}'s validation actors ({', '.join(chosen_on)}); "
            f"{n} of this split's {len(test)} test utterances are theirs")


def markdown(report: dict[str, Any]) -> str:
    """The README table: per model and protocol, per-fold test UA and mean ± std (in %)."""
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}"

    lines = ["| model | protocol | " + " | ".join(f"fold {f}" for f in range(6)) + " | test UA mean ± std | "
             "test WA | macro-F1 |", "|---|---|" + "---:|" * 9]
    for model, by_protocol in report["results"].items():
        for protocol, res in by_protocol.items():
            per = {r["fold"]: pct(r["test_ua"]) + ("*" if r.get("used_in_selection") else "") for r in res["folds"]}
            cells = [per.get(f, "") for f in range(6)] if protocol == "speaker" else \
                [f"seed {r['fold']}: {pct(r['test_ua'])}" for r in res["folds"]] + [""] * (6 - len(res["folds"]))
            std = f" ± {pct(res['test_ua_std'])}" if res["test_ua_std"] is not None else ""
            lines.append(f"| {model} | {protocol} | " + " | ".join(cells) + f" | **{pct(res['test_ua_mean'])}{std}** | "
                         f"{pct(res['test_wa_mean'])} | {pct(res['test_macro_f1_mean'])} |")
            if res.get("recipe_chosen_on"):
                lines.append(f"| {model} | random: {res['recipe_chosen_on']} |" + " |" * 9)
            if res.get("selection_folds"):
                clean = f"{pct(res['test_ua_mean_clean'])}" + (
                    f" ± {pct(res['test_ua_std_clean'])}" if res["test_ua_std_clean"] is not None else "")
                lines.append(f"| {model} | speaker, without fold {','.join(map(str, res['selection_folds']))}* | "
                             + " | ".join([""] * 6) + f" | {clean} | {pct(res['test_wa_mean_clean'])} | "
                             f"{pct(res['test_macro_f1_mean_clean'])} |")
    if any(res.get("selection_folds") for m in report["results"].values() for res in m.values()):
        lines.append("\n\\* the recipe was chosen on fold 0's validation actors (05-08), who are this "
                     "fold's test actors; "
                     "the row 'without fold ...' leaves it out.")
    return "\n".join(lines)


def run_all(args: argparse.Namespace, work: Path, log=print) -> dict[str, Any]:
    """Build the shards, train every model on every requested fold, and return the report."""
    import ray

    from tune.ray_start import local_cpus, start_local_ray

    from . import machine

    start = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "accuracy", "dataset": "ravdess", "data_root": str(args.data_root),
        "command": ["python", "-m", "benchmarks.accuracy", *sys.argv[1:]],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine.describe(),
        "commit": git_commit(), "amp": AMP, "device": "cpu", "workers": args.workers,
        "cpus_per_worker": args.cpus_per_worker,
        "recipes": {m: RECIPES[m] for m in args.models}, "recipe_choice": RECIPE_CHOICE,
        "protocols": PROTOCOLS, "model_selection": None, "units": "fractions (0-1)", "results": {},
    }
    from emohrnet.inference.metrics import SELECTION_RULE
    from emohrnet.shards.manifest import Manifest

    report["model_selection"] = f"per fold, on its validation part: {SELECTION_RULE}; test scored once"
    shard_dirs = {m: str(build(m, args.data_root, log=log).shard_dir) for m in args.models}
    start_local_ray(local_cpus(args))
    try:
        for model in args.models:
            report["results"][model] = {}
            plan = [("speaker", args.folds)] + ([] if args.no_random else [("random", [0])])
            for protocol, folds in plan:
                t0 = time.perf_counter()
                rows = run_folds(model, shard_dirs[model], protocol, folds, work / "runs", args.workers,
                                 args.cpus_per_worker, args.epochs)
                res = summarize(rows)
                res["wall_s"] = round(time.perf_counter() - t0, 1)
                if protocol == "random":
                    res["recipe_chosen_on"] = random_split_overlap(Manifest.read(shard_dirs[model]),
                                                                   RECIPES[model]["selection_fold"])
                report["results"][model][protocol] = res
                log(f"{model} {protocol}: test UA {res['test_ua_mean']} ± {res['test_ua_std']} "
                    f"({res['n_completed']} folds, {res['wall_s']:.0f} s)")
    finally:
        ray.shutdown()
    report["wall_s"] = round(time.perf_counter() - start, 1)
    runs = [r for by_protocol in report["results"].values() for res in by_protocol.values() for r in res["folds"]]
    report["precision"] = precisions(runs)
    return report


def run(ctx: Context) -> Section:
    """The section of :mod:`benchmarks.run`: skipped with ``--quick`` (it takes about an hour) and
    without the RAVDESS folder; otherwise the full run, written to :data:`DEFAULT_OUT` as well."""
    sec = Section("accuracy", TITLE)
    if ctx.quick:
        sec.status = "skipped"
        sec.notes.append("off in --quick (about an hour on 2 cores): python -m benchmarks.accuracy")
        return sec
    if not Path(ctx.data_root).is_dir():
        sec.status = "skipped"
        sec.notes.append(f"{ctx.data_root}: no RAVDESS folder")
        return sec
    args = parse_args(["--data-root", str(ctx.data_root)])
    report = run_all(args, ctx.work / "accuracy")
    _write(report, DEFAULT_OUT)
    plot_curves(report, DEFAULT_OUT.with_name(DEFAULT_OUT.stem + "-curves.png"))
    for model, by_protocol in report["results"].items():
        for protocol, res in by_protocol.items():
            sec.add(f"{model}, {protocol}: test UA mean", res["test_ua_mean"], "fraction",
                    std=res["test_ua_std"], folds=res["n_completed"])
    sec.settings = {"recipes": report["recipes"], "written": str(DEFAULT_OUT)}
    return sec


def plot_curves(report: dict[str, Any], out: Path) -> Path:
    """Learning curves of every run (validation UA and train/validation loss per epoch), one row of
    panels per model, every fold and protocol a line; saved as a PNG at ``out``.

    Returns:
        ``out``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(report["results"])
    fig, axes = plt.subplots(len(models), 2, figsize=(12, 3.6 * len(models)), squeeze=False)
    for (ax_ua, ax_loss), model in zip(axes, models, strict=True):
        for protocol, res in report["results"][model].items():
            for r in res["folds"]:
                c = r.get("curves") or {}
                if not c.get("epoch"):
                    continue
                label = f"fold {r['fold']}" if protocol == "speaker" else f"random seed {r['fold']}"
                style = "-" if protocol == "speaker" else "--"
                line, = ax_ua.plot(c["epoch"], [100 * v for v in c["val_ua"]], style, lw=1.2, label=label)
                ax_loss.plot(c["epoch"], c["val_loss"], style, lw=1.2, color=line.get_color())
                ax_loss.plot(c["epoch"], c["train_loss"], ":", lw=1, color=line.get_color())
        ax_ua.set(title=f"{model}: validation UA (%)", xlabel="epoch")
        ax_loss.set(title=f"{model}: validation loss (solid/dashed), training loss (dotted)", xlabel="epoch")
        ax_ua.legend(fontsize=7, ncol=2)
        for ax in (ax_ua, ax_loss):
            ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _write(report: dict[str, Any], out: Path) -> None:
    from emohrnet.io.storage import atomic_write_text

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(report, indent=1, default=str))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: exit 0 when every run finished, 1 otherwise, 2 for bad arguments."""
    args = parse_args(argv)
    if not args.data_root.is_dir():
        print(f"error: {args.data_root}: no RAVDESS folder; pass --data-root", file=sys.stderr)
        return 2
    if args.work_dir is not None:
        try:
            args.work_dir.mkdir(parents=True, exist_ok=True)  # a new scratch folder inside it
        except OSError as err:
            print(f"error: --work-dir {args.work_dir}: {err.strerror or err}; choose a writable folder",
                  file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="emohrnet-accuracy-", dir=args.work_dir))
    report = run_all(args, work)
    _write(report, args.out)
    plot_curves(report, args.out.with_name(args.out.stem + "-curves.png"))
    print(markdown(report))
    print(f"\nwall time {report['wall_s'] / 60:.1f} min; results: {args.out}")
    complete = all(res["n_completed"] == len(res["folds"]) for m in report["results"].values() for res in m.values())
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
