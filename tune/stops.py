"""Which trials ASHA stopped early: :class:`RecordingASHA` writes them down as it stops them
(``asha_stops.json`` in the experiment folder), so the summary can tell a trial ASHA stopped from one
that ran fewer epochs than asked for another reason (an interruption), rather than guessing from its
number of epochs.
"""

from __future__ import annotations

import json
from typing import Any

from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from emohrnet.io.location import Location


class RecordingASHA(ASHAScheduler):
    """Ray Tune's ``ASHAScheduler`` (asynchronous successive halving, Li et al. 2020) that records every
    trial it stops, ``{trial_id: epoch}``, in ``record`` (a file in the experiment folder, local or in a
    bucket; written atomically at each stop).

    Args:
        record: the file (:data:`tune.files.ASHA_STOPS`).
        **kwargs: as ``ASHAScheduler``.
    """

    def __init__(self, record: Location, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._record = record
        self._stops: dict[str, int] = {}

    def relocate(self, record: Location) -> None:
        """Record into ``record`` from now on (a resumed search: the experiment folder it was restored from,
        which may be a copy or a move of the one this scheduler was pickled with)."""
        self._record = record

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        """ASHA's decision; a STOP is recorded with the epoch (counted from 1) it came at."""
        decision = super().on_trial_result(tune_controller, trial, result)
        epoch, planned = result.get("epoch"), result.get("epochs")
        early = epoch is None or planned is None or int(epoch) < int(planned)  # ASHA also says STOP at max_t
        if decision == TrialScheduler.STOP and early and trial.trial_id not in self._stops:
            stops = {**read_stops(self._record), **self._stops}  # a resumed search keeps the earlier ones
            self._stops = {**stops, trial.trial_id: int(result.get("epoch") or result.get("training_iteration", 0))}
            self._record.write_text(json.dumps(self._stops, indent=1, sort_keys=True))
        return decision


def read_stops(record: Location) -> dict[str, int]:
    """The trials ASHA stopped, ``{trial_id: epoch}`` (empty when it stopped none, or for a search made
    before the record existed)."""
    if not record.is_file():
        return {}
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}
