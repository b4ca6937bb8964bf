"""Checkpoints: self-contained, atomic, and read with ``weights_only=True``."""

from __future__ import annotations

import pytest
import torch
from fixtures import tiny_emohrnet

from emohrnet.training.checkpoint import CHECKPOINT_FILE, load_checkpoint_file, load_model, save_checkpoint_file


class Payload:
    """An arbitrary object a malicious checkpoint could smuggle in."""


def _state(model, **extra):
    return {"model": model.state_dict(), "model_name": "emohrnet", "model_config": model.config,
            "classes": ["a", "b", "c"], "features": {"n_mels": 16}, **extra}


def test_round_trip_rebuilds_the_best_weights(tmp_path):
    model = tiny_emohrnet()
    best = {k: v + 1 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_checkpoint_file(tmp_path / CHECKPOINT_FILE, _state(model, best_model=best))
    loaded, state = load_model(tmp_path)  # the folder works as well as the file
    assert state["classes"] == ["a", "b", "c"] and not loaded.training
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, best[k])
    current, _ = load_model(tmp_path, best=False)
    assert torch.equal(current.state_dict()["classifier.weight"], model.state_dict()["classifier.weight"])
    assert not list(tmp_path.glob("*.tmp"))


def test_pickled_objects_are_refused(tmp_path):
    model = tiny_emohrnet()
    torch.save(_state(model, extra=Payload()), tmp_path / CHECKPOINT_FILE)
    with pytest.raises(ValueError, match="not a readable emohrnet checkpoint"):
        load_checkpoint_file(tmp_path)
    (tmp_path / "other.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError):
        load_checkpoint_file(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint_file(tmp_path / "missing")
