"""Models and the model registry.

- :class:`EmoHRNet` -- HRNet over a log-mel spectrogram (Muppidi & Radfar 2025, arXiv 2510.06072,
  sections 3.2-3.3), input ``(batch, 1, n_mels, frames)``, output logits ``(batch, num_classes)``.
- :class:`CNN1DAttention` -- 1D CNN with channel and spatial attention over MFCCs (Lee & Nadeem
  2025), input ``(batch, n_mfcc, frames)``.
- :data:`MODEL_SPECS` -- the registry: name -> :class:`ModelSpec` (class, front end, source);
  :data:`MODELS` (name -> class) and the training loop's and the search's lists of models are
  derived from it.
- :func:`build_model`, :func:`count_parameters`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from emohrnet.models.cnn1d_attention import CNN1DAttention
from emohrnet.models.hrnet import EmoHRNet, width_preset
from emohrnet.models.hrnet_blocks import HighResolutionModule


@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    Attributes:
        cls: the ``nn.Module`` class; its constructor takes ``num_classes`` first.
        features: the front end it trains on, ``"logmel"`` or ``"mfcc"`` (the shards' ``feature_kind``).
        source: the paper it reproduces.
        arguments: ``(training config, n_features) -> constructor arguments`` (besides ``num_classes``);
            the config is an :class:`emohrnet.train_config.TrainConfig` (read by attribute), ``n_features`` the
            shards' mel bands or MFCCs.
        spec_augment: whether it trains with SpecAugment's masks (EmoHRNet); the 1D CNN trains with
            waveform augmentation instead, as in its paper.
        shown: its searched parameters that the search's summary shows, in order.
    """

    cls: type[nn.Module]
    features: str
    source: str
    arguments: Callable[[Any, int], dict[str, Any]]
    spec_augment: bool
    shown: tuple[str, ...]


def _emohrnet_arguments(cfg: Any, n_features: int) -> dict[str, Any]:
    """EmoHRNet: the branch widths from the base width (``width_preset``), stem, blocks, modules; the
    number of mel bands needs no argument (the network pools over frequency)."""
    return {"widths": list(width_preset(cfg.width)), "stem_channels": cfg.stem_channels,
            "blocks_per_branch": cfg.blocks_per_branch, "modules": list(cfg.modules)}


def _cnn1d_arguments(cfg: Any, n_features: int) -> dict[str, Any]:
    """The 1D CNN: MFCCs as input channels, block widths (C, 2C, 4C), dropout."""
    w = cfg.cnn_width
    return {"in_channels": n_features, "widths": [w, 2 * w, 4 * w], "dropout": float(cfg.dropout)}


MODEL_SPECS: dict[str, ModelSpec] = {
    "emohrnet": ModelSpec(
        EmoHRNet, "logmel", "Muppidi & Radfar 2025, EmoHRNet (arXiv 2510.06072)", _emohrnet_arguments,
        spec_augment=True, shown=("lr", "freq_mask", "time_mask", "width")),
    "cnn1d_attention": ModelSpec(
        CNN1DAttention, "mfcc", "Lee & Nadeem 2025, 1D CNN with channel and spatial attention", _cnn1d_arguments,
        spec_augment=False, shown=("lr", "cnn_width", "dropout", "aug_prob")),
}
"""The model registry, in the search's order (``--model any`` lists the baselines in this order)."""

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
    "MODELS",
    "MODEL_SPECS",
    "CNN1DAttention",
    "ModelSpec",
    "EmoHRNet",
    "HighResolutionModule",
    "build_model",
    "count_parameters",
    "width_preset",
]
