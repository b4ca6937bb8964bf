"""The front ends, by kind: ``"logmel"`` (EmoHRNet's normalized log-mel spectrogram, :mod:`.logmel`)
and ``"mfcc"`` (the 1D CNN with attention's MFCCs, :mod:`.mfcc`), over shared STFT and mel settings
(:mod:`.stft`).

Shard manifests and checkpoints record the kind (``feature_kind``) and the front end's parameters;
:func:`feature_config` and :func:`front_end` rebuild the front end from them. A new front end is a
module here with a frozen-dataclass config (a :class:`StftSettings` that names its ``kind`` and says
how many ``n_features`` rows it gives), a ``torch.nn.Module`` and its ``SPEC`` (a :class:`FrontEnd`),
plus an entry in :data:`FRONT_ENDS`' tuple.
"""

from __future__ import annotations

from typing import Any

import torch

from emohrnet.config.registry import registry
from emohrnet.frontend import logmel, mfcc
from emohrnet.frontend.logmel import FeatureConfig, LogMel
from emohrnet.frontend.mfcc import MFCC_NORMALIZATIONS, Mfcc, MfccConfig
from emohrnet.frontend.stft import FrontEnd, StftSettings

FeatureSpec = FeatureConfig | MfccConfig
"""Any front end's parameters."""

FRONT_ENDS: dict[str, FrontEnd] = registry((logmel.SPEC, mfcc.SPEC), "kind", "front end")
"""Every front end by its kind (:func:`emohrnet.config.registry.registry`)."""

FEATURE_KINDS = tuple(FRONT_ENDS)
"""The kinds a shard or checkpoint may record."""


def feature_kind(features: FeatureSpec) -> str:
    """The registry kind of a front end's parameters: ``"logmel"`` or ``"mfcc"``."""
    return features.kind


def feature_config(kind: str, features: dict[str, Any]) -> FeatureSpec:
    """The front end's parameters from their dict (as stored in manifests and checkpoints).

    Raises:
        ValueError: unknown ``kind`` (the message lists the known ones), or an invalid value.
        TypeError: an unknown key.
    """
    if kind not in FRONT_ENDS:
        raise ValueError(f"unknown feature kind {kind!r}; known: {', '.join(FEATURE_KINDS)}")
    return FRONT_ENDS[kind].config.from_dict(features)


def front_end(kind: str, features: dict[str, Any]) -> torch.nn.Module:
    """The front end module: waveform ``(samples,)`` at 16 kHz to ``(n_features, frames)``.

    Raises:
        ValueError, TypeError: see :func:`feature_config`.
    """
    return FRONT_ENDS[kind].module(feature_config(kind, features))


def n_features(kind: str, features: dict[str, Any]) -> int:
    """Feature rows per frame: ``n_mels`` (log-mel) or ``n_mfcc`` (MFCC)."""
    return feature_config(kind, features).n_features


__all__ = ["FEATURE_KINDS", "FRONT_ENDS", "FrontEnd", "MFCC_NORMALIZATIONS", "FeatureConfig", "FeatureSpec", "LogMel",
           "Mfcc", "MfccConfig", "StftSettings", "feature_config", "feature_kind", "front_end", "n_features"]
