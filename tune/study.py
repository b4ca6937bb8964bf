"""The search's Optuna side: ``OptunaSearch`` that records trials stopped early as PRUNED, and whose
saved state names no study database, so a copied or moved experiment resumes into its own study."""

from __future__ import annotations

import pickle
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch


def stopped_early(result: dict[str, Any], epochs: int) -> bool:
    """Whether a trial's last result comes before its last epoch (``epoch`` counts from 1; the trial's own
    number of epochs is ``result["epochs"]`` when it reports one, else ``epochs``)."""
    epoch = result.get("epoch")
    return epoch is not None and int(epoch) < int(result.get("epochs") or epochs)


class StudySearch(OptunaSearch):
    """Ray Tune's ``OptunaSearch`` that tells the study a trial stopped early by ASHA as PRUNED.

    ``OptunaSearch`` reports every epoch's metric to the Optuna trial (``trial.report``), then
    tells a trial that the scheduler stopped as COMPLETE with its last value, as if it had run all
    its epochs. Here such a trial (its last result comes before the last epoch,
    :func:`stopped_early`) is told as PRUNED, keeping its intermediate values, so TPE and
    ``optuna-dashboard`` see what happened. A trial that runs all its epochs is COMPLETE with its
    last value of the metric: with ``best_val_ua``, the maximum of its per-epoch validation UA.
    Tune hands a trial's final result to ``on_trial_complete`` only; it is recorded as that epoch's
    intermediate value too, so the study holds one value per epoch.

    Where the study lives is not part of the state Ray pickles (``tuner.pkl``, ``searcher-state-*.pkl``;
    :meth:`__getstate__`): ``OptunaSearch`` pickles its Optuna storage, which opens the database it
    was made with when unpickled, so a resumed copy of an experiment wrote into the original's study
    (and a moved one failed to open it). A resume names the study's database with :meth:`use_storage`
    before Ray restores the saved state (:meth:`restore`).

    Args:
        *args, **kwargs: as ``OptunaSearch`` (``storage``: an ``optuna.storages.RDBStorage``).
        epochs: the number of epochs a full trial runs.
    """

    def __init__(self, *args: Any, epochs: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epochs = int(epochs)
        self._last_step: dict[str, int] = {}
        self._study_url: str | None = getattr(self._storage, "url", None)

    # ------------------------------------------------------------------ where the study lives
    def use_storage(self, url: str) -> None:
        """Keep the study in the database ``url`` (SQLAlchemy URL, e.g. ``sqlite:////exp/optuna.db``) from
        now on, and when Ray restores the saved state: what a resume calls on the searcher it unpickled."""
        self._study_url = url
        if self._ot_study is not None:
            self._connect(self._portable()["_study_saved"], {t: o.number for t, o in self._ot_trials.items()})
        else:
            self._storage = optuna.storages.RDBStorage(url)

    def _portable(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        study = state.get("_ot_study")
        state.update(_storage=None, _study_url=None, _ot_study=None,
                     _ot_trials={trial_id: trial.number for trial_id, trial in self._ot_trials.items()},
                     _study_saved=None if study is None else {"name": study.study_name, "sampler": study.sampler,
                                                              "pruner": study.pruner})
        return state

    def __getstate__(self) -> dict[str, Any]:
        """The searcher's state without its storage, study or Optuna trial objects (each names the study's
        database): the study's name, sampler and pruner and each trial's number instead."""
        return self._portable()

    def save(self, checkpoint_path: str) -> None:
        """Write the state of :meth:`__getstate__` (Ray's ``searcher-state-*.pkl``)."""
        with open(checkpoint_path, "wb") as out:
            pickle.dump(self._portable(), out)

    def restore(self, checkpoint_path: str) -> None:
        """Read a saved state and open its study in the database of :meth:`use_storage`. A state saved by
        ``OptunaSearch`` itself (before this class kept none) names its storage: that one is not used.

        Raises:
            RuntimeError: :meth:`use_storage` was not called (the state names no database).
            KeyError: the database holds no study of the saved name.
        """
        url = self._study_url
        if url is None:
            raise RuntimeError("StudySearch.restore: no study storage; call use_storage(url) first (the saved "
                               "state names none)")
        with open(checkpoint_path, "rb") as f:
            saved = pickle.load(f)  # a signed file (tune.state), as Ray reads it
        study = saved.pop("_ot_study", None)
        info = saved.pop("_study_saved", None) or (study and {"name": study.study_name, "sampler": study.sampler,
                                                               "pruner": study.pruner})
        trials = {t: (o if isinstance(o, int) else o.number) for t, o in saved.pop("_ot_trials", {}).items()}
        self.__dict__.update(saved)
        self._study_url = url
        self._connect(info, trials)

    def _connect(self, info: dict[str, Any] | None, trials: dict[str, int]) -> None:
        """Open the study ``info`` names in :attr:`_study_url` and its trials (by number) in it."""
        storage = optuna.storages.RDBStorage(self._study_url)
        self._storage, self._ot_study, self._ot_trials = storage, None, {}
        if info is None:
            return
        self._ot_study = optuna.load_study(study_name=info["name"], storage=storage, sampler=info["sampler"],
                                           pruner=info["pruner"])
        study_id = storage.get_study_id_from_name(info["name"])
        self._ot_trials = {trial_id: optuna.trial.Trial(
            self._ot_study, storage.get_trial_id_from_study_id_trial_number(study_id, number))
            for trial_id, number in trials.items()}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Report the epoch's metric to the Optuna trial (as ``OptunaSearch``), remembering its step. A trial
        the study holds as FAIL that reports again (a failed trial run again by ``--resume``) is reopened
        first (:meth:`_reopen_failed`), so its new results are kept."""
        self._reopen_failed(trial_id)
        super().on_trial_result(trial_id, result)
        self._last_step[trial_id] = int(result[TRAINING_ITERATION])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Tell the study how the trial ended: PRUNED when stopped early, else as ``OptunaSearch`` does."""
        if not error:
            self._reopen_failed(trial_id)
        known = trial_id in self._ot_trials and trial_id not in self._completed_trials
        if known and not error and result and self.metric in result and TRAINING_ITERATION in result:
            step = int(result[TRAINING_ITERATION])
            if step > self._last_step.get(trial_id, 0):
                self._ot_trials[trial_id].report(result[self.metric], step)
            if stopped_early(result, self._epochs):
                self._ot_study.tell(self._ot_trials[trial_id], state=TrialState.PRUNED)
                self._completed_trials.add(trial_id)
                return
        super().on_trial_complete(trial_id, result=result, error=error)

    def _reopen_failed(self, trial_id: str) -> None:
        """A trial the study recorded as FAIL is running again (``--resume`` re-runs failed trials): Optuna
        cannot change a finished trial's state, so a new study trial with the same parameters takes its
        place (enqueued, user attribute ``retry_of``: the failed one's number) and receives its results;
        the failed attempt stays in the study as FAIL, the history of what happened."""
        old = self._ot_trials.get(trial_id)
        if old is None or trial_id not in self._completed_trials:
            return
        if self._ot_study._storage.get_trial(old._trial_id).state != TrialState.FAIL:
            return
        self._ot_study.enqueue_trial(old.params, user_attrs={"retry_of": old.number}, skip_if_exists=False)
        self._ot_trials[trial_id] = self._ot_study.ask(fixed_distributions=self._space)
        self._completed_trials.discard(trial_id)
        self._last_step.pop(trial_id, None)

def point_searcher_at(tuner, url: str) -> None:
    """After ``Tuner.restore``: keep the restored search's study in ``url`` (:meth:`StudySearch.use_storage`),
    the database of the experiment folder being resumed. A search saved by an earlier emohrnet (a plain
    ``OptunaSearch``) names its own database, which the resume has checked is ``url``
    (:func:`tune.study_storage.resume_study_url`)."""
    searcher = tuner._local_tuner._tune_config.search_alg  # the instance Ray unpickled from tuner.pkl
    if isinstance(searcher, StudySearch):
        searcher.use_storage(url)
