"""The report's figures (matplotlib, no display needed), as PNG bytes, and the best trial's test
confusion matrix logged to TensorBoard as an image."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..results import Summary

CONFUSION_TAG = "test/confusion_matrix"
"""TensorBoard image tag of the best trial's test confusion matrix."""
BEST_TRIAL_LOGDIR = "best_trial"
"""Where, in the experiment folder, that image is logged."""
PLOTS = {"learning_curves": "learning curves", "confusion_matrix": "test confusion matrix",
         "per_class_recall": "per-class recall", "param_importances": "parameter importances"}
"""The figures by file stem, with their alt texts."""


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
    :func:`emohrnet.inference.metrics.per_class_recall` on a list."""
    import torch

    from emohrnet.inference.metrics import per_class_recall

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


def log_confusion_to_tensorboard(exp_dir: str | Path, summary: Summary) -> Path:
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

    if not summary.test_confusion:
        raise ValueError("best.json holds no test_confusion for the best trial")
    logdir = Path(exp_dir) / BEST_TRIAL_LOGDIR
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob("events.out.tfevents.*"):
        old.unlink()
    fig = plot_confusion(summary.test_confusion, summary.classes, f"Test confusion, trial {summary.best_trial}")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[:, :, :3]
    with SummaryWriter(str(logdir)) as writer:
        writer.add_image(CONFUSION_TAG, image, global_step=0, dataformats="HWC")
        if summary.test_ua is not None:
            writer.add_scalar("test/ua", float(summary.test_ua), global_step=0)
    return logdir
