"""What ``python -m emohrnet.predict`` returns and writes: the per-window and per-file predictions
(:class:`WindowPrediction`, :class:`FilePrediction`, re-exported by :mod:`emohrnet.inference.predict`) and their output
formats, an aligned table, JSON Lines and CSV, one row per file and (JSON Lines, CSV) one per window."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

FORMATS = ("table", "jsonl", "csv")
"""Output formats of the command line."""


@dataclass(frozen=True)
class WindowPrediction:
    """The prediction for one window of a file.

    Attributes:
        index: position of the window in the file, from 0.
        start: start of the window in seconds from the start of the file.
        end: end of the window in seconds (``start + window_seconds``, or the file's duration for
            a file scored as a single window).
        label: the most probable class.
        probabilities: class name -> probability (softmax of the logits; sums to 1).
    """

    index: int
    start: float
    end: float
    label: str
    probabilities: dict[str, float]


@dataclass(frozen=True)
class FilePrediction:
    """The prediction for a whole file (or waveform).

    Attributes:
        path: the file as given, or ``None`` for a waveform passed to
            :meth:`Predictor.predict_wave` without one.
        label: the most probable class of the mean probabilities.
        probabilities: class name -> mean of the windows' probabilities (sums to 1).
        windows: the per-window predictions, in time order (one for a file no longer than the
            window).
        duration: length of the audio in seconds.
    """

    path: str | None
    label: str
    probabilities: dict[str, float]
    windows: list[WindowPrediction] = field(default_factory=list)
    duration: float = 0.0


# --------------------------------------------------------------------------- output formats
def json_records(pred: FilePrediction) -> Iterator[dict[str, Any]]:
    """JSON Lines records of a prediction: the whole file (``window`` None), then each window.

    Keys: ``path``, ``window`` (None or index), ``start``, ``end`` (seconds), ``label``,
    ``probabilities`` (class -> probability).
    """
    yield {"path": pred.path, "window": None, "start": 0.0, "end": pred.duration, "label": pred.label,
           "probabilities": pred.probabilities}
    for w in pred.windows:
        yield {"path": pred.path, "window": w.index, "start": w.start, "end": w.end, "label": w.label,
               "probabilities": w.probabilities}


def csv_header(classes: Sequence[str]) -> list[str]:
    """CSV columns: ``path, window, start, end, label`` and ``prob_<class>`` per class."""
    return ["path", "window", "start", "end", "label"] + [f"prob_{c}" for c in classes]


def csv_rows(pred: FilePrediction, classes: Sequence[str]) -> Iterator[list[Any]]:
    """CSV rows of a prediction (see :func:`csv_header`): the whole file (empty ``window``), then each window."""
    for rec in json_records(pred):
        window = "" if rec["window"] is None else rec["window"]
        yield [rec["path"], window, rec["start"], rec["end"], rec["label"]] + [
            rec["probabilities"][c] for c in classes
        ]


def format_table(preds: Sequence[FilePrediction], classes: Sequence[str]) -> str:
    """Aligned text table, one row per file: path, seconds, windows, label, probability per class."""
    header = ["file", "seconds", "windows", "label", *classes]
    rows = [
        [p.path or "", f"{p.duration:.2f}", str(len(p.windows)), p.label,
         *(f"{p.probabilities[c]:.3f}" for c in classes)]
        for p in preds
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    left = {0, 3}  # text columns; numbers are right-aligned
    lines = []
    for r in [header, *rows]:
        cells = [v.ljust(w) if i in left else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


class PredictionWriter:
    """Writes :class:`FilePrediction` rows in one of :data:`FORMATS`; streams them to
    ``stream`` (JSON Lines, CSV) or collects them for :meth:`text` (the table, or no stream)."""

    def __init__(self, fmt: str, classes: Sequence[str], stream: TextIO | None) -> None:
        self.fmt, self.classes = fmt, list(classes)
        self.stream = stream if stream is not None and fmt != "table" else None
        self.buffer = io.StringIO()
        self.preds: list[FilePrediction] = []
        self.csv = csv.writer(self.stream or self.buffer, lineterminator="\n") if fmt == "csv" else None
        if self.csv is not None:
            self.csv.writerow(csv_header(self.classes))

    def add(self, pred: FilePrediction) -> None:
        if self.fmt == "table":
            self.preds.append(pred)
        elif self.fmt == "jsonl":
            out = self.stream or self.buffer
            for rec in json_records(pred):
                out.write(json.dumps(rec) + "\n")
        else:
            self.csv.writerows(csv_rows(pred, self.classes))
        if self.stream is not None:
            self.stream.flush()

    def text(self) -> str:
        """What was collected (everything, unless it was streamed)."""
        if self.fmt == "table":
            return format_table(self.preds, self.classes) if self.preds else ""
        return self.buffer.getvalue()
