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
import re
from pathlib import Path
from typing import Any

import torch

from emohrnet.io.experiment_paths import in_experiment
from emohrnet.io.location import Location
from emohrnet.io.storage import atomic_write_bytes

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
    :mod:`emohrnet.io.location`).

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


CHECKPOINT_HELP = ("a checkpoint folder or its checkpoint.pt, or a search's experiment folder or its best.json "
                   "(the best trial's checkpoint)")
"""The ``--checkpoint`` option's help in every command that reads a checkpoint (what :func:`resolve_checkpoint`
accepts)."""


def resolve_checkpoint(path: str | Path | Location) -> Location:
    """The ``checkpoint.pt`` that ``path`` names: the file itself, a checkpoint folder, or a search's
    ``best.json`` or experiment folder (whose ``best.json`` names the best trial's checkpoint).

    ``best.json``'s checkpoint is read against the folder ``best.json`` is in now (a copied or moved
    experiment uses its own checkpoint; :func:`emohrnet.io.experiment_paths.in_experiment`).

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


def checkpoint_files(path: str | Path) -> list[tuple[Path, str]]:
    """The local files a ``--checkpoint`` argument names, for :func:`emohrnet.io.storage.output_problem`:
    what was given (a ``checkpoint.pt`` or a ``best.json``) and the ``checkpoint.pt`` it resolves to,
    each with a description. A checkpoint that does not resolve is left out (loading it reports why)."""
    files = [(Path(path), "the --checkpoint")]
    try:
        found = resolve_checkpoint(path)
    except (OSError, ValueError):
        return files
    return files + ([(found.local_path, "the checkpoint")] if found.is_local else [])


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

    Raises:
        FileNotFoundError: no checkpoint there.
        KeyError: the checkpoint lacks ``model_name``.
        ValueError: not a readable emohrnet checkpoint, a model this emohrnet does not have, or a
            config that does not fit the weights (an edited config or class list, a swapped model): one
            line naming the checkpoint and the first difference.
    """
    from emohrnet.models import MODELS, build_model

    state = load_checkpoint_file(path)
    config = dict(state["model_config"])
    num_classes = config.pop("num_classes", None)
    if num_classes is None:
        num_classes = len(state["classes"])
    name = state["model_name"]
    if name not in MODELS:
        raise ValueError(f"{path}: the checkpoint's model {name!r} is not one of this emohrnet's "
                         f"({', '.join(sorted(MODELS))})")
    try:
        model = build_model(name, num_classes, **config)
        model.load_state_dict(best_weights(state) if best else state["model"])
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path}: the checkpoint's config and its weights disagree ({name}, {num_classes} classes: "
                         f"{_first_difference(err)}); it was edited or assembled from two checkpoints: use the "
                         "checkpoint as training wrote it") from None
    return model.eval(), state


def _first_difference(err: BaseException) -> str:
    """The first line of a ``load_state_dict`` (or constructor) error, shortened, and how many more there are."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading state_dict"):
        lines = lines[1:]
    first = lines[0] if lines else type(err).__name__
    shapes = re.findall(r"torch\.Size\((\[[^\]]*\])\)", first)
    if first.startswith("size mismatch for ") and len(shapes) == 2:
        first = f"{first[len('size mismatch for '):].split(':', 1)[0]} is {shapes[0]} in the weights, {shapes[1]} " \
                "by the config"
    elif len(first) > 160:
        first = first[:157] + "..."
    return first + (f"; and {len(lines) - 1} more" if len(lines) > 1 else "")


def load_usable_model(path: str | Path, purpose: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """:func:`load_model` for tools that need the class list and the front end too.

    Args:
        path: checkpoint file or folder.
        purpose: what the model is for, named in errors (e.g. ``"prediction"``).

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: not an emohrnet checkpoint, its config and weights disagree, it lacks ``classes`` or
            ``features``, or its class list does not match the model's outputs.
    """
    try:
        model, state = load_model(path)
    except KeyError as err:
        raise ValueError(f"{path}: checkpoint lacks {err}; it cannot be used for {purpose}") from None
    for key in ("classes", "features"):
        if not state.get(key):
            raise ValueError(f"{path}: checkpoint lacks {key!r}; it cannot be used for {purpose}")
    outputs = state["model_config"].get("num_classes", len(state["classes"]))
    if outputs != len(state["classes"]):
        raise ValueError(f"{path}: the model has {outputs} outputs but the checkpoint names {len(state['classes'])} "
                         f"classes; it cannot be used for {purpose}")
    return model, state
