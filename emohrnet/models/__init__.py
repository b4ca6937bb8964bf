"""Models and the model registry.

- :class:`EmoHRNet` -- HRNet over a log-mel spectrogram (Muppidi & Radfar 2025, arXiv 2510.06072,
  sections 3.2-3.3), input ``(batch, 1, n_mels, frames)``, output logits ``(batch, num_classes)``.
- :data:`MODELS` -- name -> model class; add a model with one line, e.g.
  ``"cnn1d_attention": CNN1DAttention``.
- :func:`build_model`, :func:`count_parameters`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from emohrnet.models.cnn1d_attention import CNN1DAttention
from emohrnet.models.hrnet import EmoHRNet, HighResolutionModule, width_preset

MODELS: dict[str, type[nn.Module]] = {
    "emohrnet": EmoHRNet,
    "cnn1d_attention": CNN1DAttention,
}
"""Registered models: name -> ``nn.Module`` class whose constructor takes ``num_classes`` first."""


def build_model(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: a key of :data:`MODELS` (e.g. ``"emohrnet"``).
        num_classes: number of output logits; the model maps its input, for EmoHRNet
            ``(batch, 1, n_mels, frames)``, to ``(batch, num_classes)``.
        **kwargs: further constructor arguments (e.g. ``widths``, ``dropout``; for EmoHRNet the
            ``model.config`` of a checkpoint minus ``num_classes``).

    Returns:
        the new model (freshly initialised, training mode).

    Raises:
        KeyError: ``name`` is not registered; the message lists the known names.
        ValueError: the model rejects an argument (see :class:`EmoHRNet`).
        TypeError: an unknown keyword argument.
    """
    try:
        cls = MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}") from None
    return cls(num_classes=num_classes, **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements of ``model`` (all of them, or only those with ``requires_grad``).

    BatchNorm running statistics are buffers, not parameters, and are not counted.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "MODELS",
    "CNN1DAttention",
    "EmoHRNet",
    "HighResolutionModule",
    "build_model",
    "count_parameters",
    "width_preset",
]
