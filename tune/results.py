"""The result files as typed objects. ``best.json``: :class:`Summary` (the search: its corpus,
protocol and fold, the chosen trial, its validation and single test scores) holding a :class:`TrialRow` per
trial. :func:`tune.summary.summarize` builds one and the search writes it (:meth:`Summary.to_json`); the
report, the cross-fold evaluation and the benchmarks read it back (:meth:`Summary.from_dict`) instead of
looking keys up in a dict. ``crossfold.json``: :class:`CrossfoldResult` (the chosen configuration trained on
every fold, and the folds' mean ± std) holding a :class:`FoldRow` per fold, built and written by
:mod:`tune.evaluate`, read by the report.

Files written by older versions read too: a field they lack takes its default, and a key this version does
not know is kept (``extra``) and written back unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

REQUIRED = ("dataset", "protocol", "best_config")
"""The fields a ``best.json`` cannot lack (a hand-made one for :mod:`tune.evaluate` holds only these and the
fold the configuration was chosen on)."""


def _split_known(cls: type, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    names = {f.name for f in fields(cls)} - {"extra"}
    return {k: v for k, v in data.items() if k in names}, {k: v for k, v in data.items() if k not in names}


class _ResultFile:
    """What :class:`Summary` and :class:`CrossfoldResult` share: their dict and JSON forms (the fields in their
    declared order, the rows of :attr:`ROWS` each as its own dict, then the kept unknown keys)."""

    ROWS = ""
    """The field holding the file's rows (``trials``, ``folds``)."""
    ROW_TYPE: Any = None
    """The class of those rows (:class:`TrialRow`, :class:`FoldRow`)."""

    @classmethod
    def _read(cls, data: dict[str, Any], **defaults: Any):
        """The file's content as this class: its fields (``defaults`` for those it lacks), each row read as
        :attr:`ROW_TYPE`, the unknown keys kept."""
        known, extra = _split_known(cls, data)
        known = {**defaults, **known}
        known[cls.ROWS] = [cls.ROW_TYPE.from_dict(row) for row in known.get(cls.ROWS) or []]
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict, the fields in their declared order, then the kept unknown keys."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out[self.ROWS] = [row.to_dict() for row in out[self.ROWS]]
        return {**out, **self.extra}

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON (what the file holds)."""
        return json.dumps(self.to_dict(), indent=1, default=str)


@dataclass(kw_only=True)
class _RunRow:
    """What a trial's row and a fold's row share: one training run's status, its best epoch on validation, that
    epoch's weights on test (where they were scored), where it ran.

    Attributes:
        status: how the run ended (see the subclasses); ``"error"``: it reported no scores.
        best_val_ua: its best epoch's validation UA (a fraction).
        best_epoch: that epoch, counted from 1.
        epochs_run: epochs it ran.
        test_ua, test_wa, test_confusion: that epoch's weights scored on test (fractions; rows = true class,
            columns = predicted), where they were.
        path: its Tune folder.
        error: why an ``"error"`` row reported nothing.
        extra: keys of the file this version does not know, kept as they were.
    """

    status: str = "?"
    best_val_ua: float | None = None
    best_epoch: int | None = None
    epochs_run: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    test_ua: float | None = None
    test_wa: float | None = None
    test_confusion: list[list[int]] | None = None
    path: str | None = None
    error: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Read a row of the file; a missing field takes its default, an unknown key is kept."""
        known, extra = _split_known(cls, data)
        return cls(**known, extra=extra)

    def _dict(self, leave_out: tuple[str, ...]) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", *leave_out)}
        return {**out, **self.extra}


@dataclass(kw_only=True)
class TrialRow(_RunRow):
    """One trial of the search (a row of ``best.json``'s ``trials``); its status is ``"completed"``,
    ``"stopped early (ASHA)"``, ``"interrupted (R of P epochs)"`` or ``"error"``, and only the chosen trial has
    test scores (``test_ua`` is ``None`` on every other row; ``test_wa`` and ``test_confusion`` are left out).

    Attributes:
        trial_id: Ray Tune's id of the trial.
        model: the model it trained.
        baseline: whether its parameters are a baseline point (a paper's settings).
        params: its searched parameters (flat keys).
        best_val_wa, best_val_loss: its best epoch's validation WA (a fraction) and loss (nats).
        epochs_planned: epochs it was to run.
        checkpoint: its kept checkpoint, relative to the experiment folder (its path too).
        config: the training config it ran (:meth:`emohrnet.training.config.TrainConfig.to_dict`).
        (the rest: :class:`_RunRow`)
    """

    trial_id: str
    model: str | None = None
    baseline: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    best_val_wa: float | None = None
    best_val_loss: float | None = None
    epochs_planned: int | None = None
    checkpoint: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        """Whether the trial reported a validation score (an ``"error"`` row did not)."""
        return self.best_val_ua is not None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRow:
        """Read a row of ``best.json``'s ``trials``; a missing field takes its default."""
        return super().from_dict({**data, "trial_id": str(data.get("trial_id", "?"))})

    def to_dict(self) -> dict[str, Any]:
        """The row as ``best.json`` holds it: an ``"error"`` row only its id, status and error; a scored row every
        field but the chosen trial's test extras (``test_wa``, ``test_confusion``) when it has none."""
        if not self.scored and self.status == "error":
            return {"trial_id": self.trial_id, "status": self.status, "error": self.error, **self.extra}
        absent = tuple(k for k in ("test_wa", "test_confusion") if getattr(self, k) is None)
        return self._dict(("error", *absent))


@dataclass
class Summary(_ResultFile):
    """A search's ``best.json``: what it searched, every trial, and the chosen one (on validation only).

    Attributes:
        dataset: the corpus.
        protocol: ``"speaker"`` or ``"random"``.
        best_config: the chosen trial's training config (flat keys; ``model`` and ``fold`` among them).
        fold: the fold the search ran on (``None`` in older files: ``best_config``'s, :attr:`search_fold`).
        model: the searched model (a registered one, or ``"any"``).
        split: the fold's split, described (speakers per part).
        protocol_note: what the corpus says of its protocol.
        space, space_description, searched: the named search space, what it searches, the searched keys.
        baseline: ``{"points": [...], "deviations_from_paper": [...]}``, the baseline trials.
        best_trial, best_model, best_is_baseline: the chosen trial, its model, whether it is a baseline.
        best_val_ua, best_val_wa, best_val_loss, best_epoch: its best epoch's validation scores, the epoch
            counted from 1 (``epochs_counted_from``).
        selection_rule: how trials and epochs were chosen (:data:`emohrnet.inference.metrics.SELECTION_RULE`).
        test_ua, test_wa, test_confusion: the chosen trial's test scores (fractions; rows = true class), scored
            once after the search; ``test_source`` says how.
        classes: the class names, in the confusion matrix's order.
        checkpoint: the chosen trial's checkpoint, relative to the experiment folder.
        experiment_dir: where the search ran (information; the paths above are relative to it).
        shard_dirs: ``{model: shard folder}``.
        tensorboard: the command that shows every trial.
        warnings: what the corpus's manifest warned of.
        trials: every trial's :class:`TrialRow`.
        extra: keys of the file this version does not know, kept as they were.

    Raises:
        ValueError: (:meth:`from_dict`) a field of :data:`REQUIRED` missing, ``best_config`` not an object, or no
            fold and no model to be found.
    """

    ROWS, ROW_TYPE = "trials", TrialRow

    dataset: str
    protocol: str
    best_config: dict[str, Any]
    fold: int | None = None
    model: str | None = None
    split: str = ""
    protocol_note: str = ""
    space: str | None = None
    space_description: str | None = None
    searched: list[str] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)
    # the chosen trial, on validation
    best_trial: str | None = None
    best_model: str | None = None
    best_is_baseline: bool | None = None
    epochs_counted_from: int = 1
    best_val_ua: float | None = None
    best_val_wa: float | None = None
    best_val_loss: float | None = None
    best_epoch: int | None = None
    # its test, scored once
    test_source: str = ""
    selection_rule: str | None = None
    test_ua: float | None = None
    test_wa: float | None = None
    test_confusion: list[list[int]] | None = None
    classes: list[str] = field(default_factory=list)
    # where things are
    checkpoint: str | None = None
    experiment_dir: str | None = None
    shard_dirs: dict[str, str] = field(default_factory=dict)
    tensorboard: str | None = None
    warnings: list[str] = field(default_factory=list)
    trials: list[TrialRow] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def chosen_model(self) -> str | None:
        """The chosen trial's model (``best_config``'s ``model``, else :attr:`best_model`)."""
        return self.best_config.get("model") or self.best_model

    @property
    def search_fold(self) -> int:
        """The fold the configuration was chosen on (:attr:`fold`; older files: ``best_config``'s)."""
        return int(self.fold if self.fold is not None else self.best_config["fold"])

    @property
    def deviations_from_paper(self) -> list[str]:
        """How the baseline trials differ from their papers' settings."""
        return list(self.baseline.get("deviations_from_paper") or [])

    def trial(self, trial_id: str) -> TrialRow:
        """The row of trial ``trial_id``.

        Raises:
            KeyError: no such trial.
        """
        for row in self.trials:
            if row.trial_id == str(trial_id):
                return row
        raise KeyError(f"no trial {trial_id}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], check: bool = True) -> Summary:
        """Read ``best.json``'s content (see the class's Raises); ``check=False`` reads whatever fields there are
        (a hand-made or old ``best.json`` that only names its checkpoint, as a checkpoint's reader needs it)."""
        if not check:
            return cls._read(data, dataset="", protocol="", best_config={})
        missing = [k for k in REQUIRED if k not in data]
        if not missing and not isinstance(data["best_config"], dict):
            missing = ["best_config as an object"]
        elif not missing:
            if data.get("fold") is None and "fold" not in data["best_config"]:
                missing.append("fold")
            if not (data["best_config"].get("model") or data.get("best_model")):
                missing.append("best_config.model")
        if missing:
            raise ValueError(f"not a search summary (no {', '.join(missing)})")
        return cls.from_dict(data, check=False)


METRICS = ("test_ua", "test_wa", "test_macro_f1", "best_val_ua")
"""The per-fold scores a cross-fold result averages (fractions), in its ``mean``/``std`` order."""


@dataclass(kw_only=True)
class FoldRow(_RunRow):
    """One fold of a cross-fold run (a row of ``crossfold.json``'s ``folds``); its status is ``"completed"``
    (trained and scored on test) or ``"error"``.

    Attributes:
        fold: the fold index (under the random protocol, the split's seed).
        split: the fold's split, described (speakers per part).
        used_in_selection: the fold's test utterances took part in choosing the configuration (its test
            speakers were the search's validation speakers), so the headline mean leaves it out.
        test_macro_f1: macro-F1 on test (a fraction).
        (the rest: :class:`_RunRow`)
    """

    fold: int
    split: str = ""
    used_in_selection: bool = False
    test_macro_f1: float | None = None

    @property
    def completed(self) -> bool:
        """Whether the fold trained and was scored on test."""
        return self.status == "completed"

    def to_dict(self) -> dict[str, Any]:
        """The row as ``crossfold.json`` holds it (``error`` only on an ``"error"`` row)."""
        return self._dict(() if self.error is not None else ("error",))


@dataclass
class CrossfoldResult(_ResultFile):
    """A cross-fold run's result, ``crossfold.json`` (:func:`tune.evaluate.run_crossfold`): the searched
    configuration trained on every requested fold, each fold's scores, and their mean ± std.

    Attributes:
        folds: every fold's :class:`FoldRow`, sorted by fold.
        dataset, model: the corpus and the model trained.
        best_trial: the search's trial whose configuration this is.
        protocol: ``"speaker"`` or ``"random"``; ``protocol_name`` says it in words, with the folds.
        search_fold: the fold the search chose the configuration on.
        epochs: epochs per fold.
        config: the training config (flat keys, less the fold).
        protocol_note: what the corpus says of its protocol.
        model_selection: how each fold's epoch was chosen (on its validation part).
        folds_requested: the folds the last run was asked for.
        n_folds_total: the corpus's speaker folds (``None`` under the random protocol).
        classes: the class names, in the confusion matrices' order.
        source: the ``best.json`` the configuration came from.
        experiment_dir, tune_dir, tensorboard: the experiment, the run's Tune folder, how to watch it.
        selection_folds: the folds used in selection (``None``: a file that does not record them).
        n_completed, n_clean: completed folds, and those not used in selection.
        mean, std: ``{metric: value}`` over the clean folds (the headline; sample std, ddof=1; ``None`` with no
            fold, std ``None`` with one); ``mean_all``, ``std_all``: over every completed fold.
        runs: ``[{"tune_dir", "folds"}]``, which run gave which folds (several when results were merged).
        extra: keys of the file this version does not know, kept as they were.

    Raises:
        ValueError: (:meth:`from_dict`) no list of folds.
    """

    ROWS, ROW_TYPE = "folds", FoldRow

    folds: list[FoldRow]
    dataset: str = "?"
    model: str = "?"
    best_trial: str | None = None
    protocol: str = "speaker"
    search_fold: int | None = None
    epochs: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    protocol_note: str = ""
    model_selection: str = ""
    folds_requested: list[int] = field(default_factory=list)
    n_folds_total: int | None = None
    classes: list[str] = field(default_factory=list)
    source: str = ""
    experiment_dir: str | None = None
    tune_dir: str | None = None
    tensorboard: str | None = None
    protocol_name: str = ""
    selection_folds: list[int] | None = None
    n_completed: int = 0
    n_clean: int | None = None
    mean: dict[str, float | None] = field(default_factory=dict)
    std: dict[str, float | None] = field(default_factory=dict)
    mean_all: dict[str, float | None] = field(default_factory=dict)
    std_all: dict[str, float | None] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def marked(self) -> list[int] | None:
        """The completed folds used in selection; ``None`` for a file that does not record them."""
        if self.selection_folds is None:
            return None
        return [r.fold for r in self.folds if r.completed and r.used_in_selection]

    @property
    def clean_count(self) -> int:
        """Completed folds not used in selection (:attr:`n_clean`, or counted for an older file)."""
        return int(self.n_clean if self.n_clean is not None else self.n_completed - len(self.marked or []))

    def earlier_runs(self) -> list[dict[str, Any]]:
        """The runs whose folds this result holds (:attr:`runs`; a file written before runs were listed: its own),
        as copies."""
        if self.runs:
            return [dict(run) for run in self.runs]
        return [{"tune_dir": self.tune_dir, "folds": [r.fold for r in self.folds]}]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CrossfoldResult:
        """Read ``crossfold.json``'s content (see the class's Raises)."""
        if not isinstance(data, dict) or not isinstance(data.get("folds"), list):
            raise ValueError("no list of folds")
        return cls._read(data)
