"""The published figures set beside ours (each with its protocol named) and the report's tables:
the trials, and the published numbers per corpus."""

from __future__ import annotations

import json
import math
from typing import Any

from ..crossfold_text import mean_labels
from ..results import CrossfoldResult, Summary

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


def trials_table(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """The trials table: header and rows (text cells), in the search's order."""
    keys: list[str] = []
    for t in summary.trials:
        keys += [k for k in t.params if k not in keys]
    header = ["trial", "model", *keys, "best val UA (%)", "best epoch", "test UA (%)", "status"]
    rows = []
    for t in summary.trials:
        status = t.status + (" (baseline)" if t.baseline else "")
        if t.trial_id == summary.best_trial:
            status += " — best"
        rows.append([t.trial_id, t.model or "-", *[_fmt(t.params[k]) if k in t.params else "-" for k in keys],
                     _pct(t.best_val_ua), str(t.best_epoch) if t.best_epoch is not None else "-",
                     _pct(t.test_ua), status])
    return header, rows


def _our_crossfold(crossfold: CrossfoldResult) -> str:
    """Our cross-fold cell: the headline (folds not used in selection), its label and protocol."""
    m, sd = crossfold.mean.get("test_ua"), crossfold.std.get("test_ua")
    label = mean_labels(crossfold)[0]
    if m is None:
        return f"n/a, {label}; {crossfold.protocol_name}"
    return f"{_pct(m)} ± {_pct(sd) if sd is not None else 'n/a'}, {label}; {crossfold.protocol_name}"


def paper_table(summary: Summary, crossfold: CrossfoldResult | None) -> tuple[list[str], list[list[str]]]:
    """The published numbers beside ours: header and rows, one row per corpus.

    Columns: the EmoHRNet and Lee & Nadeem papers' claims, EmoBox's speaker-independent UA (frozen
    Whisper-large-v3), TIM-Net's corrected random-split figure, and ours (the search's best trial on
    its fold; the cross-fold headline, over the folds not used in selection, when ``crossfold`` is
    given). Every column header names its protocol.
    """
    ours = summary.dataset
    order = list(dict.fromkeys([*EMOHRNET_CLAIMS, *LEE_NADEEM_CLAIMS, *EMOBOX_UA, *TIMNET_CORRECTED, ours]))
    header = ["corpus",
              "EmoHRNet paper, UA (%) [protocol not stated; most likely random split]",
              "Lee & Nadeem paper, accuracy (%) [random split of feature rows]",
              "EmoBox, frozen Whisper-large-v3, UA (%) [speaker-independent]",
              "TIM-Net, corrected (%) [random split]",
              f"ours: search's best trial, test UA (%) [{summary.protocol} protocol, fold {summary.fold}]",
              "ours: cross-fold test UA (%) [headline: folds not used in selection]"]
    rows = []
    for d in order:
        single = _pct(summary.test_ua) if d == ours else ""
        cf = _our_crossfold(crossfold) if d == ours and crossfold else ""
        rows.append([DATASET_NAMES.get(d, d)]
                    + [f"{claims[d]:.2f}" if d in claims else "-"
                       for claims in (EMOHRNET_CLAIMS, LEE_NADEEM_CLAIMS, EMOBOX_UA, TIMNET_CORRECTED)]
                    + [single, cf])
    return header, rows
