"""The model registry: one :class:`~emohrnet.models.spec.ModelSpec` per model, holding everything the
library and the search know of it (class, front end, source, settings class, SpecAugment or not,
search space, baseline point and its note).

Each module of this package that defines a module-level ``SPEC`` is a registered model: adding a
model is one new module under ``emohrnet/models/`` (the ``nn.Module``, its settings dataclass, its
``SPEC``) plus its tests; nothing else names it.
"""

from __future__ import annotations

import importlib
import pkgutil

from emohrnet.models.spec import ModelSpec


def discover(package: str = "emohrnet.models") -> dict[str, ModelSpec]:
    """Every ``SPEC`` declared by a module of ``package``, by name, in ``(order, name)`` order.

    Raises:
        ValueError: two modules declare the same name, or a ``SPEC`` is not a :class:`ModelSpec`.
    """
    found: dict[str, ModelSpec] = {}
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if spec is None:
            continue
        if not isinstance(spec, ModelSpec):
            raise ValueError(f"{module.__name__}.SPEC is a {type(spec).__name__}, not a ModelSpec")
        if spec.name in found:
            raise ValueError(f"model {spec.name!r} is declared twice ({module.__name__} and another module)")
        found[spec.name] = spec
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


MODEL_SPECS: dict[str, ModelSpec] = discover()
"""The model registry, in the search's order (``--model any`` lists the baselines in this order)."""
