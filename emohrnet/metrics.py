"""Classification metrics of speech emotion recognition.

- UA, unweighted accuracy: the mean of per-class recalls over the classes present in the
  reference labels (scikit-learn's ``balanced_accuracy_score``).
- WA, weighted accuracy: the fraction of utterances classified correctly (plain accuracy).

Both are computed from a confusion matrix so that workers can sum their matrices
(``all_reduce``) and get the exact figure for the whole evaluation set.
"""

from __future__ import annotations

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
