"""The training loss's recipe levers: mixup and label smoothing (issue 23).

- **mixup** (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization", ICLR): each training batch is
  mixed with a permutation of itself, ``x' = lam * x + (1 - lam) * x[perm]``, and trained towards the same
  mix of the two labels, with one ``lam ~ Beta(alpha, alpha)`` per batch. For speech emotion it gave +1.5
  to +5.9 points of UA on IEMOCAP (arXiv 2302.08650). ``alpha = 0`` is no mixup.
- **label smoothing** (Szegedy et al. 2016, "Rethinking the Inception Architecture", sec. 7): a share
  ``eps`` of every target is spread evenly over the ``C`` classes, ``(1 - eps) * onehot + eps / C``, as
  ``torch.nn.functional.cross_entropy(label_smoothing=eps)`` does.

With both off the loss is exactly the paper's plain cross-entropy on hard labels, and no random number
is drawn (a run without the levers is the run before they existed). Mixing happens after SpecAugment, on
the features the model sees; draws come from a NumPy generator the caller seeds per epoch and rank.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def soft_targets(y: Tensor, num_classes: int, label_smoothing: float = 0.0) -> Tensor:
    """Class-probability targets of the labels ``y``: one-hot, smoothed by ``label_smoothing``.

    Args:
        y: ``(batch,)`` int64 class indices in ``[0, num_classes)``.
        num_classes: C.
        label_smoothing: ``eps`` in ``[0, 1)``: every row is ``(1 - eps) * onehot + eps / C``.

    Returns:
        ``(batch, C)`` float32; every row sums to 1.
    """
    onehot = F.one_hot(y, num_classes).float()
    return onehot * (1.0 - label_smoothing) + label_smoothing / num_classes


def mixup_batch(x: Tensor, y: Tensor, num_classes: int, alpha: float, label_smoothing: float = 0.0,
                rng: np.random.Generator | None = None) -> tuple[Tensor, Tensor, float]:
    """Mix a batch with a permutation of itself (mixup).

    Args:
        x: ``(batch, ...)`` features (e.g. ``(batch, 1, n_mels, frames)`` log-mels after SpecAugment).
        y: ``(batch,)`` int64 labels.
        num_classes: C.
        alpha: Beta(alpha, alpha)'s parameter, ``> 0``.
        label_smoothing: applied to both labels before they are mixed.
        rng: draws ``lam`` and the permutation (``None``: a fresh unseeded one); the training loop seeds
            one per epoch and rank, so a run's mixes do not depend on the device.

    Returns:
        ``(x_mixed, targets, lam)``: ``x_mixed`` like ``x``; ``targets`` ``(batch, C)`` float32 class
        probabilities, ``lam * t(y) + (1 - lam) * t(y[perm])``, every row summing to 1; ``lam`` in [0, 1].

    Raises:
        ValueError: ``alpha <= 0``.
    """
    if not alpha > 0:
        raise ValueError(f"mixup_alpha must be above 0 to mix, got {alpha!r}")
    rng = rng if rng is not None else np.random.default_rng()
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(len(y))).to(y.device)
    mixed = x * lam + x.index_select(0, perm) * (1.0 - lam)
    targets = soft_targets(y, num_classes, label_smoothing)
    return mixed, targets * lam + targets.index_select(0, perm) * (1.0 - lam), lam


def training_loss(logits: Tensor, y: Tensor, targets: Tensor | None = None, label_smoothing: float = 0.0) -> Tensor:
    """The training loss of one batch: cross-entropy towards ``targets`` (mixup's soft targets) when
    given, else towards the hard labels ``y`` with ``label_smoothing`` (both 0: the paper's loss).

    Args:
        logits: ``(batch, C)``; computed in float32.
        y: ``(batch,)`` int64 labels.
        targets: ``(batch, C)`` class probabilities, or ``None``.
        label_smoothing: as ``torch.nn.functional.cross_entropy`` (used without ``targets`` only: soft
            targets carry their own smoothing).

    Returns:
        the mean loss over the batch, a scalar.
    """
    logits = logits.float()
    if targets is not None:
        return F.cross_entropy(logits, targets)
    return F.cross_entropy(logits, y, label_smoothing=label_smoothing)
