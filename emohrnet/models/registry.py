"""The model registry: one :class:`ModelSpec` per model, holding everything the library and the search
know of it (class, front end, source, constructor arguments, SpecAugment or not, search space, baseline
point and its note), and EmoHRNet's published recipe (:data:`EMOHRNET_PAPER`), written once.

A searched parameter's range is declared here as plain data (:class:`Uniform`, :class:`IntRange`,
:class:`Choice`); ``tune.space`` turns it into Ray Tune's distributions. A new model
is one module under ``emohrnet/models/`` and one entry in :data:`MODEL_SPECS`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from emohrnet.augment import LB_FREQ_MASK, LB_TIME_MASK
from emohrnet.models.cnn1d_attention import CNN1DAttention, CNN1DAttentionConfig
from emohrnet.models.hrnet import EmoHRNet, EmoHRNetConfig
from emohrnet.models.settings import settings_from_flat


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from ``[low, high]``, or log-uniformly with ``log=True``."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class IntRange:
    """An integer drawn uniformly from ``low..high`` (both included)."""

    low: int
    high: int


@dataclass(frozen=True)
class Choice:
    """One of ``values``."""

    values: tuple[Any, ...]


Param = Uniform | IntRange | Choice
"""A searched parameter's declared range."""

EMOHRNET_PAPER: dict[str, Any] = {
    "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "weight_decay": 1e-4, "batch_size": 64, "epochs": 100,
    **asdict(EmoHRNetConfig()), "lr_schedule": "constant", "freq_mask": LB_FREQ_MASK, "time_mask": LB_TIME_MASK,
}
"""EmoHRNet's published recipe (Muppidi & Radfar 2025, sec. 4.2): Adam with lr 1e-3, betas (0.9, 0.999),
weight decay 1e-4 and a constant learning rate; batch 64; 100 epochs; HRNet-W18 (width 18, stem 64, 4
blocks per branch, modules 1, 1, 4, 3); SpecAugment F = 27 and T = 100 (LibriSpeech-basic: the paper
gives no F and T); the HRNet-W18 structure is :class:`emohrnet.models.hrnet.EmoHRNetConfig`'s defaults.
:class:`emohrnet.experiment_config.ExperimentConfig`'s defaults, the search's baseline trial and the
notes on how a run differs from the paper are taken from it."""


@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    Attributes:
        cls: the ``nn.Module`` class; its constructor takes ``num_classes`` first.
        features: the front end it trains on, ``"logmel"`` or ``"mfcc"`` (the shards' ``feature_kind``).
        source: the paper it reproduces.
        config_cls: its own settings in a training config (a dataclass whose fields all have defaults,
            with ``arguments(n_features) -> constructor arguments`` besides ``num_classes``; ``n_features``
            is the shards' mel bands or MFCCs), e.g. :class:`emohrnet.models.hrnet.EmoHRNetConfig`.
        spec_augment: whether it trains with SpecAugment's masks (EmoHRNet); the 1D CNN trains with
            waveform augmentation instead, as in its paper.
        space: its searched parameters (training-config fields) and their ranges, in the order the
            search draws them and its summary shows them.
        baseline: the search's first trial for it: each searched parameter at its paper's value.
        baseline_note: how the baseline departs from the paper, shown with the results ("" if it does not).
    """

    cls: type[nn.Module]
    features: str
    source: str
    config_cls: type
    spec_augment: bool
    space: dict[str, Param]
    baseline: dict[str, Any]
    baseline_note: str = ""

    @property
    def shown(self) -> tuple[str, ...]:
        """The searched parameters, in the order the search's summary shows them."""
        return tuple(self.space)

    def settings(self, flat: dict[str, Any] | None = None) -> Any:
        """Its settings (a :attr:`config_cls` instance) from a flat trial config's keys (the others are
        ignored; missing ones take their defaults).

        Raises:
            ValueError: a value that does not cast to its field's type.
        """
        return settings_from_flat(self.config_cls, flat or {})


LR_RANGE = Uniform(1e-4, 3e-3, log=True)
"""The Adam learning rate both models search."""

MODEL_SPECS: dict[str, ModelSpec] = {
    "emohrnet": ModelSpec(
        EmoHRNet, "logmel", "Muppidi & Radfar 2025, EmoHRNet (arXiv 2510.06072)", EmoHRNetConfig,
        spec_augment=True,
        space={"lr": LR_RANGE, "freq_mask": IntRange(0, 40), "time_mask": IntRange(0, 120),
               "width": Choice((12, 18, 24, 32))},
        baseline={k: EMOHRNET_PAPER[k] for k in ("lr", "freq_mask", "time_mask", "width")}),
    "cnn1d_attention": ModelSpec(
        CNN1DAttention, "mfcc", "Lee & Nadeem 2025, 1D CNN with channel and spatial attention", CNN1DAttentionConfig,
        spec_augment=False,
        space={"lr": LR_RANGE, "cnn_width": Choice((32, 64, 128)), "dropout": Uniform(0.0, 0.5),
               "aug_prob": Uniform(0.0, 1.0)},
        baseline={"lr": 1e-3, **asdict(CNN1DAttentionConfig()), "aug_prob": 0.5},
        baseline_note="cnn1d_attention baseline: lr 1e-3, widths 64/128/256, dropout 0.3, aug_prob 0.5 (the "
                      "paper's exact hyperparameters were not available)"),
}
"""The model registry, in the search's order (``--model any`` lists the baselines in this order)."""
