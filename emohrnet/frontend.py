"""The two front ends by name: ``"logmel"`` (EmoHRNet) and ``"mfcc"`` (the 1D CNN with attention).

Shard manifests and checkpoints record ``feature_kind`` and the front end's parameters; these
helpers rebuild the front end from them.
"""

from __future__ import annotations

from typing import Any

import torch

from .features import FeatureConfig, LogMel
from .mfcc import Mfcc, MfccConfig

FEATURE_KINDS = ("logmel", "mfcc")


def feature_config(kind: str, features: dict[str, Any]) -> FeatureConfig | MfccConfig:
    """The front end's parameters from their dict.

    Raises:
        ValueError: unknown ``kind``.
    """
    if kind == "mfcc":
        return MfccConfig.from_dict(features)
    if kind == "logmel":
        return FeatureConfig.from_dict(features)
    raise ValueError(f"unknown feature kind {kind!r}; known: {', '.join(FEATURE_KINDS)}")


def front_end(kind: str, features: dict[str, Any]) -> torch.nn.Module:
    """The front end module: waveform ``(samples,)`` at 16 kHz to ``(n_features, frames)``."""
    config = feature_config(kind, features)
    return Mfcc(config) if isinstance(config, MfccConfig) else LogMel(config)


def n_features(kind: str, features: dict[str, Any]) -> int:
    """Feature rows per frame: ``n_mfcc`` or ``n_mels``."""
    config = feature_config(kind, features)
    return config.n_mfcc if isinstance(config, MfccConfig) else config.n_mels
