"""Default locations of emohrnet's caches and results.

Everything emohrnet writes by default lives under one folder, ``$EMOHRNET_HOME``, which
defaults to ``./emohrnet_runs`` in the current working directory:

- ``corpora/`` -- generated corpora (the synthetic corpus's WAV files),
- ``shards/`` -- precomputed WebDataset shards, one folder per corpus and feature setting,
- ``experiments/`` -- Ray Tune experiments (TensorBoard logs, checkpoints, Optuna study).
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Return the root folder for emohrnet's caches and results (absolute path).

    Read from the ``EMOHRNET_HOME`` environment variable, else ``./emohrnet_runs``.
    """
    return Path(os.environ.get("EMOHRNET_HOME", "emohrnet_runs")).expanduser().resolve()


def corpora_dir() -> Path:
    """Folder for generated corpora, ``$EMOHRNET_HOME/corpora``."""
    return home() / "corpora"


def shards_dir() -> Path:
    """Folder for precomputed shards, ``$EMOHRNET_HOME/shards``."""
    return home() / "shards"


def experiments_dir() -> Path:
    """Folder for Ray Tune experiments, ``$EMOHRNET_HOME/experiments``."""
    return home() / "experiments"
