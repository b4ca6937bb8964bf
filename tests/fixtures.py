"""Shared test helpers that are not corpus trees (those are in corpus_trees.py): the tiny search's
flags, the tiny model, a handmade finished experiment, the processes a search leaves (its
listening sockets, its process group), and a free port."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (bound once and released; another process may take it later)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


TINY_SEARCH = (
    "--epochs", "2", "--workers", "2", "--widths", "4,6", "--stem-channels", "8", "--blocks", "1",
    "--modules", "1,1,1,1", "--n-mels", "32", "--segment-seconds", "1.0", "--grace-period", "2",
)
"""Flags of a tiny real search on the synthetic corpus (seconds per trial on 2 cores); add
``--num-samples``, ``--storage-path`` and ``--name``."""

SEARCH_TRIALS, SEARCH_EPOCHS = 3, 3
"""Trials and epochs of the session's shared tiny search (conftest.py ``tiny_search``)."""


# --------------------------------------------------------------------------------- models
TINY_EMOHRNET = {"stem_channels": 8, "blocks_per_branch": 1, "modules": [1, 1, 1, 1]}
"""The smallest EmoHRNet the tests train and save (with ``widths`` of W4)."""


def tiny_emohrnet(num_classes: int = 3, seed: int = 0):
    """A tiny EmoHRNet (W4, one block per branch, one module per stage), seeded."""
    import torch

    from emohrnet.models import build_model, width_preset

    torch.manual_seed(seed)
    return build_model("emohrnet", num_classes, widths=list(width_preset(4)), **TINY_EMOHRNET)


def listening_sockets(pgid: int) -> list[tuple[str, int, str]]:
    """The TCP listeners ``(ip, port, process name)`` of every process in the process group ``pgid``
    (a search started with ``start_new_session=True`` and the local Ray it started)."""
    import psutil

    found = []
    for p in psutil.process_iter(["name"]):
        try:
            if os.getpgid(p.pid) != pgid:
                continue
            found += [(c.laddr.ip, c.laddr.port, p.info["name"]) for c in p.net_connections("inet")
                      if c.status == psutil.CONN_LISTEN]
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def group_gone(pgid: int, wait_s: float = 30) -> bool:
    """Whether every process of the group ``pgid`` has exited within ``wait_s`` seconds."""
    deadline = time.time() + wait_s
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False


# --------------------------------------------------------------------------------- experiments
def fake_experiment(exp_dir: Path) -> dict:
    """A finished one-trial search, written by hand (no Ray, no Optuna study)."""
    exp_dir.mkdir(parents=True)
    classes = ["neutral", "happy", "angry", "sad"]
    confusion = [[3, 1, 0, 0], [0, 4, 0, 0], [1, 0, 2, 1], [0, 0, 0, 4]]
    trial = {"trial_id": "abc123", "model": "emohrnet", "baseline": True,
             "params": {"lr": 1e-3, "freq_mask": 27, "time_mask": 100, "width": 6}, "best_val_ua": 0.5,
             "best_val_wa": 0.5, "best_epoch": 1, "epochs_run": 3, "status": "completed", "test_ua": 0.8125,
             "test_wa": 0.8125, "test_confusion": confusion, "path": str(exp_dir / "trial_abc123")}
    summary = {"dataset": "synthetic", "model": "emohrnet", "protocol": "random", "fold": 0,
               "split": "random stratified utterance split (seed 0; NOT speaker-independent)", "protocol_note": "",
               "baseline": {"points": [], "deviations_from_paper": []}, "best_trial": "abc123",
               "best_model": "emohrnet", "best_config": {"lr": 1e-3, "model": "emohrnet", "epochs": 3},
               "best_val_ua": 0.5, "best_val_wa": 0.5, "best_epoch": 1, "test_ua": 0.8125, "test_wa": 0.8125,
               "test_confusion": confusion, "classes": classes, "test_source": "final report",
               "experiment_dir": str(exp_dir), "trials": [trial]}
    (exp_dir / "best.json").write_text(json.dumps(summary))
    tdir = exp_dir / "trial_abc123"
    tdir.mkdir()
    # result.json only (no progress.csv): the learning curves must come from it
    lines = [{"epoch": e, "train_loss": 1.4 - 0.1 * e, "val_loss": 1.5 - 0.05 * e, "val_ua": 0.3 + 0.1 * e,
              "training_iteration": e + 1, "config": {"lr": 1e-3}} for e in range(3)]
    (tdir / "result.json").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    return summary


def canned_tuner(monkeypatch, test_ua: dict[int, float], folder) -> list:
    """Replace Ray Tune's Tuner (and a running Ray) with a grid that returns a finished fold result of
    ``test_ua[fold]`` for each fold (no Ray): what :func:`tune.evaluate.run_crossfold` runs on. Returns
    the list that collects each Tuner's ``run_config``."""
    from types import SimpleNamespace

    import ray
    from ray import tune

    configs: list = []

    class Grid:
        def __init__(self, trainable, param_space, run_config=None, **_):
            self.folds = param_space["fold"]["grid_search"]
            configs.append(run_config)

        def fit(self):
            return [SimpleNamespace(config={"fold": f}, error=None, path=f"{folder}/fold_{f}",
                                    metrics={"test_ua": test_ua[f], "test_wa": test_ua[f], "best_val_ua": 0.5,
                                             "best_epoch": 1, "training_iteration": 3,
                                             "test_confusion": [[3, 1], [1, 3]]}) for f in self.folds]

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(tune, "with_parameters", lambda fn, **kw: fn)
    monkeypatch.setattr(tune, "with_resources", lambda fn, res: fn)
    monkeypatch.setattr(tune, "Tuner", Grid)
    return configs

