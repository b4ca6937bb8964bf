"""Reading what a search left in its experiment folder: the summary, each trial's history, the
Optuna study (its parameter importances) and the TensorBoard event files (HParams)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from emohrnet.io.experiment_paths import below_experiment
from emohrnet.io.location import Location

from ..experiment import Experiment
from ..files import STUDY_DB
from ..results import Summary, TrialRow


def load_summary(exp_dir: str | Path) -> Summary:
    """The search's ``best.json`` (:meth:`tune.experiment.Experiment.summary`).

    Raises:
        FileNotFoundError: no ``best.json`` (not a finished search); the message says what to run.
    """
    return Experiment(exp_dir).summary()


def trial_dir(exp_dir: str | Path, trial: TrialRow) -> Path:
    """A trial's Tune folder inside the experiment folder: ``<exp_dir>/trial_<id>``, else the ``path``
    recorded in ``best.json`` read against ``exp_dir`` (:func:`emohrnet.io.experiment_paths.below_experiment`;
    a path outside it is not read: the trial then has no history here)."""
    local = Path(exp_dir) / f"trial_{trial.trial_id}"
    if local.is_dir() or not trial.path:
        return local
    rel = below_experiment(str(trial.path), Location(exp_dir))
    return local if rel is None else Path(exp_dir) / rel


def trial_history(path: str | Path):
    """A trial's per-epoch reports, from Tune's ``progress.csv``, else its ``result.json``.

    Returns:
        a ``pandas.DataFrame`` with one row per report (columns ``epoch``, ``train_loss``,
        ``val_loss``, ``val_ua``, ...), or ``None`` when the trial left neither file or no report.
    """
    import pandas as pd

    path = Path(path)
    csv = path / "progress.csv"
    if csv.is_file():
        try:
            df = pd.read_csv(csv)
            if not df.empty and "val_ua" in df:
                return df
        except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError):
            pass
    js = path / "result.json"
    if js.is_file():
        rows = []
        for line in js.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by an interrupted write
        rows = [{k: v for k, v in r.items() if not isinstance(v, dict | list)} for r in rows]
        if rows:
            df = pd.DataFrame(rows)
            if "val_ua" in df:
                return df
    return None


def study_storage(exp_dir: str | Path) -> str | None:
    """The Optuna study's database URL: the experiment config's ``search.study_storage``, else
    ``sqlite:///<exp_dir>/optuna.db`` (``None`` when that file does not exist)."""
    config = Experiment(exp_dir).config()
    url = config.search.study_storage if config else None
    if url:
        return url
    db = Path(exp_dir) / STUDY_DB
    return f"sqlite:///{db}" if db.is_file() else None


def param_importances(exp_dir: str | Path, ran_in: str | None = None) -> tuple[dict[str, float] | None, str]:
    """Optuna's parameter importances (its default evaluator) of the search's study, named after the folder the
    search ran in (``ran_in``: ``best.json``'s ``experiment_dir``) or this one.

    Returns:
        ``(importances, message)``: ``{param: importance}`` summing to 1 and Optuna's warnings (e.g.
        that all importances are equal; often empty), or ``None`` and
        a message starting with ``"not enough trials"`` (fewer than 2 complete trials, no study,
        or Optuna could not compute them). Never raises.
    """
    try:
        import optuna

        url = study_storage(exp_dir)
        if url is None:
            return None, "not enough trials: no Optuna study found"
        storage = optuna.storages.RDBStorage(url)
        names = [Path(ran_in or exp_dir).name, Path(exp_dir).name]
        all_names = optuna.get_all_study_names(storage)
        name = next((n for n in names if n in all_names), all_names[0] if len(all_names) == 1 else None)
        if name is None:
            return None, f"not enough trials: no study named {names[0]} in {url}"
        study = optuna.load_study(study_name=name, storage=storage)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) < 2:
            return None, f"not enough trials: {len(complete)} complete (importances need at least 2)"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            imp = optuna.importance.get_param_importances(study)
        notes = sorted({str(w.message) for w in caught})
        return {k: float(v) for k, v in imp.items()}, " ".join(f"Note from Optuna: {n}" for n in notes)
    except Exception as err:  # noqa: BLE001 -- a report must not fail on Optuna's side
        return None, f"not enough trials to compute importances ({type(err).__name__}: {err})"


def hparams_logged(exp_dir: str | Path, summary: Summary) -> tuple[int, int]:
    """How many trials' TensorBoard event files hold HParams data (plugin ``"hparams"``, written by
    Ray Tune's TBX logger when a trial ends).

    Returns:
        ``(trials with hparams data, trials with event files)``.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = total = 0
    for t in summary.trials:
        files = sorted(trial_dir(exp_dir, t).glob("events.out.tfevents.*"))
        if not files:
            continue
        total += 1
        for f in files:
            acc = EventAccumulator(str(f), size_guidance={"tensors": 0, "scalars": 1})
            acc.Reload()
            if acc.PluginTagToContent("hparams"):
                found += 1
                break
    return found, total
