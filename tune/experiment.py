"""An experiment of :mod:`tune.search`, in a local folder or a bucket (:class:`Experiment`): its files
read through :class:`emohrnet.io.location.Location`, with typed accessors, and a local copy of what the
report reads, so ``python -m tune.report`` takes ``s3://`` and ``gs://`` experiments as well."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emohrnet.io.experiment_paths import in_experiment
from emohrnet.io.location import Location
from emohrnet.io.storage import atomic_write_bytes

from .files import CONFIG, CROSSFOLD_JSON, SEARCH_ARGS, STUDY_DB, SUMMARY
from .results import CrossfoldResult, Summary
from .search_config import SearchExperimentConfig

TRIAL_FILES = ("progress.csv", "result.json")
"""What the report reads of each trial folder, besides its TensorBoard event files."""


def read_search_summary(target: Location, dataset: str | None = None) -> Summary:
    """A search's ``best.json`` read for :mod:`tune.evaluate`.

    Args:
        target: the file.
        dataset: the corpus it must have been searched on (``None``: any).

    Raises:
        FileNotFoundError: no file there.
        ValueError: not JSON, not a search summary (a field of :data:`tune.results.REQUIRED`, the fold or the
            model missing), or searched on another corpus: one line naming the file and what to pass instead.
    """
    if not target.is_file():
        raise FileNotFoundError(f"{target}: no such file; pass the best.json of a search (or its experiment folder)")
    fix = "pass the best.json written by python -m tune.search (or its experiment folder)"
    try:
        data = json.loads(target.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{target}: not JSON ({err}); {fix}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{target}: not a search summary (a JSON {type(data).__name__}); {fix}")
    if dataset is not None and data.get("dataset", dataset) != dataset:
        raise ValueError(f"--dataset {dataset} but {target} was searched on {data['dataset']}")
    try:
        return Summary.from_dict(data)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{target}: {err}; {fix}") from None


class Experiment:
    """The experiment folder of a search (``<storage>/<name>``), local or in a bucket.

    Args:
        where: a folder, or a bucket URI (``s3://bucket/emohrnet/name``).
    """

    def __init__(self, where: str | Path | Location) -> None:
        self.location = Location(where)

    @property
    def name(self) -> str:
        """The experiment's name (its folder's)."""
        return self.location.name

    def _json(self, name: str) -> dict[str, Any] | None:
        target = self.location / name
        return json.loads(target.read_text()) if target.is_file() else None

    def summary(self) -> Summary:
        """The search's ``best.json``.

        Raises:
            FileNotFoundError: no ``best.json`` (not a finished search); the message says what to run.
            ValueError: it does not read as a search summary (naming the file).
        """
        target = self.location / SUMMARY
        if not target.is_file():
            raise FileNotFoundError(f"{target}: no such file; {self.location} is not a finished "
                                    "search (run python -m tune.search, or --resume an interrupted one)")
        return read_search_summary(target)

    def checkpoint(self, trial_id: str | None = None) -> Location:
        """The best trial's checkpoint folder (``trial_id``: that trial's), inside this experiment folder:
        ``best.json`` names it relative to the folder (:func:`emohrnet.io.experiment_paths.in_experiment`).

        Raises:
            FileNotFoundError: no ``best.json``, or it names no checkpoint for that trial.
            KeyError: no trial ``trial_id`` in ``best.json``.
            OutsideExperiment: (a ValueError) ``best.json`` names a checkpoint outside the folder.
        """
        target = self.location / SUMMARY
        if not target.is_file():
            self.summary()  # the error that says what to run
        summary = Summary.from_dict(self._json(SUMMARY), check=False)  # an old best.json may name only a checkpoint
        if trial_id is None:
            named = summary.checkpoint
        else:
            try:
                named = summary.trial(trial_id).checkpoint
            except KeyError:
                raise KeyError(f"{self.location / SUMMARY}: no trial {trial_id}") from None
        if not named:
            raise FileNotFoundError(f"{self.location / SUMMARY}: names no checkpoint for "
                                    f"{'the best trial' if trial_id is None else f'trial {trial_id}'}")
        return in_experiment(named, self.location, summary.experiment_dir, source=self.location / SUMMARY,
                             what="checkpoint")

    def config(self) -> SearchExperimentConfig | None:
        """The experiment's settings (``config.json``; an experiment started before it existed: its
        ``search_args.json`` read through :func:`tune.options.config_from_args`), or ``None``.

        Raises:
            ValueError: ``config.json`` does not read (naming the file).
        """
        target = self.location / CONFIG
        if target.is_file():
            try:
                return SearchExperimentConfig.from_json(target.read_text())
            except ValueError as err:
                raise ValueError(f"{target}: {err}") from None
        saved = self._json(SEARCH_ARGS)
        if saved is None:
            return None
        import argparse

        from .options import config_from_args

        return config_from_args(argparse.Namespace(**saved))

    def write_config(self, config: SearchExperimentConfig) -> str:
        """Write ``config.json`` (atomically) and return the text written (for the experiment's signatures)."""
        text = config.to_json()
        (self.location / CONFIG).write_text(text)
        return text

    def crossfold(self) -> CrossfoldResult | None:
        """The cross-fold result of :mod:`tune.evaluate` (``crossfold.json``), or ``None``.

        Raises:
            ValueError: it does not read as a cross-fold result (naming the file).
        """
        target = self.location / CROSSFOLD_JSON
        if not target.is_file():
            return None
        try:
            return CrossfoldResult.from_dict(json.loads(target.read_text()))
        except (ValueError, TypeError) as err:
            raise ValueError(f"{target}: not a cross-fold result ({err})") from None

    def trial_folders(self) -> list[Location]:
        """The trials' Tune folders (``trial_<id>``), sorted by name."""
        return sorted((e for e in self.location.iterdir() if e.name.startswith("trial_") and e.is_dir()),
                      key=lambda e: e.name)

    def local_copy(self, dest: Path) -> Path:
        """``dest`` holding what the report reads: the summary, the settings, the cross-fold result, the
        study's SQLite file when it is in the experiment, and each trial's history and TensorBoard event
        files. A local experiment is its own copy (returned as it is). Copies whatever of those is
        there: check :meth:`summary` first for a finished search.
        """
        if self.location.is_local:
            return self.location.local_path
        dest.mkdir(parents=True, exist_ok=True)
        for name in (SUMMARY, CONFIG, SEARCH_ARGS, CROSSFOLD_JSON, STUDY_DB):
            if (self.location / name).is_file():
                atomic_write_bytes(dest / name, (self.location / name).read_bytes())
        for trial in self.trial_folders():
            (dest / trial.name).mkdir(exist_ok=True)
            for entry in trial.iterdir():
                if entry.name in TRIAL_FILES or entry.name.startswith("events.out.tfevents."):
                    atomic_write_bytes(dest / trial.name / entry.name, entry.read_bytes())
        return dest
