"""The one way emohrnet registers what a config can name: models (``--model``), corpora
(``--dataset``) and front ends (a shard's ``feature_kind``).

Each registered thing carries its own name (a model's :class:`~emohrnet.models.spec.ModelSpec`
``name``, a corpus reader class's ``name``, a front end's :class:`~emohrnet.frontend.stft.FrontEnd`
``kind``), and its package lists every one of them in a single tuple passed to :func:`registry`:
``emohrnet/models/registry.py``, ``emohrnet/corpora/__init__.py``, ``emohrnet/frontend/__init__.py``.
A reader (or a static tool) finds every registered thing by following that tuple's imports; adding
one is its module plus one entry in its package's tuple.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def registry(entries: Iterable[T], key: str = "name", what: str = "entry") -> dict[str, T]:
    """``entries`` by their ``key`` attribute, in the given order.

    Raises:
        ValueError: two entries share a name (``what`` says what they are: "model", "corpus", ...).
    """
    found: dict[str, T] = {}
    for entry in entries:
        name = getattr(entry, key)
        if name in found:
            raise ValueError(f"{what} {name!r} is registered twice ({found[name]!r} and {entry!r})")
        found[name] = entry
    return found
