"""Each model's own settings in a training config (a small dataclass per model, e.g.
:class:`emohrnet.models.hrnet.EmoHRNetConfig`), read from a flat trial config.

A search's trial config is flat (Optuna's ``points_to_evaluate`` takes flat keys), so every model's
settings sit side by side in it (``width``, ``cnn_width``, ...); :func:`settings_from_flat` picks the
fields of one model's class and casts them to the types of its defaults (Tune's ``choice`` over ints
can hand back numpy integers, a JSON round trip floats).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T")


def field_defaults(cls: type) -> dict[str, Any]:
    """``{field: default}`` of a settings dataclass (every field has a default)."""
    out = {}
    for f in fields(cls):
        out[f.name] = f.default_factory() if f.default is MISSING else f.default
    return out


def settings_from_flat(cls: type[T], flat: Mapping[str, Any]) -> T:
    """An instance of ``cls`` from the keys of ``flat`` that are its fields (the others are ignored;
    missing fields take their defaults), each cast to its default's type (int, float, bool, a list
    of ints).

    Raises:
        ValueError: a value that does not cast (e.g. ``width="wide"``), naming the field.
    """
    values = {}
    for name, default in field_defaults(cls).items():
        if name not in flat:
            continue
        value = flat[name]
        try:
            if isinstance(default, list):
                kind = type(default[0]) if default else int
                values[name] = [kind(v) for v in value]
            elif isinstance(default, bool) or default is None:
                values[name] = value
            else:
                values[name] = type(default)(value)
        except (TypeError, ValueError):
            raise ValueError(f"{cls.__name__}.{name}={value!r}: expected {type(default).__name__}") from None
    return cls(**values)
