"""A report of a search: one self-contained HTML page and a Markdown page with PNG plots.

Usage::

    python -m tune.report EXPERIMENT_DIR [--out DIR]

Reads what :mod:`tune.search` left in the experiment folder (``best.json``, ``search_args.json``,
the Optuna study, each trial's ``progress.csv``/``result.json``) and, where present, the
cross-fold result of :mod:`tune.evaluate` (``crossfold.json``). Writes into ``--out`` (default:
the experiment folder):

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
import base64
import html
import io
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from emohrnet.metrics import macro_f1
from emohrnet.storage import atomic_write_bytes

from .evaluate import headline, markdown_table, mean_labels
from .files import CROSSFOLD_JSON, SEARCH_ARGS, STUDY_DB, SUMMARY

CONFUSION_TAG = "test/confusion_matrix"
BEST_TRIAL_LOGDIR = "best_trial"

EMOHRNET_CLAIMS = {"ravdess": 92.45, "iemocap": 80.06, "emovo": 92.77}
"""UA (%) claimed by EmoHRNet (Muppidi & Radfar 2025)."""
LEE_NADEEM_CLAIMS = {"savee": 97.49, "ravdess": 99.23, "cremad": 89.31, "tess": 99.82, "emodb": 99.53,
                     "emovo": 96.39}
"""Accuracy (%) claimed by the 1D CNN with channel and spatial attention (Lee & Nadeem 2025)."""
EMOBOX_UA = {"ravdess": 75.32, "iemocap": 73.54, "emovo": 57.82}
"""UA (%) of frozen Whisper-large-v3 features on EmoBox's speaker-independent folds (EmoBox, Ma et al. 2024):
the field's speaker-independent reference."""
TIMNET_CORRECTED = {"ravdess": 90.04}
"""TIM-Net's (Ye et al. 2023) corrected RAVDESS figure (%), as its authors republished it; a random
utterance split, not speaker-independent."""
DATASET_NAMES = {"ravdess": "RAVDESS", "iemocap": "IEMOCAP", "emovo": "EMOVO", "savee": "SAVEE",
                 "cremad": "CREMA-D", "tess": "TESS", "emodb": "EMO-DB", "synthetic": "synthetic"}
LEE_NADEEM_SPLIT = ("Lee & Nadeem's published notebooks split feature rows at random (368,640 rows for the 1440 "
                    "RAVDESS recordings), so pieces of one recording sit in both training and test: their figures "
                    "are neither speaker- nor even recording-independent.")
PAPER_PROTOCOL = ("EmoHRNet's paper does not state its protocol; most likely a random utterance split "
                  f"(speakers shared between train and test, NOT speaker-independent). {LEE_NADEEM_SPLIT}")
FIELD_PROTOCOL = ("The field's speaker-independent figures: EmoBox (Ma et al. 2024), frozen Whisper-large-v3 "
                  "features scored on EmoBox's speaker-independent folds, UA RAVDESS 75.32 %, IEMOCAP 73.54 %, "
                  "EMOVO 57.82 %. For contrast, a random split: TIM-Net's (Ye et al. 2023) corrected RAVDESS figure, "
                  "90.04 %, as its authors republished it.")
PLOTS = {"learning_curves": "learning curves", "confusion_matrix": "test confusion matrix",
         "per_class_recall": "per-class recall", "param_importances": "parameter importances"}


# --------------------------------------------------------------------------- reading
def load_summary(exp_dir: str | Path) -> dict[str, Any]:
    """The search's ``best.json``.

    Raises:
        FileNotFoundError: no ``best.json`` (not a finished search); the message says what to run.
    """
    path = Path(exp_dir) / SUMMARY
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; {exp_dir} is not a finished search "
                                "(run python -m tune.search, or --resume an interrupted one)")
    return json.loads(path.read_text())


def trial_dir(exp_dir: str | Path, trial: dict[str, Any]) -> Path:
    """A trial's Tune folder: ``<exp_dir>/trial_<id>`` (so a moved experiment still works), else the
    ``path`` recorded in ``best.json``."""
    local = Path(exp_dir) / f"trial_{trial.get('trial_id')}"
    if local.is_dir() or not trial.get("path"):
        return local
    return Path(trial["path"])


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
    """The Optuna study's database URL: ``search_args.json``'s ``study_storage``, else
    ``sqlite:///<exp_dir>/optuna.db`` (``None`` when that file does not exist)."""
    exp_dir = Path(exp_dir)
    args_file = exp_dir / SEARCH_ARGS
    if args_file.is_file():
        url = json.loads(args_file.read_text()).get("study_storage")
        if url:
            return url
    db = exp_dir / STUDY_DB
    return f"sqlite:///{db}" if db.is_file() else None


def param_importances(exp_dir: str | Path, summary: dict[str, Any]) -> tuple[dict[str, float] | None, str]:
    """Optuna's parameter importances (its default evaluator) of the search's study.

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
        names = [Path(summary.get("experiment_dir") or exp_dir).name, Path(exp_dir).name]
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


def hparams_logged(exp_dir: str | Path, summary: dict[str, Any]) -> tuple[int, int]:
    """How many trials' TensorBoard event files hold HParams data (plugin ``"hparams"``, written by
    Ray Tune's TBX logger when a trial ends).

    Returns:
        ``(trials with hparams data, trials with event files)``.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = total = 0
    for t in summary.get("trials", []):
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


# --------------------------------------------------------------------------- plots
def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def png_bytes(fig) -> bytes:
    """A matplotlib figure rendered as PNG (Agg), as bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def plot_learning_curves(histories: dict[str, Any], best: str | None = None):
    """Validation UA and train/validation loss per epoch, one colour per trial.

    Args:
        histories: ``{trial label: DataFrame}`` from :func:`trial_history`.
        best: label of the best trial (drawn thicker).

    Returns:
        a matplotlib ``Figure`` (two panels).
    """
    from matplotlib.ticker import MaxNLocator

    fig = _figure(11, 4.2)
    ax_ua, ax_loss = fig.subplots(1, 2)
    colors = [f"C{i % 10}" for i in range(len(histories))]
    for color, (label, df) in zip(colors, histories.items(), strict=True):
        x = df["epoch"] if "epoch" in df else df["training_iteration"] - 1
        lw = 2.5 if label == best else 1.2
        ax_ua.plot(x, 100 * df["val_ua"], marker="o", ms=3, lw=lw, color=color, label=label)
        if "train_loss" in df:
            ax_loss.plot(x, df["train_loss"], lw=lw, color=color, label=f"{label} train")
        if "val_loss" in df:
            ax_loss.plot(x, df["val_loss"], lw=lw, ls="--", color=color, label=f"{label} val")
    ax_ua.set(xlabel="epoch (from 0)", ylabel="validation UA (%)", title="Validation UA per epoch")
    ax_loss.set(xlabel="epoch (from 0)", ylabel="cross-entropy", title="Loss per epoch (solid train, dashed val)")
    for ax in (ax_ua, ax_loss):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if histories:
        ax_ua.legend(fontsize=7, ncol=max(1, len(histories) // 12))
    return fig


def plot_confusion(confusion: list[list[int]], classes: list[str], title: str = "Test confusion matrix"):
    """A confusion matrix as a heat map of row-normalised recall, annotated with counts.

    Args:
        confusion: ``(C, C)`` counts; rows reference, columns predicted.
        classes: the C class names.

    Returns:
        a matplotlib ``Figure``.
    """
    import numpy as np

    cm = np.asarray(confusion, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(classes)
    fig = _figure(max(5.5, 2.0 + 0.75 * n), max(4.5, 1.4 + 0.7 * n))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set(xlabel="predicted", ylabel="reference")
    ax.set_title(title, fontsize=10)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, label="share of the reference class", shrink=0.8)
    return fig


def recalls(confusion: list[list[int]]) -> list[float]:
    """Per-class recall from a ``(C, C)`` confusion matrix (``nan`` for a class with no reference);
    :func:`emohrnet.metrics.per_class_recall` on a list."""
    import torch

    from emohrnet.metrics import per_class_recall

    return per_class_recall(torch.as_tensor(confusion))


def plot_per_class_recall(confusion: list[list[int]], classes: list[str]):
    """Per-class test recall as bars, with UA (their mean) as a line.

    Returns:
        a matplotlib ``Figure``.
    """
    rec = recalls(confusion)
    fig = _figure(1.5 + 0.7 * len(classes), 3.6)
    ax = fig.subplots()
    values = [0.0 if math.isnan(r) else 100 * r for r in rec]
    ax.bar(range(len(classes)), values, color="C0")
    present = [r for r in rec if not math.isnan(r)]
    if present:
        ax.axhline(100 * sum(present) / len(present), color="C3", ls="--", label="UA (mean recall)")
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set(ylabel="recall (%)", ylim=(0, 100), title="Per-class test recall (best trial)")
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_importances(importances: dict[str, float]):
    """Optuna's parameter importances as horizontal bars.

    Returns:
        a matplotlib ``Figure``.
    """
    names = list(importances)[::-1]
    fig = _figure(6, 0.9 + 0.45 * len(names))
    ax = fig.subplots()
    ax.barh(names, [importances[n] for n in names], color="C2")
    ax.set(xlabel="importance (normalised, sums to 1)", title="Optuna parameter importances (objective: val UA)")
    return fig


# --------------------------------------------------------------------------- TensorBoard
def log_confusion_to_tensorboard(exp_dir: str | Path, summary: dict[str, Any]) -> Path:
    """Write the best trial's test confusion matrix to TensorBoard as an image.

    The image (RGB, rendered with Agg) goes to ``<exp_dir>/best_trial`` under the tag
    ``test/confusion_matrix`` at step 0, so ``tensorboard --logdir <exp_dir>`` shows it beside the
    trials. Earlier event files in that folder (written by this function) are replaced.

    Args:
        exp_dir: the experiment folder.
        summary: ``best.json``'s content (``test_confusion``, ``classes``, ``best_trial``).

    Returns:
        the folder written.

    Raises:
        ValueError: the summary has no test confusion matrix.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from tensorboardX import SummaryWriter

    if not summary.get("test_confusion"):
        raise ValueError("best.json holds no test_confusion for the best trial")
    logdir = Path(exp_dir) / BEST_TRIAL_LOGDIR
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob("events.out.tfevents.*"):
        old.unlink()
    fig = plot_confusion(summary["test_confusion"], summary["classes"],
                         f"Test confusion, trial {summary.get('best_trial')}")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[:, :, :3]
    with SummaryWriter(str(logdir)) as writer:
        writer.add_image(CONFUSION_TAG, image, global_step=0, dataformats="HWC")
        if summary.get("test_ua") is not None:
            writer.add_scalar("test/ua", float(summary["test_ua"]), global_step=0)
    return logdir


# --------------------------------------------------------------------------- the report
def _pct(x: Any) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(v) else f"{100 * v:.2f}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 and value != 0 else f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def trials_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The trials table: header and rows (text cells), in the search's order."""
    keys: list[str] = []
    for t in summary["trials"]:
        keys += [k for k in t.get("params", {}) if k not in keys]
    header = ["trial", "model", *keys, "best val UA (%)", "best epoch", "test UA (%)", "status"]
    rows = []
    for t in summary["trials"]:
        status = t.get("status", "?") + (" (baseline)" if t.get("baseline") else "")
        if t.get("trial_id") == summary.get("best_trial"):
            status += " — best"
        params = t.get("params", {})
        rows.append([str(t.get("trial_id")), str(t.get("model", "-")),
                     *[_fmt(params[k]) if k in params else "-" for k in keys],
                     _pct(t.get("best_val_ua")),
                     str(t["best_epoch"]) if t.get("best_epoch") is not None else "-",
                     _pct(t.get("test_ua")), status])
    return header, rows


def _our_crossfold(crossfold: dict[str, Any]) -> str:
    """Our cross-fold cell: the headline (folds not used in selection), its label and protocol."""
    m, sd = crossfold["mean"]["test_ua"], crossfold["std"]["test_ua"]
    label = mean_labels(crossfold)[0]
    if m is None:
        return f"n/a, {label}; {crossfold['protocol_name']}"
    return f"{_pct(m)} ± {_pct(sd) if sd is not None else 'n/a'}, {label}; {crossfold['protocol_name']}"


def paper_table(summary: dict[str, Any], crossfold: dict[str, Any] | None) -> tuple[list[str], list[list[str]]]:
    """The published numbers beside ours: header and rows, one row per corpus.

    Columns: the EmoHRNet and Lee & Nadeem papers' claims, EmoBox's speaker-independent UA (frozen
    Whisper-large-v3), TIM-Net's corrected random-split figure, and ours (the search's best trial on
    its fold; the cross-fold headline, over the folds not used in selection, when ``crossfold`` is
    given). Every column header names its protocol.
    """
    ours = summary["dataset"]
    order = list(dict.fromkeys([*EMOHRNET_CLAIMS, *LEE_NADEEM_CLAIMS, *EMOBOX_UA, *TIMNET_CORRECTED, ours]))
    header = ["corpus",
              "EmoHRNet paper, UA (%) [protocol not stated; most likely random split]",
              "Lee & Nadeem paper, accuracy (%) [random split of feature rows]",
              "EmoBox, frozen Whisper-large-v3, UA (%) [speaker-independent]",
              "TIM-Net, corrected (%) [random split]",
              f"ours: search's best trial, test UA (%) [{summary['protocol']} protocol, fold {summary.get('fold')}]",
              "ours: cross-fold test UA (%) [headline: folds not used in selection]"]
    rows = []
    for d in order:
        single = _pct(summary.get("test_ua")) if d == ours else ""
        cf = _our_crossfold(crossfold) if d == ours and crossfold else ""
        rows.append([DATASET_NAMES.get(d, d)]
                    + [f"{claims[d]:.2f}" if d in claims else "-"
                       for claims in (EMOHRNET_CLAIMS, LEE_NADEEM_CLAIMS, EMOBOX_UA, TIMNET_CORRECTED)]
                    + [single, cf])
    return header, rows


def _write(path: Path, data: bytes | str) -> None:
    """Atomic write (with the usual permissions, see :func:`emohrnet.storage.atomic_write_bytes`)."""
    atomic_write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(c: str) -> str:
        return c.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _md_to_html_table(md: str) -> str:
    """A Markdown table (as :func:`tune.evaluate.markdown_table` writes it) as HTML; the lines after the
    table (its footnote) become paragraphs."""
    lines = [ln.strip() for ln in md.strip().splitlines()]
    n = next((i for i, ln in enumerate(lines) if not ln.startswith("|")), len(lines))

    def plain(text: str) -> str:
        return text.replace("**", "").replace("\\*", "*")

    def cells(line: str) -> list[str]:
        return [plain(c.strip()) for c in line.strip("|").split("|")]

    notes = "".join(f"<p>{html.escape(plain(ln))}</p>" for ln in lines[n:] if ln)
    return _html_table(cells(lines[0]), [cells(ln) for ln in lines[2:n]]) + notes


def build_report(exp_dir: str | Path, out: str | Path | None = None, tensorboard: bool = True) -> dict[str, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` (+ PNG plots) for a search.

    Args:
        exp_dir: the experiment folder of :mod:`tune.search`.
        out: output folder (default ``exp_dir``); created if missing.
        tensorboard: also log the best trial's test confusion matrix to TensorBoard
            (:func:`log_confusion_to_tensorboard`).

    Returns:
        ``{"html": path, "md": path, <plot name>: png path, ...}``.

    Raises:
        FileNotFoundError: ``exp_dir`` holds no ``best.json``.
    """
    exp_dir = Path(exp_dir).expanduser().resolve()
    summary = load_summary(exp_dir)
    out_dir = Path(out).expanduser().resolve() if out else exp_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    cf_path = exp_dir / CROSSFOLD_JSON
    crossfold = json.loads(cf_path.read_text()) if cf_path.is_file() else None

    histories, missing = {}, []
    for t in summary["trials"]:
        df = trial_history(trial_dir(exp_dir, t))
        if df is None:
            missing.append(str(t.get("trial_id")))
        else:
            histories[str(t["trial_id"])] = df
    importances, imp_message = param_importances(exp_dir, summary)
    confusion = summary.get("test_confusion")
    classes = summary.get("classes") or []

    figures = {"learning_curves": plot_learning_curves(histories, str(summary.get("best_trial")))}
    if confusion:
        figures["confusion_matrix"] = plot_confusion(confusion, classes,
                                                     f"Test confusion matrix, best trial {summary.get('best_trial')}")
        figures["per_class_recall"] = plot_per_class_recall(confusion, classes)
    if importances:
        figures["param_importances"] = plot_importances(importances)
    pngs = {name: png_bytes(fig) for name, fig in figures.items()}
    written: dict[str, Path] = {}
    for name, data in pngs.items():
        written[name] = out_dir / f"{name}.png"
        _write(written[name], data)

    tb_note = ""
    if tensorboard and confusion:
        logdir = log_confusion_to_tensorboard(exp_dir, summary)
        tb_note = f"The best trial's test confusion matrix is logged as the image `{CONFUSION_TAG}` in {logdir}."
    with_hp, with_events = hparams_logged(exp_dir, summary)

    # ------------------------------------------------------------------ the sections, as (title, md, html)
    test_ua, test_wa = summary.get("test_ua"), summary.get("test_wa")
    f1 = macro_f1(confusion) if confusion else None
    facts = [
        ("Corpus", summary["dataset"]),
        ("Model", str(summary.get("best_model", summary.get("model")))),
        ("Protocol (ours)", f"{summary['protocol']}: {summary.get('split', '')}"),
        ("Best trial (chosen on validation UA)",
         f"{summary.get('best_trial')}: val UA {_pct(summary.get('best_val_ua'))} % at epoch "
         f"{summary.get('best_epoch')} (from 0)"),
        ("Test of the best trial", f"UA {_pct(test_ua)} %, WA {_pct(test_wa)} %, macro-F1 {_pct(f1)} %"),
        ("Test score source", str(summary.get("test_source", ""))),
        ("Experiment folder", str(exp_dir)),
        ("TensorBoard", f"tensorboard --logdir {exp_dir}"),
    ]
    if summary.get("protocol_note"):
        facts.insert(3, ("Note on this corpus", summary["protocol_note"]))
    if crossfold:
        facts.insert(5, ("Cross-fold test UA", headline(crossfold)))
    deviations = summary.get("baseline", {}).get("deviations_from_paper", [])

    trials_h, trials_r = trials_table(summary)
    paper_h, paper_r = paper_table(summary, crossfold)
    config_r = [[k, _fmt(v)] for k, v in sorted(summary.get("best_config", {}).items())]
    protocols = [f"Ours: {summary['protocol']} protocol — {summary.get('split', '')}.", f"Papers: {PAPER_PROTOCOL}",
                 FIELD_PROTOCOL,
                 "Figures from different protocols are not comparable: a random utterance split shares speakers "
                 "between training and test and scores higher than a speaker-independent split."]
    if crossfold:
        protocols.insert(1, f"Ours, cross-fold: {headline(crossfold)}.")
    hp_text = (f"TensorBoard's HParams view (plugin `hparams`, written by Ray Tune's TBX logger when a trial ends) "
               f"holds every trial's parameters and final metrics: found in {with_hp} of {with_events} trials' "
               f"event files. Open `tensorboard --logdir {exp_dir}` and choose HPARAMS. {tb_note}")
    imp_text = ("Importances of the searched parameters for validation UA, from "
                "optuna.importance.get_param_importances (Optuna's default evaluator) on the search's study "
                f"`{study_storage(exp_dir)}`. {imp_message}" if importances else imp_message)
    imp_rows = [[k, f"{v:.3f}"] for k, v in (importances or {}).items()]
    recall_rows = [[c, _pct(r)] for c, r in zip(classes, recalls(confusion), strict=True)] if confusion else []
    curves_note = "Validation UA and train/validation loss per epoch of every trial (the best trial drawn thicker)."
    if missing:
        curves_note += f" No per-epoch history for trial(s) {', '.join(missing)}."

    title = f"EmoHRNet search report: {summary['dataset']} ({exp_dir.name})"
    md: list[str] = [f"# {title}", "", f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')}.", ""]
    md += [f"- **{k}**: {v}" for k, v in facts] + [""]
    md += ["## Published numbers beside ours", "", _md_table(paper_h, paper_r), ""]
    md += [f"- {p}" for p in protocols] + [""]
    if crossfold:
        md += ["## Cross-fold evaluation", "", f"Protocol: **{crossfold['protocol_name']}**. "
               f"Model selection: {crossfold['model_selection']}.", "", markdown_table(crossfold), ""]
    md += ["## Trials", "", _md_table(trials_h, trials_r), ""]
    md += [f"- baseline note: {d}" for d in deviations] + ([""] if deviations else [])
    md += ["## Best configuration", "", _md_table(["setting", "value"], config_r), ""]
    md += ["## Parameter importances", "", imp_text, ""]
    if importances:
        md += [_md_table(["parameter", "importance"], imp_rows), "", "![parameter importances](param_importances.png)",
               ""]
    md += ["## Learning curves", "", curves_note, "", "![learning curves](learning_curves.png)", ""]
    if confusion:
        md += ["## Test confusion matrix and per-class recall (best trial)", "",
               "Rows: reference class; columns: predicted class; colour: share of the reference class.", "",
               "![test confusion matrix](confusion_matrix.png)", "", "![per-class recall](per_class_recall.png)", "",
               _md_table(["class", "recall (%)"], recall_rows), ""]
    else:
        md += ["## Test confusion matrix", "", "The best trial has no test confusion matrix.", ""]
    md += ["## TensorBoard", "", hp_text, ""]

    def img(name: str) -> str:
        data = base64.b64encode(pngs[name]).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{html.escape(PLOTS[name])}">'

    e = html.escape
    h: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f0f0f0}"
        "img{max-width:100%;display:block;margin:1em 0}code{background:#f4f4f4;padding:1px 4px}</style>",
        "</head><body>", f"<h1>{e(title)}</h1>", f"<p>Generated {e(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>",
        "<ul>" + "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in facts) + "</ul>",
        "<h2>Published numbers beside ours</h2>", _html_table(paper_h, paper_r),
        "<ul>" + "".join(f"<li>{e(p)}</li>" for p in protocols) + "</ul>",
    ]
    if crossfold:
        h += ["<h2>Cross-fold evaluation</h2>",
              f"<p>Protocol: <b>{e(crossfold['protocol_name'])}</b>. Model selection: "
              f"{e(crossfold['model_selection'])}.</p>", _md_to_html_table(markdown_table(crossfold)),
              f"<p>{e(headline(crossfold))}</p>"]
    h += ["<h2>Trials</h2>", _html_table(trials_h, trials_r)]
    if deviations:
        h.append("<ul>" + "".join(f"<li>baseline note: {e(d)}</li>" for d in deviations) + "</ul>")
    h += ["<h2>Best configuration</h2>", _html_table(["setting", "value"], config_r),
          "<h2>Parameter importances</h2>", f"<p>{e(imp_text)}</p>"]
    if importances:
        h += [_html_table(["parameter", "importance"], imp_rows), img("param_importances")]
    h += ["<h2>Learning curves</h2>", f"<p>{e(curves_note)}</p>", img("learning_curves")]
    if confusion:
        h += ["<h2>Test confusion matrix and per-class recall (best trial)</h2>",
              "<p>Rows: reference class; columns: predicted class; colour: share of the reference class.</p>",
              img("confusion_matrix"), img("per_class_recall"), _html_table(["class", "recall (%)"], recall_rows)]
    else:
        h += ["<h2>Test confusion matrix</h2>", "<p>The best trial has no test confusion matrix.</p>"]
    h += ["<h2>TensorBoard</h2>", f"<p>{e(hp_text)}</p>", "</body></html>", ""]

    written["md"] = out_dir / "report.md"
    written["html"] = out_dir / "report.html"
    _write(written["md"], "\n".join(md))
    _write(written["html"], "\n".join(h))
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2: not a finished search)."""
    p = argparse.ArgumentParser(prog="python -m tune.report", description=__doc__.split("\n\n")[0])
    p.add_argument("experiment_dir", metavar="EXPERIMENT_DIR", help="the experiment folder of python -m tune.search")
    p.add_argument("--out", help="output folder (default: EXPERIMENT_DIR)")
    args = p.parse_args(argv)
    try:
        written = build_report(args.experiment_dir, args.out)
    except (FileNotFoundError, KeyError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {written['html']} and {written['md']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
