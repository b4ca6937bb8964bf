"""The search space and the baseline trial (the paper's settings).

Searched (flat keys of the trial config, so ``points_to_evaluate`` takes them as they are):

- ``lr``: Adam learning rate, log-uniform in [1e-4, 3e-3].
- ``freq_mask``: SpecAugment F in mel bands, integer in [0, 40].
- ``time_mask``: SpecAugment T in frames, integer in [0, 120].
- ``width``: HRNet width C, branch widths (C, 2C, 4C, 8C), a choice from ``--widths``.

The baseline trial, evaluated first, is EmoHRNet's published recipe (Muppidi & Radfar 2025):
lr 1e-3 with Adam betas (0.9, 0.999) and weight decay 1e-4, batch 64, HRNet-W18 widths, and
SpecAugment's LibriSpeech-basic F = 27, T = 100 (the paper gives no F and T).
"""

from __future__ import annotations

from typing import Any

PAPER_SETTINGS: dict[str, Any] = {"lr": 1e-3, "freq_mask": 27, "time_mask": 100, "width": 18}
"""The searched parameters at the paper's values (the baseline trial)."""

PAPER_FIXED: dict[str, Any] = {"beta1": 0.9, "beta2": 0.999, "weight_decay": 1e-4, "batch_size": 64,
                               "epochs": 100, "stem_channels": 64, "blocks_per_branch": 4,
                               "modules": [1, 1, 4, 3]}
"""The paper's settings that are not searched (HRNet-W18's structure, Adam, batch, epochs)."""

DEFAULT_WIDTHS = (12, 18, 24, 32)
LR_RANGE = (1e-4, 3e-3)
FREQ_MASK_RANGE = (0, 40)
TIME_MASK_RANGE = (0, 120)


def search_space(widths: tuple[int, ...] = DEFAULT_WIDTHS) -> dict[str, Any]:
    """Ray Tune search space over the searched parameters.

    Args:
        widths: HRNet widths to choose from.

    Raises:
        ValueError: ``widths`` is empty or holds a non-positive width.
    """
    from ray import tune

    if not widths or min(widths) < 1:
        raise ValueError(f"--widths needs positive integers, got {widths}")
    return {
        "lr": tune.loguniform(*LR_RANGE),
        "freq_mask": tune.randint(FREQ_MASK_RANGE[0], FREQ_MASK_RANGE[1] + 1),
        "time_mask": tune.randint(TIME_MASK_RANGE[0], TIME_MASK_RANGE[1] + 1),
        "width": tune.choice(sorted(set(widths))),
    }


def baseline_point(widths: tuple[int, ...] = DEFAULT_WIDTHS) -> tuple[dict[str, Any], list[str]]:
    """The first trial: the paper's settings, restricted to the searched widths.

    Returns:
        ``(point, deviations)``: the point for ``OptunaSearch(points_to_evaluate=[point])`` and a
        list naming each setting that differs from the paper (empty when the width 18 is among
        ``widths``; else the width closest to 18 is used and named).
    """
    point = dict(PAPER_SETTINGS)
    deviations = []
    if PAPER_SETTINGS["width"] not in widths:
        point["width"] = min(widths, key=lambda w: (abs(w - 18), w))
        deviations.append(f"width {point['width']} instead of 18 (W18 not in --widths)")
    return point, deviations
