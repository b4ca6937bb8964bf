"""Models and the model registry.

- :class:`EmoHRNet` -- HRNet over a log-mel spectrogram (Muppidi & Radfar 2025, arXiv 2510.06072,
  sections 3.2-3.3), input ``(batch, 1, n_mels, frames)``, output logits ``(batch, num_classes)``.
- :class:`CNN1DAttention` -- 1D CNN with channel and spatial attention over MFCCs (Lee & Nadeem
  2025), input ``(batch, n_mfcc, frames)``.
- :data:`MODEL_SPECS` -- the registry (:mod:`emohrnet.models.registry`): name -> :class:`ModelSpec`
  (:mod:`emohrnet.models.spec`: class, front end, source, settings class, search space, baseline point
  and note), one ``SPEC`` per model module, found by the registry; each model's own settings in a
  training config are a small dataclass (:class:`EmoHRNetConfig`, :class:`CNN1DAttentionConfig`);
  :data:`MODELS` (name -> class) and the training loop's and the search's lists of models are
  derived from it. :data:`EMOHRNET_PAPER`: EmoHRNet's published recipe, written once.
- :func:`build_model`, :func:`count_parameters`.

Modules: ``hrnet`` (EmoHRNet) with ``hrnet_blocks`` (residual blocks, the high-resolution module,
transitions), ``cnn1d_attention`` (the 1D CNN), ``pooling`` (pooling over the valid frames of a
padded batch), ``spec``, ``registry`` and ``settings``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from emohrnet.models.cnn1d_attention import CNN1DAttention, CNN1DAttentionConfig
from emohrnet.models.hrnet import EMOHRNET_PAPER, EmoHRNet, EmoHRNetConfig, width_preset
from emohrnet.models.hrnet_blocks import HighResolutionModule
from emohrnet.models.registry import MODEL_SPECS
from emohrnet.models.spec import RECIPE_LEVERS, RECIPE_LEVERS_OFF, SPACES, Choice, IntRange, ModelSpec, Param, Uniform

MODELS: dict[str, type[nn.Module]] = {name: spec.cls for name, spec in MODEL_SPECS.items()}
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
    "EMOHRNET_PAPER",
    "RECIPE_LEVERS",
    "RECIPE_LEVERS_OFF",
    "SPACES",
    "MODELS",
    "MODEL_SPECS",
    "Choice",
    "IntRange",
    "Param",
    "Uniform",
    "CNN1DAttention",
    "CNN1DAttentionConfig",
    "ModelSpec",
    "EmoHRNet",
    "EmoHRNetConfig",
    "HighResolutionModule",
    "build_model",
    "count_parameters",
    "width_preset",
]
