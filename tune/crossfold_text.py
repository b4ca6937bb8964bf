"""A cross-fold result (:func:`tune.evaluate.run_crossfold`) as text: the per-fold table for the
console and for Markdown, the mean ± standard deviation row and its labels, the note on folds that
took part in model selection, and the one-line headline the report and the README quote."""

from __future__ import annotations

import math
from typing import Any

from .results import CrossfoldResult


# --------------------------------------------------------------------------- formatting
def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def _pm(mean: float | None, std: float | None) -> str:
    return "n/a" if mean is None else f"{_pct(mean)} ± {_pct(std)}"


def _speakers(split: str) -> str:
    """The test speakers from a split description, else the split's seed/fold text."""
    if "test speakers " in split:
        return split.split("test speakers ", 1)[1].split(";", 1)[0]
    return "-"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _fold_word(result: CrossfoldResult, n: int = 1) -> str:
    """``fold``/``folds``, or ``seed``/``seeds`` under the random protocol."""
    word = "seed" if result.protocol == "random" else "fold"
    return word if n == 1 else f"{word}s"


def _folds_text(result: CrossfoldResult, folds: list[int]) -> str:
    """E.g. ``"fold 1"``, ``"folds 1, 3"``, ``"seeds 1, 2, 3, 4"``."""
    return f"{_fold_word(result, len(folds))} {', '.join(map(str, folds))}"


def _selection_reason(result: CrossfoldResult) -> str:
    """Why the marked folds took part in choosing the configuration, as a relative clause."""
    if result.protocol == "random":
        return "whose test utterances overlap the search's validation utterances"
    n = result.n_folds_total
    if n is not None and n < 3:
        return "whose test utterances include the search's validation utterances"
    return "whose test speakers were the search's validation speakers"


def mean_labels(result: CrossfoldResult) -> tuple[str, str | None]:
    """How the tables label their two means.

    Returns:
        ``(headline label, all-folds label)``; the second is ``None`` when no completed fold was used
        in selection (the two means are then the same) or when ``result`` does not record it.
    """
    n = result.n_completed
    marked = result.marked
    if marked is None:
        return f"mean ± std over {_plural(n, 'completed ' + _fold_word(result))} (which folds took part in " \
               "choosing the configuration is not recorded in this result)", None
    if not marked:
        return f"mean ± std over all {_plural(n, _fold_word(result))}, none used in selection (headline)", None
    clean = result.clean_count
    head = f"mean ± std over the {clean} {_fold_word(result, clean)} not used in selection (headline)"
    if clean == 0:
        head += f": n/a, every completed {_fold_word(result)} was used in selection"
    return head, (f"mean ± std over all {_plural(n, _fold_word(result))} (includes {_folds_text(result, marked)}, "
                  f"{_selection_reason(result)})")


def selection_note(result: CrossfoldResult) -> str:
    """The footnote under a cross-fold table: which folds are marked ``*`` and why, and which mean is
    the headline."""
    marked = result.marked
    if marked is None:
        return ("This result does not record which folds' test utterances took part in choosing the configuration; "
                "run python -m tune.evaluate again to mark them.")
    k = result.search_fold
    search = (f"the search chose its configuration on the validation part of {_fold_word(result)} {k} under the "
              f"{result.protocol} protocol")
    if not marked:
        n = _plural(result.n_completed, "completed " + _fold_word(result))
        return (f"No {_fold_word(result)}'s test utterances took part in choosing the configuration ({search}): "
                f"the headline is the mean over all {n}.")
    it = "it" if len(marked) == 1 else "them"
    note = (f"* used in selection: {search}; {_folds_text(result, marked)}, {_selection_reason(result)}, "
            f"took part in that choice, so the headline mean leaves {it} out (the all-folds mean includes {it}).")
    if result.protocol == "random":
        note += (f" Under the random protocol the test part of every seed other than the search's own (seed {k}) "
                 "shares utterances with the search's validation part, so only that seed is clean.")
    if result.clean_count == 0:
        fix = (f"include the search's own seed {k} (--folds all)" if result.protocol == "random"
               else "evaluate the other folds (--folds all)")
        note += (f" Every completed {_fold_word(result)} took part in choosing the configuration, so this run gives "
                 f"no unbiased cross-fold figure and the headline is n/a; {fix}.")
    return note


def format_table(result: CrossfoldResult) -> str:
    """The per-fold table with mean ± std, as plain text (figures in %).

    Folds used in selection (``used_in_selection``) are marked ``*`` and explained under the table;
    the headline mean leaves them out, the all-folds mean (when it differs) includes them.
    """
    lines = [f"\nCross-fold evaluation on {result.dataset} ({result.model}, config of trial "
             f"{result.best_trial}): {result.protocol_name}",
             f"Model selection: {result.model_selection}", ""]
    head = f"{'fold':>4s}  {'test speakers':24s} {'val UA':>7s} {'epoch':>5s} {'test UA':>7s} {'test WA':>7s} " \
           f"{'macro-F1':>8s}  status"
    lines += [head, "-" * len(head)]
    for r in result.folds:
        epoch = f"{r.best_epoch:5d}" if r.best_epoch is not None else f"{'-':>5s}"
        mark = "*" if r.used_in_selection else " "
        lines.append(f"{r.fold:4d}{mark} {_speakers(r.split)[:24]:24s} {_pct(r.best_val_ua):>7s} {epoch} "
                     f"{_pct(r.test_ua):>7s} {_pct(r.test_wa):>7s} {_pct(r.test_macro_f1):>8s}  {r.status}")
    lines.append("-" * len(head))
    head_label, all_label = mean_labels(result)
    for label, m, s in ((head_label, result.mean, result.std), (all_label, result.mean_all, result.std_all)):
        if label is None:
            continue
        lines.append(f"{label} (%): val UA {_pm(m['best_val_ua'], s['best_val_ua'])}; "
                     f"test UA {_pm(m['test_ua'], s['test_ua'])}; test WA {_pm(m['test_wa'], s['test_wa'])}; "
                     f"macro-F1 {_pm(m['test_macro_f1'], s['test_macro_f1'])}")
    lines.append(selection_note(result))
    lines.append("(std: sample standard deviation, ddof=1; n/a with one fold; epochs counted from 1)")
    lines.append(f"Protocol: {result.protocol_name}")
    if result.protocol_note:
        lines.append(f"Note on this corpus: {result.protocol_note}")
    return "\n".join(lines)


def markdown_table(result: CrossfoldResult) -> str:
    """The per-fold table with its mean ± std rows, as a Markdown table (figures in %), and its footnote.

    Folds used in selection are marked ``\\*``; the bold row is the headline (folds not used in
    selection), the next row (when it differs) averages all completed folds. The footnote
    (:func:`selection_note`) follows the table after a blank line.
    """
    lines = ["| Fold | Test speakers | Best val UA (%) | Best epoch | Test UA (%) | Test WA (%) | Macro-F1 (%) "
             "| Status |",
             "|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in result.folds:
        epoch = str(r.best_epoch) if r.best_epoch is not None else "-"
        mark = "\\*" if r.used_in_selection else ""
        lines.append(f"| {r.fold}{mark} | {_speakers(r.split)} | {_pct(r.best_val_ua)} | {epoch} | "
                     f"{_pct(r.test_ua)} | {_pct(r.test_wa)} | {_pct(r.test_macro_f1)} | {r.status} |")
    head_label, all_label = mean_labels(result)
    m, s = result.mean, result.std
    lines.append(f"| **headline** | {head_label} | {_pm(m['best_val_ua'], s['best_val_ua'])} | | "
                 f"**{_pm(m['test_ua'], s['test_ua'])}** | {_pm(m['test_wa'], s['test_wa'])} | "
                 f"{_pm(m['test_macro_f1'], s['test_macro_f1'])} | |")
    if all_label is not None:
        m, s = result.mean_all, result.std_all
        lines.append(f"| all folds | {all_label} | {_pm(m['best_val_ua'], s['best_val_ua'])} | | "
                     f"{_pm(m['test_ua'], s['test_ua'])} | {_pm(m['test_wa'], s['test_wa'])} | "
                     f"{_pm(m['test_macro_f1'], s['test_macro_f1'])} | |")
    note = selection_note(result)
    lines += ["", note.replace("* used in selection", "\\* used in selection", 1)]
    return "\n".join(lines)


def headline(result: CrossfoldResult) -> str:
    """The one figure a results table quotes, with its protocol, e.g. ``"UA 61.20 ± 3.10 % — ravdess,
    emohrnet; speaker-independent, 6 folds; mean over the 5 folds not used in selection (left out:
    fold 1, whose test speakers were the search's validation speakers)"``; ``"UA n/a — ..."`` with the
    reason when every completed fold was used in selection."""
    m, s = result.mean, result.std
    where = f"{result.dataset}, {result.model}; {result.protocol_name}"
    marked = result.marked
    if marked is None:
        return f"UA {_pm(m['test_ua'], s['test_ua'])} % — {where}"
    clean = result.clean_count
    if clean == 0:
        return (f"UA n/a — {where}: every completed {_fold_word(result)} ({', '.join(map(str, marked))}) took part in "
                "choosing the configuration (test utterances shared with the search's validation part), so none gives "
                "an unbiased figure")
    text = f"UA {_pm(m['test_ua'], s['test_ua'])} % — {where}; mean over the {clean} " \
           f"{_fold_word(result, clean)} not used in selection"
    if marked:
        text += f" (left out: {_folds_text(result, marked)}, {_selection_reason(result)})"
    return text


def _runs_line(runs: list[dict[str, Any]]) -> str:
    """Which cross-fold run gave which folds (a result merged from several runs)."""
    parts = [f"`{str(r.get('tune_dir')).rstrip('/').rsplit('/', 1)[-1]}` (folds {', '.join(map(str, r['folds']))})"
             for r in runs]
    return f"- Folds merged from {len(runs)} cross-fold runs of this configuration: {'; '.join(parts)}"


def format_markdown(result: CrossfoldResult) -> str:
    """``crossfold.md``: the protocol, how models were selected, the table and the headline."""
    return "\n".join([
        f"# Cross-fold evaluation: {result.dataset}, {result.model}",
        "",
        f"- Protocol: **{result.protocol_name}**",
        f"- Configuration: best trial `{result.best_trial}` of the search ({result.source}), "
        f"{result.epochs} epoch{'s' if result.epochs != 1 else ''} per fold",
        f"- Model selection: {result.model_selection}",
        "- Headline: mean ± std over the completed folds whose test utterances took no part in choosing the "
        "configuration (folds marked \\* did; see the note under the table); the all-folds row includes them",
        "- std is the sample standard deviation (ddof=1), n/a with one fold; epochs counted from 1",
        *([f"- Note on this corpus: {result.protocol_note}"] if result.protocol_note else []),
        *([_runs_line(result.runs)] if len(result.runs) > 1 else []),
        "",
        markdown_table(result),
        "",
        f"For the README's results table: **{headline(result)}**",
        "",
    ])
