"""The files a search and its cross-fold evaluation leave in the experiment folder, named once for
:mod:`tune.search`, :mod:`tune.evaluate`, :mod:`tune.report` and :mod:`tune.state`."""

from __future__ import annotations

from emohrnet.training.checkpoint import SUMMARY_FILE

SUMMARY = SUMMARY_FILE
"""The search's summary: every trial, the best one (chosen on validation), its test UA, the protocol
(``best.json``; :class:`emohrnet.inference.predict.Predictor` finds the best checkpoint through it)."""
CONFIG = "config.json"
"""The experiment's settings (:class:`emohrnet.config.experiment.ExperimentConfig`), read back by
``--resume``, :mod:`tune.evaluate` and :mod:`tune.report`."""
SEARCH_ARGS = "search_args.json"
"""What experiments started before ``config.json`` existed kept instead: the search's options."""
STUDY_DB = "optuna.db"
"""The Optuna study's SQLite file (a local experiment without ``--study-storage``)."""
SEARCH_LOG = "search.log"
"""Ray's own output (trial tables, worker logs) unless ``--verbose``."""
TRAIN_RUNS = "train_runs"
"""The folder of each trial's (or fold's) Ray Train run: its checkpoints."""
CROSSFOLD_JSON = "crossfold.json"
"""The cross-fold evaluation's result (:func:`tune.evaluate.run_crossfold`)."""
CROSSFOLD_MD = "crossfold.md"
"""The same as a Markdown table."""
ASHA_STOPS = "asha_stops.json"
"""The trials ASHA stopped early, with the epoch it stopped each at (:class:`tune.stops.RecordingASHA`): how
the summary tells a stopped trial from one that ran short for another reason."""
