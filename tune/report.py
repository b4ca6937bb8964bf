"""A report of a search: one self-contained HTML page and a Markdown page with PNG plots.

Usage::

    python -m tune.report EXPERIMENT_DIR [--out DIR]
    python -m tune.report s3://bucket/emohrnet/NAME          # an experiment kept in a bucket

Reads what :mod:`tune.search` left in the experiment folder (``best.json``, ``search_args.json``,
the Optuna study, each trial's ``progress.csv``/``result.json``) and, where present, the
cross-fold result of :mod:`tune.evaluate` (``crossfold.json``); a bucket's experiment through a
local copy of those files (:class:`tune.experiment.Experiment`). Writes into ``--out`` (default:
the experiment folder; for a bucket ``$EMOHRNET_HOME/reports/NAME``):

- ``report.html``: self-contained (plots embedded as base64 PNG; no external file, no script);
- ``report.md`` with its plots as PNG files beside it (``learning_curves.png``,
  ``confusion_matrix.png``, ``per_class_recall.png``, ``param_importances.png`` when Optuna
  could compute importances);

and logs the best trial's test confusion matrix to TensorBoard as an image (tag
``test/confusion_matrix`` in ``<experiment>/best_trial``).

The report holds the trials table (parameters, best validation UA and its epoch, test UA where
known, status), the best configuration, Optuna's parameter importances, every trial's learning
curves, the best trial's test confusion matrix and per-class recall, and the published numbers
beside ours (the papers' claims and the field's speaker-independent figures), each with its
protocol named. Our cross-fold figure there is the headline of ``crossfold.json``: the mean over
the folds whose test utterances took no part in choosing the configuration.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emohrnet.inference.metrics import macro_f1
from emohrnet.io import paths
from emohrnet.io.storage import atomic_write_bytes, storage_error, storage_failure

from .crossfold_text import headline, markdown_table
from .experiment import Experiment
from .reporting.collect import (
    hparams_logged,
    load_summary,
    param_importances,
    study_storage,
    trial_dir,
    trial_history,
)
from .reporting.plots import (
    BEST_TRIAL_LOGDIR,
    CONFUSION_TAG,
    log_confusion_to_tensorboard,
    plot_confusion,
    plot_importances,
    plot_learning_curves,
    plot_per_class_recall,
    png_bytes,
    recalls,
)
from .reporting.render import (
    Bullets,
    Image,
    MarkdownTable,
    Section,
    Table,
    Text,
    render_html,
    render_markdown,
)
from .reporting.tables import FIELD_PROTOCOL, PAPER_PROTOCOL, _fmt, _pct, paper_table, trials_table
from .results import CrossfoldResult, Summary

__all__ = ["BEST_TRIAL_LOGDIR", "CONFUSION_TAG", "build_report", "load_summary", "main",
           "paper_table", "param_importances", "trial_history"]


def _write(path: Path, data: bytes | str) -> None:
    """Atomic write (with the usual permissions, see :func:`emohrnet.io.storage.atomic_write_bytes`)."""
    atomic_write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)


def build_report(exp_dir: str | Path, out: str | Path | None = None, tensorboard: bool = True) -> dict[str, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` (+ PNG plots) for a search.

    Collects (:mod:`tune.reporting.collect`), draws (:mod:`tune.reporting.plots`), lays the report out
    as one list of sections and renders it twice (:mod:`tune.reporting.render`).

    Args:
        exp_dir: the experiment folder of :mod:`tune.search`, or its bucket URI (``s3://``, ``gs://``:
            what the report reads is copied to ``$EMOHRNET_HOME/reports/<name>/experiment`` first,
            :meth:`tune.experiment.Experiment.local_copy`).
        out: output folder (default ``exp_dir``; for a bucket ``$EMOHRNET_HOME/reports/<name>``);
            created if missing.
        tensorboard: also log the best trial's test confusion matrix to TensorBoard
            (:func:`tune.reporting.plots.log_confusion_to_tensorboard`).

    Returns:
        ``{"html": path, "md": path, <plot name>: png path, ...}``.

    Raises:
        FileNotFoundError: ``exp_dir`` holds no ``best.json``.
    """
    experiment = Experiment(exp_dir)
    summary = experiment.summary()  # read once; FileNotFoundError when not a finished search
    shown = experiment.location.uri if not experiment.location.is_local else None
    if shown is None:
        exp_dir = experiment.location.local_path
    else:  # a bucket: the report reads a local copy and is written locally
        exp_dir = experiment.local_copy(paths.home() / "reports" / experiment.name / "experiment")
    out_dir = (Path(out).expanduser().resolve() if out else exp_dir if shown is None
               else paths.home() / "reports" / experiment.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    found = _collect(exp_dir, summary)
    pngs = {name: png_bytes(fig) for name, fig in _figures(summary, found).items()}
    written: dict[str, Path] = {}
    for name, data in pngs.items():
        written[name] = out_dir / f"{name}.png"
        _write(written[name], data)
    tb_note = ""
    if tensorboard and summary.test_confusion:
        logdir = log_confusion_to_tensorboard(exp_dir, summary)
        tb_note = f"The best trial's test confusion matrix is logged as the image `{CONFUSION_TAG}` in {logdir}."

    title = f"EmoHRNet search report: {summary.dataset} ({exp_dir.name})"
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    lead = [Bullets(_facts(summary, found.crossfold, shown or str(exp_dir), exp_dir))]
    sections = _sections(summary, found, exp_dir, tb_note)
    written["md"] = out_dir / "report.md"
    written["html"] = out_dir / "report.html"
    _write(written["md"], render_markdown(title, generated, lead, sections))
    _write(written["html"], render_html(title, generated, lead, sections, pngs))
    return written


@dataclass
class _Collected:
    """What a report reads from an experiment besides ``best.json``: each trial's per-epoch history
    (``missing``: trials without one), the parameter importances, the HParams count, the cross-fold result."""

    histories: dict[str, Any]
    missing: list[str]
    importances: dict[str, float]
    importance_message: str
    with_hparams: int
    with_events: int
    crossfold: CrossfoldResult | None


def _collect(exp_dir: Path, summary: Summary) -> _Collected:
    """Read the experiment folder (:mod:`tune.reporting.collect`)."""
    histories, missing = {}, []
    for t in summary.trials:
        df = trial_history(trial_dir(exp_dir, t))
        if df is None:
            missing.append(t.trial_id)
        else:
            histories[t.trial_id] = df
    importances, imp_message = param_importances(exp_dir, summary.experiment_dir)
    with_hp, with_events = hparams_logged(exp_dir, summary)
    crossfold = Experiment(exp_dir).crossfold()
    return _Collected(histories, missing, importances, imp_message, with_hp, with_events, crossfold)


def _figures(summary: Summary, found: _Collected) -> dict[str, Any]:
    """The report's figures by name: learning curves; the confusion matrix and per-class recall of the
    best trial's test (when it has one); the parameter importances (when there are some)."""
    confusion, classes = summary.test_confusion, summary.classes
    figures = {"learning_curves": plot_learning_curves(found.histories, str(summary.best_trial))}
    if confusion:
        figures["confusion_matrix"] = plot_confusion(confusion, classes,
                                                     f"Test confusion matrix, best trial {summary.best_trial}")
        figures["per_class_recall"] = plot_per_class_recall(confusion, classes)
    if found.importances:
        figures["param_importances"] = plot_importances(found.importances)
    return figures


def _facts(summary: Summary, crossfold: CrossfoldResult | None, shown: str, exp_dir: Path) -> list:
    """The report's lead: corpus, model, protocol, the best trial, its test, where things are."""
    confusion = summary.test_confusion
    f1 = macro_f1(confusion) if confusion else None
    facts = [
        ("Corpus", summary.dataset),
        ("Model", str(summary.best_model or summary.model)),
        ("Protocol (ours)", f"{summary.protocol}: {summary.split}"),
        ("Best trial (chosen on validation UA)",
         f"{summary.best_trial}: val UA {_pct(summary.best_val_ua)} % at epoch {summary.best_epoch} (from 1)"),
        ("Test of the best trial",
         f"UA {_pct(summary.test_ua)} %, WA {_pct(summary.test_wa)} %, macro-F1 {_pct(f1)} %"),
        ("Test score source", summary.test_source),
        ("Experiment folder", shown),
        ("TensorBoard", f"tensorboard --logdir {exp_dir}"),
    ]
    if summary.protocol_note:
        facts.insert(3, ("Note on this corpus", summary.protocol_note))
    if crossfold:
        facts.insert(5, ("Cross-fold test UA", headline(crossfold)))
    return facts


def _sections(summary: Summary, found: _Collected, exp_dir: Path, tb_note: str) -> list[Section]:
    """The report's sections, in order, for both renderings."""
    crossfold, importances = found.crossfold, found.importances
    confusion, classes = summary.test_confusion, summary.classes
    deviations = summary.deviations_from_paper
    protocols = [f"Ours: {summary.protocol} protocol — {summary.split}.", f"Papers: {PAPER_PROTOCOL}",
                 FIELD_PROTOCOL,
                 "Figures from different protocols are not comparable: a random utterance split shares speakers "
                 "between training and test and scores higher than a speaker-independent split."]
    if crossfold:
        protocols.insert(1, f"Ours, cross-fold: {headline(crossfold)}.")
    hp_text = (f"TensorBoard's HParams view (plugin `hparams`, written by Ray Tune's TBX logger when a trial ends) "
               f"holds every trial's parameters and final metrics: found in {found.with_hparams} of "
               f"{found.with_events} trials' event files. Open `tensorboard --logdir {exp_dir}` and choose HPARAMS. "
               f"{tb_note}")
    imp_text = ("Importances of the searched parameters for validation UA, from "
                "optuna.importance.get_param_importances (Optuna's default evaluator) on the search's study "
                f"`{study_storage(exp_dir)}`. {found.importance_message}" if importances else found.importance_message)
    curves_note = "Validation UA and train/validation loss per epoch of every trial (the best trial drawn thicker)."
    if found.missing:
        curves_note += f" No per-epoch history for trial(s) {', '.join(found.missing)}."

    sections = [Section("Published numbers beside ours", [Table(*paper_table(summary, crossfold)), Bullets(protocols)])]
    if crossfold:
        sections.append(Section("Cross-fold evaluation", [
            Text(f"Protocol: **{crossfold.protocol_name}**. Model selection: {crossfold.model_selection}."),
            MarkdownTable(markdown_table(crossfold)), Text(headline(crossfold), only="html")]))
    sections.append(Section("Trials", [Table(*trials_table(summary))]
                            + ([Bullets([f"baseline note: {d}" for d in deviations])] if deviations else [])))
    sections.append(Section("Best configuration", [
        Table(["setting", "value"], [[k, _fmt(v)] for k, v in sorted(summary.best_config.items())])]))
    sections.append(Section("Parameter importances", [Text(imp_text)] + (
        [Table(["parameter", "importance"], [[k, f"{v:.3f}"] for k, v in importances.items()]),
         Image("param_importances")] if importances else [])))
    sections.append(Section("Learning curves", [Text(curves_note), Image("learning_curves")]))
    if confusion:
        sections.append(Section("Test confusion matrix and per-class recall (best trial)", [
            Text("Rows: reference class; columns: predicted class; colour: share of the reference class."),
            Image("confusion_matrix"), Image("per_class_recall"),
            Table(["class", "recall (%)"], [[c, _pct(r)] for c, r in zip(classes, recalls(confusion), strict=True)])]))
    else:
        sections.append(Section("Test confusion matrix", [Text("The best trial has no test confusion matrix.")]))
    sections.append(Section("TensorBoard", [Text(hp_text)]))
    return sections


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2: not a finished search, an ``--out`` that is a
    file or cannot be written; one line)."""
    p = argparse.ArgumentParser(prog="python -m tune.report", description=__doc__.split("\n\n")[0])
    p.add_argument("experiment_dir", metavar="EXPERIMENT_DIR",
                   help="the experiment folder of python -m tune.search, or its bucket URI (s3://..., gs://...)")
    p.add_argument("--out", help="output folder (default: EXPERIMENT_DIR; for a bucket $EMOHRNET_HOME/reports/NAME)")
    args = p.parse_args(argv)
    if args.out:
        out = Path(args.out).expanduser()
        blocked = next((f for f in (out, *out.parents) if f.exists() and not f.is_dir()), None)
        if blocked is not None:
            print(f"error: argument --out: {blocked} is a file (allowed: a folder, made if missing)", file=sys.stderr)
            return 2
    try:
        written = build_report(args.experiment_dir, args.out)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # an unwritable --out, a full disk
        problem = storage_error(err)
        if problem is None:
            raise
        print(f"error: {storage_failure(problem, args.out or args.experiment_dir, 'run it again')}", file=sys.stderr)
        return 2
    print(f"wrote {written['html']} and {written['md']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
