"""Classification metrics of speech emotion recognition.

- UA, unweighted accuracy: the mean of per-class recalls over the classes present in the
  reference labels (scikit-learn's ``balanced_accuracy_score``).
- WA, weighted accuracy: the fraction of utterances classified correctly (plain accuracy).
- Macro-F1: the mean of per-class F1 scores (scikit-learn's ``f1_score(average="macro")``).

Both are computed from a confusion matrix so that workers can sum their matrices
(``all_reduce``) and get the exact figure for the whole evaluation set.
"""

from __future__ import annotations

from typing import Any

import torch


def confusion_matrix(targets: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Count (reference, predicted) pairs.

    Args:
        targets: ``(n,)`` integer class indices.
        predictions: ``(n,)`` integer class indices.
        num_classes: C.

    Returns:
        ``(C, C)`` int64 tensor; row = reference class, column = predicted class.

    Raises:
        ValueError: shapes differ or an index is outside ``[0, C)``.
    """
    targets = targets.reshape(-1).long().cpu()
    predictions = predictions.reshape(-1).long().cpu()
    if targets.shape != predictions.shape:
        raise ValueError(f"targets {tuple(targets.shape)} and predictions {tuple(predictions.shape)} differ")
    for name, t in (("targets", targets), ("predictions", predictions)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
            raise ValueError(f"{name} hold a class index outside [0, {num_classes})")
    flat = targets * num_classes + predictions
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def unweighted_accuracy(cm: torch.Tensor) -> float:
    """UA: mean per-class recall over classes with at least one reference utterance.

    Args:
        cm: ``(C, C)`` confusion matrix from :func:`confusion_matrix`.

    Returns:
        UA in [0, 1]; ``nan`` for an empty matrix.
    """
    support = cm.sum(dim=1)
    present = support > 0
    if not bool(present.any()):
        return float("nan")
    recall = cm.diagonal()[present].double() / support[present].double()
    return float(recall.mean())


def weighted_accuracy(cm: torch.Tensor) -> float:
    """WA: correctly classified utterances over all utterances (``nan`` for an empty matrix)."""
    total = int(cm.sum())
    return float(cm.diagonal().sum()) / total if total else float("nan")


def per_class_recall(cm: torch.Tensor) -> list[float]:
    """Recall of each class (``nan`` where a class has no reference utterance)."""
    support = cm.sum(dim=1).double()
    return [float(d / s) if s > 0 else float("nan") for d, s in zip(cm.diagonal().double(), support, strict=True)]


UA_TIE_TOLERANCE = 1e-9
"""Two validation UAs closer than this are a tie (UA comes from counts; this absorbs rounding only)."""

SELECTION_RULE = ("the epoch with the highest validation UA; among epochs tied on it, the one with the lowest "
                  "validation loss (the first of those if the loss ties too)")
"""The model-selection rule, as stated in the README, the search summary and ``best.json``."""


def is_better(val_ua: float, val_loss: float, best_ua: float, best_loss: float) -> bool:
    """Whether an epoch scoring ``(val_ua, val_loss)`` beats the best so far (:data:`SELECTION_RULE`).

    A higher validation UA wins; at equal UA (within :data:`UA_TIE_TOLERANCE`) a strictly lower
    validation loss wins, so a saturated validation UA (e.g. 100% from epoch 2 on a small
    validation set) still selects the better-fitted later epoch. A NaN UA never wins.

    Args:
        val_ua, val_loss: the candidate epoch's validation UA (fraction) and mean cross-entropy.
        best_ua, best_loss: the best epoch's so far (``-inf``/``inf`` before the first epoch).
    """
    if val_ua != val_ua:  # NaN
        return False
    if val_ua > best_ua + UA_TIE_TOLERANCE:
        return True
    return abs(val_ua - best_ua) <= UA_TIE_TOLERANCE and val_loss < best_loss


def selection_key(val_ua: float, val_loss: float) -> tuple[float, float]:
    """Sort key of :data:`SELECTION_RULE` for ``max()``: UA rounded to the tie tolerance, then lower loss.

    Use for choosing among trials or rows; :func:`is_better` is the same rule for one comparison.
    """
    loss = val_loss if val_loss == val_loss else float("inf")
    return (round(val_ua, 9) if val_ua == val_ua else float("-inf")), -loss


def macro_f1(confusion: Any) -> float:
    """Macro-averaged F1 from a confusion matrix.

    F1 of class ``c`` is ``2 TP / (2 TP + FP + FN)``; the macro average runs over the classes that
    occur in the reference or in the predictions (a class predicted but never present scores 0),
    which is what ``sklearn.metrics.f1_score(y_true, y_pred, average="macro")`` computes.

    Args:
        confusion: ``(C, C)`` counts (nested lists, numpy array or torch tensor); row = reference
            class, column = predicted class.

    Returns:
        macro-F1 in [0, 1]; ``nan`` for an empty matrix.

    Raises:
        ValueError: the matrix is not square, or holds a negative count.
    """
    import numpy as np

    cm = np.asarray(confusion.tolist() if hasattr(confusion, "tolist") else confusion, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square (C, C), got shape {cm.shape}")
    if (cm < 0).any():
        raise ValueError("confusion matrix holds a negative count")
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    seen = denom > 0
    if not seen.any():
        return float("nan")
    return float(np.mean(2 * tp[seen] / denom[seen]))
