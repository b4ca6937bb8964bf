"""What the registry knows of a model (:class:`ModelSpec`) and the declared ranges of its searched
parameters (:class:`Uniform`, :class:`IntRange`, :class:`Choice`; ``tune.space`` turns them into Ray
Tune's distributions). Each model module declares its ``SPEC`` with these; :mod:`.registry` collects
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

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

@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    Attributes:
        name: the registry key (``--model``, a checkpoint's ``model_name``).
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
        order: where the search lists it (``--model any``'s baselines and choice), lowest first.
    """

    name: str
    cls: type[nn.Module]
    features: str
    source: str
    config_cls: type
    spec_augment: bool
    space: dict[str, Param]
    baseline: dict[str, Any]
    baseline_note: str = ""
    order: int = 100

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
