"""The model registry: one :class:`~emohrnet.models.spec.ModelSpec` per model, holding everything the
library and the search know of it (class, front end, source, settings class, SpecAugment or not,
search space, baseline point and its note).

Each model module declares its ``SPEC``, and :data:`MODEL_SPECS` lists them
(:func:`emohrnet.config.registry.registry`, the registration style of models, corpora and front ends):
adding a model is one new module under ``emohrnet/models/`` (the ``nn.Module``, its settings
dataclass, its ``SPEC``), one entry in :data:`MODEL_SPECS`' tuple, and its tests.
"""

from __future__ import annotations

from collections.abc import Iterable

from emohrnet.config.registry import registry
from emohrnet.models.cnn1d_attention import SPEC as CNN1D_ATTENTION
from emohrnet.models.hrnet import SPEC as EMOHRNET
from emohrnet.models.spec import ModelSpec


def model_registry(specs: Iterable[ModelSpec]) -> dict[str, ModelSpec]:
    """``specs`` by name, in ``(order, name)`` order (the search's order).

    Raises:
        ValueError: two specs share a name, or an entry is not a :class:`ModelSpec`.
    """
    specs = list(specs)
    for spec in specs:
        if not isinstance(spec, ModelSpec):
            raise ValueError(f"{spec!r} is a {type(spec).__name__}, not a ModelSpec")
    return registry(sorted(specs, key=lambda s: (s.order, s.name)), "name", "model")


MODEL_SPECS: dict[str, ModelSpec] = model_registry((EMOHRNET, CNN1D_ATTENTION))
"""The model registry, in the search's order (``--model any`` lists the baselines in this order)."""
