"""The defaults users rely on, stated exactly: the search's per-dataset profiles, the waveform
augmentation's ranges (Lee & Nadeem 2025), the corpus folder from ``EMOHRNET_<DATASET>_ROOT``."""

from __future__ import annotations

import pytest
import torch
from corpus_trees import write_ravdess_tree

from emohrnet.corpora import get_corpus, root_env_var
from emohrnet.data.wave_augment import WaveAugmentConfig, augment_wave
from tune.search import parse_args
from tune.space import PAPER_FIXED


@pytest.mark.parametrize("dataset, expected", [
    ("synthetic", {"epochs": 5, "num_samples": 3, "widths": (8, 12, 18), "n_mels": 64, "segment_seconds": 2.0,
                   "batch_size": 16}),
    ("ravdess", {"epochs": 100, "num_samples": 20, "widths": (12, 18, 24, 32), "n_mels": 128,
                 "segment_seconds": 3.0, "batch_size": 64}),
    ("iemocap", {"epochs": 100, "num_samples": 20, "widths": (12, 18, 24, 32), "n_mels": 128,
                 "segment_seconds": 3.0, "batch_size": 64}),
])
def test_search_profiles(dataset, expected):
    args = parse_args(["--dataset", dataset])
    assert {k: getattr(args, k) for k in expected} == expected
    # a CPU-only search: 1-worker trials side by side (CPU_WORKERS); with GPUs, 2 DDP workers per trial
    assert args.protocol == "speaker" and args.fold == 0 and args.workers == 1 and args.seed == 0
    assert parse_args(["--dataset", dataset, "--gpus-per-worker", "1"]).workers == 2
    assert args.space == "paper" and args.speed_copies == 0
    assert args.modules == [1, 1, 4, 3] and args.blocks == 4 and args.stem_channels == 64  # HRNet-W18's
    assert (args.amp, args.lr_schedule, args.model) == ("auto", "constant", "emohrnet")
    assert args.augment_copies == 2 and args.grace_period is None  # ASHA: epochs // 4


def test_the_papers_fixed_settings():
    """Muppidi & Radfar: Adam lr 1e-3, betas (0.9, 0.999), weight decay 1e-4, 100 epochs, batch 64; the
    training config's defaults are the same recipe (written once, in the model registry)."""
    from emohrnet.training.config import TrainConfig

    paper = {"beta1": 0.9, "beta2": 0.999, "weight_decay": 1e-4, "epochs": 100, "batch_size": 64}
    assert {k: PAPER_FIXED[k] for k in paper} == paper
    cfg = TrainConfig(shard_dir="shards")
    assert {k: getattr(cfg.optimizer, k) for k in paper} == paper
    arch, aug = cfg.architecture, cfg.augmentation
    assert (cfg.optimizer.lr, aug.freq_mask, aug.time_mask, arch.width, arch.stem_channels, arch.blocks_per_branch,
            arch.modules, cfg.optimizer.lr_schedule) == (1e-3, 27, 100, 18, 64, 4, [1, 1, 4, 3], "constant")
    assert TrainConfig(shard_dir="shards").architecture.modules is not arch.modules  # each config its own list


def test_waveform_augmentation_default_ranges():
    """Noise at 10-30 dB SNR, pitch within +-2 semitones, speed 0.9-1.1, each with probability 0.5:
    the drawn values stay inside and cover their ranges."""
    cfg = WaveAugmentConfig()
    assert (cfg.noise_snr_db, cfg.pitch_shift_semitones, cfg.speed) == ((10.0, 30.0), 2.0, (0.9, 1.1))
    assert cfg.noise_prob == cfg.pitch_prob == cfg.speed_prob == 0.5
    g = torch.Generator().manual_seed(0)
    drawn: dict[str, list[float]] = {"snr_db": [], "pitch_semitones": [], "speed": []}
    for _ in range(300):
        _, params = augment_wave(torch.randn(2048), 16_000, cfg, g, return_params=True)
        for key, values in drawn.items():
            if params[key] is not None:
                values.append(float(params[key]))
    for key, (low, high) in {"snr_db": (10.0, 30.0), "pitch_semitones": (-2.0, 2.0), "speed": (0.9, 1.1)}.items():
        values = drawn[key]
        assert low <= min(values) and max(values) <= high, (key, min(values), max(values))
        span = high - low
        assert min(values) < low + 0.1 * span and max(values) > high - 0.1 * span, key  # the whole range


def test_corpus_folder_from_the_environment(tmp_path, monkeypatch):
    write_ravdess_tree(tmp_path / "ravdess", actors=(1, 2), emotions=(1, 5))
    monkeypatch.setenv(root_env_var("ravdess"), str(tmp_path / "ravdess"))
    assert root_env_var("ravdess") == "EMOHRNET_RAVDESS_ROOT"
    corpus = get_corpus("ravdess")
    assert corpus.root == tmp_path / "ravdess" and len(corpus.scan().utterances) == 4
    assert get_corpus("ravdess", tmp_path / "other").root == tmp_path / "other"  # --data-root wins
