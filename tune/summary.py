"""The search's summary: every trial's best validation epoch, the best trial (chosen on validation
only, :data:`emohrnet.inference.metrics.SELECTION_RULE`) and its test UA, as the dict saved in ``best.json`` and
as the text the search prints."""

from __future__ import annotations

import math
from typing import Any

from emohrnet.inference.metrics import SELECTION_RULE, selection_key
from emohrnet.io.experiment_paths import in_experiment
from emohrnet.io.location import Location
from emohrnet.models import MODEL_SPECS, SPACES
from emohrnet.shards.manifest import Manifest, data_warnings

from .files import TRAIN_RUNS
from .results import Summary, TrialRow
from .search_config import SearchExperimentConfig
from .trial import trial_train_config


def tensorboard_command(exp_dir: Location) -> str:
    """How to watch the experiment: ``tensorboard --logdir`` on its folder; for a bucket, the local
    copy Ray Tune keeps on the machine running the search (every trial's events are also synced to
    the bucket)."""
    if exp_dir.is_local:
        return f"tensorboard --logdir {exp_dir}"
    uri = exp_dir.uri.split("?")[0]
    sync = (f"gcloud storage rsync -r {uri} ./{exp_dir.name}" if uri.startswith("gs://")
            else f"aws s3 sync {uri} ./{exp_dir.name}" if uri.startswith("s3://") else f"copy {uri}")
    return (f"tensorboard --logdir /tmp/ray/session_latest/artifacts  (this machine's copy of {exp_dir}; "
            f"or sync it: {sync})")


def summarize(grid, config: SearchExperimentConfig, exp_dir: Location, baselines: list[dict], deviations: list[str],
              shard_dirs: dict[str, str], manifests: dict[str, Manifest], log=print,
              stopped: dict[str, int] | None = None) -> Summary:
    """Collect every trial's best validation epoch; pick the best trial; score it on test, once.

    A trial's best epoch (counted from 1) is the one its training loop selected
    (:data:`emohrnet.inference.metrics.SELECTION_RULE`: highest validation UA, ties broken by the lower validation
    loss), read from its last report; the best trial is chosen by the same rule over the trials. No
    trial scored its test part while the search ran; the chosen trial's checkpoint (the latest, which
    holds its best epoch's weights) is scored on test here, once, on the trials' resources
    (:func:`score_on_trial_resources`), so only that row of the table has a test UA. A trial's ``config``
    is the training config it ran (``config`` with its parameters applied,
    :func:`tune.trial.trial_train_config`); its status is ``completed``, ``stopped early (ASHA)`` (it is in
    ``stopped``, :func:`tune.stops.read_stops`) or ``interrupted`` (fewer epochs than asked, not by ASHA).
    The checkpoints and trial folders are named relative to the experiment folder
    (:func:`checkpoint_in_experiment`), so a copied or moved experiment reads its own; ``experiment_dir``
    records where the search ran.
    """
    stopped = stopped or {}
    searched = sorted({k for point in baselines for k in point})
    trials = [_trial_row(result, config, exp_dir, shard_dirs, baselines, searched, stopped) for result in grid]
    scored = [t for t in trials if t.scored]
    if not scored:
        raise RuntimeError(f"no trial reported metrics; see the errors in {exp_dir}")
    best = max(scored, key=lambda t: selection_key(t.best_val_ua, t.best_val_loss))
    manifest = manifests[best.model]
    split = manifest.split(config.protocol.protocol, config.protocol.fold)
    kept = in_experiment(best.checkpoint, exp_dir, what="checkpoint") if best.checkpoint else None
    scores = score_on_trial_resources(kept.uri if kept else None, shard_dirs[best.model], manifest, split.test,
                                      config.resources)
    best.test_ua, best.test_wa = scores["ua"], scores["wa"]
    best.test_confusion = scores["confusion"].tolist()
    log(f"Scored the chosen trial {best.trial_id} on test, once: UA {scores['ua']:.2%}")
    return Summary(
        dataset=config.data.dataset, model=config.model.name, protocol=config.protocol.protocol,
        fold=config.protocol.fold, split=split.describe(), protocol_note=manifest.corpus.get("protocol_note", ""),
        space=config.search.space, space_description=SPACES[config.search.space], searched=searched,
        baseline={"points": baselines, "deviations_from_paper": deviations},
        best_trial=best.trial_id, best_model=best.model, best_is_baseline=best.baseline, best_config=best.config,
        best_val_ua=best.best_val_ua, best_val_wa=best.best_val_wa, best_val_loss=best.best_val_loss,
        best_epoch=best.best_epoch, selection_rule=SELECTION_RULE, test_ua=best.test_ua, test_wa=best.test_wa,
        test_confusion=best.test_confusion, classes=manifest.classes, test_source=TEST_SOURCE,
        checkpoint=best.checkpoint, experiment_dir=str(exp_dir), shard_dirs=shard_dirs,
        tensorboard=tensorboard_command(exp_dir), warnings=data_warnings(manifests.values()), trials=trials)


def _trial_row(result, config: SearchExperimentConfig, exp_dir: Location, shard_dirs: dict[str, str],
               baselines: list[dict], searched: list[str], stopped: dict[str, int]) -> TrialRow:
    """One trial's row of ``best.json``'s ``trials`` from its Tune result: its best epoch's validation
    scores, its status, checkpoint and folder (relative to the experiment), the config it ran."""
    df = result.metrics_dataframe
    if df is None or df.empty or "best_epoch" not in df:
        return TrialRow(trial_id=str(result.metrics.get("trial_id", "?")), status="error",
                        error=str(result.error) if result.error else "no metrics")
    last = df.iloc[-1]
    best_row = df[df["epoch"] == int(last["best_epoch"])].iloc[-1]
    train = trial_train_config(result.config, config, shard_dirs)
    params = {k: result.config[k] for k in searched if k in result.config}
    trial_id = str(last["trial_id"])
    ran, planned = int(df["epoch"].max()), int(train["epochs"])
    status = ("stopped early (ASHA)" if trial_id in stopped else
              f"interrupted ({ran} of {planned} epochs)" if ran < planned else "completed")
    return TrialRow(
        trial_id=trial_id, model=train["model"],
        baseline=any(all(_same(params.get(k), v) for k, v in point.items()) for point in baselines),
        params=params, best_val_ua=float(best_row["val_ua"]), best_val_loss=float(best_row["val_loss"]),
        best_val_wa=float(best_row["val_wa"]), best_epoch=int(best_row["epoch"]), epochs_run=ran,
        epochs_planned=planned, status=status,
        checkpoint=checkpoint_in_experiment(exp_dir, last.get("checkpoint_path")), test_ua=None,
        config=train, path=trial_folder_in_experiment(exp_dir, result.path),
    )


TEST_SOURCE = ("the chosen trial's checkpoint (its best epoch's weights), scored once on test after the search, "
               "on the trials' resources; no other trial was scored on test")
"""How ``best.json``'s ``test_ua`` was obtained (its ``test_source``)."""


def score_on_trial_resources(checkpoint: str | None, shard_dir: str, manifest: Manifest, keys: list[str],
                             resources: Any) -> dict[str, Any]:
    """Score a checkpoint on the utterances ``keys`` (:func:`score_checkpoint`) as a Ray task that reserves
    what one of the trials' workers does (``resources``: ``cpus_per_worker``, ``gpus_per_worker``; a GPU on a
    GPU cluster), or in this process when Ray is not running.

    Raises:
        RuntimeError: no checkpoint.
    """
    if not checkpoint:
        raise RuntimeError("the chosen trial kept no checkpoint; it cannot be scored on test")
    import ray

    if not ray.is_initialized():
        return score_checkpoint(checkpoint, shard_dir, manifest, keys)
    gpus = 1 if resources.gpus_per_worker else 0
    task = ray.remote(num_cpus=min(1.0, float(resources.cpus_per_worker)), num_gpus=gpus)(score_checkpoint)
    return ray.get(task.remote(checkpoint, shard_dir, manifest, keys, "cuda" if gpus else "cpu"))


def checkpoint_in_experiment(exp_dir: Location, path: Any) -> str | None:
    """A trial's Ray checkpoint path (which names no scheme) as ``best.json`` keeps it: relative to the
    experiment folder (``train_runs/<trial id>/checkpoint_NNNNNN``), so the experiment can be copied or
    moved. A trial that finished before the experiment was copied or moved reported its path in the
    old folder: its part from ``train_runs/`` on names the same checkpoint here. ``None``: no checkpoint."""
    if not isinstance(path, str) or not path:
        return None
    rel = _in_folder(exp_dir, path)
    if rel is None and f"/{TRAIN_RUNS}/" in path:
        rel = f"{TRAIN_RUNS}/{path.rsplit(f'/{TRAIN_RUNS}/', 1)[1]}"
    return rel if rel is not None else path  # elsewhere: kept as it is, and refused by its readers


def trial_folder_in_experiment(exp_dir: Location, path: Any) -> str | None:
    """A trial's Tune folder as ``best.json`` keeps it: relative to the experiment folder (``trial_<id>``)."""
    if not isinstance(path, str) or not path:
        return None
    rel = _in_folder(exp_dir, path)
    return rel if rel is not None else path.rstrip("/").rsplit("/", 1)[-1]


def _in_folder(exp_dir: Location, path: str) -> str | None:
    target = Location(path) if exp_dir.is_local or "://" in path else exp_dir.with_path(path)
    return target.relative_to(exp_dir)


def score_checkpoint(checkpoint: str, shard_dir: str, manifest: Manifest, keys: list[str],
                     device: str = "cpu") -> dict[str, Any]:
    """Score a checkpoint's best weights on the utterances ``keys`` (whole utterances, on ``device``), through
    :meth:`emohrnet.inference.predict.Predictor.score_examples`, the way its run evaluated them."""
    from emohrnet.data.loading import load_examples
    from emohrnet.inference.predict import Predictor

    return Predictor(checkpoint, device=device).score_examples(load_examples(shard_dir, manifest, keys))


def _fmt_param(key: str, value: Any) -> str:
    if key == "lr":
        return f"lr={float(value):.2e}"
    if isinstance(value, float):
        return f"{key}={value:.2f}"
    return f"{key}={value}"


def format_summary(s: Summary) -> str:
    """The trials table and the best trial's validation and test UA, as text."""
    lines = [f"\nSearch on {s.dataset}: {s.split}"]
    if s.space:
        lines.append(f"Search space: {s.space} ({s.space_description or SPACES.get(s.space, '')})")
    lines.append("")
    head = f"{'trial':10s} {'model':15s} {'val UA':>7s} {'epoch':>5s} {'test UA':>7s}  parameters; status"
    lines += [head, "-" * (len(head) + 40)]
    for t in s.trials:
        if not t.scored:
            lines.append(f"{t.trial_id:10s} {'':15s} {'':>7s} {'':>5s} {'':>7s}  {t.status}")
            continue
        params = " ".join(_fmt_param(k, t.params[k]) for k in _shown(t))
        test = f"{t.test_ua:7.2%}" if t.test_ua is not None else f"{'-':>7s}"
        tag = " (baseline)" if t.baseline else ""
        lines.append(f"{t.trial_id:10s} {t.model:15s} {t.best_val_ua:7.2%} {t.best_epoch:5d} {test}  "
                     f"{params}; {t.status}{tag}")
    for note in s.deviations_from_paper:
        lines.append(f"baseline note: {note}")
    lines.append("")
    test = f"{s.test_ua:.2%}" if s.test_ua is not None else "n/a"
    test_wa = f"{s.test_wa:.2%}" if s.test_wa is not None else "n/a"
    lines.append("Test UA is scored for the chosen trial only, once, after the search.")
    lines.append(f"Best trial {s.best_trial} ({s.best_model}, chosen on validation only): val UA "
                 f"{s.best_val_ua:.2%} at epoch {s.best_epoch}; test UA {test}, test WA {test_wa}")
    lines.append(f"Protocol: {s.protocol} -- {s.split}")
    lines.append(f"Model selection: {s.selection_rule or SELECTION_RULE}")
    if s.protocol_note:
        lines.append(f"Note on this corpus: {s.protocol_note}")
    lines.append(f"Test score source: {s.test_source}")
    lines += [f"warning: {line}" for line in s.warnings]
    return "\n".join(lines)


def _shown(trial: TrialRow) -> list[str]:
    """A trial's parameters in the order its model's spec shows them, then any other searched ones."""
    order = [k for k in MODEL_SPECS[trial.model].shown if k in trial.params]
    return order + [k for k in trial.params if k not in order and k != "model"]


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9)


def _float(value) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f
