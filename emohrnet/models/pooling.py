"""Global average pooling over the valid frames of a zero-padded batch (length-bucketed evaluation,
:func:`emohrnet.inference.evaluation.eval_batches`)."""

from __future__ import annotations

import torch
from torch import Tensor


def masked_mean(features: Tensor, valid: Tensor) -> Tensor:
    """Average of a feature map over all but its last axis's padding.

    Args:
        features: ``(batch, channels, ..., time)``.
        valid: ``(batch,)`` number of leading valid positions on the time axis (>= 1).

    Returns:
        ``(batch, channels)``: the mean over every non-time axis and the first ``valid`` time steps.
    """
    steps = torch.arange(features.shape[-1], device=features.device)
    mask = (steps < valid.to(features.device).reshape(-1, 1)).to(features.dtype)  # (batch, time)
    other = features.shape[2:-1].numel()
    middle = tuple(range(2, features.ndim - 1))
    summed = features.sum(dim=middle) if middle else features  # (batch, channels, time)
    return (summed * mask.unsqueeze(1)).sum(dim=-1) / (mask.sum(dim=-1, keepdim=True) * other)
