"""The search: Ray Tune + Optuna (TPE) over EmoHRNet trained with Ray Train DDP.

Usage::

    python -m tune.search                                   # the built-in synthetic corpus
    python -m tune.search --dataset ravdess --data-root ../shared/data/ravdess
    python -m tune.search --dataset iemocap --address auto  # on a Ray cluster (ray up cluster.yaml)

Steps: build or reuse the shards (:mod:`emohrnet.shards`); start or join Ray; run Ray Tune with
``OptunaSearch`` (TPE, its study in SQLite in the experiment folder) whose first trial is the
paper's settings (``points_to_evaluate``), and ASHA stopping weak trials early; every trial logs
to TensorBoard. Optuna and ASHA both work on the trial's best validation UA so far
(``best_val_ua``: the figure the summary reports and the checkpoint it keeps), and a trial ASHA
stops is told to the study as PRUNED with its per-epoch values (:class:`StudySearch`). At the end it
prints the trials table (parameters, best val UA and its epoch), the test UA of the best trial
(selected on validation only, :data:`emohrnet.metrics.SELECTION_RULE`) with the protocol named, and
writes ``best.json`` in the experiment folder.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from emohrnet import paths
from emohrnet.argtypes import float_above, int_at_least, int_list
from emohrnet.corpora import CorpusError, corpus_class, list_corpora
from emohrnet.location import Location
from emohrnet.shards import (
    ShardError,
    add_feature_args,
    build_shards,
    features_from_args,
    parse_corpus_options,
)
from emohrnet.train import MODEL_FEATURES

from .checks import (
    ConfigError,
    check_args,
    check_fold,
    check_gpu_memory,
    check_gpus,
    cluster_gpus,
    experiment_name,
    local_gpus,
    shared_gpu_warning,
)
from .console import make_progress, quiet_console
from .experiment import Experiment
from .files import SEARCH_ARGS, SEARCH_LOG, STUDY_DB, SUMMARY, TRAIN_RUNS
from .ray_start import init_ray, max_concurrent, shutdown_local_ray
from .space import DEFAULT_WIDTHS, MODELS, PAPER_FIXED, baseline_points, search_space
from .state import ExperimentLock, Signatures, make_signer, verify_experiment
from .summary import format_summary, summarize, tensorboard_command
from .trial import TrialResources, launch_tuner, trainable

METRIC, MODE = "best_val_ua", "max"
"""What Optuna and ASHA compare: the best validation UA so far (by the selection rule), per epoch."""

PROFILES: dict[str, dict[str, Any]] = {
    # The embedded default: minutes on a laptop CPU. Shorter segments and 64 mel bands keep
    # the paper's W18 baseline affordable; the searched settings are the paper's.
    "synthetic": {"epochs": 5, "num_samples": 3, "widths": (8, 12, 18), "n_mels": 64, "segment_seconds": 2.0,
                  "batch_size": 16},
}
DEFAULT_PROFILE: dict[str, Any] = {"epochs": PAPER_FIXED["epochs"], "num_samples": 20, "widths": DEFAULT_WIDTHS,
                                   "n_mels": 128, "segment_seconds": 3.0, "batch_size": PAPER_FIXED["batch_size"]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; unset options take the dataset's profile defaults."""
    p = argparse.ArgumentParser(prog="python -m tune.search", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="synthetic", help=f"corpus: {', '.join(list_corpora())} (default synthetic)")
    p.add_argument("--data-root", help="corpus folder (default: $EMOHRNET_<DATASET>_ROOT)")
    p.add_argument("--model", choices=(*MODELS, "any"), default="emohrnet",
                   help="EmoHRNet (log-mel), cnn1d_attention (MFCC, Lee & Nadeem 2025), or any: one search "
                   "chooses between them (default emohrnet)")
    p.add_argument("--corpus-option", action="append", default=[], metavar="KEY=VALUE",
                   help="corpus reader option, e.g. classes=five for iemocap (repeatable)")
    p.add_argument("--num-samples", type=int_at_least(1), help="trials (default 20; synthetic 3)")
    p.add_argument("--epochs", type=int_at_least(1), help="epochs per trial (default 100, the paper's; synthetic 5)")
    p.add_argument("--workers", type=int_at_least(1), default=2, help="DDP workers per trial (default 2)")
    p.add_argument("--cpus-per-worker", type=float_above(0), default=1.0, help="CPUs per worker (default 1)")
    gpus = p.add_mutually_exclusive_group()
    gpus.add_argument("--gpus-per-worker", type=float_above(0, inclusive=True), default=0.0,
                      help="GPUs per worker: 0 (CPU, gloo), a fraction, or 1 (default 0)")
    gpus.add_argument("--gpus-per-trial", type=float_above(0),
                      help="GPUs per trial, shared by its workers; a fraction packs several trials on one GPU "
                      "(0.25: four trials per GPU). Sets --gpus-per-worker to this / --workers")
    p.add_argument("--amp", choices=("auto", "bf16", "off"), default="auto",
                   help="mixed precision: auto (bf16 autocast where the device has native bf16: CUDA capability "
                   ">= 8.0, CPUs with AVX-512 BF16 or AMX), bf16, or off (float32) (default auto)")
    p.add_argument("--compile", action="store_true",
                   help="run each training step through torch.compile: fewer kernel launches for a launch-bound "
                   "GPU step (W18), at the cost of a slow first epoch while it compiles (default off)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                   help="learning rate over the epochs: constant (the paper's) or cosine decay to 0 (default constant)")
    p.add_argument("--fold", type=int_at_least(0), default=0,
                   help="fold, 0 to the corpus's folds - 1 (random protocol: the split seed)")
    p.add_argument("--protocol", choices=("speaker", "random"),
                   help="speaker-independent folds (default) or the paper's likely random split")
    p.add_argument("--widths", type=int_list(), help="comma-separated HRNet widths to search "
                   "(default 12,18,24,32; synthetic 8,12,18)")
    p.add_argument("--stem-channels", type=int_at_least(1), default=PAPER_FIXED["stem_channels"],
                   help="channels of the input module (default 64, HRNet's)")
    p.add_argument("--blocks", type=int_at_least(1), default=PAPER_FIXED["blocks_per_branch"],
                   help="residual blocks per branch (default 4, HRNet's)")
    p.add_argument("--modules", type=int_list(4), default=list(PAPER_FIXED["modules"]),
                   help="modules per stage, 4 integers >= 1 (default 1,1,4,3, HRNet-W18's)")
    p.add_argument("--batch-size", type=int_at_least(1), help="global batch (default 64, the paper's; synthetic 16)")
    p.add_argument("--segment-seconds", type=float_above(0),
                   help="training segment length in s (default 3; synthetic 2)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the search and of training")
    p.add_argument("--max-concurrent", type=int_at_least(1), help="trials at once (default: as resources allow)")
    p.add_argument("--grace-period", type=int_at_least(1), help="ASHA: epochs before a trial may be stopped")
    p.add_argument("--storage-path", help="experiments folder (default $EMOHRNET_HOME/experiments): on a "
                   "cluster, shared storage: an NFS folder or a bucket, e.g. s3://bucket/emohrnet (shards are then "
                   "published to <storage-path>/shards and read from there by every worker)")
    p.add_argument("--name", type=experiment_name, help="experiment name, letters, digits, '.', '_', '-' "
                   "(default <dataset>-<protocol>-fold<K>-<time>); a new search refuses an existing name")
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--study-storage", help="Optuna study database, any SQLAlchemy URL, e.g. "
                   "postgresql://user@host/db (default: SQLite optuna.db in the experiment folder)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted search (--name NAME, default the newest of this dataset): "
                   "finished trials are not run again and the Optuna study keeps its history")
    p.add_argument("--verbose", action="store_true",
                   help="show Ray's own output (trial tables, worker logs); by default it goes to search.log in "
                   "the experiment folder and the console shows one line per finished epoch")
    p.add_argument("--shard-dir", help="use or build the shards in this folder (a path or a bucket URI)")
    p.add_argument("--build-workers", type=int_at_least(1), default=os.cpu_count() or 1,
                   help="processes building shards")
    add_feature_args(p)
    p.set_defaults(n_mels=None, augment_copies=None)
    args = p.parse_args(argv)
    if args.dataset not in list_corpora():
        p.error(f"argument --dataset: {args.dataset!r} (allowed: {', '.join(list_corpora())})")
    profile = PROFILES.get(args.dataset, DEFAULT_PROFILE)
    for key in ("epochs", "num_samples", "n_mels", "segment_seconds", "batch_size"):
        if getattr(args, key) is None:
            setattr(args, key, profile[key])
    args.widths = tuple(args.widths or profile["widths"])
    if args.augment_copies is None:
        args.augment_copies = 2  # waveform-augmented copies in the MFCC shards of cnn1d_attention
    if args.protocol is None:
        args.protocol = getattr(corpus_class(args.dataset), "default_protocol", "speaker")
    check_args(p, args)
    return args


def run_search(args: argparse.Namespace, log=print, quiet: bool = False) -> dict[str, Any]:
    """Build/reuse the shards, run the search and summarise it.

    Every option is checked before Ray starts (:mod:`tune.checks`); a new search refuses an existing
    experiment name; ``--resume`` first verifies the experiment's signed state (:mod:`tune.state`)
    and the search holds the experiment's lock while it runs. With ``quiet``, Ray's own output goes
    to ``search.log`` and the console shows one line per finished epoch (:mod:`tune.console`).

    Returns:
        the summary written to ``best.json`` (see :func:`summarize`).

    Raises:
        ValueError: a configuration error (:class:`ConfigError`), an existing name, untrusted state,
            a busy experiment (exit 2 on the command line).
        SearchInterrupted: Ctrl+C or SIGTERM: the state is saved and ``--resume`` continues.
        SearchFailed: a trial failed; the search stopped (exit 1).
    """
    storage = Location(args.storage_path or paths.experiments_dir())
    if not (args.address or os.environ.get("RAY_ADDRESS")):
        import torch

        check_gpus(args, {"GPU": torch.cuda.device_count()})  # the local Ray will have these GPUs
        check_gpu_memory(args, local_gpus())
    if args.resume:
        exp_dir = find_experiment(storage, args)
        signatures = verify_experiment(exp_dir)
        args = load_search_args(exp_dir, address=args.address, verbose=getattr(args, "verbose", False))
        log(f"resuming {exp_dir}")
    else:
        name = args.name or f"{args.dataset}-{args.protocol}-fold{args.fold}-{time.strftime('%Y%m%d-%H%M%S')}"
        exp_dir = storage / name
        if exp_dir.iterdir():  # empty when it does not exist
            raise ConfigError(f"--name {name}: {exp_dir} already holds an experiment; continue it with --resume "
                              f"--name {name}, or choose another --name (nothing was changed)")
        signatures = Signatures(exp_dir)
        if not storage.is_local and not args.study_storage:
            args.study_storage = local_study_url(name)
            log(f"Optuna study: {args.study_storage} (SQLite cannot live in a bucket; on a cluster pass "
                "--study-storage postgresql://... so any machine can resume the search)")
    warning = shared_gpu_warning(args)
    if warning:
        log(f"warning: {warning}")
    shard_dirs, manifests = {}, {}
    for model in (MODELS if args.model == "any" else (args.model,)):
        kind = MODEL_FEATURES[model]
        built = build_shards(args.dataset, args.data_root, args.shard_dir, workers=args.build_workers,
                             features=features_from_args(args, kind),
                             corpus_options=parse_corpus_options(args.corpus_option),
                             augment_copies=args.augment_copies if kind == "mfcc" else 0,
                             publish_root=None if storage.is_local else (storage / "shards").uri, log=log)
        check_fold(args, built.manifest)
        shard_dirs[model], manifests[model] = str(built.shard_dir), built.manifest
    try:
        exp_dir.mkdir()
    except OSError as err:
        raise ShardError(f"{exp_dir}: cannot write the experiment folder ({err.strerror or err}); "
                         "choose a writable --storage-path") from None
    with ExperimentLock(exp_dir):
        if not args.resume:
            text = json.dumps(vars(args), indent=1)
            (exp_dir / SEARCH_ARGS).write_text(text)
            signatures.add(SEARCH_ARGS, text.encode())
            signatures.save()
        log(f"TensorBoard: {tensorboard_command(exp_dir)}")
        if not quiet:
            return _run(args, exp_dir, storage, signatures, shard_dirs, manifests, log, quiet)
        log_path = (exp_dir.local_path if exp_dir.is_local else paths.home() / "logs" / exp_dir.name) / SEARCH_LOG
        log(f"Ray's output: {log_path} (--verbose shows it here)")
        with quiet_console(log_path) as console_log:
            return _run(args, exp_dir, storage, signatures, shard_dirs, manifests, console_log, quiet)


def _run(args, exp_dir: Location, storage: Location, signatures: Signatures, shard_dirs: dict[str, str],
         manifests: dict[str, dict], log, quiet: bool) -> dict[str, Any]:
    """Start or join Ray, run the Tuner (new or restored), summarise; the local Ray is shut down at the end."""
    import optuna
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    started_ray = not ray.is_initialized() and not (args.address or os.environ.get("RAY_ADDRESS"))
    environment = dict(os.environ)  # a local Ray's start changes it (shutdown_local_ray)
    try:
        total = init_ray(args)
        stop_on_sigterm()  # ray.init replaced the handler with one that exits mid-write
        check_gpus(args, total)
        if args.address or os.environ.get("RAY_ADDRESS"):
            check_gpu_memory(args, cluster_gpus(total))
        fixed = {"shard_dirs": shard_dirs, "protocol": args.protocol, "fold": args.fold,
                 "epochs": args.epochs, "batch_size": args.batch_size, "stem_channels": args.stem_channels,
                 "blocks_per_branch": args.blocks, "modules": args.modules, "segment_seconds": args.segment_seconds,
                 "seed": args.seed, "amp": getattr(args, "amp", "auto"), "compile": getattr(args, "compile", False),
                 "lr_schedule": getattr(args, "lr_schedule", "constant"), "beta1": PAPER_FIXED["beta1"],
                 "beta2": PAPER_FIXED["beta2"], "weight_decay": PAPER_FIXED["weight_decay"]}
        if args.model != "any":
            fixed["model"] = args.model
        baselines, deviations = baseline_points(args.model, args.widths)
        if args.model != "cnn1d_attention":
            deviations += [f"EmoHRNet {k} {fixed[k]} instead of {v}" for k, v in PAPER_FIXED.items()
                           if fixed[k] != v]
        resources = TrialResources(args.workers, args.cpus_per_worker, args.gpus_per_worker,
                                   (exp_dir / TRAIN_RUNS).uri)
        trial = trainable(resources, fixed)
        callbacks = [make_signer(signatures)] + ([make_progress(log, args.epochs)] if quiet else [])
        if args.resume:
            tuner = tune.Tuner.restore(exp_dir.uri, trainable=trial, resume_unfinished=True,
                                       resume_errored=True)
            tuner._local_tuner.get_run_config().callbacks = callbacks  # tuner.pkl holds no-op stand-ins
        else:
            from .study import StudySearch

            searcher = StudySearch(
                metric=METRIC, mode=MODE, points_to_evaluate=baselines, seed=args.seed, study_name=exp_dir.name,
                storage=optuna.storages.RDBStorage(study_storage_url(args, exp_dir)), epochs=args.epochs,
            )
            scheduler = ASHAScheduler(time_attr="training_iteration", max_t=args.epochs,
                                      grace_period=args.grace_period or max(1, args.epochs // 4), reduction_factor=3)
            tuner = launch_tuner(trial, search_space(args.model, args.widths), name=exp_dir.name, storage=storage.uri,
                                 dirname=_trial_dirname,
                                 max_concurrent=args.max_concurrent or max_concurrent(args, total),
                                 num_samples=args.num_samples, search_alg=searcher, scheduler=scheduler,
                                 metric=METRIC, mode=MODE, callbacks=callbacks, fail_fast=True)
            signatures.sign_file("tuner.pkl")  # written by Tuner() straight into the experiment folder
        grid = tuner.fit()  # the state Ray writes is signed before it is uploaded (make_signer)
        failed = [r for r in grid if r.error is not None]
        if failed:
            raise SearchFailed(
                f"trial {failed[0].metrics.get('trial_id') or Path(failed[0].path).name} failed, so the search "
                f"stopped: {_first_line(failed[0].error)} (its log: {failed[0].path}/error.txt). Fix the cause, "
                f"then continue with: python -m tune.search --resume --name {exp_dir.name} --storage-path {storage}")
        unfinished = max(0, args.num_samples - len(grid)) + sum(not r.metrics.get("done", False) for r in grid)
        if unfinished:
            raise SearchInterrupted(
                f"the search stopped with {unfinished} of {args.num_samples} trials unfinished; its state is saved. "
                f"Continue it with: python -m tune.search --resume --name {exp_dir.name} --storage-path {storage}")
        summary = summarize(grid, args, exp_dir, baselines, deviations, fixed, manifests, log)
        (exp_dir / SUMMARY).write_text(json.dumps(summary, indent=1, default=str))
        log(format_summary(summary))
        log(f"Summary written to {exp_dir / SUMMARY}")
        log(f"TensorBoard: {tensorboard_command(exp_dir)}")
        return summary
    finally:
        if started_ray and ray.is_initialized():
            shutdown_local_ray(environment)


def stop_on_sigterm() -> None:
    """Make SIGTERM (``kill``, systemd, a cluster scheduler) stop the search as Ctrl+C does: Ray
    Tune's own Ctrl+C handler while it runs (last state saved, resume hint), else KeyboardInterrupt."""
    def forward(signum, frame):
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler) and handler is not signal.default_int_handler:
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, forward)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__


class SearchInterrupted(RuntimeError):
    """The search stopped before every trial finished (Ctrl+C, SIGTERM, a lost driver); ``--resume``
    continues it."""


class SearchFailed(RuntimeError):
    """A trial failed (an error in its training, not an interruption); the search stopped."""


def study_storage_url(args: argparse.Namespace, exp_dir: Location) -> str:
    """The Optuna study's database: ``--study-storage`` or SQLite in the (local) experiment folder."""
    return args.study_storage or f"sqlite:///{exp_dir.local_path / STUDY_DB}"


def local_study_url(name: str) -> str:
    """SQLite study of an experiment kept in an object store: ``$EMOHRNET_HOME/studies/<name>/optuna.db``
    on the machine running the search (a bucket cannot hold a SQLite database)."""
    folder = paths.home() / "studies" / name
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / STUDY_DB}"


def find_experiment(storage: Location, args: argparse.Namespace) -> Location:
    """The experiment to resume: ``storage/--name``, else the newest one of ``--dataset``.

    Raises:
        ValueError: there is none, or it was not started by ``tune.search``.
    """
    if args.name:
        exp_dir = storage / args.name
    else:
        found = [d / SEARCH_ARGS for d in storage.iterdir() if d.name.startswith(f"{args.dataset}-")]
        found = sorted((f for f in found if f.is_file()), key=lambda f: f.mtime())
        if not found:
            raise ValueError(f"no {args.dataset} search to resume in {storage}; pass --name NAME")
        exp_dir = storage / found[-1].path.rsplit("/", 2)[-2]
    if not (exp_dir / SEARCH_ARGS).is_file():
        raise ValueError(f"{exp_dir}: not a search started by tune.search (no {SEARCH_ARGS}); "
                         "check --name and --storage-path")
    return exp_dir


def load_search_args(exp_dir: Location | str | Path, **overrides: Any) -> argparse.Namespace:
    """The arguments an experiment was started with (``search_args.json``), with ``overrides``
    (e.g. a new ``address``) where given."""
    saved = Experiment(exp_dir).search_args()
    if saved is None:
        raise FileNotFoundError(f"{Location(exp_dir) / SEARCH_ARGS}: no such file")
    saved.update({k: v for k, v in overrides.items() if v is not None})
    saved["resume"] = True
    saved["widths"] = tuple(saved["widths"])
    return argparse.Namespace(**saved)


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status: 0 done, 1 a trial failed, 2 a configuration
    error (nothing started), 130 interrupted (Ctrl+C or SIGTERM; ``--resume`` continues)."""
    args = parse_args(argv)
    stop_on_sigterm()
    try:
        run_search(args, quiet=not args.verbose)
    except (SearchInterrupted, KeyboardInterrupt) as err:
        print(f"interrupted: {err or 'before the search started'}", file=sys.stderr)
        return 130
    except SearchFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (CorpusError, ShardError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
