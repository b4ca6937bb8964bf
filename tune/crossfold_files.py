"""Where the results of cross-fold runs (:func:`tune.evaluate.run_crossfold`) go, so that no run
replaces another's.

Each run keeps its own result, ``crossfold.json`` and ``crossfold.md`` in its own Tune folder
(``<storage>/<name>``, by default ``<experiment>/crossfold-<time>``). The experiment's
``crossfold.json``/``crossfold.md`` beside ``best.json`` (what ``tune.report`` reads) gathers the folds
of every run of the same configuration: a second run on other folds is merged into it (its ``runs``
list says which run gave which folds), and the run says so. Checked before Ray starts
(:func:`check_earlier`), without ``--force`` a run is refused when its Tune folder exists, when the
experiment's result is of another configuration (another trial, epochs or training setting), and
when a fold it would run already has a result there; with ``--force`` the run's folds replace those
folds, or the earlier result of another configuration, which stays in its own run's folder.
"""

from __future__ import annotations

import json
from typing import Any

from emohrnet.io.location import Location

from .files import CROSSFOLD_JSON, CROSSFOLD_MD
from .results import CrossfoldResult, FoldRow

MATCH = ("dataset", "model", "best_trial", "protocol", "search_fold", "epochs")
"""What two cross-fold results must share to be merged, besides their training config (``config``, less
the shard folder, which a rebuild may move)."""


class CrossfoldConflict(ValueError):
    """A cross-fold run would replace an earlier result (refused without ``--force``)."""


def merge_key(result: dict[str, Any]) -> dict[str, Any]:
    """The fields of a cross-fold result (its dict form, or a new run's header) that must agree for two runs'
    folds to be merged."""
    key = {k: result.get(k) for k in MATCH}
    key.update({f"config.{k}": v for k, v in (result.get("config") or {}).items() if k != "shard_dir"})
    return key


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    shown = [f"{k} {old.get(k)!r} there, {new.get(k)!r} here" for k in keys[:3]]
    return "; ".join(shown) + (f"; and {len(keys) - 3} more" if len(keys) > 3 else "")


def read_earlier(exp_dir: Location, force: bool) -> CrossfoldResult | None:
    """The experiment's ``crossfold.json``, or ``None`` when there is none (or, with ``force``, when it
    does not read).

    Raises:
        CrossfoldConflict: it does not read as a cross-fold result (naming the file), without ``force``.
    """
    target = exp_dir / CROSSFOLD_JSON
    if not target.is_file():
        return None
    try:
        earlier = CrossfoldResult.from_dict(json.loads(target.read_text()))
    except (ValueError, TypeError) as err:
        if force:
            return None
        raise CrossfoldConflict(f"{target}: not a cross-fold result ({err}); move it aside, or pass --force to "
                                "replace it") from None
    return earlier


def check_earlier(earlier: CrossfoldResult | None, header: dict[str, Any], folds: list[int], tune_dir: Location,
                  exp_file: Location, force: bool) -> CrossfoldResult | None:
    """Decide, before Ray starts, what the run does with the earlier results.

    Args:
        earlier: the experiment's ``crossfold.json`` (:func:`read_earlier`), or ``None``.
        header: the new result's fields of :data:`MATCH` and its ``config``.
        folds: the folds the run will train.
        tune_dir: the run's own Tune folder.
        exp_file: the experiment's ``crossfold.json`` (named in messages).
        force: replace rather than refuse.

    Returns:
        the earlier result to merge the run's folds into, or ``None`` (nothing to merge: the run's result
        becomes the experiment's).

    Raises:
        CrossfoldConflict: without ``force``: ``tune_dir`` exists, ``earlier`` is of another
            configuration, or a fold of ``folds`` already has a completed result in it.
    """
    if tune_dir.exists() and not force:
        raise CrossfoldConflict(f"--name {tune_dir.name}: {tune_dir} already holds a cross-fold run; choose another "
                                "--name, or pass --force to run there again")
    if earlier is None:
        return None
    differs = _differences(merge_key(earlier.to_dict()), merge_key(header))
    if differs:
        if not force:
            raise CrossfoldConflict(f"{exp_file} holds the cross-fold result of another configuration ({differs}); "
                                    "it is kept: pass --force to replace it (it stays in its own run's folder), or "
                                    "run this one from a copy of the experiment")
        return None
    done = sorted(r.fold for r in earlier.folds if r.completed and r.fold in folds)
    if done and not force:
        raise CrossfoldConflict(f"{exp_file}: fold(s) {','.join(map(str, done))} already have results (run "
                                f"{Location(earlier.tune_dir or exp_file.parent).name}); pass --folds with "
                                "other folds to add them, or --force to run these again and replace their results")
    return earlier


def merge(earlier: CrossfoldResult, rows: list[FoldRow], run: dict[str, Any]
          ) -> tuple[list[FoldRow], list[dict[str, Any]]]:
    """The folds and runs of ``earlier`` with a new run's ``rows`` added (a fold run again: the new row).

    Returns:
        ``(rows sorted by fold, runs)``; each run is ``{"tune_dir", "folds"}``, the folds it gave.
    """
    new = {r.fold for r in rows}
    kept = [r for r in earlier.folds if r.fold not in new]
    runs = []
    for old in earlier.earlier_runs():
        old["folds"] = [f for f in old.get("folds") or [] if f not in new]
        if old["folds"]:
            runs.append(old)
    return sorted(kept + rows, key=lambda r: r.fold), runs + [run]


def keep_in_own_folder(earlier: CrossfoldResult, markdown: str) -> None:
    """Before an earlier result of another configuration is replaced (``--force``): make sure its own
    run's folder holds it (results written before runs kept their own copy)."""
    folder = earlier.tune_dir
    if not folder or not Location(folder).is_dir() or (Location(folder) / CROSSFOLD_JSON).is_file():
        return
    (Location(folder) / CROSSFOLD_JSON).write_text(earlier.to_json())
    (Location(folder) / CROSSFOLD_MD).write_text(markdown)
