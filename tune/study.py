"""The search's Optuna side: ``OptunaSearch`` that records trials stopped early as PRUNED."""

from __future__ import annotations

from typing import Any

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

    Args:
        *args, **kwargs: as ``OptunaSearch``.
        epochs: the number of epochs a full trial runs.
    """

    def __init__(self, *args: Any, epochs: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epochs = int(epochs)
        self._last_step: dict[str, int] = {}

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
