"""Cross-fold evaluation of a chosen configuration: the number a results table quotes.

Usage::

    python -m tune.evaluate --dataset ravdess --config EXP/best.json --folds all
    python -m tune.evaluate --dataset ravdess --config EXP/best.json --folds 0,2,5 --epochs 50
    python -m tune.evaluate --dataset iemocap --config EXP/best.json --address auto   # on a Ray cluster
    python -m tune.evaluate --dataset iemocap --config s3://BUCKET/emohrnet/NAME --address auto  # kept in a bucket

A search (:mod:`tune.search`) tunes on one fold; its test UA is one fold's figure. This command
trains the search's best configuration (``best_config`` of ``best.json``: the model and every
setting, protocol included) on each requested fold, one Ray Train (DDP) run per fold, run as a Ray
Tune grid over the folds (no search algorithm, no scheduler; as many folds at once as the
resources allow), so every fold also logs to TensorBoard. Inside each fold the best epoch is
chosen on that fold's validation split (val UA) and only that epoch's weights are scored on the
fold's test split, once.

It prints, per fold, the test UA, WA and macro-F1 and the best validation epoch, then the mean
and sample standard deviation over the folds, naming the protocol ("speaker-independent, N
folds" or "random split, seeds ..."), and writes ``crossfold.json`` and ``crossfold.md`` beside
``best.json`` (in its folder or its bucket: :class:`tune.experiment.Experiment`; the folds' Tune run
goes there too unless ``--storage-path`` says otherwise). Each run also keeps its own result in its
Tune folder; a later run on other folds of the same configuration is merged into the experiment's
result (and says so), and nothing is replaced without ``--force`` (:mod:`tune.crossfold_files`).

Folds used in selection. The search chose its configuration on the validation part of one fold
(``best.json``'s ``protocol`` and ``fold``). A fold whose test utterances overlap that validation
part took part in choosing the configuration, so its test score is not an unbiased estimate
(:func:`selection_folds`). Under the speaker protocol that is fold ``K+1`` for a search on fold
``K`` (fold ``K`` validates on the speakers fold ``K+1`` tests on); under the random protocol it
is every seed but the search's own. Such folds are marked (``*``) in every table; the headline
mean ± std (``mean``/``std``, :func:`headline`) leaves them out, and ``mean_all``/``std_all``
average all completed folds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from emohrnet.config.argtypes import float_above, int_at_least
from emohrnet.config.experiment import ExperimentConfig, ResourcesConfig
from emohrnet.corpora import CorpusError
from emohrnet.data.loading import check_global_batch
from emohrnet.inference.metrics import macro_f1
from emohrnet.io.location import Location
from emohrnet.io.storage import storage_error, storage_failure
from emohrnet.models import MODEL_SPECS
from emohrnet.shards import Manifest, ShardError, build_shards

from .crossfold_files import check_earlier, keep_in_own_folder, merge, read_earlier
from .crossfold_text import format_markdown, format_table
from .experiment import Experiment, read_search_summary
from .files import CONFIG, CROSSFOLD_JSON, CROSSFOLD_MD, SUMMARY, TRAIN_RUNS
from .results import METRICS, CrossfoldResult, FoldRow, Summary

RANDOM_SEEDS = 5
"""``--folds all`` under the random protocol: split seeds 0..4."""

MODEL_SELECTION = ("inside each fold, the best epoch is chosen on that fold's validation split (val UA); the fold's "
                   "test split is scored once, with that epoch's weights")



# --------------------------------------------------------------------------- metrics
def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (``ddof=1``) of ``values``.

    Returns:
        ``(mean, std)``; ``std`` is ``None`` for fewer than 2 values, both are ``None`` for none.
    """
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def selection_folds(manifest: Manifest, protocol: str, search_fold: int, folds: list[int]) -> set[int]:
    """The folds whose test utterances took part in choosing the configuration.

    The search (:mod:`tune.search`) chose its best trial on the validation part of its own fold,
    ``manifest.split(protocol, search_fold).val``. A fold
    whose test part shares an utterance with that validation part was, in effect, seen by the
    selection: its test score is biased upwards and must not enter the headline mean. Under the
    speaker protocol with three or more speaker groups this is fold ``(search_fold + 1) % n`` (the
    search validated on the speakers that fold tests on); with two groups it is the other fold.
    Under the random protocol it is, in practice, every seed other than the search's own (random
    10% test and validation parts of different seeds overlap), which is the honest answer: only
    the search's own seed is clean there.

    Args:
        manifest: the shard manifest (its utterances and speaker folds define the splits).
        protocol: ``"speaker"`` or ``"random"`` (the search's; ``best.json``'s ``protocol``).
        search_fold: the search's fold (``best.json``'s ``fold``; the split seed under ``random``).
        folds: the folds to check.

    Returns:
        the subset of ``folds`` whose test part intersects the search's validation part.

    Raises:
        ValueError: unknown protocol or a fold out of range (from :func:`emohrnet.data.splits.make_split`).
    """
    search_val = set(manifest.split(protocol, search_fold).val)
    return {f for f in folds if search_val & set(manifest.split(protocol, f).test)}


def fold_statistics(rows: list[FoldRow]) -> dict[str, Any]:
    """Mean ± std of the completed folds: the headline over the folds not used in selection, and all.

    Args:
        rows: fold rows (:func:`fold_row`), each with its ``status``, ``used_in_selection`` and the
            :data:`tune.results.METRICS`.

    Returns:
        ``mean``/``std`` (per metric) over the completed folds with ``used_in_selection`` false (the
        headline; all ``None`` when every completed fold was used in selection), ``mean_all``/
        ``std_all`` over every completed fold, ``n_completed``, ``n_clean`` (completed folds not
        used in selection) and ``selection_folds`` (sorted indices of the rows used in selection,
        completed or not).
    """
    done = [r for r in rows if r.completed]
    clean = [r for r in done if not r.used_in_selection]
    out: dict[str, Any] = {"mean": {}, "std": {}, "mean_all": {}, "std_all": {}}
    for key in METRICS:
        out["mean"][key], out["std"][key] = mean_std([getattr(r, key) for r in clean])
        out["mean_all"][key], out["std_all"][key] = mean_std([getattr(r, key) for r in done])
    out.update(n_completed=len(done), n_clean=len(clean),
               selection_folds=sorted(r.fold for r in rows if r.used_in_selection))
    return out


# --------------------------------------------------------------------------- command line
def parse_args(argv: list[str] | None = None) -> CrossfoldOptions:
    """Parse the command line (see the module docstring) into typed options; a bad value exits 2."""
    p = argparse.ArgumentParser(prog="python -m tune.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="the corpus (must be the one best.json was searched on)")
    p.add_argument("--data-root", help="corpus folder, used only if the shards must be rebuilt "
                   "(default: the search's --data-root, else $EMOHRNET_<DATASET>_ROOT)")
    p.add_argument("--config", required=True, help="best.json written by python -m tune.search, or its experiment "
                   "folder; a bucket URI (s3://..., gs://...) too")
    p.add_argument("--folds", default="all",
                   help="'all' (every speaker fold; random protocol: seeds 0-4) or indices, e.g. 0,2,5 "
                   "(default all)")
    p.add_argument("--epochs", type=int_at_least(1), help="epochs per fold (default: the searched config's)")
    p.add_argument("--workers", type=int_at_least(1), help="DDP workers per fold (default: the search's, else 2)")
    p.add_argument("--cpus-per-worker", type=float_above(0),
                   help="CPUs per worker (default: the search's, else 1)")
    p.add_argument("--gpus-per-worker", type=float_above(0, inclusive=True),
                   help="GPUs per worker, up to 1 (default: the search's, else 0)")
    p.add_argument("--storage-path", help="where the folds' Tune run goes (default: the experiment folder)")
    p.add_argument("--name", help="name of the folds' Tune run (default crossfold-<time>)")
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--force", action="store_true", help="run folds that already have results in the experiment's "
                   "crossfold.json again and replace them there (or replace a result of another configuration, "
                   "which stays in its own run's folder), or reuse an existing --name")
    args = p.parse_args(argv)
    if args.gpus_per_worker is not None and args.gpus_per_worker > 1:
        p.error(f"argument --gpus-per-worker: {args.gpus_per_worker:g} (allowed: up to 1; a worker trains on one "
                "GPU: use more --workers)")
    return CrossfoldOptions(**vars(args))


def parse_folds(spec: str, protocol: str, n_folds: int) -> list[int]:
    """The folds ``--folds`` names.

    Args:
        spec: ``"all"`` or comma-separated non-negative integers.
        protocol: ``"speaker"`` (folds index the corpus's speaker groups) or ``"random"``
            (folds are split seeds; ``all`` is seeds ``0..RANDOM_SEEDS-1``).
        n_folds: the corpus's speaker groups (``len(manifest.folds)``).

    Returns:
        the fold indices, sorted, without repeats.

    Raises:
        ValueError: not integers, empty, or a speaker fold outside ``[0, n_folds)``.
    """
    if spec.strip().lower() == "all":
        return list(range(n_folds if protocol == "speaker" else RANDOM_SEEDS))
    try:
        folds = sorted({int(s) for s in spec.split(",") if s.strip()})
    except ValueError:
        raise ValueError(f"--folds {spec!r}: use 'all' or comma-separated integers such as 0,2,5") from None
    if not folds:
        raise ValueError("--folds names no fold")
    if folds[0] < 0:
        raise ValueError(f"--folds {spec!r}: folds are non-negative")
    if protocol == "speaker" and folds[-1] >= n_folds:
        raise ValueError(f"--folds {spec!r}: this corpus has speaker folds 0..{n_folds - 1}")
    return folds


def protocol_name(protocol: str, folds: list[int], n_total: int | None = None) -> str:
    """How a result names its protocol, e.g. ``"speaker-independent, 6 folds"`` or
    ``"random split, seeds 0,1,2"`` (the latter also says that it is not speaker-independent)."""
    if protocol == "speaker":
        name = f"speaker-independent, {len(folds)} fold{'s' if len(folds) != 1 else ''}"
        if n_total is None or len(folds) != n_total:
            name += f" ({','.join(map(str, folds))}" + (f" of {n_total})" if n_total is not None else ")")
        return name
    return (f"random split, seeds {','.join(map(str, folds))} (speakers shared between train and test: "
            "NOT speaker-independent)")


# --------------------------------------------------------------------------- shards
def ensure_shards(shard_dirs: dict[str, str], model: str, exp_dir: str | Path | Location, data_root: str | None = None,
                  log=print) -> dict[str, str]:
    """The shard folders of the search (``shard_dirs``: ``best.json``'s, ``{model: folder}``), rebuilt if they
    are gone.

    A folder is reused when its manifest reads and every shard's sha256 matches; otherwise the
    shards of ``model`` are built again with the search's settings (``config.json``'s data section:
    corpus options, front end, augmentation copies) from ``data_root`` (default: the search's).

    Returns:
        ``{model: shard folder}``.

    Raises:
        ShardError: the shards are gone and ``config.json`` is missing, or the build fails.
        CorpusError: the corpus is not at the data root.
    """
    current = shard_dirs.get(model)
    if current:
        try:
            problems = Manifest.read(current).verify(current)
        except ShardError as err:
            problems = [str(err)]
        if not problems:
            log(f"reusing the search's shards in {current}")
            return {model: current}
        log(f"the search's shards cannot be used ({'; '.join(problems[:3])}); rebuilding them")
    saved = Experiment(exp_dir).config()
    if saved is None:
        raise ShardError(f"{exp_dir}: the search's shards are gone and there is no {CONFIG} to rebuild "
                         "them with; build them with python -m shards.build and run the search again")
    data = saved.data
    kind = MODEL_SPECS[model].features
    out = data.shard_dir if saved.model.name != "any" else None
    built = build_shards(**data.build_arguments(kind, data_root), out=out, log=log)
    return {model: str(built.shard_dir)}


# --------------------------------------------------------------------------- the run
def run_crossfold(options: CrossfoldOptions, log=print) -> CrossfoldResult:
    """Train ``best.json``'s configuration on every requested fold and summarise the folds.

    Starts a local Ray (or joins ``--address``/``$RAY_ADDRESS``) unless this process already has
    Ray initialised, which it then uses; the caller shuts Ray down.

    Returns:
        the result written to ``crossfold.json`` (:class:`tune.results.CrossfoldResult`): ``dataset``, ``model``,
        ``protocol``, ``protocol_name``, ``model_selection``, ``folds`` (a row per fold: ``fold``, ``split``,
        ``status``, ``used_in_selection``, ``test_ua``, ``test_wa``, ``test_macro_f1``,
        ``best_val_ua``, ``best_epoch`` (counted from 1, as in ``best.json``), ``epochs_run``,
        ``test_confusion``, ``path``), ``search_fold``, ``selection_folds`` (folds whose test
        utterances took part in choosing the configuration, :func:`selection_folds`), ``mean`` and
        ``std`` (per metric, the headline: completed folds not used in selection; ``std`` ``None``
        with one fold, both ``None`` with none), ``mean_all`` and ``std_all`` (every completed fold),
        ``n_completed``, ``n_clean``, ``config``, ``source``, ``tune_dir``, ``tensorboard``, ``runs`` (the
        cross-fold runs its folds come from: ``tune_dir``, ``folds``; this run last). The run's own folds
        go to ``crossfold.json`` in its Tune folder; the experiment's ``crossfold.json`` (returned) merges
        them with an earlier run's of the same configuration (:mod:`tune.crossfold_files`).

    Raises:
        FileNotFoundError: no ``--config`` file.
        ValueError: ``--config`` is not a search summary, ``--dataset`` is not the searched corpus, bad
            ``--folds``; :class:`tune.crossfold_files.CrossfoldConflict`: without ``--force``, the run
            would replace an earlier result (all before Ray starts).
        ShardError, CorpusError: the shards are gone and cannot be rebuilt.
        RuntimeError: no fold finished.
    """
    plan = _plan(options, log)
    _announce(plan, log)
    rows = _train_folds(plan, options.address)
    return _write_results(plan, rows, log)


@dataclass
class CrossfoldOptions:
    """What a cross-fold run is asked for: the options of ``python -m tune.evaluate`` (see its ``--help``);
    ``None`` takes the search's value (``epochs``, ``workers``, ``cpus_per_worker``, ``gpus_per_worker``)
    or the documented default."""

    dataset: str
    config: str
    data_root: str | None = None
    folds: str = "all"
    epochs: int | None = None
    workers: int | None = None
    cpus_per_worker: float | None = None
    gpus_per_worker: float | None = None
    storage_path: str | None = None
    name: str | None = None
    address: str | None = None
    force: bool = False


@dataclass
class _Plan:
    """A cross-fold run, resolved before Ray starts: the searched configuration, its shards, the folds
    and which of them took part in selection, where the run goes and what it would merge with."""

    summary: Summary
    exp_dir: Location
    config_path: str
    shard_dirs: dict[str, str]
    manifest: Manifest
    folds: list[int]
    used: set[int]
    resources: ResourcesConfig
    base: ExperimentConfig
    storage: Location
    name: str
    header: dict[str, Any]
    earlier: CrossfoldResult | None
    merge_into: CrossfoldResult | None

    @property
    def model(self) -> str:
        return self.header["model"]

    @property
    def protocol(self) -> str:
        return self.header["protocol"]

    @property
    def tune_dir(self) -> Location:
        return self.storage / self.name

    @property
    def n_groups(self) -> int:
        return len(self.manifest.folds)


def _plan(options: CrossfoldOptions, log=print) -> _Plan:
    """Read ``best.json`` and the experiment's config, check the shards, folds and earlier results."""
    from .trial import trial_train_config

    config = Location(options.config)
    if not config.name.endswith(".json"):
        config = config / SUMMARY  # the experiment folder (or its bucket URI) was given
    summary = read_search_summary(config, options.dataset)
    exp_dir = config.parent
    best_config = dict(summary.best_config)
    model, protocol = summary.chosen_model, summary.protocol
    shard_dirs = ensure_shards(summary.shard_dirs, model, exp_dir, options.data_root, log)
    manifest = Manifest.read(shard_dirs[model])
    folds = parse_folds(options.folds, protocol, len(manifest.folds))
    search_fold = summary.search_fold  # the fold the search chose its configuration on
    saved = Experiment(exp_dir).config() or ExperimentConfig()  # a handmade best.json: the defaults
    given = {k: getattr(options, k) for k in ("workers", "cpus_per_worker", "gpus_per_worker")}
    resources = replace(saved.resources, **{k: v for k, v in given.items() if v is not None})
    check_global_batch(int(best_config.get("batch_size", saved.optimizer.batch_size)), int(resources.workers))
    base = saved.with_params({k: v for k, v in best_config.items() if k != "fold"})
    base = base.with_params({"model": model, "protocol": protocol, "epochs": options.epochs or base.optimizer.epochs})
    storage = Location(options.storage_path or exp_dir)
    name = options.name or f"crossfold-{time.strftime('%Y%m%d-%H%M%S')}"
    run_config = trial_train_config({}, base, shard_dirs, score_test=True)
    header = {"dataset": summary.dataset, "model": model, "best_trial": summary.best_trial,
              "protocol": protocol, "search_fold": search_fold, "epochs": int(base.optimizer.epochs),
              "config": {k: v for k, v in run_config.items() if k != "fold"}}
    earlier = read_earlier(exp_dir, options.force)
    merge_into = check_earlier(earlier, header, folds, storage / name, exp_dir / CROSSFOLD_JSON, options.force)
    return _Plan(summary, exp_dir, config.uri, shard_dirs, manifest, folds,
                 selection_folds(manifest, protocol, search_fold, folds), resources, base, storage, name, header,
                 earlier, merge_into)


def _announce(plan: _Plan, log=print) -> None:
    """What the run will do: the protocol, the selection rule, the folds used in selection, TensorBoard."""
    pname = protocol_name(plan.protocol, plan.folds, plan.n_groups if plan.protocol == "speaker" else None)
    log(f"Cross-fold evaluation of trial {plan.summary.best_trial} ({plan.model}) on "
        f"{plan.summary.dataset}: {pname}")
    log(f"Model selection: {MODEL_SELECTION}")
    if plan.used:
        log(f"Used in selection (marked *, left out of the headline mean): {', '.join(map(str, sorted(plan.used)))}: "
            f"test utterances shared with the validation part of the search's {plan.protocol} fold "
            f"{plan.header['search_fold']}")
    log(f"TensorBoard: tensorboard --logdir {plan.tune_dir}")


def _train_folds(plan: _Plan, address: str | None) -> list[FoldRow]:
    """Train the configuration on every fold (a Tune grid over the folds); one row per fold, sorted.

    Raises:
        RuntimeError: no fold finished.
    """
    import ray
    from ray import tune

    from .ray_start import init_ray, max_concurrent
    from .trial import TrialResources, launch_tuner, trainable

    run = plan.resources
    total = ray.cluster_resources() if ray.is_initialized() else init_ray(run, address)
    concurrent = min(len(plan.folds), max_concurrent(run, total))
    resources = TrialResources(run.workers, run.cpus_per_worker, run.gpus_per_worker,
                               (plan.tune_dir / TRAIN_RUNS).uri)
    tuner = launch_tuner(trainable(resources, plan.base, plan.shard_dirs, score_test=True),
                         {"fold": tune.grid_search(plan.folds)}, name=plan.name, storage=plan.storage.uri,
                         dirname=_fold_dirname, max_concurrent=concurrent)
    rows = []
    for result in tuner.fit():
        fold = int(result.config["fold"])
        split = plan.manifest.split(plan.protocol, fold).describe()
        rows.append(fold_row(fold, split, result, used_in_selection=fold in plan.used))
    rows.sort(key=lambda r: r.fold)
    if not any(r.completed for r in rows):
        raise RuntimeError(f"no fold finished; see the errors in {plan.tune_dir}")
    return rows


def _write_results(plan: _Plan, rows: list[FoldRow], log=print) -> CrossfoldResult:
    """Write this run's own ``crossfold.json`` in its Tune folder, and the experiment's, merged with an
    earlier run of the same configuration; return the experiment's."""
    tune_dir, exp_dir = plan.tune_dir, plan.exp_dir
    this_run = {"tune_dir": tune_dir.uri, "folds": [r.fold for r in rows]}
    common = {**plan.header, "protocol_note": plan.summary.protocol_note,
              "model_selection": MODEL_SELECTION, "folds_requested": plan.folds,
              "n_folds_total": plan.n_groups if plan.protocol == "speaker" else None,
              "classes": plan.manifest.classes, "source": plan.config_path, "experiment_dir": exp_dir.uri,
              "tune_dir": tune_dir.uri, "tensorboard": f"tensorboard --logdir {tune_dir}"}
    own = _result(common, rows, [this_run], plan.n_groups)
    _write_result(tune_dir, own)  # this run's own result, whatever happens to the experiment's
    if plan.merge_into is not None:
        merged_rows, runs = merge(plan.merge_into, rows, this_run)
        out = _result(common, merged_rows, runs, plan.n_groups)
        log(f"{exp_dir / CROSSFOLD_JSON}: this run's {_folds(rows)} merged with "
            f"{_folds([r for r in merged_rows if r.fold not in this_run['folds']])} of the earlier run(s) "
            f"{', '.join(Location(r['tune_dir']).name for r in runs[:-1])}")
    else:
        if plan.earlier is not None:
            keep_in_own_folder(plan.earlier, format_markdown(plan.earlier))
            log(f"{exp_dir / CROSSFOLD_JSON}: the earlier result (another configuration) is replaced (--force); "
                f"it stays in {plan.earlier.tune_dir}")
        out = own
    _write_result(exp_dir, out)
    log(format_table(out))
    log(f"Written: {exp_dir / CROSSFOLD_JSON}, {exp_dir / CROSSFOLD_MD} (this run alone: {tune_dir / CROSSFOLD_JSON})")
    return out


def _folds(rows: list[FoldRow]) -> str:
    return f"fold{'s' if len(rows) != 1 else ''} {','.join(str(r.fold) for r in rows)}"


def _result(common: dict[str, Any], rows: list[FoldRow], runs: list[dict[str, Any]],
            n_groups: int) -> CrossfoldResult:
    """A ``crossfold.json``: the run's fields, its fold rows and their statistics, and the runs they came from."""
    done = [r.fold for r in rows if r.completed]
    name = protocol_name(common["protocol"], done, n_groups if common["protocol"] == "speaker" else None)
    return CrossfoldResult(**common, protocol_name=name, folds=rows, runs=runs, **fold_statistics(rows))


def _write_result(folder: Location, result: CrossfoldResult) -> None:
    folder.mkdir()
    for file, text in ((CROSSFOLD_JSON, result.to_json()), (CROSSFOLD_MD, format_markdown(result))):
        (folder / file).write_text(text)  # atomic, in a folder or a bucket


def _fold_dirname(trial) -> str:
    return f"fold_{trial.config.get('fold')}_{trial.trial_id}"


def fold_row(fold: int, split: str, result, used_in_selection: bool = False) -> FoldRow:
    """One fold's row of ``crossfold.json`` from its Tune result; ``used_in_selection``: the fold's
    test utterances took part in choosing the configuration (:func:`selection_folds`)."""
    m = result.metrics or {}
    where = {"fold": fold, "split": split, "used_in_selection": bool(used_in_selection), "path": result.path}
    confusion = m.get("test_confusion")
    if result.error or confusion is None or m.get("test_ua") is None:
        return FoldRow(**where, status="error", epochs_run=m.get("training_iteration"),
                       error=str(result.error) if result.error else "no test scores reported")
    return FoldRow(**where, status="completed", test_ua=float(m["test_ua"]), test_wa=float(m["test_wa"]),
                   test_macro_f1=macro_f1(confusion), best_val_ua=float(m["best_val_ua"]),
                   best_epoch=int(m["best_epoch"]), epochs_run=int(m.get("epoch") or m.get("training_iteration") or 0),
                   test_confusion=confusion)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2: bad input, 1: some fold failed)."""
    args = parse_args(argv)
    try:
        result = run_crossfold(args)
    except (CorpusError, ShardError, FileNotFoundError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a full disk, an unwritable folder: one line, the files written so far kept
        problem = storage_error(err)
        if problem is None:
            raise
        folder = args.storage_path or (args.config.rsplit("/", 1)[0] if args.config.endswith(".json") else args.config)
        print(f"error: {storage_failure(problem, folder, 'run it again')}", file=sys.stderr)
        return 1
    this_run = set(result.runs[-1]["folds"])
    return 0 if all(r.completed for r in result.folds if r.fold in this_run) else 1


if __name__ == "__main__":
    sys.exit(main())
