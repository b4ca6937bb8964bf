"""What the registry knows of a model (:class:`ModelSpec`) and the declared ranges of its searched
parameters (:class:`Uniform`, :class:`IntRange`, :class:`Choice`; ``tune.space`` turns them into Ray
Tune's distributions). Each model module declares its ``SPEC`` with these; :mod:`.registry` collects
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
        levers: the recipe levers ``--space recipe`` searches besides :attr:`space` (issue 23: mixup, label
            smoothing, warm-up, dropout, waveform-augmented copies), with their ranges.
        levers_off: each lever's value in the baseline trial: off, so the baseline stays the paper's recipe.
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
    levers: dict[str, Param] = field(default_factory=dict)
    levers_off: dict[str, Any] = field(default_factory=dict)

    @property
    def shown(self) -> tuple[str, ...]:
        """The searched parameters of every space, in the order the search's summary shows them."""
        return (*self.space, *(k for k in self.levers if k not in self.space), "epochs")

    def searched(self, space: str = "paper") -> dict[str, Param]:
        """The parameters a search space draws (:data:`SPACES`): ``"paper"`` the mission's (:attr:`space`),
        ``"recipe"`` those plus :attr:`levers` (the number of epochs is added by ``tune.space``).

        Raises:
            ValueError: an unknown space.
        """
        if space not in SPACES:
            raise ValueError(f"search space {space!r}: use one of {', '.join(SPACES)}")
        return dict(self.space) if space == "paper" else {**self.space, **self.levers}

    def settings(self, flat: dict[str, Any] | None = None) -> Any:
        """Its settings (a :attr:`config_cls` instance) from a flat trial config's keys (the others are
        ignored; missing ones take their defaults).

        Raises:
            ValueError: a value that does not cast to its field's type.
        """
        return settings_from_flat(self.config_cls, flat or {})


LR_RANGE = Uniform(1e-4, 3e-3, log=True)
"""The Adam learning rate both models search."""


RECIPE_LEVERS: dict[str, Param] = {
    "mixup_alpha": Uniform(0.0, 0.5),
    "label_smoothing": Uniform(0.0, 0.2),
    "warmup_epochs": IntRange(0, 5),
}
"""The training-recipe levers every model's ``--space recipe`` searches (issue 23): mixup's Beta(alpha, alpha)
(Zhang et al. 2018; alpha 0 is no mixup), label smoothing (Szegedy et al. 2016), and epochs of linear
learning-rate warm-up before the schedule (Goyal et al. 2017). A model adds its own (dropout, augmentation)."""

RECIPE_LEVERS_OFF: dict[str, Any] = {"mixup_alpha": 0.0, "label_smoothing": 0.0, "warmup_epochs": 0}
""":data:`RECIPE_LEVERS` switched off: plain cross-entropy on hard labels, no warm-up (the papers' recipes)."""

SPACES = {
    "paper": "the mission's space: learning rate, SpecAugment F and T, HRNet width (the 1D CNN: lr, width, "
             "dropout, aug_prob)",
    "recipe": "the paper space plus the recipe levers: mixup alpha, label smoothing, warm-up epochs, dropout "
              "before the classifier, the share of waveform-augmented (speed-perturbed) copies, and the number of "
              "epochs",
}
"""The named search spaces (``--space``) and what each searches."""
