"""Checkpoint files: one ``checkpoint.pt`` per Ray Train checkpoint folder.

A checkpoint carries everything needed to use the model without any other file: the weights
(``model``; ``best_model`` too when the checkpoint's epoch is not the best one), the model's
registry name and constructor arguments, the class list, the feature parameters, the training
settings, the split description and the validation scores. Files are written atomically and
read with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from .experiment_paths import in_experiment
from .location import Location
from .storage import atomic_write_bytes

CHECKPOINT_FILE = "checkpoint.pt"
SUMMARY_FILE = "best.json"
"""A search's summary, which names the best trial's checkpoint (:mod:`tune.search`)."""


def save_checkpoint_file(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors, numbers, strings, lists and dicts only) atomically to ``path``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint_file`.

    ``path`` may be the file, the checkpoint folder holding ``checkpoint.pt``, or a search's
    experiment folder or its ``best.json`` (the best trial's checkpoint, :func:`resolve_checkpoint`),
    on local disk or in an object store (``s3://bucket/.../checkpoint_000004``, see
    :mod:`emohrnet.location`).

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: the file is not a readable emohrnet checkpoint.
    """
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint file")
    try:
        state = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for damaged or foreign files
        raise ValueError(f"{path}: not a readable emohrnet checkpoint ({err})") from None
    if not isinstance(state, dict) or "model" not in state or "model_config" not in state:
        raise ValueError(f"{path}: not an emohrnet checkpoint (no model weights or model config)")
    return state


def resolve_checkpoint(path: str | Path | Location) -> Location:
    """The ``checkpoint.pt`` that ``path`` names: the file itself, a checkpoint folder, or a search's
    ``best.json`` or experiment folder (whose ``best.json`` names the best trial's checkpoint).

    ``best.json``'s checkpoint is read against the folder ``best.json`` is in now (a copied or moved
    experiment uses its own checkpoint; :func:`emohrnet.experiment_paths.in_experiment`).

    Raises:
        FileNotFoundError: a ``best.json`` that names no checkpoint (the search ended without one).
        ValueError: a ``best.json`` that is not JSON.
        OutsideExperiment: (a ValueError) ``best.json`` names a checkpoint outside its experiment folder.
    """
    path = Location(path)
    if path.is_dir():
        if (path / SUMMARY_FILE).is_file() and not (path / CHECKPOINT_FILE).is_file():
            path = path / SUMMARY_FILE
        else:
            return path / CHECKPOINT_FILE
    if path.name.endswith(".json") and path.is_file():
        try:
            summary = json.loads(path.read_text())
            named, recorded = summary.get("checkpoint"), summary.get("experiment_dir")
        except (ValueError, AttributeError) as err:
            raise ValueError(f"{path}: not a search summary ({err})") from None
        if not named:
            raise FileNotFoundError(f"{path}: names no checkpoint (the search kept none)")
        return resolve_checkpoint(in_experiment(str(named), path.parent, recorded, source=path, what="checkpoint"))
    return path


def best_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights of the best validation epoch held by a checkpoint."""
    return state.get("best_model") or state["model"]


def load_model(path: str | Path, best: bool = True) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint, in eval mode.

    Args:
        path: checkpoint file or folder.
        best: load the best validation epoch's weights (else the checkpoint's own epoch).

    Returns:
        ``(model, state)``; ``state`` holds ``classes``, ``features`` and the other metadata.
    """
    from .models import build_model

    state = load_checkpoint_file(path)
    config = dict(state["model_config"])
    num_classes = config.pop("num_classes", len(state["classes"]))
    model = build_model(state["model_name"], num_classes, **config)
    model.load_state_dict(best_weights(state) if best else state["model"])
    return model.eval(), state


def load_usable_model(path: str | Path, purpose: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """:func:`load_model` for tools that need the class list and the front end too.

    Args:
        path: checkpoint file or folder.
        purpose: what the model is for, named in errors (e.g. ``"prediction"``).

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: not an emohrnet checkpoint, or it lacks ``classes`` or ``features``.
    """
    try:
        model, state = load_model(path)
    except KeyError as err:
        raise ValueError(f"{path}: checkpoint lacks {err}; it cannot be used for {purpose}") from None
    for key in ("classes", "features"):
        if not state.get(key):
            raise ValueError(f"{path}: checkpoint lacks {key!r}; it cannot be used for {purpose}")
    return model, state
