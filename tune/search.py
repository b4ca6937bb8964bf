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
(selected on validation only, :data:`emohrnet.inference.metrics.SELECTION_RULE`) with the protocol named, and
writes ``best.json`` in the experiment folder. The command line is parsed and turned into the
experiment's settings in :mod:`tune.options`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emohrnet.corpora import CorpusError
from emohrnet.io import paths
from emohrnet.io.location import Location
from emohrnet.io.storage import storage_error, storage_failure
from emohrnet.models import MODEL_SPECS
from emohrnet.shards import Manifest, ShardError, build_shards

from .checks import (
    ConfigError,
    check_fold,
    check_gpu_memory,
    check_gpus,
    cluster_gpus,
    local_gpus,
    shared_gpu_warning,
)
from .console import make_progress, quiet_console
from .experiment import Experiment
from .files import ASHA_STOPS, CONFIG, SEARCH_ARGS, SEARCH_LOG, SUMMARY, TRAIN_RUNS
from .local_ray import forget_local_ray, record_local_ray, stop_local_ray
from .options import PROFILES, config_from_args, parse_args
from .ray_start import init_ray, max_concurrent, shutdown_local_ray
from .results import Summary
from .search_config import SearchExperimentConfig
from .space import MODELS, baseline_points, search_space, search_space_keys
from .state import ExperimentLock, Signatures, make_signer, verify_experiment
from .storage_checks import check_study_database, check_study_storage, check_trial_folders, check_writable
from .study_storage import local_study_url, resume_study_url, study_storage_url
from .summary import format_summary, summarize, tensorboard_command
from .trial import TrialResources, launch_tuner, trainable

TUNER_STATE = "tuner.pkl"
"""Ray Tune's state of a search, written by ``Tuner()``: once it is there, ``--resume`` can continue."""

METRIC, MODE = "best_val_ua", "max"
"""What Optuna and ASHA compare: the best validation UA so far (by the selection rule), per epoch."""

__all__ = ["PROFILES", "parse_args", "run_search", "main", "SearchInterrupted", "SearchFailed", "SearchStorageFailed"]

def run_search(args: argparse.Namespace, log=print, quiet: bool = False) -> Summary:
    """Build/reuse the shards, run the search and summarise it.

    A new search turns ``args`` into the experiment's settings (:func:`tune.options.config_from_args`)
    and saves them as ``config.json``; ``--resume`` reads them back from there, taking only the
    invocation (``--address``, ``--verbose``) from ``args``. Every option is checked before Ray
    starts (:mod:`tune.checks`), and so are ``$EMOHRNET_HOME``, ``--storage-path`` and
    ``--study-storage`` (:mod:`tune.storage_checks`, before the experiment folder is made); a new search
    refuses an existing experiment name; ``--resume`` first verifies the experiment's signed state
    (:mod:`tune.state`), its study database and its trial folders, and the search holds the
    experiment's lock while it runs. With ``quiet``, Ray's own output goes to ``search.log`` and the
    console shows one line per finished epoch (:mod:`tune.console`).

    Returns:
        the summary written to ``best.json`` (see :func:`summarize`).

    Raises:
        ValueError: a configuration error (:class:`ConfigError`), an existing name, untrusted state,
            a busy experiment (exit 2 on the command line).
        SearchInterrupted: Ctrl+C or SIGTERM: the state is saved and ``--resume`` continues.
        SearchFailed: a trial failed; the search stopped (exit 1). :class:`SearchStorageFailed`: a write
            failed (a full disk, an unwritable folder) at any step; one line naming the folder and how to go
            on, and nothing written is removed.
    """
    storage = Location(args.storage_path or paths.experiments_dir())
    address = args.address or os.environ.get("RAY_ADDRESS")
    check_writable(paths.home(), "EMOHRNET_HOME", "set EMOHRNET_HOME to a writable folder (default ./emohrnet_runs)")
    if args.storage_path and storage.is_local:
        check_writable(storage.local_path, "--storage-path", "choose a writable --storage-path")
    if args.resume:
        exp_dir, config, signatures = _resumed(args, storage)
    else:
        config = config_from_args(args)
    if not address:
        import torch

        check_gpus(config.resources, {"GPU": torch.cuda.device_count()})  # the local Ray will have these GPUs
        check_gpu_memory(config, local_gpus())
    if args.resume:
        log(f"resuming {exp_dir}")
        study_url = resume_study_url(config, exp_dir, log)  # this folder's study, not the one it was saved with
        if config.search.study_storage and study_url != config.search.study_storage:
            config.search.study_storage = study_url  # recorded in config.json below, signed
    else:
        exp_dir, signatures = _new_experiment(args, storage, config, log)
    warning = shared_gpu_warning(config.resources)
    if warning:
        log(f"warning: {warning}")
    try:
        return _start(args, config, exp_dir, storage, signatures, address, log, quiet)
    except (CorpusError, ShardError, ValueError, KeyError, SearchInterrupted, SearchFailed):
        raise
    except Exception as err:  # a full disk or an unwritable folder, found by any step: one line, nothing removed
        problem = storage_error(err)
        if problem is None:
            raise
        raise SearchStorageFailed(_storage_message(problem, exp_dir, storage)) from None


def _resumed(args: argparse.Namespace, storage: Location) -> tuple[Location, SearchExperimentConfig, Signatures]:
    """The experiment ``--resume`` continues, its settings and signatures, once its signed state, its study
    database and its trial folders are checked.

    Raises:
        ValueError: no such experiment, untrusted state, a study or trial folder that does not fit.
    """
    exp_dir = find_experiment(storage, args)
    signatures = verify_experiment(exp_dir)
    config = Experiment(exp_dir).config()
    # the study keeps the name of the folder the search started in (config.json's, so a copy or a move
    # looks up the same study); experiments from before it was recorded were never copied by emohrnet
    check_study_database(study_storage_url(config, exp_dir), config.search.study_name or exp_dir.name, exp_dir)
    check_trial_folders(exp_dir)
    return exp_dir, config, signatures


def _new_experiment(args: argparse.Namespace, storage: Location, config: SearchExperimentConfig,
                    log) -> tuple[Location, Signatures]:
    """A new search's experiment folder (not made yet) and signatures; an SQLite study beside it when the
    folder is in a bucket and no ``--study-storage`` is given.

    Raises:
        ConfigError: the name holds an experiment already, or the study storage cannot be used.
    """
    name = args.name or f"{args.dataset}-{args.protocol}-fold{args.fold}-{time.strftime('%Y%m%d-%H%M%S')}"
    exp_dir = storage / name
    if exp_dir.iterdir():  # empty when it does not exist
        raise ConfigError(f"--name {name}: {exp_dir} already holds an experiment; continue it with --resume "
                          f"--name {name}, or choose another --name (nothing was changed)")
    if config.search.study_storage:
        check_study_storage(config.search.study_storage)
    if not storage.is_local and not config.search.study_storage:
        config.search.study_storage = local_study_url(exp_dir)
        log(f"Optuna study: {config.search.study_storage} (SQLite cannot live in a bucket; on a cluster pass "
            "--study-storage postgresql+psycopg2://... so any machine can resume the search)")
    return exp_dir, Signatures(exp_dir)


def _storage_message(problem: OSError, exp_dir: Location, storage: Location) -> str:
    """One line for a search stopped by a failed write: the folder, the reason, and how to go on (``--resume``
    once Ray Tune has saved the experiment's state; else run it again, under another name if it left files)."""
    if (exp_dir / TUNER_STATE).is_file():
        then = f"continue with: python -m tune.search --resume --name {exp_dir.name} --storage-path {storage}"
    elif exp_dir.iterdir():
        then = f"run the search again under another --name ({exp_dir} keeps what it wrote)"
    else:
        then = "run the search again"
    folder = exp_dir.local_path if exp_dir.is_local and exp_dir.is_dir() else paths.home()
    return storage_failure(problem, folder, then)


def _start(args: argparse.Namespace, config: SearchExperimentConfig, exp_dir: Location, storage: Location,
           signatures: Signatures, address: str | None, log, quiet: bool) -> dict[str, Any]:
    """The part of :func:`run_search` after its checks: the shards, the experiment folder, Ray."""
    data = config.data
    shard_dirs, manifests = {}, {}
    for model in (MODELS if config.model.name == "any" else (config.model.name,)):
        kind = MODEL_SPECS[model].features
        built = build_shards(**data.build_arguments(kind), out=data.shard_dir,
                             publish_root=None if storage.is_local else (storage / "shards").uri, log=log)
        check_fold(config, built.manifest)
        shard_dirs[model], manifests[model] = str(built.shard_dir), built.manifest
    try:
        exp_dir.mkdir()
    except OSError as err:
        raise ShardError(f"{exp_dir}: cannot write the experiment folder ({err.strerror or err}); "
                         "choose a writable --storage-path") from None
    with ExperimentLock(exp_dir):
        if not args.resume or config.search.study_storage != Experiment(exp_dir).config().search.study_storage:
            config.search.study_name = config.search.study_name or exp_dir.name
            signatures.add(CONFIG, Experiment(exp_dir).write_config(config).encode())
            signatures.save()
        log(f"TensorBoard: {tensorboard_command(exp_dir)}")
        run = SearchRun(config, exp_dir, storage, signatures, shard_dirs, manifests, address, args.resume)
        if not quiet:
            return _run(run, log, quiet)
        log_path = (exp_dir.local_path if exp_dir.is_local else paths.home() / "logs" / exp_dir.name) / SEARCH_LOG
        log(f"Ray's output: {log_path} (--verbose shows it here)")
        with quiet_console(log_path) as console_log:
            return _run(run, log=console_log, quiet=quiet)


@dataclass
class SearchRun:
    """What :func:`run_search` hands its Ray part: the settings, where the experiment lives, its
    signatures, the shards of each model and their manifests, the cluster's address (``None``: a
    local Ray), and whether it resumes."""

    config: SearchExperimentConfig
    exp_dir: Location
    storage: Location
    signatures: Signatures
    shard_dirs: dict[str, str]
    manifests: dict[str, Manifest]
    address: str | None
    resume: bool


def _run(run: SearchRun, log, quiet: bool) -> dict[str, Any]:
    """Start or join Ray, run the Tuner (new or restored), summarise; the local Ray is shut down at the end."""
    import ray

    from .stops import read_stops

    config, exp_dir, epochs = run.config, run.exp_dir, run.config.optimizer.epochs
    started_ray = not ray.is_initialized() and not run.address
    environment = dict(os.environ)  # a local Ray's start changes it (shutdown_local_ray)
    try:
        total = init_ray(config.resources, run.address)
        stop_on_sigterm()  # ray.init replaced the handler with one that exits mid-write
        if started_ray:
            record_local_ray(exp_dir.name)  # what --stop-local ends if this process is killed hard
        check_gpus(config.resources, total)
        if run.address:
            check_gpu_memory(config, cluster_gpus(total))
        widths, space = tuple(config.search.widths), config.search.space
        baselines, deviations = baseline_points(config.model.name, widths, space, epochs)
        # the baseline's epochs (searched in the recipe space) are --epochs: a deviation the notes name
        deviations += config.paper_deviations(set(search_space_keys(config.model.name, space)))
        r = config.resources
        resources = TrialResources(r.workers, r.cpus_per_worker, r.gpus_per_worker, (exp_dir / TRAIN_RUNS).uri)
        trial = trainable(resources, config, run.shard_dirs)
        callbacks = [make_signer(run.signatures)] + ([make_progress(log, epochs)] if quiet else [])
        tuner = (_restored_tuner(run, trial, callbacks) if run.resume
                 else _new_tuner(run, trial, callbacks, baselines, total))
        grid = tuner.fit()  # the state Ray writes is signed before it is uploaded (make_signer)
        _check_finished(grid, run)
        summary = summarize(grid, config, exp_dir, baselines, deviations, run.shard_dirs, run.manifests, log,
                            stopped=read_stops(exp_dir / ASHA_STOPS))
        (exp_dir / SUMMARY).write_text(summary.to_json())
        log(format_summary(summary))
        log(f"Summary written to {exp_dir / SUMMARY}")
        log(f"TensorBoard: {tensorboard_command(exp_dir)}")
        return summary
    finally:
        if started_ray and ray.is_initialized():
            shutdown_local_ray(environment)
            forget_local_ray(exp_dir.name)


def _restored_tuner(run: SearchRun, trial, callbacks: list):
    """Ray Tune's Tuner of an interrupted search, restored from its experiment folder: unfinished and
    errored trials run again, the ASHA record and the Optuna study are the folder's own."""
    from ray import tune

    from .stops import RecordingASHA
    from .study import point_searcher_at

    tuner = tune.Tuner.restore(run.exp_dir.uri, trainable=trial, resume_unfinished=True, resume_errored=True)
    tuner._local_tuner.get_run_config().callbacks = callbacks  # tuner.pkl holds no-op stand-ins
    scheduler = tuner._local_tuner._tune_config.scheduler
    if isinstance(scheduler, RecordingASHA):  # record where the experiment is now (a copy, a move)
        scheduler.relocate(run.exp_dir / ASHA_STOPS)
    point_searcher_at(tuner, study_storage_url(run.config, run.exp_dir))
    return tuner


def _new_tuner(run: SearchRun, trial, callbacks: list, baselines: list[dict], total: dict[str, float]):
    """A new search's Tuner: Optuna's TPE (the baselines first) over the search space, ASHA stopping weak
    trials after the grace period, as many trials at once as ``total`` (the cluster's resources) allows
    unless ``--max-concurrent`` says; its state (``tuner.pkl``) is signed."""
    import optuna

    from .stops import RecordingASHA
    from .study import StudySearch

    config, exp_dir = run.config, run.exp_dir
    epochs, r = config.optimizer.epochs, config.resources
    searcher = StudySearch(
        metric=METRIC, mode=MODE, points_to_evaluate=baselines, seed=config.protocol.seed,
        study_name=config.search.study_name or exp_dir.name,
        storage=optuna.storages.RDBStorage(study_storage_url(config, exp_dir)), epochs=epochs,
    )
    scheduler = RecordingASHA(exp_dir / ASHA_STOPS, time_attr="training_iteration", max_t=epochs,
                              grace_period=config.search.grace_period or max(1, epochs // 4), reduction_factor=3)
    space = search_space(config.model.name, tuple(config.search.widths), config.search.space, epochs)
    tuner = launch_tuner(trial, space, name=exp_dir.name, storage=run.storage.uri, dirname=_trial_dirname,
                         max_concurrent=r.max_concurrent or max_concurrent(r, total),
                         num_samples=config.search.num_samples, search_alg=searcher, scheduler=scheduler,
                         metric=METRIC, mode=MODE, callbacks=callbacks, fail_fast=True)
    run.signatures.sign_file(TUNER_STATE)  # written by Tuner() straight into the experiment folder
    return tuner


def _check_finished(grid, run: SearchRun) -> None:
    """Raise unless every trial finished.

    Raises:
        SearchFailed: a trial failed (its error's last line and its log named).
        SearchInterrupted: trials are unfinished; ``--resume`` continues.
    """
    exp_dir, storage, num_samples = run.exp_dir, run.storage, run.config.search.num_samples
    failed = [r for r in grid if r.error is not None]
    if failed:
        raise SearchFailed(
            f"trial {failed[0].metrics.get('trial_id') or Path(failed[0].path).name} failed, so the search "
            f"stopped: {_first_line(failed[0].error)} (its log: {failed[0].path}/error.txt). Fix the cause, "
            f"then continue with: python -m tune.search --resume --name {exp_dir.name} --storage-path {storage}")
    unfinished = max(0, num_samples - len(grid)) + sum(not trial_finished(r.metrics) for r in grid)
    if unfinished:
        raise SearchInterrupted(
            f"the search stopped with {unfinished} of {num_samples} trials unfinished; its state is saved. "
            f"Continue it with: python -m tune.search --resume --name {exp_dir.name} --storage-path {storage}")


def trial_finished(metrics: dict[str, Any]) -> bool:
    """Whether a trial's last result ends it: Ray's ``done`` (ASHA stopped it, or it ended while this
    process watched), or every planned epoch run. A trial that ran all its epochs before a search was
    interrupted and resumed comes back from Ray's saved state without ``done``."""
    if metrics.get("done"):
        return True
    epoch, planned = metrics.get("epoch"), metrics.get("epochs")
    return epoch is not None and planned is not None and int(epoch) >= int(planned)


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


class SearchStorageFailed(SearchFailed):
    """A write failed for want of space or permission (a full disk, an unwritable folder); the search
    stopped, keeping what it had written (the message says how to go on)."""


def find_experiment(storage: Location, args: argparse.Namespace) -> Location:
    """The experiment to resume: ``storage/--name``, else the newest one of ``--dataset``.

    Raises:
        ValueError: there is none, or it was not started by ``tune.search``.
    """
    if args.name:
        exp_dir = storage / args.name
    else:
        found = [d / name for d in storage.iterdir() if d.name.startswith(f"{args.dataset}-")
                 for name in (CONFIG, SEARCH_ARGS)]
        found = sorted((f for f in found if f.is_file()), key=lambda f: f.mtime())
        if not found:
            raise ValueError(f"no {args.dataset} search to resume in {storage}; pass --name NAME")
        exp_dir = storage / found[-1].path.rsplit("/", 2)[-2]
    if not ((exp_dir / CONFIG).is_file() or (exp_dir / SEARCH_ARGS).is_file()):
        raise ValueError(f"{exp_dir}: not a search started by tune.search (no {CONFIG}); "
                         "check --name and --storage-path")
    return exp_dir


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status: 0 done, 1 a trial failed, 2 a configuration
    error (nothing started), 130 interrupted (Ctrl+C or SIGTERM; ``--resume`` continues)."""
    args = parse_args(argv)
    stop_on_sigterm()
    try:
        if args.stop_local:
            stop_local_ray(args.name)
            return 0
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
